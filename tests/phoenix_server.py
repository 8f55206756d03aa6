"""A real Arize Phoenix server for the tracing tests, installed from PyPI and started on 127.0.0.1.

Phoenix cannot share codeloop's environment (it pins another pydantic-monty), so it lives in a
virtual environment of its own, `tests/.phoenix-venv/` (git-ignored), made with `python -m venv`
and `pip install arize-phoenix==PHOENIX_VERSION` the first time it is needed. `PhoenixServer.start`
runs `phoenix serve` there with its HTTP and gRPC ports free ports, its working directory (its
SQLite database) a temporary folder, and waits until it answers; `stop` kills its process group.

Spans are sent to `otlp_url` (OTLP over HTTP) and read back from Phoenix's REST API
(`GET /v1/projects/{project}/spans`), which returns each span with its Phoenix span kind, parent
id, status and attributes (flattened to dotted keys).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PHOENIX_VERSION", "PhoenixServer", "PhoenixUnavailable", "phoenix_executable"]

PHOENIX_VERSION = "20.26.1"
VENV = Path(__file__).resolve().parent / ".phoenix-venv"
_INSTALLED_MARK = VENV / f".installed-arize-phoenix-{PHOENIX_VERSION}"
_READY_WITHIN_S = 180.0
_INSTALL_WITHIN_S = 1800.0


class PhoenixUnavailable(RuntimeError):
    """Phoenix could not be installed or started; the message says what failed."""


def _bin(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / name


def phoenix_executable() -> Path:
    """The `phoenix` command of the pinned version, installed into `tests/.phoenix-venv` first
    if needed (one installer at a time: parallel test processes wait on a lock on the folder)."""
    VENV.mkdir(exist_ok=True)
    folder = os.open(VENV, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        if not (_INSTALLED_MARK.is_file() and _bin("phoenix").is_file()):
            _install()
    finally:
        os.close(folder)  # (releases the lock)
    return _bin("phoenix")


def _install() -> None:
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],  # --clear: a half-made one goes
        [str(_bin("python")), "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
         f"arize-phoenix=={PHOENIX_VERSION}"],
    ]  # fmt: skip
    for command in steps:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=_INSTALL_WITHIN_S)
        except subprocess.TimeoutExpired as exc:
            raise PhoenixUnavailable(
                f"`{' '.join(command)}` did not finish in {_INSTALL_WITHIN_S:g}s"
            ) from exc
        if done.returncode != 0:
            raise PhoenixUnavailable(
                f"Could not install Arize Phoenix {PHOENIX_VERSION} for the tracing tests: "
                f"`{' '.join(command)}` exited with {done.returncode}:\n{done.stderr[-3000:]}"
            )
    _INSTALLED_MARK.write_text(PHOENIX_VERSION)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PhoenixServer:
    process: subprocess.Popen[bytes]
    port: int
    grpc_port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def otlp_url(self) -> str:
        """Where OTLP/HTTP trace exports go."""
        return f"{self.url}/v1/traces"

    @classmethod
    def start(cls) -> PhoenixServer:
        """Install (once) and start Phoenix; returns when its REST API answers."""
        executable = phoenix_executable()
        folder = Path(tempfile.mkdtemp(prefix="codeloop-phoenix-"))
        port, grpc_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PHOENIX_"))}
        env.update(
            PHOENIX_WORKING_DIR=str(folder / "work"),
            PHOENIX_HOST="127.0.0.1",
            PHOENIX_PORT=str(port),
            PHOENIX_GRPC_PORT=str(grpc_port),
            PHOENIX_TELEMETRY_ENABLED="false",
        )
        with open(folder / "phoenix.log", "wb") as log:
            process = subprocess.Popen(
                [str(executable), "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = cls(process, port, grpc_port, folder)
        try:
            server._wait_until_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + _READY_WITHIN_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PhoenixUnavailable(
                    f"phoenix serve exited with {self.process.returncode}:\n{self.log()}"
                )
            with contextlib.suppress(OSError, ValueError):
                if self.get("/v1/projects").get("data") is not None:
                    return
            time.sleep(0.2)
        raise PhoenixUnavailable(f"phoenix serve did not answer within {_READY_WITHIN_S:g}s:\n{self.log()}")

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / "phoenix.log").read_text(errors="replace")[-3000:]
        return ""

    def get(self, path: str, **query: Any) -> Any:
        """GET `path` from Phoenix with `query` (lists repeat the key); the JSON answer."""
        suffix = f"?{urllib.parse.urlencode(query, doseq=True)}" if query else ""
        with urllib.request.urlopen(f"{self.url}{path}{suffix}", timeout=10) as response:
            return json.loads(response.read())

    def spans(self, project: str, **query: Any) -> list[dict[str, Any]]:
        """Every span Phoenix holds in `project` (none if the project does not exist yet)."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page_query = {"limit": 1000, **query, **({"cursor": cursor} if cursor else {})}
            try:
                page = self.get(f"/v1/projects/{urllib.parse.quote(project)}/spans", **page_query)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return []
                raise
            found += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return found

    def wait_for_spans(
        self, project: str, done: Callable[[list[dict[str, Any]]], bool], within_s: float = 60.0, **query: Any
    ) -> list[dict[str, Any]]:
        """The project's spans once `done(spans)` holds (Phoenix stores what it receives in the
        background, so spans appear a little after the export); the last ones seen otherwise."""
        deadline = time.monotonic() + within_s
        spans = self.spans(project, **query)
        while not done(spans) and time.monotonic() < deadline:
            time.sleep(0.2)
            spans = self.spans(project, **query)
        return spans

    def stop(self) -> None:
        """Stop the server (its whole process group) and remove its folder."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever is left of the group
        self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)
