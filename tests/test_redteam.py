"""The shared red-team corpus against the default executor (and a check that the harness bites)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Mapping
from typing import Any

import pytest

from codeloop.executors.base import CodeOutput, ExecutionFailure, ExecutorLimits, HostFunction
from codeloop.executors.monty import MontyExecutor

from redteam import HARMLESS_TOOLS, Arena, attack, load_payloads

PAYLOADS = load_payloads()
# Short limits keep the resource payloads (a few time out) fast; the corpus bounds are 15-30 s.
LIMITS = ExecutorLimits(timeout_s=1.0, memory_bytes=64 * 2**20, max_output_chars=2_000)


@pytest.mark.parametrize("payload", PAYLOADS, ids=[p.id for p in PAYLOADS])
async def test_monty_contains_payload(payload: Any) -> None:
    with Arena() as arena:
        executor = MontyExecutor(LIMITS)
        await executor.start(HARMLESS_TOOLS)
        try:
            verdict = await attack(executor, payload, arena, memory_limit=LIMITS.memory_bytes)
        finally:
            await executor.close()
    assert verdict.passed, verdict.summary()
    if payload.kind == "resource":
        assert verdict.output is not None and verdict.output.error is not None
        assert verdict.elapsed_s < payload.limit_s


def test_corpus_is_complete() -> None:
    ids = [p.id for p in PAYLOADS]
    assert len(ids) == len(set(ids)) and len(ids) >= 20
    assert {p.kind for p in PAYLOADS} <= {"escape", "resource"}


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
    payload = next(p for p in PAYLOADS if p.id == payload_id)
    with Arena() as arena:
        executor = _LeakyExecutor()
        await executor.start(HARMLESS_TOOLS)
        verdict = await attack(executor, payload, arena, memory_limit=LIMITS.memory_bytes)
    assert verdict.escaped
    assert any(reason in r for r in verdict.reasons), verdict.reasons


async def test_harness_flags_a_hang() -> None:
    class Hanging(_LeakyExecutor):
        async def run(self, code: str) -> CodeOutput:
            if code != "print(1+1)":
                await asyncio.sleep(5)
            return CodeOutput(logs="2\n")

    payload = next(p for p in PAYLOADS if p.id == "infinite-loop")
    payload = type(payload)(**{**payload.__dict__, "limit_s": 0.2})
    with Arena() as arena:
        verdict = await attack(Hanging(), payload, arena, memory_limit=LIMITS.memory_bytes)
    assert verdict.escaped and "hung" in verdict.reasons[0]
