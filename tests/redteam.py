"""A reusable red-team harness: run the shared escape corpus against any `Executor`.

The corpus (`escapes.yaml`) and its contract (`README.md`) live in `tests/data/redteam/`. For
each payload the harness prepares what the README asks for, runs the payload as one code action,
and reports whether it escaped and why:

    payloads = load_payloads()
    with Arena() as arena:                       # secret file, marker path, listener, env secret
        executor = MyExecutor(limits)
        await executor.start(HARMLESS_TOOLS)     # start after the env secret is set
        verdict = await attack(executor, payloads[0], arena, memory_limit=limits.memory_bytes)
        assert not verdict.escaped, verdict.reasons

`Verdict.escaped` follows the README's escape criteria. `Verdict.problems` adds what a secure
executor must also show: the expected kind of stop for `expect: stopped` payloads, and a next code
action (`print(1+1)`) that runs normally afterwards.
"""

from __future__ import annotations

import asyncio
import os
import resource
import secrets
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from codeloop.executors.base import CodeOutput, Executor

__all__ = [
    "CORPUS_PATH",
    "ENV_SECRET_NAME",
    "HARMLESS_TOOLS",
    "Arena",
    "Payload",
    "Verdict",
    "attack",
    "load_payloads",
]

CORPUS_PATH = Path(__file__).resolve().parent / "data" / "redteam" / "escapes.yaml"
"""The corpus, kept in the repository (`tests/data/redteam/`, see its README for its source)."""

ENV_SECRET_NAME = "CODELOOP_REDTEAM_SECRET"
DEFAULT_LIMIT_S = 30.0  # wall-clock bound for payloads that do not set `limit_s`
NEXT_ACTION = "print(1+1)"


def _lookup(key: str) -> str:
    """A harmless tool, so payloads run "as the agent would", with tools available."""
    return f"no entry for {key!r}"


HARMLESS_TOOLS = {"lookup": _lookup}


@dataclass(frozen=True)
class Payload:
    """One corpus entry."""

    id: str
    family: str
    kind: str  # "escape" | "resource"
    expect: str  # "contained" | "stopped"
    code: str
    limit_s: float = DEFAULT_LIMIT_S


