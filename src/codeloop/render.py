"""A terminal view of a run: one subscriber of the event stream, nothing more.

`verbosity_level=1` shows each step's code or tool calls, observations, errors and the answer;
`verbosity_level=2` also streams the model's text as it is generated. Each failure is shown once:
a tool's error result (an `Observation` with `is_error`) is shown by the step error that follows
it. A run ends with its summary line: state, steps, tokens, cost and time, e.g.
`success · 2 steps · 1200 in / 80 out tokens · $0.0002 · 3.1s`. The cost is shown when the
model's price is known and not zero (`codeloop.agents.budget` prices, by model id); a local
model, or one without a price, shows no cost rather than a made-up one.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import singledispatchmethod
from typing import IO, TYPE_CHECKING, Any

from .events import (
    ActionOutput,
    CodeAction,
    Event,
    FinalAnswer,
    ModelCallStarted,
    ModelDelta,
    ModelOutput,
    Observation,
    PlanReady,
    RunFinished,
    RunStarted,
    StepErrored,
    ToolCallRequested,
)
from .messages import Usage

if TYPE_CHECKING:
    from .agents.budget import Price
    from .result import RunResult

__all__ = ["ConsoleRenderer", "reply_thought", "run_cost", "run_summary"]

_MAX_OBSERVATION = 1500


class ConsoleRenderer:
    """Renders events with `rich`. Use as an event handler: `CodeAgent(..., verbosity_level=1)`
    or `for event in agent.stream(task): renderer(event)`.

    `run_error=False` leaves out the error under a failed top-level run's summary line, for a
    caller that reports it itself (the `codeloop` command prints it once, after the view).
    `prices` (model-id glob -> `Price`, default `DEFAULT_PRICES`) price the summary's cost.
    """

    def __init__(
        self,
        verbosity_level: int = 1,
        file: IO[str] | None = None,
        *,
        run_error: bool = True,
        prices: Mapping[str, Price] | None = None,
    ) -> None:
        from rich.console import Console

        self.verbosity_level = verbosity_level
        self.run_error = run_error
        self.prices = prices
        self.console = Console(file=file, highlight=False, soft_wrap=True)
        self._streaming = False
        self._step_shown: set[tuple[str, int]] = set()
        self._model_ids: dict[tuple[str, int], str] = {}
        """The model each running agent (name, depth) calls: the price of its summary."""

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
        from rich.padding import Padding
        from rich.rule import Rule

        self._model_ids.pop((event.agent, event.depth), None)
        rule = Rule(f"[bold]{_escape(event.agent)}[/]: {_escape(_clip(event.task, 200))}", style="cyan")
        self.console.print(Padding(rule, (0, 0, 0, 2 * event.depth)))  # a sub-agent's: indented

    @render.register
    def _(self, event: ModelCallStarted) -> None:
        self._model_ids[(event.agent, event.depth)] = event.model_id

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
        elif thought := reply_thought(event.message.content):
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
        model_id = self._model_ids.pop((event.agent, event.depth), None)
        cost = run_cost(r, model_id, self.prices) if model_id is not None else None
        summary = run_summary(r, cost)
        style = "green" if r.succeeded else "red"
        show_error = r.error and (self.run_error or event.depth > 0)
        self._line(event, r.state.value, style, "· " + summary + (f"\n{r.error}" if show_error else ""))

    def _panel(self, event: Event, body: Any, title: str, color: str) -> None:
        from rich.padding import Padding
        from rich.panel import Panel

        panel = Panel(body, title=title, title_align="left", border_style=color, expand=False)
        self.console.print(Padding(panel, (0, 0, 0, 2 * event.depth)))

    def _line(self, event: Event, label: str, style: str, text: str) -> None:
        """Print `label` styled, then `text` verbatim (never interpreted as markup)."""
        self.console.print(f"{self._indent(event)}[{style}]{_escape(label)}[/] {_escape(text)}")


def run_cost(
    spent: RunResult | Usage, model_id: str, prices: Mapping[str, Price] | None = None
) -> float | None:
    """What a run's tokens (or `Usage`) cost in US dollars with `model_id`'s price in `prices`
    (default `DEFAULT_PRICES`); None when the model has no price there."""
    from .agents.budget import DEFAULT_PRICES, price_for

    price = price_for(model_id, DEFAULT_PRICES if prices is None else prices)
    if price is None:
        return None
    usage = spent if isinstance(spent, Usage) else spent.usage
    return (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1e6


def run_summary(result: RunResult, cost: float | None = None) -> str:
    """`2 steps · 1200 in / 80 out tokens · $0.0002 · 3.1s`: the cost only when there is one to
    tell (None: unknown; 0: a free model, nothing to tell)."""
    duration = f"{result.timing.duration:.1f}s" if result.timing.duration is not None else "?"
    parts = [
        f"{len(result.memory.action_steps())} steps",
        f"{result.usage.input_tokens} in / {result.usage.output_tokens} out tokens",
    ]
    if cost:
        parts.append(_dollars(cost))
    return " · ".join([*parts, duration])


def _dollars(cost: float) -> str:
    if cost < 0.0001:
        return "<$0.0001"
    return f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"


def reply_thought(text: str) -> str:
    """The prose before the first code fence or tag of a reply."""
    cut = min((i for marker in ("```", "<code>") if (i := text.find(marker)) != -1), default=len(text))
    return text[:cut].strip()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" … [{len(text) - limit} more chars]"


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
