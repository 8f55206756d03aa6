"""Resuming a stored run (`agent.resume(run_id)`): the lease taken, memory rebuilt from the
stored steps, a CodeAgent's variables rebuilt by replaying its code with every tool call answered
from the journal (see `codeloop.agents.durable`), and the in-progress reply waiting to be acted on.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..memory import FinalAnswerStep, Memory, PlanningStep, TaskStep, Timing
from ..result import RunResult, RunState
from ..store import RunRecord, RunStore
from .durable import DurableRun, RunLeaseHeld, message_from_json, open_spec, output_json, process_owner
from .run import latest_task

if TYPE_CHECKING:
    from .base import MultiStepAgent
    from .run import Run

__all__ = ["resume_run", "variables_note"]


async def resume_run(agent: MultiStepAgent, run_id: str, max_steps: int | None) -> Run | RunResult:
    """The stored run, ready to continue (lease taken, memory and variables rebuilt, its
    in-progress reply waiting); or the stored result of a run that already succeeded."""
    if agent.store is None:
        raise ConfigurationError("resume() needs an agent with a store: pass store= to the agent.")
    store, owned = open_spec(agent.store)
    run: Run | None = None
    try:
        record = await store.get_run(run_id)
        memory = Memory(steps=[s.to_step() for s in await store.steps(run_id)])
        if record.state == RunState.SUCCESS.value or _ends_with_answer(memory):
            return await _stored_result(store, record, memory)
        run = _resumed(agent, record, memory, max_steps)
        run.durable = DurableRun(
            store, owned, run_id, process_owner(), agent.lease_ttl_s, dict(record.metadata)
        )
        run.durable.written = len(memory.steps)
        await _take(run.durable, record)
        await _rebuild(agent, run, record.metadata)
        return run
    except BaseException:
        if run is not None:
            await agent._end_run(run)  # gives the lease up and closes the store
        raise
    finally:
        if run is None and owned:
            await store.close()


async def _take(durable: DurableRun, record: RunRecord) -> None:
    if not await durable.store.acquire_lease(durable.run_id, durable.owner, durable.lease_ttl_s):
        held = await durable.store.get_run(durable.run_id)
        raise RunLeaseHeld(record.run_id, held.lease_owner, held.lease_expires_at)


def _resumed(agent: MultiStepAgent, record: RunRecord, memory: Memory, max_steps: int | None) -> Run:
    meta = record.metadata
    actions = memory.action_steps()
    first = int(meta.get("first_step", 1))
    next_number = actions[-1].step_number + 1 if actions else first
    agent.memory = memory
    run = agent._new_run(max_steps or int(meta.get("max_steps", agent.max_steps)), next_number, memory)
    run.run_id = record.run_id
    run.steps_taken = next_number - first
    if memory.steps and isinstance(memory.steps[-1], PlanningStep):
        run.planned_at = run.steps_taken
    agent._active_runs[run.run_id] = run
    return run


async def _rebuild(agent: MultiStepAgent, run: Run, meta: Mapping[str, Any]) -> None:
    """Variables (a CodeAgent's replay), a note if they could not all be restored, the
    in-progress reply; then the lease is renewed in the background."""
    durable = run.durable
    assert durable is not None
    await agent._open_executor(run, fresh=True, variables=meta.get("additional_args"))
    note = await agent._replay_actions(run)
    if note is not None:
        run.memory.steps.append(TaskStep(task=f"{note}\nYour task is still: {latest_task(run.memory)}"))
        await durable.checkpoint(run)
    pending = meta.get("in_progress")
    if isinstance(pending, dict) and pending.get("step_number") == run.step_number:
        durable.pending_reply = message_from_json(pending["message"])
    durable.start_heartbeat()


def _ends_with_answer(memory: Memory) -> bool:
    return bool(memory.steps) and isinstance(memory.steps[-1], FinalAnswerStep)


async def _stored_result(store: RunStore, record: RunRecord, memory: Memory) -> RunResult:
    """A finished run's result as stored (an answer stored by a worker that died before it
    marked the run finished is marked now)."""
    final = memory.steps[-1] if _ends_with_answer(memory) else None
    if record.state != RunState.SUCCESS.value and isinstance(final, FinalAnswerStep):
        await store.update_run(
            record.run_id, state=RunState.SUCCESS.value, output_json=output_json(final.output)
        )
    if isinstance(final, FinalAnswerStep):
        output = final.output
    else:
        output = None if record.output_json is None else json.loads(record.output_json)
    return RunResult(
        output=output,
        state=RunState.SUCCESS,
        memory=memory,
        usage=record.usage,
        timing=Timing(start_time=record.created_at, end_time=record.updated_at),
        run_id=record.run_id,
    )


def variables_note(problem: str, codes: Sequence[str]) -> str:
    """What the model is told when the replay of its earlier code stopped."""
    names = sorted(set().union(*(_assigned(code) for code in codes)))
    shown = ", ".join(names) if names else "(none found)"
    return (
        f"Note: this run was resumed in a new sandbox, and replaying its earlier code stopped"
        f" ({problem}). These variables may be gone or hold other values: {shown}. Print them"
        " before you rely on them, or compute them again."
    )


def _assigned(code: str) -> set[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names
