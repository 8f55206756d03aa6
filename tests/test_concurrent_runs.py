"""One agent, many runs: an agent is a definition, each run holds its own state (memory,
executor session and variables, counters, interruption, a tool guard's stop).

The runs here really overlap: their tools wait at a barrier until every run has reached it (a
run that waited for another to finish first would never get past it, and its tool would fail
after 30 s instead). So a variable, an observation or a stop that leaked from one run to another
would be seen by the other run's next step.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from codeloop import CodeAgent, GuardResult, ScriptedModel, ToolCallingAgent, tool
from codeloop.errors import ConfigurationError
from codeloop.events import RunFinished, RunStarted
from codeloop.executors.monty.executor import MontyExecutor
from codeloop.memory import TaskStep
from codeloop.messages import ChatMessage, Role
from codeloop.result import RunResult, RunState
from codeloop.tools import Tool

BARRIER_TIMEOUT_S = 30


def barrier(parties: int, then: Any = None) -> Tool:
    """A tool each run calls once: it returns when `parties` calls have arrived (`then()` runs
    when the last one does)."""
    arrived: list[str] = []
    everyone = asyncio.Event()

    @tool
    async def meet(label: str) -> str:
        """Wait for the other runs.

        Args:
            label: Who arrives.
        """
        arrived.append(label)
        if len(arrived) == parties:
            if then is not None:
                then()
            everyone.set()
        await asyncio.wait_for(everyone.wait(), BARRIER_TIMEOUT_S)
        return f"met {label}"

    return meet


looked_up: list[str] = []


@tool
async def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: The key.
    """
    looked_up.append(key)
    return f"value-{key}"


def fenced(code: str) -> str:
    return f"Thought: go.\n```python\n{code}\n```"


def latest_task(messages: Sequence[ChatMessage]) -> str:
    return [m.content for m in messages if m.role is Role.USER and m.content.startswith("Task:")][-1]


def token_reply(messages: Sequence[ChatMessage]) -> str:
    """For "Remember token K of N.": step 1 sets `mine` and `run_K` and meets the other runs;
    step 2 answers `mine` and the other runs' `run_J` names it can see (none, if nothing leaks)."""
    found = re.search(r"token (\d+) of (\d+)", latest_task(messages))
    assert found is not None
    k, n = int(found[1]), int(found[2])
    if not any(m.role is Role.ASSISTANT for m in messages):
        return fenced(f"mine = 'token-{k}'\nrun_{k} = True\nprint(meet('{k}'))")
    probes = "".join(
        f"try:\n    run_{j}\n    leaked.append({j})\nexcept NameError:\n    pass\n"
        for j in range(1, n + 1)
        if j != k
    )
    return fenced(f"leaked = []\n{probes}final_answer(mine + ':' + str(leaked))")


def script(reply: Any, calls: int) -> ScriptedModel:
    return ScriptedModel([reply] * calls, latency_s=0.01)


@pytest.mark.parametrize("runs", [2, 10])
async def test_concurrent_runs_of_one_code_agent_keep_their_own_variables(runs: int) -> None:
    agent = CodeAgent([barrier(runs)], script(token_reply, 2 * runs))
    tasks = [f"Remember token {k} of {runs}." for k in range(1, runs + 1)]
    async with agent:
        results = await asyncio.gather(*(agent.arun(t, return_full_result=True) for t in tasks))
    assert [r.output for r in results] == [f"token-{k}:[]" for k in range(1, runs + 1)]
    assert all(r.state is RunState.SUCCESS and len(r.memory.action_steps()) == 2 for r in results)
    assert len({r.run_id for r in results}) == runs
    assert all(re.fullmatch(r"[0-9a-f]{32}", r.run_id) for r in results)
    assert len({id(r.memory) for r in results}) == runs  # each run its own memory


async def test_run_started_carries_the_run_id_of_the_result() -> None:
    agent = CodeAgent([], script(fenced("final_answer(7)"), 2))
    events = [e async for e in agent.astream("Answer seven.")]
    started = [e for e in events if isinstance(e, RunStarted)]
    finished = [e for e in events if isinstance(e, RunFinished)]
    assert len(started) == len(finished) == 1
    assert started[0].run_id == finished[0].result.run_id != ""
    again = await agent.arun("Answer seven.", return_full_result=True)
    assert again.run_id != started[0].run_id
    await agent.aclose()


