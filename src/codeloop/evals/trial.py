"""One task, end to end: get an agent, run the task, score the output, make its `EvalResult`.

A `Trial` is what every backend calls, once per task; it never raises for a task's sake (only
cancellation goes through): a run or agent factory that raises gives a "crashed" result with the
error, a scorer that raises a failed result with the error, so no task is ever lost.

The agent: an agent object is shared by every task (each `arun` is its own run, so one agent
runs many tasks at once; the caller keeps and closes it); a factory (a callable taking no
arguments that returns an agent) is called once per task, and the agent it built is closed when
the task ends, so no state (a scripted model's replies, a tool's counters, sandbox variables)
carries from one task to another. A factory with one parameter is given the task (`EvalTask`):
an agent built for it (its tools, its model's endpoint, its limits).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from pydantic_core import to_jsonable_python

from ..agents.base import MultiStepAgent
from ..render import run_cost
from .results import CRASHED, EvalResult
from .scorers import Score, Scorer

if TYPE_CHECKING:
    from ..agents.budget import Price
    from ..result import RunResult
    from .tasks import EvalTask

__all__ = ["AgentFactory", "AgentSource", "Trial", "crashed_result"]

AgentFactory = Union[Callable[[], MultiStepAgent], Callable[["EvalTask"], MultiStepAgent]]  # noqa: UP007
AgentSource = Union[MultiStepAgent, AgentFactory]  # noqa: UP007  # a runtime alias on Python 3.10
"""An agent shared by all tasks, or a factory called once per task, with no argument or with
the task (see the module docstring)."""


@dataclass(frozen=True)
class Trial:
    """Runs one task with `agent` and scores it with the task's scorer (`task_scorers`, by task
    id) or `scorer`. `prices` (model-id glob -> `Price`, default `DEFAULT_PRICES`) price runs."""

    agent: AgentSource
    scorer: Scorer
    task_scorers: Mapping[str, Scorer] = field(default_factory=dict)
    prices: Mapping[str, Price] | None = None

    async def __call__(self, task: EvalTask) -> EvalResult:
        started = time.perf_counter()
        try:
            result, model_id = await self._run(task)
        except Exception as exc:
            return crashed_result(task, exc, time.perf_counter() - started)
        duration = time.perf_counter() - started
        score, scorer_error = await self._score(task, result)
        cost = run_cost(result.usage, model_id, self.prices)
        judged = _judge_spent(score, self.prices)
        return _result(task, result, score, cost, duration, scorer_error).model_copy(update=judged)

    async def _run(self, task: EvalTask) -> tuple[RunResult, str]:
        """The task's `RunResult` and the id of the model that ran it."""
        shared = isinstance(self.agent, MultiStepAgent)
        agent = self.agent if isinstance(self.agent, MultiStepAgent) else _built(self.agent, task)
        try:
            result = await agent.arun(
                task.task, additional_args=task.additional_args or None, return_full_result=True
            )
            return result, agent.model.model_id
        finally:
            if not shared:
                await agent.aclose()

    async def _score(self, task: EvalTask, result: RunResult) -> tuple[Score, str | None]:
        """The output's score, and what the scorer raised (if it did: then the task fails)."""
        if not result.succeeded:
            return Score.of(False), None
        scorer = self.task_scorers.get(task.id, self.scorer)
        try:
            return await scorer.score(result.output, task.expected, task), None
        except Exception as exc:
            return Score.of(False), f"the scorer {scorer.name} failed: {_describe(exc)}"


def _built(factory: AgentFactory, task: EvalTask) -> MultiStepAgent:
    agent = factory(task) if takes_task(factory) else factory()  # type: ignore[call-arg]
    if not isinstance(agent, MultiStepAgent):
        name = getattr(factory, "__qualname__", repr(factory))
        raise TypeError(f"the agent factory {name} returned {type(agent).__name__}, not an agent")
    return agent


def _judge_spent(score: Score, prices: Mapping[str, Price] | None) -> dict[str, object]:
    """What the scorer's model spent, as `EvalResult` fields (nothing when it called none)."""
    if score.usage is None:
        return {}
    cost = run_cost(score.usage, score.model_id, prices) if score.model_id else None
    usage = score.usage
    return {
        "judge_input_tokens": usage.input_tokens,
        "judge_output_tokens": usage.output_tokens,
        "judge_cost": cost,
    }


def takes_task(factory: AgentFactory) -> bool:
    """Whether `factory` is called with the task: it takes one positional argument. A factory
    that takes more, or only keyword arguments without defaults, is refused."""
    try:
        parameters = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: called with no argument
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    required = [p for p in parameters if p.default is p.empty and p.kind not in variadic]
    name = getattr(factory, "__qualname__", repr(factory))
    if len(required) > 1 or any(p.kind not in positional for p in required):
        raise TypeError(
            f"the agent factory {name} must take no argument or one (the task), "
            f"but it requires {', '.join(p.name for p in required)}"
        )
    return len(required) == 1


def _result(
    task: EvalTask, run: RunResult, score: Score, cost: float | None, duration: float, error: str | None
) -> EvalResult:
    return EvalResult(
        id=task.id,
        task=task.task,
        expected=task.expected,
        output=to_jsonable_python(run.output, fallback=repr),
        score=score.value,
        passed=score.passed,
        state=run.state.value,
        steps=len(run.memory.action_steps()),
        input_tokens=run.usage.input_tokens,
        output_tokens=run.usage.output_tokens,
        cost=cost,
        duration=duration,
        error=error or run.error,
        reason=score.reason,
        tags=task.tags,
        run_id=run.run_id or None,
    )


def crashed_result(task: EvalTask, exc: BaseException | str, duration: float | None = None) -> EvalResult:
    """The "crashed" result of `task`: what was raised (or `exc`, a text saying what happened)."""
    return EvalResult(
        id=task.id,
        task=task.task,
        expected=task.expected,
        state=CRASHED,
        duration=duration,
        error=exc if isinstance(exc, str) else _describe(exc),
        tags=task.tags,
    )


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
