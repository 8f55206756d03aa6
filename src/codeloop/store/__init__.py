"""Durable runs: every run's row, steps and tool results kept in SQLite or PostgreSQL.

```python
from codeloop.store import open_store

async with open_store("postgresql://codeloop@db/codeloop") as store:  # or a path, or sqlite:///runs.db
    for run in await store.list_runs(state="running"):
        print(run.run_id, run.step_count)
```
"""

from __future__ import annotations

import os
from pathlib import Path

from .base import (
    UNSET,
    RunExists,
    RunNotFound,
    RunRecord,
    RunStore,
    StepConflict,
    StepRecord,
    StoreError,
    StoreVersionError,
    ToolCallRecord,
    Unset,
    step_from_json,
    step_to_json,
)
from .postgres import PostgresStore
from .sqlite import SQLiteStore, default_store_path

__all__ = [
    "UNSET",
    "PostgresStore",
    "RunExists",
    "RunNotFound",
    "RunRecord",
    "RunStore",
    "SQLiteStore",
    "StepConflict",
    "StepRecord",
    "StoreError",
    "StoreVersionError",
    "ToolCallRecord",
    "Unset",
    "default_store_path",
    "open_store",
    "step_from_json",
    "step_to_json",
]


def open_store(url_or_path: str | os.PathLike[str] | None = None) -> SQLiteStore | PostgresStore:
    """The store a URL or path names (not yet connected: it opens on first use, or with
    `await store.open()` / `async with`).

    `postgresql://...` or `postgres://...`: `PostgresStore`. `sqlite:///relative.db`,
    `sqlite:////absolute.db` or a plain path: `SQLiteStore`. None: `SQLiteStore` at
    `default_store_path()`."""
    if url_or_path is None:
        return SQLiteStore()
    if isinstance(url_or_path, os.PathLike):
        return SQLiteStore(url_or_path)
    scheme, sep, rest = url_or_path.partition("://")
    if not sep:
        return SQLiteStore(Path(url_or_path))
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(url_or_path)
    if scheme == "sqlite":
        path = rest.removeprefix("/")
        if not path:
            raise StoreError("A sqlite URL names a file: sqlite:///runs.db or sqlite:////abs/path/runs.db.")
        return SQLiteStore(Path(path))
    raise StoreError(
        f"Unknown store URL scheme {scheme!r}: use postgresql://..., sqlite:///path, or a file path."
    )