async def test_concurrent_runs_of_one_tool_calling_agent_see_their_own_observations() -> None:
    def reply(messages: Sequence[ChatMessage]) -> list[Any]:
        key = latest_task(messages).split()[-1].rstrip(".")
        seen = [m.content for m in messages if "value-" in m.content]
        if not seen:  # two calls in one step: they run concurrently
            return [ScriptedModel.call("meet", label=key), ScriptedModel.call("lookup", key=key)]
        return [ScriptedModel.call("final_answer", answer=" ".join(seen))]

    looked_up.clear()
    agent = ToolCallingAgent([barrier(4), lookup], script(reply, 8))
    keys = ["alpha", "beta", "gamma", "delta"]
    results = await asyncio.gather(*(agent.arun(f"Look up {k}.", return_full_result=True) for k in keys))
    assert [r.output for r in results] == [f"value-{k}" for k in keys]
    assert sorted(looked_up) == sorted(keys)
    assert len({r.run_id for r in results}) == len(keys)


async def test_reset_false_continues_the_previous_runs_variables_and_memory() -> None:
    def reply(messages: Sequence[ChatMessage]) -> str:
        setting = "Set" in latest_task(messages)
        return fenced("x = 41\nfinal_answer('set')" if setting else "final_answer(x + 1)")

    agent = CodeAgent([], script(reply, 3), max_steps=1)
    async with agent:
        first = await agent.arun("Set x.", return_full_result=True)
        second = await agent.arun("Read x.", reset=False, return_full_result=True)
        assert (first.output, second.output) == ("set", 42)
        assert second.memory is agent.memory and first.memory is agent.memory
        assert [s.task for s in agent.memory.steps if isinstance(s, TaskStep)] == ["Set x.", "Read x."]
        fresh = await agent.arun("Read x.", return_full_result=True)  # reset=True: a new session
    assert fresh.state is RunState.MAX_STEPS and fresh.memory is not first.memory
    error = fresh.memory.action_steps()[0].error
    assert error is not None and "x" in error.message and "NameError" in error.message
    assert len({first.run_id, second.run_id, fresh.run_id}) == 3


async def test_interrupt_stops_every_run_in_progress_and_no_later_one() -> None:
    def reply(messages: Sequence[ChatMessage]) -> str:
        task = latest_task(messages)
        return fenced("final_answer('done')" if "done" in task else f"print(meet('{task[-3:]}'))")

    agent: CodeAgent | None = None

    def interrupt() -> None:
        assert agent is not None
        agent.interrupt()

    agent = CodeAgent([barrier(2, then=interrupt)], script(reply, 3))
    async with agent:
        a, b = await asyncio.gather(
            agent.arun("Wait A.", return_full_result=True), agent.arun("Wait B.", return_full_result=True)
        )
        later = await agent.arun("Say done.", return_full_result=True)
    assert (a.state, b.state) == (RunState.INTERRUPTED, RunState.INTERRUPTED)
    assert len(a.memory.action_steps()) == len(b.memory.action_steps()) == 1
    assert later.state is RunState.SUCCESS and later.output == "done"


async def test_a_tool_guards_stop_ends_only_the_run_that_called_the_tool() -> None:
    """Run A's code trips the guard (and catches the error), then waits until run B has
    finished a whole step and started the next: B's step ends while A's stop is pending."""
    b_went_on = asyncio.Event()

    @tool
    async def wait_for_b() -> str:
        """Wait until the other run is in its second step."""
        await asyncio.wait_for(b_went_on.wait(), BARRIER_TIMEOUT_S)
        return "B went on"

    @tool
    def tell_a() -> str:
        """Tell the other run this one is in its second step."""
        b_went_on.set()
        return "told"

    def stop_key(name: str, arguments: dict[str, Any]) -> GuardResult | None:
        return GuardResult.stop("this key stops the run") if arguments.get("key") == "stop" else None

    def reply(messages: Sequence[ChatMessage]) -> str:
        if "Trip" in latest_task(messages):  # catches the error: the stop must still end its run
            trip = "try:\n    lookup('stop')\nexcept Exception:\n    pass\n"
            return fenced(trip + "print(meet('a'), wait_for_b())")
        if not any(m.role is Role.ASSISTANT for m in messages):
            return fenced("print(meet('b'))")
        return fenced("tell_a()\nfinal_answer(lookup('fine'))")

    tools = [barrier(2), lookup, wait_for_b, tell_a]
    agent = CodeAgent(tools, script(reply, 3), tool_guards=[stop_key])
    async with agent:
        tripped, calm = await asyncio.gather(
            agent.arun("Trip the guard.", return_full_result=True),
            agent.arun("Stay calm.", return_full_result=True),
        )
    assert tripped.state is RunState.GUARDRAIL and "stop_key" in (tripped.error or "")
    assert tripped.memory.action_steps()[0].observations.startswith("met a B went on")
    assert calm.state is RunState.SUCCESS and calm.output == "value-fine"


