"""A trial as plain data (`TrialSpec`), built into a `Trial` in whatever process runs the tasks.

A `Trial` holds live objects (an agent with its model client and executor, a judge model) that
cannot leave the process they were made in. A backend that runs tasks elsewhere (a Ray worker:
`codeloop.evals.ray_backend`) is sent a `TrialSpec` instead, naming everything it needs: the
agent as "module:attr" (imported there, so the module must be importable there too), the
scorers (names, specs, or functions picklable by reference), the numeric tolerance, the judge
model as a `ModelSpec` and the prices. Each worker builds its own `Trial` from it, once.

`SpecTrial` is the `RunTask` for a spec: it builds the trial at its first task, in the process
it is called in, so the runner hands it to any backend (`LocalBackend` too). What building
raised (a module that does not import on that machine...) is each task's "crashed" result:
like a `Trial`, it never raises for a task's sake.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ..agents.base import MultiStepAgent
from ..errors import ConfigurationError
from .scorers import ScoreFunction, Scorer, ScorerSpecError, as_scorer, import_named
from .tasks import EvalTask, ScorerField
from .trial import AgentSource, Trial, crashed_result

if TYPE_CHECKING:
    from ..agents.budget import Price
    from ..models.base import Model
    from .results import EvalResult

__all__ = ["ModelSpec", "SpecTrial", "TrialSpec", "resolve_agent"]


@dataclass(frozen=True)
class ModelSpec:
    """A model by name, as `codeloop run --model` takes it (a local model's name, or a model id
    on the OpenAI-compatible API at `api_base`, with `api_key`), built where it is used."""

    name: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)

    def build(self) -> Model:
        """The model, with codeloop's default retries (`ConfigurationError` if it cannot be)."""
        from ..cli.models import build_model
        from ..models.retry import with_retries

        return with_retries(build_model(self.name, self.api_base, self.api_key))


@dataclass(frozen=True)
class TrialSpec:
    """What a worker needs to build the eval's `Trial` (see the module docstring). `scorer` is
    the default scorer, `task_scorers` the tasks' own (by task id), `tolerance` the numeric
    scorer's default options, `judge` the judge scorer's model."""

    agent: str
    scorer: Scorer | ScoreFunction | ScorerField = "exact"
    task_scorers: Mapping[str, ScorerField] = field(default_factory=dict)
    tolerance: Mapping[str, float] | None = None
    judge: ModelSpec | None = None
    prices: Mapping[str, Price] | None = None

    @classmethod
    def for_tasks(cls, agent: str, tasks: list[EvalTask], **options: Any) -> TrialSpec:
        """The spec of an eval of `tasks` (their own scorers collected), `options` as the fields."""
        own = {task.id: task.scorer for task in tasks if task.scorer is not None}
        return cls(agent=agent, task_scorers=own, **options)

    def check(self) -> None:
        """Raise `ConfigurationError` now, here, for a spec no worker could build: an agent spec
        naming no agent, a scorer that cannot be used (the judge is not built for this)."""
        resolve_agent(self.agent)
        stand_in = cast("Model", self.judge)  # JudgeScorer only keeps its model: none is built
        self._scorers(stand_in)

    def build(self, judge: Model | None = None) -> Trial:
        """The `Trial`: the agent resolved, every scorer resolved; the judge scorer's model is
        `judge`, or else built from `self.judge` (then the caller cannot close it: give one)."""
        if judge is None and self.judge is not None:
            judge = self.judge.build()
        scorer, own = self._scorers(judge)
        return Trial(agent=resolve_agent(self.agent), scorer=scorer, task_scorers=own, prices=self.prices)

    def modules(self) -> Iterator[str]:
        """The modules a worker imports to build the trial: the agent's, and the scorers'."""
        yield self.agent.partition(":")[0]
        for scorer in (self.scorer, *self.task_scorers.values()):
            name = scorer.get("name") if isinstance(scorer, Mapping) else scorer
            if isinstance(name, str) and ":" in name:
                yield name.partition(":")[0]
            elif not isinstance(name, str) and getattr(name, "__module__", None):
                yield str(name.__module__)

    def _scorers(self, judge: Model | None) -> tuple[Scorer, dict[str, Scorer]]:
        defaults = {"numeric": dict(self.tolerance)} if self.tolerance else {}
        scorer = as_scorer(self.scorer, judge=judge, defaults=defaults)
        own: dict[str, Scorer] = {}
        for task_id, field_ in self.task_scorers.items():
            try:
                own[task_id] = as_scorer(field_, judge=judge, defaults=defaults)
            except ScorerSpecError as exc:
                raise ScorerSpecError(f"task {task_id!r}: {exc}") from None
        return scorer, own


def resolve_agent(spec: str) -> AgentSource:
    """The agent object "module:attr" names (shared by the tasks), or the function it names
    (called once per task); the current directory is searched first, as for `--agent`."""
    named = import_named(spec, "the agent", ConfigurationError, "my_agents:make_agent")
    if isinstance(named, MultiStepAgent) or (callable(named) and not isinstance(named, type)):
        return cast("AgentSource", named)
    raise ConfigurationError(f"{spec} is neither an agent nor a function returning one")


class SpecTrial:
    """The `RunTask` of a `TrialSpec`: builds its `Trial` at the first task, in this process
    (see the module docstring); `aclose` releases what it built."""

    def __init__(self, spec: TrialSpec) -> None:
        self.spec = spec
        self._trial: Trial | None = None
        self._judge: Model | None = None
        self._error: Exception | None = None

    async def __call__(self, task: EvalTask) -> EvalResult:
        if self._trial is None and self._error is None:
            try:
                self._judge = self.spec.judge.build() if self.spec.judge is not None else None
                self._trial = self.spec.build(self._judge)
            except Exception as exc:  # each task is a crash saying why: none is lost
                self._error = exc
        if self._trial is None:
            return crashed_result(task, cast("Exception", self._error), 0.0)
        return await self._trial(task)

    async def aclose(self, *, agent: bool = False) -> None:
        """Close the judge model built, and with `agent` a shared agent object (a worker's own
        copy; in the caller's process the agent is the caller's to close)."""
        close = getattr(self._judge, "close", None)
        if callable(close):
            close()
        if agent and self._trial is not None and isinstance(self._trial.agent, MultiStepAgent):
            await self._trial.agent.aclose()
