"""An eval's figures: how many tasks passed, and what they took (steps, tokens, cost, time),
over all tasks and per tag; rendered as a `rich` table.

Crashed tasks count as tasks that did not pass (and are counted apart). `cost` sums the costs
that are known; `cost_unknown` counts the tasks whose model had no price, so a partial sum is
never shown as the whole. A task without a duration (none is recorded) does not count for time.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from .results import EvalResult

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["GroupStats", "Summary", "print_summary", "summarize", "summary_table"]


@dataclass(frozen=True, kw_only=True)
class GroupStats:
    """The figures of a group of results (all of them, or one tag's)."""

    total: int
    passed: int
    crashed: int
    mean_score: float
    mean_steps: float
    input_tokens: int
    output_tokens: int
    cost: float | None
    cost_unknown: int
    mean_duration: float | None
    total_duration: float
    judge_input_tokens: int = 0
    judge_output_tokens: int = 0
    judge_cost: float | None = None
    """What scoring spent (a model as judge), apart from the runs' tokens and cost."""

    @property
    def success_rate(self) -> float:
        """Passed / total (0.0 for no tasks)."""
        return self.passed / self.total if self.total else 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, kw_only=True)
class Summary(GroupStats):
    """The whole eval: `GroupStats` of every task with a result, `by_tag`, and `skipped` (results
    kept from an earlier run of the same results file, included in the figures) and `missing`
    (tasks with no result: the eval was stopped, or its backend lost them)."""

    skipped: int = 0
    missing: int = 0
    by_tag: Mapping[str, GroupStats] = field(default_factory=dict)


def group_stats(results: Sequence[EvalResult]) -> GroupStats:
    """The figures of `results`."""
    costs = [r.cost for r in results if r.cost is not None]
    durations = [r.duration for r in results if r.duration is not None]
    return GroupStats(
        total=len(results),
        passed=sum(r.passed for r in results),
        crashed=sum(r.crashed for r in results),
        mean_score=statistics.fmean(r.score for r in results) if results else 0.0,
        mean_steps=statistics.fmean(r.steps for r in results) if results else 0.0,
        input_tokens=sum(r.input_tokens for r in results),
        output_tokens=sum(r.output_tokens for r in results),
        cost=_total(costs),
        cost_unknown=len(results) - len(costs),
        mean_duration=statistics.fmean(durations) if durations else None,
        total_duration=sum(durations),
        judge_input_tokens=sum(r.judge_input_tokens for r in results),
        judge_output_tokens=sum(r.judge_output_tokens for r in results),
        judge_cost=_total(r.judge_cost for r in results),
    )


def _total(values: Iterable[float | None]) -> float | None:
    """The sum of the values that are known; None when none is."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def summarize(results: Sequence[EvalResult], *, skipped: int = 0, missing: int = 0) -> Summary:
    """The `Summary` of `results` (tags in their first-seen order)."""
    tags: dict[str, list[EvalResult]] = {}
    for result in results:
        for tag in result.tags:
            tags.setdefault(tag, []).append(result)
    overall = group_stats(results)
    by_tag = {tag: group_stats(group) for tag, group in tags.items()}
    return Summary(**vars(overall), skipped=skipped, missing=missing, by_tag=by_tag)


_COLUMNS = ("", "tasks", "passed", "rate", "mean steps", "tokens in / out", "cost", "mean time", "total time")
"""Columns: label, tasks, passed, success rate, mean steps, tokens, cost, mean and total time."""


def summary_table(summary: Summary, title: str = "Eval") -> Table:
    """A table: one row for all tasks, one per tag; a caption with what was skipped or missing."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, caption_justify="left")
    for name in _COLUMNS:
        table.add_column(name, justify="left" if not name else "right", no_wrap=True)
    table.add_row(*_cells("all", summary), style="bold")
    for tag, stats in summary.by_tag.items():
        table.add_row(*_cells(f"#{tag}", stats))
    notes = [
        f"{summary.crashed} crashed" if summary.crashed else "",
        f"{summary.skipped} from earlier runs" if summary.skipped else "",
        f"{summary.missing} with no result" if summary.missing else "",
        f"cost unknown for {summary.cost_unknown}" if summary.cost_unknown and summary.total else "",
        _judge_note(summary),
    ]
    table.caption = ", ".join(n for n in notes if n) or None
    return table


def _judge_note(stats: GroupStats) -> str:
    """What the judge spent, apart from the table's figures (nothing without a judge)."""
    if not stats.judge_input_tokens and not stats.judge_output_tokens:
        return ""
    cost = f", ${stats.judge_cost:.4f}" if stats.judge_cost is not None else ""
    return f"judge: {stats.judge_input_tokens:,} in / {stats.judge_output_tokens:,} out tokens{cost}"


def _cells(label: str, stats: GroupStats) -> list[str]:
    mean = _seconds(stats.mean_duration) if stats.mean_duration is not None else "-"
    return [
        label,
        str(stats.total),
        str(stats.passed),
        f"{100 * stats.success_rate:.1f}%",
        f"{stats.mean_steps:.1f}",
        f"{stats.input_tokens} / {stats.output_tokens}",
        _dollars(stats.cost, stats.cost_unknown),
        mean,
        _seconds(stats.total_duration),
    ]


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.1f}s"


def _dollars(cost: float | None, unknown: int) -> str:
    if cost is None:
        return "?"
    shown = "$0" if cost == 0 else f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"
    return f"≥ {shown}" if unknown else shown


def print_summary(summary: Summary, file: IO[str] | None = None, *, title: str = "Eval") -> None:
    """Print `summary_table(summary)` to `file` (default stdout); not cut to 80 columns when
    `file` is not a terminal (a pipe or a file has no width)."""
    from rich.console import Console

    console = Console(file=file, highlight=False)
    if not console.is_terminal:
        console.width = 200  # the table takes the width its cells need, no more
    console.print(summary_table(summary, title))
