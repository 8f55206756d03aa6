"""Run an eval: every task of a dataset through an agent, each result scored and kept.

    report = evaluate("tasks.jsonl", make_agent, scorer="numeric", output="results.jsonl")
    print(report.summary.success_rate)

`aevaluate` is the implementation; `evaluate` drives it from sync code (codeloop's shared loop).
What happens, in order: the tasks are loaded and checked (`codeloop.evals.tasks`) and every
scorer they name is resolved, so a mistake is found before any task runs; with `output` and
`resume` (the default), the results already in the file are read back and their tasks skipped
(they still count in the summary, as `skipped`), except crashed ones (the run raised: a missing
key, a dead worker), which run again, their new line read after the old; the rest run on the
backend (`LocalBackend`: at most `concurrency` at once), each result appended to `output` the
moment its task ends, with a progress bar on stderr; last, the `Summary`. Without `resume`,
`output` is started afresh.

The agent is an agent object, shared by all tasks, or a factory called once per task (see
`codeloop.evals.trial`), or the name of either as "module:attr": then the eval is described as
data (`codeloop.evals.spec.TrialSpec`) that a backend on other machines sends to its workers,
each building its own agent (`RayBackend`); the judge is then a `ModelSpec`. A run that raises
is a "crashed" result with its error, never lost. When the agent has a `store=`, each run is
kept there like any other; `run_id` in its result finds it (`codeloop runs`, `agent.resume`).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._sync import run_sync
from ..agents.base import MultiStepAgent
from ..errors import ConfigurationError
from .backends import EvalBackend, LocalBackend, RunTask
from .results import CRASHED, EvalResult, ResultsFile
from .scorers import ScoreFunction, Scorer, ScorerSpecError, as_scorer
from .spec import ModelSpec, SpecTrial, TrialSpec
from .summary import Summary, summarize
from .tasks import EvalTask, ScorerField, load_tasks, tasks_from
from .trial import AgentSource, Trial, takes_task

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ..agents.budget import Price
    from ..models.base import Model

__all__ = ["EvalReport", "TaskSource", "aevaluate", "evaluate"]

TaskSource = str | Path | Iterable[EvalTask | Mapping[str, Any] | str]
"""A JSON Lines file, or tasks built in code (see `codeloop.evals.tasks.tasks_from`)."""


@dataclass(frozen=True)
class EvalReport:
    """The eval's results in the dataset's order (tasks with a result), and its `Summary`."""

    results: list[EvalResult]
    summary: Summary
    output: Path | None
    wall_time: float


def evaluate(
    tasks: TaskSource,
    agent: AgentSource | str,
    *,
    scorer: Scorer | ScoreFunction | ScorerField = "exact",
    judge: Model | ModelSpec | None = None,
    tolerance: Mapping[str, float] | None = None,
    concurrency: int = 4,
    output: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    backend: EvalBackend | None = None,
    prices: Mapping[str, Price] | None = None,
) -> EvalReport:
    """Run the eval from sync code; see `aevaluate`."""
    return run_sync(
        aevaluate(
            tasks, agent, scorer=scorer, judge=judge, tolerance=tolerance, concurrency=concurrency,
            output=output, resume=resume, progress=progress, backend=backend, prices=prices,
        )
    )  # fmt: skip


async def aevaluate(
    tasks: TaskSource,
    agent: AgentSource | str,
    *,
    scorer: Scorer | ScoreFunction | ScorerField = "exact",
    judge: Model | ModelSpec | None = None,
    tolerance: Mapping[str, float] | None = None,
    concurrency: int = 4,
    output: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    backend: EvalBackend | None = None,
    prices: Mapping[str, Price] | None = None,
) -> EvalReport:
    """Run every task of `tasks` with `agent` and score it (see the module docstring).

    `agent`: an agent, a factory, or "module:attr" naming either. `scorer`: the default scorer
    (a name, a spec, a `Scorer` or a function); a task's own `scorer` wins. `judge`: the model
    of the "judge" scorer (a `ModelSpec` is built here, or by each worker with "module:attr").
    `tolerance`: the "numeric" scorer's default `rel_tol` / `abs_tol`. `backend`: where tasks
    run (default `LocalBackend(concurrency)`). `prices`: model-id glob -> `Price` for the cost."""
    started = time.perf_counter()
    task_list = load_tasks(tasks) if isinstance(tasks, (str, Path)) else tasks_from(tasks)
    run_on = backend or LocalBackend(concurrency)
    async with _trial(agent, task_list, scorer, judge, tolerance, prices) as trial:
        _check_backend(run_on, trial)
        results_file = ResultsFile(output) if output is not None else None
        try:  # every check is behind us: now the results file is opened (or started afresh)
            previous = _finished(results_file.open(resume=resume) if results_file else [], task_list)
            with _ProgressBar(progress, len(task_list), previous) as bar:
                done = await _collect(run_on, task_list, trial, dict(previous), results_file, bar)
        finally:
            if results_file is not None:
                results_file.close()
    ordered = [done[task.id] for task in task_list if task.id in done]
    skipped = len(previous)
    summary = summarize(ordered, skipped=skipped, missing=len(task_list) - len(ordered))
    path = results_file.path if results_file else None
    return EvalReport(results=ordered, summary=summary, output=path, wall_time=time.perf_counter() - started)


@contextlib.asynccontextmanager
async def _trial(
    agent: AgentSource | str,
    tasks: list[EvalTask],
    scorer: Scorer | ScoreFunction | ScorerField,
    judge: Model | ModelSpec | None,
    tolerance: Mapping[str, float] | None,
    prices: Mapping[str, Price] | None,
) -> AsyncIterator[RunTask]:
    """The eval's `RunTask`, every scorer and the agent spec checked: a `SpecTrial` for an agent
    named "module:attr", else a `Trial`; a judge model built here is closed at the end."""
    if isinstance(agent, str):
        if judge is not None and not isinstance(judge, ModelSpec):
            raise ConfigurationError("with the agent named as module:attr, name the judge as ModelSpec(...)")
        options = {"scorer": scorer, "tolerance": tolerance, "judge": judge, "prices": prices}
        spec = TrialSpec.for_tasks(agent, tasks, **options)
        spec.check()
        made = SpecTrial(spec)
        try:
            yield made
        finally:
            await made.aclose()
        return
    model = judge.build() if isinstance(judge, ModelSpec) else judge
    try:
        yield _local_trial(agent, tasks, scorer, model, tolerance, prices)
    finally:
        close = getattr(model, "close", None)
        if isinstance(judge, ModelSpec) and callable(close):
            close()


def _local_trial(
    agent: AgentSource,
    tasks: list[EvalTask],
    scorer: Scorer | ScoreFunction | ScorerField,
    judge: Model | None,
    tolerance: Mapping[str, float] | None,
    prices: Mapping[str, Price] | None,
) -> Trial:
    defaults = {"numeric": dict(tolerance)} if tolerance else {}
    if not isinstance(agent, MultiStepAgent):
        takes_task(agent)  # a factory whose parameters cannot be given is refused before any task
    return Trial(
        agent=agent,
        scorer=as_scorer(scorer, judge=judge, defaults=defaults),
        task_scorers=_task_scorers(tasks, judge, defaults),
        prices=prices,
    )


def _check_backend(backend: EvalBackend, trial: RunTask) -> None:
    """A backend's own check of the trial (`check(trial)`, when it has one), before any task
    runs: a `RayBackend` refuses an agent object it cannot send to its workers."""
    check = getattr(backend, "check", None)
    if callable(check):
        check(trial)


def _finished(previous: Sequence[EvalResult], tasks: Sequence[EvalTask]) -> dict[str, EvalResult]:
    """The tasks of this eval that the results file has a result for, by id: the last line of
    an id wins, and a crashed result does not count (the task runs again)."""
    wanted = {task.id for task in tasks}
    last = {r.id: r for r in previous if r.id in wanted}
    return {task_id: r for task_id, r in last.items() if r.state != CRASHED}


async def _collect(
    backend: EvalBackend,
    tasks: Sequence[EvalTask],
    trial: RunTask,
    done: dict[str, EvalResult],
    results_file: ResultsFile | None,
    bar: _ProgressBar,
) -> dict[str, EvalResult]:
    """Run the tasks not in `done` yet; keep (and write) each new result once, by id."""
    wanted = {task.id for task in tasks}
    todo = [task for task in tasks if task.id not in done]
    async for result in backend.run(todo, trial):
        if result.id in done or result.id not in wanted:
            continue  # a rerun's duplicate, or a task never asked for
        done[result.id] = result
        if results_file is not None:
            results_file.write(result)
        bar.advance(result)
    return done


def _task_scorers(
    tasks: Sequence[EvalTask], judge: Model | None, defaults: Mapping[str, Mapping[str, Any]]
) -> dict[str, Scorer]:
    """Each task's own scorer, resolved now: a bad one is an error before anything runs."""
    found: dict[str, Scorer] = {}
    for task in tasks:
        if task.scorer is None:
            continue
        try:
            found[task.id] = as_scorer(task.scorer, judge=judge, defaults=defaults)
        except ScorerSpecError as exc:
            where = f"line {task.line}" if task.line else f"task {task.id!r}"
            raise ScorerSpecError(f"{where}: {exc}") from None
    return found


class _ProgressBar:
    """A rich progress bar on stderr (tasks done of all, how many passed); nothing when off."""

    def __init__(self, shown: bool, total: int, previous: Mapping[str, EvalResult]) -> None:
        self.shown = shown
        self.total = total
        self.completed = len(previous)
        self.passed = sum(r.passed for r in previous.values())
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> _ProgressBar:
        if self.shown:
            self._bar, self._task = _start_bar(self.total, self.completed, self.passed)
        return self

    def advance(self, result: EvalResult) -> None:
        self.passed += result.passed
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=1, passed=self.passed)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _start_bar(total: int, completed: int, passed: int) -> tuple[Progress, TaskID]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("eval"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("· {task.fields[passed]} passed"),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr),
    )
    task = bar.add_task("eval", total=total, completed=completed, passed=passed)
    bar.start()
    return bar, task
