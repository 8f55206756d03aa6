"""Runs as the run store keeps them, in the UI's terms: a run's summary for the history, and
its steps told as the events a live run sends (`codeloop.ui.wire`), so the page shows a stored
run as it showed it live.

A stored step knows when it started and ended (`timing`), when its model call did
(`model_timing`, where recorded), and the tool-call journal when each call began and ended
(`started_at`, where recorded, and `recorded_at`): the events told carry those times, so the
waterfall of a stored run is drawn from them. A code action's own start is not stored: it is
told as starting when the model's reply was complete.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..memory import ActionStep, FinalAnswerStep, MemoryStep, PlanningStep, TaskStep
from .wire import enrich

if TYPE_CHECKING:
    from ..store import RunRecord, StepRecord, ToolCallRecord

__all__ = ["RESUMABLE", "can_resume", "matches", "summary", "told_events"]

RESUMABLE = frozenset({"interrupted", "cancelled", "error", "max_steps_exceeded", "budget_exceeded", "stuck"})
"""States a stored run continues from with `resume` (besides a `running` one whose worker
died: its lease expired). A run awaiting approval continues once its calls are answered."""


def can_resume(record: RunRecord, live_here: bool) -> bool:
    """Whether the page offers Resume for the run."""
    if live_here:
        return False
    return record.abandoned or record.state in RESUMABLE


def matches(record: RunRecord, text: str) -> bool:
    """Whether the run's task (or its id) holds `text`, case aside."""
    needle = text.strip().casefold()
    return not needle or needle in record.task.casefold() or record.run_id.startswith(needle)


def summary(record: RunRecord, *, live_here: bool = False) -> dict[str, Any]:
    """The run's row as the page shows it."""
    usage = record.usage
    return {
        "run_id": record.run_id,
        "state": "abandoned" if record.abandoned else record.state,
        "agent": record.agent_name,
        "task": record.task,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "steps": record.step_count,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "tokens": usage.input_tokens + usage.output_tokens,
        "error": record.error,
        "output": None if record.output_json is None else json.loads(record.output_json),
        "pending": record.pending,
        "max_steps": record.metadata.get("max_steps"),
        "live": live_here,
        "resumable": can_resume(record, live_here),
    }


def told_events(
    record: RunRecord, steps: list[StepRecord], calls: list[ToolCallRecord], *, finished: bool = True
) -> list[dict[str, Any]]:
    """The stored run told as wire events (`finished`: with its `RunFinished` when it has ended)."""
    teller = _Teller(record.agent_name, calls)
    teller.add("RunStarted", 0, record.created_at, task=record.task, run_id=record.run_id)
    first_task = True
    for stored in steps:
        step = stored.to_step()
        if isinstance(step, TaskStep) and first_task:
            first_task = False
        else:
            teller.tell(step, stored.created_at)
    if finished and record.state not in ("running",):
        teller.add("RunFinished", 0, record.updated_at, result=_result(record, steps))
    for seq, data in enumerate(teller.events):
        data["seq"] = seq
    return teller.events


def _result(record: RunRecord, steps: list[StepRecord]) -> dict[str, Any]:
    end = record.updated_at
    return {
        "run_id": record.run_id,
        "state": record.state,
        "output": None if record.output_json is None else json.loads(record.output_json),
        "error": record.error,
        "usage": {"input_tokens": record.usage.input_tokens, "output_tokens": record.usage.output_tokens},
        "duration": None if end is None else end - record.created_at,
        "steps": sum(1 for s in steps if s.kind == "action"),
    }