async def test_a_continued_run_gets_the_tool_guards_stop_of_its_own_code() -> None:
    """The retained session's tools report to the run using it now, not to the one that
    started the session."""

    def stop_key(name: str, arguments: dict[str, Any]) -> GuardResult | None:
        return GuardResult.stop("no") if arguments.get("key") == "stop" else None

    replies = [
        fenced("final_answer(lookup('fine'))"),
        fenced("try:\n    lookup('stop')\nexcept Exception:\n    pass\nprint('went on')"),
    ]
    agent = CodeAgent([lookup], ScriptedModel(replies), tool_guards=[stop_key])
    async with agent:
        first = await agent.arun("Look up fine.", return_full_result=True)
        second = await agent.arun("Look up stop.", reset=False, return_full_result=True)
    assert first.state is RunState.SUCCESS
    assert second.state is RunState.GUARDRAIL


async def test_a_manager_may_call_one_managed_agent_twice_at_once() -> None:
    helper = CodeAgent([barrier(2)], script(token_reply, 4), name="helper", description="Remembers tokens.")
    calls = [
        ScriptedModel.call("helper", task="Remember token 1 of 2."),
        ScriptedModel.call("helper", task="Remember token 2 of 2."),
    ]
    answer = [ScriptedModel.call("final_answer", answer="both")]
    manager = ToolCallingAgent([], ScriptedModel([calls, answer]), managed_agents=[helper])
    result: RunResult = await manager.arun("Ask the helper twice.", return_full_result=True)
    await helper.aclose()
    assert result.output == "both"
    step = result.memory.action_steps()[0]
    assert sorted(r.content for r in step.tool_results) == ["token-1:[]", "token-2:[]"]


class CountedMonty(MontyExecutor):
    opened: ClassVar[list[CountedMonty]] = []
    closed: ClassVar[list[CountedMonty]] = []

    async def start(self, functions: Any) -> None:
        CountedMonty.opened.append(self)
        await super().start(functions)

    async def close(self) -> None:
        if self not in CountedMonty.closed:
            CountedMonty.closed.append(self)
        await super().close()


async def test_sessions_no_longer_retained_are_closed() -> None:
    CountedMonty.opened.clear()
    CountedMonty.closed.clear()
    agent = CodeAgent([barrier(3)], script(token_reply, 6), executor=lambda: CountedMonty())
    tasks = [f"Remember token {k} of 3." for k in (1, 2, 3)]
    results = await asyncio.gather(*(agent.arun(t, return_full_result=True) for t in tasks))
    assert len(CountedMonty.opened) == 3
    open_now = [e for e in CountedMonty.opened if e not in CountedMonty.closed]
    assert len(open_now) == 1  # the session of the run whose memory is agent.memory
    assert agent.memory is results[-1].memory  # the latest run started
    await agent.aclose()
    assert sorted(map(id, CountedMonty.closed)) == sorted(map(id, CountedMonty.opened))


async def test_one_executor_instance_serves_one_run_at_a_time() -> None:
    """An agent given one `Executor` instance refuses a second run while one is in progress
    (it would restart the session the first run's code is running in), and runs it after."""
    agent: CodeAgent | None = None

    @tool
    async def start_another(task: str) -> str:
        """Start another run of this agent.

        Args:
            task: Its task.
        """
        assert agent is not None
        try:
            return str(await agent.arun(task))
        except ConfigurationError as exc:
            return str(exc)

    def reply(messages: Sequence[ChatMessage]) -> str:
        if "Say done" in latest_task(messages):
            return fenced("final_answer('done')")
        return fenced("final_answer(start_another('Say done.'))")

    agent = CodeAgent([start_another], ScriptedModel([reply] * 2), executor=MontyExecutor())
    async with agent:
        refused = await agent.arun("Start another run.")
        assert "one Executor instance" in refused
        assert await agent.arun("Say done.") == "done"


async def test_a_run_continuing_memory_that_another_run_is_writing_is_refused() -> None:
    arrived, release = asyncio.Event(), asyncio.Event()

    @tool
    async def hold(label: str) -> str:
        """Wait until released.

        Args:
            label: Who waits.
        """
        arrived.set()
        await asyncio.wait_for(release.wait(), BARRIER_TIMEOUT_S)
        return f"held {label}"

    replies = [[ScriptedModel.call("hold", label="a")], [ScriptedModel.call("final_answer", answer="one")]]
    agent = ToolCallingAgent([hold], ScriptedModel(replies))
    first = asyncio.ensure_future(agent.arun("Hold.", return_full_result=True))
    await asyncio.wait_for(arrived.wait(), BARRIER_TIMEOUT_S)
    steps_before = len(agent.memory.steps)
    with pytest.raises(ConfigurationError, match=r"a run is still writing agent\.memory"):
        await agent.arun("Continue.", reset=False)
    assert len(agent.memory.steps) == steps_before  # nothing of the refused run was written
    release.set()
    assert (await first).output == "one"
    agent.model = ScriptedModel([[ScriptedModel.call("final_answer", answer="two")]])
    after = await agent.arun("Continue.", reset=False, return_full_result=True)  # allowed once it ended
    assert after.output == "two" and after.memory is (await first).memory
