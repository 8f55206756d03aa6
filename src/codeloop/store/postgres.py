"""`PostgresStore`: a run store in a PostgreSQL database, shared by every worker that can reach it.

One connection per store object, one transaction at a time on it. Times come from the database
server's clock, so workers on machines whose clocks disagree still agree on when a lease ends.
Needs psycopg 3: `pip install "codeloop[postgres]"`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ._sql import Row, SQLRunStore, Tx
from .base import StoreError

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStore"]

_MIGRATION_LOCK = 0x636F64656C6F6F70
"""The advisory lock taken while the tables are created or migrated ("codeloop" in ASCII)."""


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError(
            'PostgresStore needs psycopg 3: pip install "codeloop[postgres]" (or "psycopg[binary]").'
        ) from exc
    return psycopg


class _PostgresTx:
    def __init__(self, cursor: psycopg.AsyncCursor[Row], where: str) -> None:
        self._cursor, self._where = cursor, where

    async def _execute(self, sql: str, params: Sequence[Any]) -> None:
        psycopg = _psycopg()
        try:
            await self._cursor.execute(sql.replace("?", "%s"), tuple(params) or None)
        except psycopg.Error as exc:
            raise StoreError(f"{self._where}: {exc}") from exc

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        await self._execute(sql, params)
        return await self._cursor.fetchall()

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        await self._execute(sql, params)
        return self._cursor.rowcount

    async def now(self) -> float:
        rows = await self.fetch("SELECT extract(epoch FROM clock_timestamp())::float8")
        return float(rows[0][0])


class PostgresStore(SQLRunStore):
    """Runs in the PostgreSQL database `dsn` names (`postgresql://user@host:5432/dbname`, or
    libpq's `key=value` form). The tables are created on first use."""

    dialect = "postgres"

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self.dsn = dsn
        self._connection: psycopg.AsyncConnection[Row] | None = None
        self._lock = asyncio.Lock()

    @property
    def where(self) -> str:
        """The database, without the password."""
        try:
            info = _psycopg().conninfo.conninfo_to_dict(self.dsn)
        except Exception:  # an unreadable DSN: say so rather than echo it (it may hold a password)
            return "the PostgreSQL store (an unreadable DSN)"
        host, port = info.get("host", "localhost"), info.get("port", "5432")
        return f"the PostgreSQL store {info.get('dbname', '')!s} on {host}:{port}"

    async def _connect(self) -> None:
        psycopg = _psycopg()
        try:
            self._connection = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(
                f"Could not connect to {self.where}: {exc}. Check the DSN and that the server runs."
            ) from exc

    async def _disconnect(self) -> None:
        async with self._lock:  # after the running transaction
            connection, self._connection = self._connection, None
            if connection is not None:
                await connection.close()

    async def _lock_schema(self, tx: Tx) -> None:
        await tx.fetch("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    @asynccontextmanager
    async def _transaction(self, write: bool) -> AsyncIterator[_PostgresTx]:
        async with self._lock:
            if self._connection is not None and self._connection.broken:
                await self._connection.close()
                await self._connect()  # the server restarted or the network dropped: start afresh
            connection = self._connection
            if connection is None:
                raise StoreError(f"{self.where} is closed; open it again with `await store.open()`.")
            try:
                async with connection.transaction(), connection.cursor() as cursor:
                    yield _PostgresTx(cursor, self.where)
            except _psycopg().Error as exc:  # the commit failed, or the connection dropped
                raise StoreError(f"{self.where}: {exc}") from exc
