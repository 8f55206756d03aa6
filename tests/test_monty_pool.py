"""Pooled Monty: many sessions on a few shared worker processes. Real workers; nothing is mocked.

The contract every session keeps (state, limits, errors) is tests/test_executor_monty.py, which
runs pooled and per-process; the red-team corpus runs on both in tests/test_redteam.py. Here:
what sharing workers must not change (isolation, limits, crashes) and what it must deliver
(few processes, no deadlock, a warm start, clean shutdown).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import signal
from collections.abc import AsyncIterator

import pytest

from codeloop import CodeAgent, ScriptedModel
from codeloop.errors import ConfigurationError, ExecutorError
from codeloop.executors.base import CodeOutput, ExecutorLimits
from codeloop.executors.monty import MontyExecutor, MontyPool

from redteam import HARMLESS_TOOLS, Arena, load_payloads

LIMITS = ExecutorLimits(timeout_s=1.0, memory_bytes=64 * 2**20, max_output_chars=200)
SETTLE_S = 10.0  # how long a process may take to go away (a deadline, not a measurement)


@pytest.fixture
async def pool() -> AsyncIterator[MontyPool]:
    pool = MontyPool(workers=2, recycle_after=None)
    yield pool
    await pool.close()


async def _session(pool: MontyPool, limits: ExecutorLimits = LIMITS, **functions: object) -> MontyExecutor:
    executor = MontyExecutor(limits, pool=pool)
    await executor.start(functions)  # type: ignore[arg-type]
    return executor


def _monty_children() -> set[int]:
    """Live `monty` worker processes that are children of this process."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().split(b"\0")[0]
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and command.endswith(b"monty"):
            found.add(int(entry))
    return found


async def _gone(pids: set[int]) -> set[int]:
    """The ones of `pids` still alive after waiting up to SETTLE_S for them to exit."""
    deadline = asyncio.get_running_loop().time() + SETTLE_S
    while (alive := pids & _monty_children()) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return alive


# -- isolation ------------------------------------------------------------------------------------


async def test_sessions_on_one_worker_do_not_see_each_other() -> None:
    pool = MontyPool(workers=1, max_kept=0, recycle_after=None)  # one process, no more
    try:
        a, b = await _session(pool), await _session(pool)
        setup = "import json\nimport statistics\nsecret = 'a-only'\ndef helper():\n    return secret"
        assert (await a.run(setup)).error is None
        for name in ("secret", "helper", "json", "statistics"):
            out = await b.run(name)
            assert out.error is not None and out.error.type == "NameError", (name, out)
        assert (await b.run("secret = 'b-only'\nsecret")).output == "b-only"
        assert (await a.run("helper(), json.dumps([1]), statistics.mean([1, 3])")).output == (
            "a-only",
            "[1]",
            2,
        )
        assert (await b.run("secret")).output == "b-only"
        assert a.worker_pid == b.worker_pid is not None  # both served by the one worker
    finally:
        await pool.close()


async def test_each_session_keeps_its_own_limits(pool: MontyPool) -> None:
    tight = await _session(pool, ExecutorLimits(timeout_s=0.3, memory_bytes=16 * 2**20, max_output_chars=50))
    roomy = await _session(
        pool, ExecutorLimits(timeout_s=5.0, memory_bytes=64 * 2**20, max_output_chars=5000)
    )
    grow = "s = 'x' * (6 * 2**20)\nlen(s)"
    over = await tight.run(grow + " + len(s + s + s)")
    assert over.error is not None and over.error.limit == "memory_bytes"
    assert (await roomy.run(grow)).output == 6 * 2**20  # the same code, within its own limit
    printed = "print('y' * 1000)"
    assert "[output truncated" in (await tight.run(printed)).logs
    assert "[output truncated" not in (await roomy.run(printed)).logs


async def test_a_limit_fires_without_touching_the_neighbours(pool: MontyPool) -> None:
    looper, neighbour = await _session(pool), await _session(pool)
    victim = await _session(
        pool, ExecutorLimits(timeout_s=10.0, memory_bytes=64 * 2**20, max_output_chars=200)
    )
    await neighbour.run("total = 0")
    looping = asyncio.ensure_future(looper.run("while True:\n    pass"))
    for i in range(1, 21):  # the neighbour keeps working while the loop runs to its time limit
        assert (await neighbour.run(f"total += {i}\ntotal")).output == sum(range(1, i + 1))
    out = await looping
    assert out.error is not None and (out.error.limit, out.error.state_lost) == ("timeout_s", True)
    flood = await looper.run("while True:\n    print('z' * 100000)")
    assert flood.error is not None and flood.error.limit == "max_output_chars"
    bomb = await victim.run("b = []\nwhile True:\n    b.append('x' * 2**20)")
    assert bomb.error is not None and bomb.error.limit == "memory_bytes"
    assert (await neighbour.run("total")).output == 210


