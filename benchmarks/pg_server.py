"""A throwaway PostgreSQL server, for the tests and the store benchmark: a cluster made by
`initdb` in a temporary folder, served on a free 127.0.0.1 port (its unix socket in that folder
too), removed at the end.

PostgreSQL refuses to run as root, so when run as root the server runs as `nobody` (through
`runuser`), in a folder that user owns. `start()` turns durability off (no fsync, no page
writes: fast tests); `start(durable=True)` keeps PostgreSQL's defaults (fsync and
synchronous_commit on), for measuring what a real server costs.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

__all__ = ["PostgresServer", "PostgresUnavailable"]

_USER = "codeloop"
_INSTALL = "install Debian's `postgresql` package (apt-get install postgresql)"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server programs are missing, or the server did not start."""


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps the server programs out of PATH, in /usr/lib/postgresql/<version>/bin.
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    if not candidates:
        raise PostgresUnavailable(f"PostgreSQL's `{name}` was not found: {_INSTALL}.")
    return candidates[-1]


def _version_key(path: str) -> int:
    version = Path(path).parent.parent.name
    return int(version) if version.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """`PostgresServer.start()`, then `dsn(create_database())` per test, `stop()` at the end."""

    def __init__(self, durable: bool = False) -> None:
        self.durable = durable
        self.folder = Path(tempfile.mkdtemp(prefix="codeloop-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.folder, nobody.pw_uid, nobody.pw_gid)
            runuser = shutil.which("runuser")
            if runuser is None:
                raise PostgresUnavailable("Running as root, PostgreSQL needs `runuser` (util-linux).")
            self._as_user = [runuser, "-u", "nobody", "--"]

    @classmethod
    def start(cls, *, durable: bool = False) -> PostgresServer:
        server = cls(durable)
        try:
            server._initdb()
            server._pg_ctl("start", "-l", str(server.folder / "log"), "-t", "60", "-o", server._options())
        except BaseException:
            server.stop()
            raise
        return server

    def _options(self) -> str:
        settings = "-c listen_addresses=127.0.0.1"
        if not self.durable:
            settings += " -c fsync=off -c full_page_writes=off"
        return f"-p {self.port} -k {self.folder} {settings}"

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            [*self._as_user, *command], cwd=self.folder, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            log = self.folder / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{Path(command[0]).name} failed ({done.returncode}): {done.stderr.strip()}\n{tail}"
            )

    def _initdb(self) -> None:
        no_sync = [] if self.durable else ["-N"]
        initdb = [_binary("initdb"), "-D", str(self.data), "-U", _USER, "--auth=trust", "-E", "UTF8"]
        self._run(*initdb, "--locale=C", *no_sync)

    def _pg_ctl(self, *args: str) -> None:
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-w", *args)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{database}"

    def version(self) -> str:
        """The server's version (`SHOW server_version`)."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            row = connection.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def create_database(self) -> str:
        """A new, empty database; its name."""
        import psycopg

        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return name

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._pg_ctl("stop", "-m", "fast" if self.durable else "immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