class _Teller:
    """Builds the event dicts of one stored run."""

    def __init__(self, agent: str, calls: list[ToolCallRecord]) -> None:
        self.agent = agent
        self.events: list[dict[str, Any]] = []
        self.calls: dict[int, list[ToolCallRecord]] = {}
        for call in calls:
            self.calls.setdefault(call.step_number, []).append(call)

    def add(self, kind: str, step: int, timestamp: float | None, **fields: Any) -> None:
        """One more event of the run (`timestamp`: None when the store has no time for it)."""
        data = {"type": kind, "agent": self.agent, "step": step, "depth": 0, "timestamp": timestamp}
        self.events.append(enrich(data | fields))

    def tell(self, step: MemoryStep, written_at: float) -> None:
        """A stored step's events."""
        if isinstance(step, ActionStep):
            self._action(step)
        elif isinstance(step, PlanningStep):
            self._plan(step)
        elif isinstance(step, FinalAnswerStep):
            self.add("FinalAnswer", 0, written_at, output=_jsonable(step.output))
        elif isinstance(step, TaskStep):
            self.add("Task", 0, written_at, task=step.task)

    def _plan(self, step: PlanningStep) -> None:
        start, end = step.timing.start_time, step.timing.end_time
        self.add("ModelCallStarted", 0, start, purpose="plan", model_id="")
        message = _message(step.plan, step.usage)
        self.add("ModelCallFinished", 0, end, purpose="plan", model_id="", message=message)
        self.add("PlanReady", 0, end, plan=step.plan)
        self.add("StepFinished", 0, end, memory_step=step.dict())

    def _action(self, step: ActionStep) -> None:
        n, timing = step.step_number, step.timing
        model_timing = getattr(step, "model_timing", None)
        asked = model_timing.start_time if model_timing is not None else timing.start_time
        answered = model_timing.end_time if model_timing is not None else None
        message = _message(step.model_output, step.usage)
        self.add("ModelCallStarted", n, asked, purpose="action", model_id="")
        self.add("ModelCallFinished", n, answered, purpose="action", model_id="", message=message)
        self.add("ModelOutput", n, answered, message=message)
        if step.code_action is not None:
            self.add("CodeAction", n, answered or timing.start_time, code=step.code_action)
        self._tool_calls(step)
        if step.code_action is not None:
            error = None if step.error is None else step.error.message
            self.add("CodeActionFinished", n, timing.end_time, error=error)
        self._outcome(step)

    def _tool_calls(self, step: ActionStep) -> None:
        n = step.step_number
        journaled = self.calls.get(n, [])
        for call in journaled:
            arguments = json.loads(call.arguments_json or "{}")
            started = getattr(call, "started_at", None)
            index, name = call.call_index, call.tool_name
            self.add("ToolCallStarted", n, started, name=name, arguments=arguments, call_index=index)
            result, error = _journal_result(call)
            self.add(
                "ToolCallFinished", n, call.recorded_at, name=call.tool_name, call_index=index,
                result=result, error=error,
            )  # fmt: skip
        if journaled or step.code_action is not None:  # a code action's calls are all journaled
            return
        results = {r.call_id: r for r in step.tool_results}
        for index, asked in enumerate(step.tool_calls):  # a tool-calling step without a journal
            name = asked.name
            if name == "final_answer":  # the answer, not a tool call (it is told as FinalAnswer)
                continue
            self.add("ToolCallStarted", n, None, name=name, arguments=asked.arguments, call_index=index)
            done = results.get(asked.id)
            error = done.content if done is not None and done.is_error else None
            result = "" if done is None or done.is_error else done.content
            self.add("ToolCallFinished", n, None, name=name, call_index=index, result=result, error=error)

    def _outcome(self, step: ActionStep) -> None:
        n, end = step.step_number, step.timing.end_time
        if step.observations and not step.tool_results:
            self.add("Observation", n, end, text=step.observations, call_id=None, is_error=False)
        for done in step.tool_results:
            self.add("Observation", n, end, text=done.content, call_id=done.call_id, is_error=done.is_error)
        if step.error is not None:
            self.add("StepErrored", n, end, error={"type": step.error.type, "message": step.error.message})
        self.add("StepFinished", n, end, memory_step=step.dict())


def _message(content: str, usage: Any) -> dict[str, Any]:
    shown = (
        None if usage is None else {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    )
    return {"role": "assistant", "content": content, "usage": shown}


def _journal_result(call: ToolCallRecord) -> tuple[str, str | None]:
    """The journaled call's result text, or its error."""
    data = json.loads(call.result_json or "{}")
    if call.is_error:
        return "", f"{data.get('error', 'Error')}: {data.get('message', '')}"
    if "value" in data:
        value = data["value"]
        return (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)), None
    return str(data.get("repr", "")), None


def _jsonable(value: Any) -> Any:
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value, fallback=repr)