async def test_no_corpus_payload_reaches_a_session_on_the_same_worker() -> None:
    """Every escape payload of the red-team corpus runs in a session that shares the one worker
    with a neighbour holding a secret; none of them shows it, and the neighbour keeps it."""
    secret = "neighbour-" + secrets.token_hex(8)
    pool = MontyPool(workers=1, max_kept=0, recycle_after=None)
    try:
        others = _monty_children()
        neighbour = await _session(pool)
        await neighbour.run(f"SECRET = {secret!r}\ndef reveal():\n    return SECRET")
        with Arena() as arena:
            for payload in (p for p in load_payloads() if p.kind == "escape"):
                attacker = await _session(pool, **HARMLESS_TOOLS)
                out = await attacker.run(arena.substitute(payload.code))
                probe = await attacker.run("[SECRET, reveal()]")
                seen = f"{out.output!r} {out.logs} {out.error} {probe.output!r} {probe.logs}"
                assert secret not in seen, payload.id
                assert len(_monty_children() - others) <= 1  # one worker: they do share it
                assert (await neighbour.run("reveal()")).output == secret, payload.id
                await attacker.close()
    finally:
        await pool.close()


# -- crashes ----------------------------------------------------------------------------------------


LOOP = "started()\nwhile True:\n    pass"


async def _looping(pool: MontyPool) -> tuple[MontyExecutor, asyncio.Future[CodeOutput], int]:
    """A session running an endless loop (up to its 30 s limit), and the worker running it."""
    running = asyncio.Event()
    victim = await _session(pool, ExecutorLimits(timeout_s=30.0), started=running.set)
    await victim.run("kept = 'no'")
    action = asyncio.ensure_future(victim.run(LOOP))
    await asyncio.wait_for(running.wait(), 30)  # the action is in its worker now
    assert victim.worker_pid is not None and victim.worker_pid in _monty_children()
    return victim, action, victim.worker_pid


async def test_sigkill_of_a_worker_fails_only_the_action_it_was_running() -> None:
    pool = MontyPool(workers=1, max_kept=0, recycle_after=None)
    try:
        others = [await _session(pool) for _ in range(5)]
        for i, other in enumerate(others):
            assert (await other.run(f"mine = {i}")).error is None  # each one was on the worker
        victim, running, killed = await _looping(pool)
        assert {o.worker_pid for o in others} == {killed}
        os.kill(killed, signal.SIGKILL)
        out = await asyncio.wait_for(running, 30)
        assert out.error is not None and out.error.state_lost and "died" in out.error.message
        assert (await victim.run("kept")).error is not None  # its state went with the action
        assert [(await o.run("mine")).output for o in others] == [0, 1, 2, 3, 4]
        assert all(o.worker_pid != killed for o in others)
    finally:
        await pool.close()


async def test_sigkill_of_one_worker_leaves_the_other_worker_running(pool: MontyPool) -> None:
    other = await _session(pool, ExecutorLimits(timeout_s=30.0))
    _, running, killed = await _looping(pool)
    busy = asyncio.ensure_future(other.run("n = 0\nfor i in range(3_000_000):\n    n += i\nn"))
    while other.worker_pid is None:
        await asyncio.sleep(0.01)
    os.kill(killed, signal.SIGKILL)
    out = await asyncio.wait_for(running, 30)
    assert out.error is not None and out.error.state_lost
    assert (await busy).output == sum(range(3_000_000)) and other.worker_pid != killed


# -- scale, parking, keeping ---------------------------------------------------------------------------


async def test_200_concurrent_sessions_on_2_workers_all_answer_right() -> None:
    pool = MontyPool(workers=2, max_kept=0, recycle_after=None)  # at most 2 processes

    async def double(v: int) -> int:
        await asyncio.sleep(0.02)  # slow enough that the snippet parks and hands its worker back
        return 2 * v

    async def one(i: int) -> tuple[object, object, set[int | None]]:
        executor = await _session(pool, double=double)
        try:
            pids = set()
            first = await executor.run(f"x = {i}\nprint('start', x)")
            pids.add(executor.worker_pid)
            second = await executor.run("y = double(x)\nprint('got', y)\nx + y")
            pids.add(executor.worker_pid)
            return (first.logs, second.output, second.logs), pids
        finally:
            await executor.close()

    before = _monty_children()
    try:
        results = await asyncio.gather(*(one(i) for i in range(200)))
        assert [r[0] for r in results] == [(f"start {i}\n", 3 * i, f"got {2 * i}\n") for i in range(200)]
        assert len(set().union(*(r[1] for r in results))) <= 2
        assert len(_monty_children() - before) <= 2
        assert pool.lent == 0 and pool.kept == 0
    finally:
        await pool.close()