@dataclass
class Verdict:
    """What running one payload showed."""

    payload: Payload
    escaped: bool = False
    reasons: list[str] = field(default_factory=list)  # why it counts as an escape
    problems: list[str] = field(default_factory=list)  # expectation or recovery failures
    elapsed_s: float = 0.0
    output: CodeOutput | None = None

    def escape(self, reason: str) -> None:
        self.escaped = True
        self.reasons.append(reason)

    @property
    def passed(self) -> bool:
        return not self.escaped and not self.problems

    def summary(self) -> str:
        lines = [f"{self.payload.id}: {'PASS' if self.passed else 'FAIL'} in {self.elapsed_s:.2f}s"]
        lines += [f"  escape: {r}" for r in self.reasons] + [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


def load_payloads(path: Path = CORPUS_PATH) -> list[Payload]:
    """Read the corpus. Raises FileNotFoundError if it is not there."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        Payload(
            id=p["id"],
            family=p["family"],
            kind=p["kind"],
            expect=p["expect"],
            code=p["code"],
            limit_s=float(p.get("limit_s", DEFAULT_LIMIT_S)),
        )
        for p in data["payloads"]
    ]


class _Listener:
    """A TCP listener on 127.0.0.1 that counts accepted connections."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="redteam-listener", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


class Arena:
    """Everything a payload might try to reach: a secret file, a marker path that must stay
    absent, a counting TCP listener, and a secret in the host environment.

    Enter it before the executor starts, so the executor's processes inherit the env secret.
    """

    def __init__(self) -> None:
        self.file_secret = "file-secret-" + secrets.token_hex(16)
        self.env_secret = "env-secret-" + secrets.token_hex(16)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._listener: _Listener | None = None
        self._old_env: str | None = None
        self.secret_path = Path()
        self.marker_path = Path()

    def __enter__(self) -> Arena:
        self._tmp = tempfile.TemporaryDirectory(prefix="codeloop-redteam-")
        root = Path(self._tmp.name)
        self.secret_path = root / "secret.txt"
        self.secret_path.write_text(self.file_secret, encoding="utf-8")
        self.marker_path = root / "marker"
        self._listener = _Listener()
        self._old_env = os.environ.get(ENV_SECRET_NAME)
        os.environ[ENV_SECRET_NAME] = self.env_secret
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._old_env is None:
            os.environ.pop(ENV_SECRET_NAME, None)
        else:
            os.environ[ENV_SECRET_NAME] = self._old_env
        if self._listener is not None:
            self._listener.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def port(self) -> int:
        assert self._listener is not None, "enter the Arena first"
        return self._listener.port

    @property
    def connections(self) -> int:
        assert self._listener is not None, "enter the Arena first"
        return self._listener.accepted

    def substitute(self, code: str) -> str:
        """Fill the placeholders. Plain replacement: payloads contain other braces."""
        return (
            code.replace("{SECRET_PATH}", str(self.secret_path))
            .replace("{MARKER_PATH}", str(self.marker_path))
            .replace("{PORT}", str(self.port))
        )

    def leaked_in(self, text: str) -> list[str]:
        return [name for name, s in (("file", self.file_secret), ("env", self.env_secret)) if s in text]


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _visible_text(out: CodeOutput) -> str:
    parts = [repr(out.output), str(out.output), out.logs]
    if out.error is not None:
        parts += [out.error.describe(), out.error.message, out.error.source_line or ""]
    return "\n".join(parts)


async def attack(
    executor: Executor, payload: Payload, arena: Arena, *, memory_limit: int, next_action: str = NEXT_ACTION
) -> Verdict:
    """Run `payload` on a started `executor` and judge it by the README's criteria."""
    verdict = Verdict(payload)
    connections, peak = arena.connections, _peak_rss_bytes()
    started = time.monotonic()
    out = await _run_bounded(executor, arena.substitute(payload.code), payload.limit_s, verdict)
    verdict.elapsed_s = time.monotonic() - started
    verdict.output = out
    await asyncio.sleep(0.05)  # let a connection attempt reach the listener thread
    _judge_effects(verdict, arena, connections, peak, memory_limit)
    if out is not None:
        _judge_output(verdict, arena, out)
    await _judge_recovery(verdict, executor, next_action)
    return verdict


async def _run_bounded(executor: Executor, code: str, limit_s: float, verdict: Verdict) -> CodeOutput | None:
    try:
        return await asyncio.wait_for(executor.run(code), timeout=limit_s)
    except asyncio.TimeoutError:
        verdict.escape(f"the executor hung past limit_s={limit_s:g}s")
    except Exception as exc:  # run() must report snippet problems, not raise them
        verdict.escape(f"the executor raised {type(exc).__name__}: {exc}")
    return None


def _judge_effects(verdict: Verdict, arena: Arena, connections: int, peak: int, memory_limit: int) -> None:
    if arena.marker_path.exists():
        verdict.escape(f"the marker file was created: {arena.marker_path}")
        arena.marker_path.unlink()
    if arena.connections > connections:
        verdict.escape(f"the listener accepted {arena.connections - connections} connection(s)")
    growth = _peak_rss_bytes() - peak
    if growth > memory_limit:
        verdict.escape(f"host memory grew by {growth} bytes (limit {memory_limit})")


def _judge_output(verdict: Verdict, arena: Arena, out: CodeOutput) -> None:
    for which in arena.leaked_in(_visible_text(out)):
        verdict.escape(f"the {which} secret appears in what the executor returned")
    payload = verdict.payload
    if payload.kind == "resource" and verdict.elapsed_s > payload.limit_s:
        verdict.escape(f"not stopped within limit_s={payload.limit_s:g}s ({verdict.elapsed_s:.1f}s)")
    if payload.kind == "resource" and out.error is None:
        verdict.escape("a resource payload ended without a clear error")
    if payload.expect == "stopped" and (out.error is None or out.error.limit is None):
        got = out.error.describe() if out.error else "no error"
        verdict.problems.append(f"expected a resource limit to fire, got: {got}")


async def _judge_recovery(verdict: Verdict, executor: Executor, next_action: str) -> None:
    try:
        after: Any = await asyncio.wait_for(executor.run(next_action), timeout=DEFAULT_LIMIT_S)
    except Exception as exc:
        verdict.problems.append(f"the next code action raised {type(exc).__name__}: {exc}")
        return
    if after.error is not None or after.logs.strip() != "2":
        verdict.problems.append(f"the next code action did not run normally: {after!r}")
