"""Replaying a run from its memory: the steps become the events the run emitted, and the
console renderer shows them as it shows a live run (smolagents' `agent.replay()`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from ..context import ContextPolicy, FullHistory
from ..events import (
    ActionOutput,
    CodeAction,
    Event,
    FinalAnswer,
    ModelOutput,
    Observation,
    PlanReady,
    RunStarted,
    StepErrored,
    ToolCallRequested,
)
from ..memory import ActionStep, FinalAnswerStep, Memory, MemoryStep, PlanningStep, TaskStep

__all__ = ["replay", "replay_events"]


def replay_events(memory: Memory, agent: str) -> Iterator[tuple[MemoryStep, list[Event]]]:
    """Each step of `memory` with the events that show it."""
    next_step = 1
    for step in memory.steps:
        if isinstance(step, TaskStep):
            yield step, [RunStarted(agent=agent, task=step.task)]
        elif isinstance(step, PlanningStep):
            yield step, [PlanReady(agent=agent, step=next_step, plan=step.plan)]
        elif isinstance(step, ActionStep):
            yield step, list(_action_events(step, agent))
            next_step = step.step_number + 1
        elif isinstance(step, FinalAnswerStep):
            yield step, [FinalAnswer(agent=agent, step=next_step - 1, output=step.output)]


def _action_events(step: ActionStep, agent: str) -> Iterator[Event]:
    n = step.step_number
    yield ModelOutput(agent=agent, step=n, message=step.model_output_message)
    if step.code_action is not None:
        yield CodeAction(agent=agent, step=n, code=step.code_action)
    else:
        yield from (ToolCallRequested(agent=agent, step=n, call=call) for call in step.tool_calls)
    if step.tool_results:
        for result in step.tool_results:
            yield Observation(agent=agent, step=n, text=result.content, call_id=result.call_id)
    elif step.observations:
        yield Observation(agent=agent, step=n, text=step.observations)
    if step.error is not None:
        yield StepErrored(agent=agent, step=n, error=step.error)
    elif step.action_output is not None and not step.is_final_answer:
        yield ActionOutput(agent=agent, step=n, output=step.action_output)


def replay(
    memory: Memory,
    agent: str,
    system_prompt: str,
    *,
    detailed: bool = False,
    file: IO[str] | None = None,
    context_policy: ContextPolicy | None = None,
) -> None:
    """Print the run in `memory` to `file` (default: stdout). `detailed` also prints, before
    each step, the messages the model was given for it, as the agent's `context_policy` built
    them (default: the full history)."""
    policy = context_policy or FullHistory()
    from rich.panel import Panel
    from rich.text import Text

    from ..render import ConsoleRenderer

    renderer = ConsoleRenderer(verbosity_level=1, file=file)
    console = renderer.console
    console.rule(f"Replay of {agent}'s memory", style="cyan")
    console.print(Panel(Text(system_prompt), title="system prompt", title_align="left", expand=False))
    for index, (step, events) in enumerate(replay_events(memory, agent)):
        if detailed and isinstance(step, (ActionStep, PlanningStep)):
            seen = policy.messages(Memory(steps=memory.steps[:index]), system_prompt)
            lines = "\n\n".join(f"[{m.role.value}] {m.content}" for m in seen)
            console.print(Panel(Text(lines), title="model input", title_align="left", expand=False))
        for event in events:
            renderer(event)