async def test_a_tool_that_runs_another_session_does_not_deadlock_one_worker() -> None:
    pool = MontyPool(workers=1, recycle_after=None)
    try:
        inner = await _session(pool)

        async def ask_inner(code: str) -> object:
            return (await inner.run(code)).output  # as a managed agent's code runs

        outer = await _session(pool, ask_inner=ask_inner)
        out = await asyncio.wait_for(
            outer.run("print('before')\nr = ask_inner('6 * 7')\nprint('after', r)\nr"), 30
        )
        assert out.error is None and out.output == 42 and out.logs == "before\nafter 42\n"
    finally:
        await pool.close()


async def test_a_session_that_grows_large_keeps_its_worker_and_its_state() -> None:
    pool = MontyPool(workers=1, recycle_after=None)
    try:
        big = await _session(pool)
        small = await _session(pool)
        assert (await big.run("data = 'x' * (12 * 2**20)\nlen(data)")).output == 12 * 2**20
        assert pool.kept == 1 and pool.lent == 0
        assert (await small.run("1 + 1")).output == 2  # another worker serves the others
        assert small.worker_pid != big.worker_pid
        assert (await big.run("data += 'y'\nlen(data)")).output == 12 * 2**20 + 1
        await big.close()
        assert pool.kept == 0
    finally:
        await pool.close()
    strict = MontyPool(workers=1, max_kept=0, recycle_after=None)  # no session may keep a worker
    try:
        big = await _session(strict)
        assert (await big.run("data = 'x' * (12 * 2**20)\nlen(data)")).output == 12 * 2**20
        assert strict.kept == 0 and strict.lent == strict.resting == 1  # resting: it leaves when asked
        other = await _session(strict)
        assert (await other.run("2 + 2")).output == 4  # big was dumped to make room
        assert strict.resting == 1 and (await big.run("len(data)")).output == 12 * 2**20
    finally:
        await strict.close()


async def test_a_lone_session_rests_in_its_worker_between_actions_and_leaves_when_asked() -> None:
    pool = MontyPool(workers=1, recycle_after=None)
    try:
        first = await _session(pool)
        await first.run("x = 1")
        worker = first.worker_pid
        for n in range(2, 5):  # no other session: it stays loaded, no dump and no load
            assert (await first.run("x += 1\nx")).output == n
            assert pool.lent == pool.resting == 1 and first.worker_pid == worker
        second = await _session(pool)  # needs the one worker: the resting session leaves it
        assert (await asyncio.wait_for(second.run("y = 10\ny"), 10)).output == 10
        assert (await asyncio.wait_for(first.run("x"), 10)).output == 4  # its state came back with it
        assert (await asyncio.wait_for(second.run("y + 1"), 10)).output == 11
        await first.close()
        await second.close()
        assert pool.lent == pool.resting == 0
    finally:
        await pool.close()


def test_a_session_resting_from_an_ended_event_loop_leaves_when_asked_from_another() -> None:
    pool = MontyPool(workers=1, recycle_after=None)
    first = MontyExecutor(LIMITS, pool=pool)

    async def start_first() -> None:
        await first.start({})
        await first.run("x = 41")

    async def another() -> object:
        second = await _session(pool)
        return (await asyncio.wait_for(second.run("'second'"), 10)).output

    try:
        asyncio.run(start_first())  # its loop ends with the session resting in the one worker
        assert asyncio.run(another()) == "second"  # asked to leave from this loop, not a dead one
        assert asyncio.run(asyncio.wait_for(first.run("x + 1"), 10)).output == 42
    finally:
        asyncio.run(pool.close())


