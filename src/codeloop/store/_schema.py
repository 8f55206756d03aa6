"""The run store's tables, version by version.

`MIGRATIONS[n - 1]` takes a database from schema version n - 1 to n. A released migration is
never edited: a change to the tables is a new migration appended to the list. The statements
are written once for both databases, with `{real}`, `{int}` and `{bool}` standing for the
column types each spells differently.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["LATEST_VERSION", "MIGRATIONS", "VERSION_TABLE", "statements", "version_table"]

Dialect = Literal["sqlite", "postgres"]

VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version (version {int} PRIMARY KEY, applied_at {real} NOT NULL)"
)

_V1 = (
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        agent_name TEXT NOT NULL,
        task TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at {real} NOT NULL,
        updated_at {real} NOT NULL,
        step_count {int} NOT NULL DEFAULT 0,
        input_tokens {int} NOT NULL DEFAULT 0,
        output_tokens {int} NOT NULL DEFAULT 0,
        cached_tokens {int} NOT NULL DEFAULT 0,
        reasoning_tokens {int} NOT NULL DEFAULT 0,
        error TEXT,
        output_json TEXT,
        metadata_json TEXT NOT NULL DEFAULT '{{}}',
        lease_owner TEXT,
        lease_expires_at {real},
        pending_json TEXT NOT NULL DEFAULT '[]'
    )""",
    "CREATE INDEX runs_by_created ON runs (created_at)",
    "CREATE INDEX runs_by_state ON runs (state, created_at)",
    """CREATE TABLE steps (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        step_number {int} NOT NULL,
        kind TEXT NOT NULL,
        data_json TEXT NOT NULL,
        created_at {real} NOT NULL,
        PRIMARY KEY (run_id, step_number)
    )""",
    """CREATE TABLE tool_calls (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        step_number {int} NOT NULL,
        call_index {int} NOT NULL,
        tool_name TEXT NOT NULL,
        arguments_json TEXT NOT NULL,
        result_json TEXT,
        is_error {bool} NOT NULL,
        recorded_at {real} NOT NULL,
        PRIMARY KEY (run_id, step_number, call_index)
    )""",
)

_V2 = ("ALTER TABLE tool_calls ADD COLUMN started_at {real}",)
"""When each journaled tool call began (its duration for the web UI's timeline)."""

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
LATEST_VERSION = len(MIGRATIONS)

_TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"real": "REAL", "int": "INTEGER", "bool": "INTEGER"},
    "postgres": {"real": "DOUBLE PRECISION", "int": "BIGINT", "bool": "BOOLEAN"},
}


def statements(version: int, dialect: Dialect) -> list[str]:
    """The statements that take a database to `version`, spelled for `dialect`."""
    return [sql.format(**_TYPES[dialect]) for sql in MIGRATIONS[version - 1]]


def version_table(dialect: Dialect) -> str:
    return VERSION_TABLE.format(**_TYPES[dialect])
