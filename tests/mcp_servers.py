"""Real MCP servers for the tests, installed from their registries and started on 127.0.0.1.

- `mcp-server-time` and `mcp-server-git` (PyPI, in the `dev` extra) run over stdio.
- `@modelcontextprotocol/server-everything` (npm, pinned below) is installed by the tests
  themselves into `tests/.npm-cache/` (git-ignored) the first time it is needed, then runs over
  stdio, streamable HTTP (`/mcp`) or legacy SSE (`/sse`) on a free port given in `PORT`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = [
    "EVERYTHING_VERSION",
    "HttpServer",
    "everything_entry",
    "everything_stdio",
    "free_port",
    "git_repository",
    "git_server",
    "http_server",
]

EVERYTHING_PACKAGE = "@modelcontextprotocol/server-everything"
EVERYTHING_VERSION = "2026.8.31"
NPM_DIR = Path(__file__).resolve().parent / ".npm-cache"
_READY_WITHIN_S = 60.0
_GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}  # no config from outside


def _installed_version(package_dir: Path) -> str | None:
    try:
        return str(json.loads((package_dir / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def everything_entry() -> Path:
    """The pinned server-everything's entry script, installed with npm first if needed."""
    package_dir = NPM_DIR.joinpath("node_modules", *EVERYTHING_PACKAGE.split("/"))
    entry = package_dir / "dist" / "index.js"
    if shutil.which("node") is None or shutil.which("npm") is None:
        needs = f"Node.js and npm (to install {EVERYTHING_PACKAGE})"
        pytest.fail(f"The MCP HTTP/SSE tests need {needs}; install them.")
    NPM_DIR.mkdir(exist_ok=True)
    with open(NPM_DIR / ".lock", "w") as lock:  # one installer at a time (parallel test workers)
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version(package_dir) != EVERYTHING_VERSION or not entry.is_file():
            command = ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(NPM_DIR),
                       f"{EVERYTHING_PACKAGE}@{EVERYTHING_VERSION}"]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0 or not entry.is_file():
                pytest.fail(f"`{' '.join(command)}` failed:\n{done.stderr[-2000:]}")
    return entry


def everything_stdio() -> dict[str, object]:
    """Parameters for server-everything over stdio."""
    return {"command": "node", "args": [str(everything_entry()), "stdio"]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HttpServer:
    process: subprocess.Popen[bytes]
    url: str
    port: int


def _wait_for_port(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + _READY_WITHIN_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server-everything exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    pytest.fail(f"server-everything did not listen on port {port} within {_READY_WITHIN_S:g}s")


def start_everything(mode: str, port: int) -> HttpServer:
    """server-everything in `mode` ("streamableHttp" or "sse") on 127.0.0.1:`port`, ready."""
    env = {**os.environ, "PORT": str(port)}  # it listens on every interface; the tests use 127.0.0.1
    process = subprocess.Popen(
        ["node", str(everything_entry()), mode], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port(process, port)
    except BaseException:
        stop(process)
        raise
    path = "/sse" if mode == "sse" else "/mcp"
    return HttpServer(process, f"http://127.0.0.1:{port}{path}", port)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


@contextlib.contextmanager
def http_server(mode: str) -> Iterator[HttpServer]:
    """server-everything over HTTP for the block, killed afterwards."""
    server = start_everything(mode, free_port())
    try:
        yield server
    finally:
        stop(server.process)


def git_repository(path: Path) -> Path:
    """A git repository at `path` with one commit (`first commit`, adding `hello.txt`)."""
    env = {**os.environ, **_GIT_ENV, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com"}  # fmt: skip
    path.mkdir(parents=True, exist_ok=True)
    (path / "hello.txt").write_text("hello\n")
    commands = (["init", "-q", "-b", "main"], ["add", "hello.txt"], ["commit", "-q", "-m", "first commit"])
    for command in commands:
        subprocess.run(["git", *command], cwd=path, env=env, check=True, capture_output=True)
    return path


def git_server(repository: Path) -> dict[str, object]:
    """Parameters for `mcp-server-git` over stdio, confined to `repository`."""
    args = ["-m", "mcp_server_git", "-r", str(repository)]
    return {"command": sys.executable, "args": args, "env": _GIT_ENV}