def test_a_resting_session_woken_in_one_thread_while_evicted_from_another_keeps_its_state() -> None:
    """The session's own loop has ended; its next action (thread C) and a newcomer that evicts it
    (thread B, where the eviction then runs) race, round after round: every answer is right."""
    pool = MontyPool(workers=1, recycle_after=None)
    first = MontyExecutor(LIMITS, pool=pool)
    newcomers: list[MontyExecutor] = []

    async def newcomer(n: int) -> object:
        second = await _session(pool)
        newcomers.append(second)
        return (await asyncio.wait_for(second.run(f"{n} * 2"), 20)).output

    async def next_action(n: int) -> object:
        return (await asyncio.wait_for(first.run(f"x = x + 1\nx - {n}"), 20)).output

    async def start_first() -> None:
        await first.start({})
        await first.run("x = 100")

    try:
        asyncio.run(start_first())
        with concurrent.futures.ThreadPoolExecutor(2) as threads:
            for n in range(1, 11):
                evicting = threads.submit(asyncio.run, newcomer(n))
                waking = threads.submit(asyncio.run, next_action(n))
                assert (evicting.result(60), waking.result(60)) == (n * 2, 100)
    finally:
        for executor in [first, *newcomers]:
            asyncio.run(executor.close())
        asyncio.run(pool.close())


async def test_a_worker_that_dies_under_a_resting_session_loses_only_that_state() -> None:
    pool = MontyPool(workers=2, recycle_after=None)
    try:
        victim, bystander = await _session(pool), await _session(pool)
        await victim.run("x = 'mine'")
        await bystander.run("z = 'kept'")
        os.kill(victim.worker_pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
        out = await victim.run("1 + 1")  # fails as with a worker of its own: the state went with it
        assert out.error is not None and out.error.state_lost and "crashed" in out.error.message
        assert (await victim.run("1 + 1")).output == 2  # on a fresh session
        assert (await victim.run("x")).error is not None
        assert (await bystander.run("z")).output == "kept"
    finally:
        await pool.close()


async def test_sessions_share_helper_processes_but_never_a_stale_one(pool: MontyPool) -> None:
    a, b = await _session(pool), await _session(pool)
    assert (await a.run("import statistics\nstatistics.mean([1, 2, 3])")).output == 2
    assert (await b.run("import statistics\nstatistics.median([5, 1, 9])")).output == 5
    assert a._helper.starts + b._helper.starts == 1  # b's call went to the helper a started
    slow = asyncio.ensure_future(a.run("import textwrap\ntextwrap.fill('x' * 300_000, width=1)"))
    await asyncio.sleep(0.3)  # the helper is working on a's call: its reply is still to come
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    for values, median in (([7, 3, 5], 5), ([2, 8], 5), ([1], 1)):
        assert (await b.run(f"statistics.median({values})")).output == median  # b's own answers


async def test_a_cancelled_helper_call_leaves_no_stale_reply_per_process_either() -> None:
    executor = MontyExecutor(LIMITS, pooled=False)
    await executor.start({})
    try:
        slow = asyncio.ensure_future(executor.run("import textwrap\ntextwrap.fill('x' * 300_000, width=1)"))
        await asyncio.sleep(0.3)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        out = await executor.run("import statistics\nstatistics.median([7, 3, 5])")
        assert out.error is None and out.output == 5
    finally:
        await executor.close()


# -- start and shutdown ---------------------------------------------------------------------------------


async def test_a_new_session_starts_no_process(pool: MontyPool) -> None:
    warm = await _session(pool)
    await warm.run("1")
    before = _monty_children()
    fresh = await _session(pool)
    assert (await fresh.run("'ready'")).output == "ready"
    assert _monty_children() == before and fresh.worker_pid in before


async def test_closing_an_agent_closes_its_sessions_and_closing_the_pool_stops_the_workers() -> None:
    others = _monty_children()  # other pools' workers (the process-wide pool's, say)
    pool = MontyPool(workers=2, recycle_after=None)
    model = ScriptedModel(["```python\nx = 20\n```", "```python\nfinal_answer(x + 1)\n```"])
    async with CodeAgent([], model, executor_kwargs={"pool": pool}) as agent:
        assert await agent.arun("Add one.") == 21
    assert pool.lent == 0 and pool.kept == 0  # the agent's session gave its worker back
    workers = _monty_children() - others
    assert workers
    await pool.close()
    assert await _gone(workers) == set()
    with pytest.raises(ExecutorError, match="closed"):
        await _session(pool)


def test_bad_pool_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least one worker"):
        MontyPool(workers=0)
    with pytest.raises(ConfigurationError, match="max_kept"):
        MontyPool(max_kept=-1)
    with pytest.raises(ConfigurationError, match="pooled=False"):
        MontyExecutor(pool=MontyPool(), pooled=False)
