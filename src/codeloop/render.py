"""A terminal view of a run: one subscriber of the event stream, nothing more.

`verbosity_level=1` shows each step's code or tool calls, observations, errors and the answer;
`verbosity_level=2` also streams the model's text as it is generated. Each failure is shown once:
a tool's error result (an `Observation` with `is_error`) is shown by the step error that follows
it.
"""

from __future__ import annotations

from functools import singledispatchmethod
from typing import IO, Any

from .events import (
    ActionOutput,
    CodeAction,
    Event,
    FinalAnswer,
    ModelDelta,
    ModelOutput,
    Observation,
    PlanReady,
    RunFinished,
    RunStarted,
    StepErrored,
    ToolCallRequested,
)

__all__ = ["ConsoleRenderer"]

_MAX_OBSERVATION = 1500


class ConsoleRenderer:
    """Renders events with `rich`. Use as an event handler: `CodeAgent(..., verbosity_level=1)`
    or `for event in agent.stream(task): renderer(event)`.

    `run_error=False` leaves out the error under a failed top-level run's summary line, for a
    caller that reports it itself (the `codeloop` command prints it once, after the view).
    """

    def __init__(
        self, verbosity_level: int = 1, file: IO[str] | None = None, *, run_error: bool = True
    ) -> None:
        from rich.console import Console

        self.verbosity_level = verbosity_level
        self.run_error = run_error
        self.console = Console(file=file, highlight=False, soft_wrap=True)
        self._streaming = False
        self._step_shown: set[tuple[str, int]] = set()

    def __call__(self, event: Event) -> None:
        self._step_header(event)
        self.render(event)

    def _indent(self, event: Event) -> str:
        return "  " * event.depth

    def _step_header(self, event: Event) -> None:
        key = (event.agent, event.step)
        if (
            event.step
            and key not in self._step_shown
            and isinstance(event, (ModelDelta, PlanReady, ModelOutput))
        ):
            self._step_shown.add(key)
            self.console.print(f"{self._indent(event)}[bold cyan]── {event.agent} · step {event.step} ──[/]")

    @singledispatchmethod
    def render(self, event: Event) -> None:
        """Events without a view are ignored."""

    @render.register
    def _(self, event: RunStarted) -> None:
        self.console.rule(f"[bold]{event.agent}[/]: {_clip(event.task, 200)}", style="cyan")

    @render.register
    def _(self, event: ModelDelta) -> None:
        if self.verbosity_level >= 2 and event.delta.content:
            self._streaming = True
            self.console.print(event.delta.content, end="", style="dim", markup=False)

    @render.register
    def _(self, event: ModelOutput) -> None:
        if self._streaming:
            self.console.print()
            self._streaming = False
        elif thought := _thought(event.message.content):
            self._line(event, "", "dim", _clip(thought, 600))

    @render.register
    def _(self, event: PlanReady) -> None:
        self._panel(event, event.plan, "plan", "magenta")

    @render.register
    def _(self, event: CodeAction) -> None:
        if self.verbosity_level < 2:
            from rich.syntax import Syntax

            self._panel(event, Syntax(event.code, "python", theme="ansi_dark"), "code", "blue")

    @render.register
    def _(self, event: ToolCallRequested) -> None:
        self._line(event, f"→ {event.call.name}", "blue", f"({_clip(str(event.call.arguments), 300)})")

    @render.register
    def _(self, event: Observation) -> None:
        if not event.is_error:  # a failed tool call: its StepErrored shows it
            self._line(event, "observation:", "green", _clip(event.text, _MAX_OBSERVATION))

    @render.register
    def _(self, event: ActionOutput) -> None:
        self._line(event, "output:", "green", _clip(repr(event.output), 300))

    @render.register
    def _(self, event: StepErrored) -> None:
        self._line(event, "error:", "red", _clip(event.error.message, _MAX_OBSERVATION))

    @render.register
    def _(self, event: FinalAnswer) -> None:
        self._line(event, "final answer:", "bold green", _clip(str(event.output), 2000))

    @render.register
    def _(self, event: RunFinished) -> None:
        r = event.result
        duration = f"{r.timing.duration:.1f}s" if r.timing.duration is not None else "?"
        style = "green" if r.succeeded else "red"
        summary = (
            f"· {len(r.memory.action_steps())} steps · "
            f"{r.usage.input_tokens} in / {r.usage.output_tokens} out tokens · {duration}"
        )
        show_error = r.error and (self.run_error or event.depth > 0)
        self._line(event, r.state.value, style, summary + (f"\n{r.error}" if show_error else ""))

    def _panel(self, event: Event, body: Any, title: str, color: str) -> None:
        from rich.padding import Padding
        from rich.panel import Panel

        panel = Panel(body, title=title, title_align="left", border_style=color, expand=False)
        self.console.print(Padding(panel, (0, 0, 0, 2 * event.depth)))

    def _line(self, event: Event, label: str, style: str, text: str) -> None:
        """Print `label` styled, then `text` verbatim (never interpreted as markup)."""
        self.console.print(f"{self._indent(event)}[{style}]{_escape(label)}[/] {_escape(text)}")


def _thought(text: str) -> str:
    """The prose before the first code fence or tag of a reply."""
    cut = min((i for marker in ("```", "<code>") if (i := text.find(marker)) != -1), default=len(text))
    return text[:cut].strip()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" … [{len(text) - limit} more chars]"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
