"""The shared red-team corpus against every executor that claims to be a boundary, and proof that
each of the harness' checks bites (with tiny fake executors)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from codeloop.executors.base import CodeOutput, ExecutionFailure, Executor, ExecutorLimits, HostFunction
from codeloop.executors.jail import JailExecutor
from codeloop.executors.monty import MontyExecutor

from redteam import HARMLESS_TOOLS, Arena, Payload, attack, host_memory_cap, load_payloads

PAYLOADS = load_payloads()
# Short limits keep the resource payloads (many time out) fast; the corpus bounds are 15-30 s.
MONTY_LIMITS = ExecutorLimits(timeout_s=1.0, memory_bytes=64 * 2**20, max_output_chars=2_000)
JAIL_LIMITS = ExecutorLimits(timeout_s=0.5, memory_bytes=128 * 2**20, max_output_chars=2_000)

# Every executor that claims to be a security boundary. The jail allows every import ("*"), so
# that the jail itself, not its import list, is what contains each payload.
BOUNDARIES: dict[str, tuple[ExecutorLimits, Callable[[], Executor]]] = {
    "monty": (MONTY_LIMITS, lambda: MontyExecutor(MONTY_LIMITS)),  # pooled: the default
    "monty-process": (MONTY_LIMITS, lambda: MontyExecutor(MONTY_LIMITS, pooled=False)),
    "jail-bwrap": (JAIL_LIMITS, lambda: JailExecutor(JAIL_LIMITS, ["*"], use_bwrap=True)),
    "jail-nobwrap": (JAIL_LIMITS, lambda: JailExecutor(JAIL_LIMITS, ["*"], use_bwrap=False)),
}


def _unavailable(boundary: str) -> str | None:
    """Why this machine cannot run `boundary` (a missing kernel mechanism or bubblewrap), if so."""
    if not boundary.startswith("jail"):
        return None
    if not sys.platform.startswith("linux"):
        return f"the jail executor is Linux only (this is {sys.platform})"
    from codeloop.executors import confine

    missing = confine.missing_mechanisms(bwrap=boundary == "jail-bwrap")
    return f"the jail cannot run here: {'; '.join(missing)}" if missing else None


CASES = [
    pytest.param(name, payload, id=f"{name}:{payload.id}") for name in BOUNDARIES for payload in PAYLOADS
]


@pytest.fixture(scope="module", autouse=True)
def _capped_host() -> Iterator[None]:
    """A payload that makes this process allocate without end must not take the machine down."""
    with host_memory_cap():
        yield


@pytest.mark.parametrize(("boundary", "payload"), CASES)
async def test_boundary_contains_payload(boundary: str, payload: Payload) -> None:
    if why := _unavailable(boundary):
        pytest.skip(why)
    limits, make = BOUNDARIES[boundary]
    with Arena() as arena:
        executor = make()
        await executor.start(dict(HARMLESS_TOOLS))
        try:
            verdict = await attack(executor, payload, arena, memory_limit=limits.memory_bytes)
        finally:
            await executor.close()
    assert verdict.passed, verdict.summary()
    if payload.kind == "resource":
        assert verdict.output is not None and verdict.output.error is not None
        assert verdict.elapsed_s < payload.limit_s  # the corpus' own bound (spec'd by its README)


def test_corpus_is_complete() -> None:
    ids = [p.id for p in PAYLOADS]
    assert len(ids) == len(set(ids)) and len(ids) >= 30
    assert {p.kind for p in PAYLOADS} <= {"escape", "resource"}
    assert {p.expect for p in PAYLOADS} <= {"contained", "stopped"}
    assert {"escapes.yaml", "beyond.yaml"} <= {p.source for p in PAYLOADS}


def test_corpus_ids_must_be_unique_across_files(tmp_path: Any) -> None:
    entry = "payloads:\n- {id: same, family: f, kind: escape, expect: contained, code: 'pass'}\n"
    (tmp_path / "a.yaml").write_text(entry)
    (tmp_path / "b.yaml").write_text(entry)
    with pytest.raises(ValueError, match="same"):
        load_payloads(tmp_path)


# -- the harness bites -------------------------------------------------------------------------------


class _LeakyExecutor:
    """Runs code with plain `exec` in the host: no boundary at all. Used to prove the harness
    detects escapes; only fed payloads whose effects stay inside the Arena."""

    def __init__(self) -> None:
        self._globals: dict[str, Any] = {}

    async def start(self, functions: Mapping[str, HostFunction]) -> None:
        self._globals = dict(functions)

    async def send_variables(self, variables: Mapping[str, Any]) -> None:
        self._globals.update(variables)

    async def run(self, code: str) -> CodeOutput:
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                exec(code, self._globals)
        except Exception as exc:
            return CodeOutput(logs=buffer.getvalue(), error=ExecutionFailure(type(exc).__name__, str(exc)))
        return CodeOutput(logs=buffer.getvalue())

    async def close(self) -> None:
        pass


def _payload(payload_id: str, **changes: Any) -> Payload:
    payload = next(p for p in PAYLOADS if p.id == payload_id)
    return Payload(**{**payload.__dict__, **changes})


BENIGN = Payload("benign", "test", "escape", "contained", "x = 1 + 1")


async def _attack(executor: Executor, payload: Payload = BENIGN, **options: Any) -> Any:
    with Arena() as arena:
        await executor.start(HARMLESS_TOOLS)
        return await attack(executor, payload, arena, memory_limit=MONTY_LIMITS.memory_bytes, **options)


@pytest.mark.parametrize(
    ("payload_id", "reason"),
    [
        ("builtins-open-read", "file secret"),
        ("write-marker", "marker file"),
        ("env-secret", "env secret"),
        ("socket-connect", "listener accepted"),
    ],
)
async def test_harness_detects_escapes(payload_id: str, reason: str) -> None:
    verdict = await _attack(_LeakyExecutor(), _payload(payload_id))
    assert verdict.escaped
    assert any(reason in r for r in verdict.reasons), verdict.reasons


async def test_harness_flags_a_hang() -> None:
    class Hanging(_LeakyExecutor):
        async def run(self, code: str) -> CodeOutput:
            if not code.startswith("print('next-"):
                await asyncio.sleep(5)
            return await super().run(code)

    verdict = await _attack(Hanging(), _payload("infinite-loop", limit_s=0.2))
    assert verdict.escaped and "hung" in verdict.reasons[0]


async def test_harness_passes_a_benign_executor() -> None:
    verdict = await _attack(_LeakyExecutor())
    assert verdict.passed, verdict.summary()


async def test_harness_flags_a_blocked_event_loop() -> None:
    class Blocking(_LeakyExecutor):
        async def run(self, code: str) -> CodeOutput:
            time.sleep(0.6)  # the payload's work done on the host's event loop
            return await super().run(code)

    verdict = await _attack(Blocking())
    assert any("event loop was blocked" in p and "late" in p for p in verdict.problems), verdict.problems


async def test_harness_flags_a_thread_left_running() -> None:
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def spin() -> None:
        deadline = time.monotonic() + 5
        while not stop.is_set() and time.monotonic() < deadline:
            sum(range(1000))

    class Spinning(_LeakyExecutor):
        async def run(self, code: str) -> CodeOutput:
            if not threads:  # the payload: its work goes on after the action returns
                threads.append(threading.Thread(target=spin, name="payload-spinner", daemon=True))
                threads[0].start()
            return await super().run(code)

    try:
        verdict = await _attack(Spinning())
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert any("the host used" in p and "CPU" in p for p in verdict.problems), verdict.problems
    assert any("payload-spinner" in p for p in verdict.problems), verdict.problems


async def test_harness_flags_a_child_process_left_running() -> None:
    children: list[subprocess.Popen[bytes]] = []

    class Forking(_LeakyExecutor):
        async def run(self, code: str) -> CodeOutput:
            if not children:
                children.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
            return await super().run(code)

    try:
        verdict = await _attack(Forking())
        remote = await _attack(Forking(), local_processes=False)
    finally:
        for child in children:
            child.kill()
            child.wait()
    assert any("descendant processes used" in p for p in verdict.problems), verdict.problems
    counted = [p for p in verdict.problems if re.search(r"\d+ descendant processes, \d+ before", p)]
    assert counted, verdict.problems
    assert not any("descendant" in p for p in remote.problems), remote.problems


async def test_harness_flags_a_stale_reply() -> None:
    class Stale(_LeakyExecutor):
        """Answers every action with the reply to the one before (a desynchronised protocol)."""

        def __init__(self) -> None:
            super().__init__()
            self._previous = CodeOutput(logs="")

        async def run(self, code: str) -> CodeOutput:
            previous, self._previous = self._previous, await super().run(code)
            return previous

    verdict = await _attack(Stale(), Payload("prints", "test", "escape", "contained", "print('hello')"))
    assert any("not its own token" in p and "hello" in p for p in verdict.problems), verdict.problems


async def test_harness_flags_host_memory_growth() -> None:
    class Hoarding(_LeakyExecutor):
        async def run(self, code: str) -> CodeOutput:
            if not code.startswith("print('next-"):
                hoard = b"h" * (200 * 2**20)  # the payload's data held by the host for a while
                await asyncio.sleep(0.1)
                del hoard
            return await super().run(code)

    verdict = await _attack(Hoarding())
    assert verdict.escaped
    assert any("host RSS grew by" in r for r in verdict.reasons), verdict.reasons
