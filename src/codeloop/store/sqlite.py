"""`SQLiteStore`: a run store in one SQLite file, with no setup.

The file is in WAL mode, so readers in other processes never wait for a writer; writes take the
database's write lock from their first statement (`BEGIN IMMEDIATE`), so a lease changes hands
atomically between processes. Calls into sqlite3 run in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from ._sql import Row, SQLRunStore
from .base import StoreError

__all__ = ["SQLiteStore", "default_store_path"]

T = TypeVar("T")

_BUSY_TIMEOUT_S = 30.0
"""How long a write waits for another connection's write lock before failing."""


def default_store_path() -> Path:
    """Where runs are kept by default: `$XDG_DATA_HOME/codeloop/runs.db`, or
    `~/.local/share/codeloop/runs.db` when `XDG_DATA_HOME` is not set."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "codeloop" / "runs.db"


class _SQLiteTx:
    def __init__(self, connection: sqlite3.Connection, where: str) -> None:
        self._connection, self._where = connection, where

    async def _call(self, function: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(function)
        except sqlite3.Error as exc:
            raise StoreError(f"{self._where}: {exc}") from exc

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return await self._call(lambda: self._connection.execute(sql, tuple(params)).fetchall())

    async def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await self._call(lambda: self._connection.execute(sql, tuple(params)).rowcount)

    async def now(self) -> float:
        return time.time()


class SQLiteStore(SQLRunStore):
    """Runs in one SQLite file (default: `default_store_path()`); its folder is created."""

    dialect = "sqlite"

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.path = Path(path) if path is not None else default_store_path()
        self._connection: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def where(self) -> str:
        return f"the SQLite store {self.path}"

    async def _connect(self) -> None:
        try:
            self._connection = await asyncio.to_thread(self._open_file)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"Could not open {self.where}: {exc}. Check that the path is a writable file."
            ) from exc

    def _open_file(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            _write_ahead_log(connection)
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error:
            connection.close()
            raise
        return connection

    async def _disconnect(self) -> None:
        async with self._lock:  # after the running transaction
            connection, self._connection = self._connection, None
            if connection is not None:
                await asyncio.to_thread(connection.close)

    @asynccontextmanager
    async def _transaction(self, write: bool) -> AsyncIterator[_SQLiteTx]:
        async with self._lock:
            connection = self._connection
            if connection is None:
                raise StoreError(f"{self.where} is closed; open it again with `await store.open()`.")
            tx = _SQLiteTx(connection, self.where)
            await tx.run("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield tx
                await tx.run("COMMIT")
            except BaseException:
                await asyncio.shield(asyncio.to_thread(connection.rollback))
                raise


def _write_ahead_log(connection: sqlite3.Connection) -> None:
    """Switch the file to WAL. SQLite does not wait out a lock for this pragma (several stores
    opening a new file at once get "database is locked"), so it is retried until the timeout."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
