"""`codeloop eval TASKS.jsonl --agent module:attr`: run an agent on every task of a dataset,
score each output, keep the results, print a summary table (see `codeloop.evals`).

    codeloop eval tasks.jsonl --agent my_agents:make_agent --scorer numeric --tolerance 1% -c 8

`--agent` names an agent object, shared by every task, or a function taking no arguments that
returns one, called once per task (the agent it built first, to check the spec, runs the first
task). Each result is appended to `--output` (default `<TASKS stem>.results.jsonl` in the current
directory) the moment its task ends; running the command again skips the tasks already there
but runs crashed ones again (`--no-resume` starts afresh). The progress bar is on stderr (none
with `--quiet`), the summary table on stdout; whatever the agent prints goes to stderr.

`--ray [ADDRESS]` spreads the tasks over a Ray cluster (`codeloop.evals.ray_backend`): with no
ADDRESS a Ray instance is started on this machine for the eval; with one ("auto", "host:port"
of a head node, "ray://host:10001") the eval joins that cluster. Each Ray worker imports the
`--agent` module and builds its own agent (and judge model), so the module must be importable
on every node (this directory and PYTHONPATH are passed on; on several machines, the same code
at the same place, or installed). `-c` tasks run at once, each worker reserving
`--ray-cpus-per-task` CPUs; a task whose worker dies runs again on another.

Exit status: 0 when the eval ran, whatever its success rate; 2 for a usage error (a bad task
file or line, agent spec, scorer, tolerance or judge model, a results file that is not one);
1 when the eval could not run (the results file cannot be written, a store fails...).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigurationError
from .agent_spec import EXIT_FAILED, EXIT_USAGE, AgentSpecError, load_agent

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from ..agents import MultiStepAgent
    from ..evals import AgentSource, EvalReport, EvalTask, ModelSpec
    from ..models.base import Model

__all__ = ["add_eval_command", "eval_command"]

T = TypeVar("T")


def add_eval_command(commands: Any) -> None:
    """Add `eval` to the `codeloop` command's subcommands (`commands`: argparse's)."""
    ev = commands.add_parser("eval", help="run an agent on every task of a JSON Lines file and score it")
    ev.add_argument("tasks", help='a JSON Lines file, one {"task": ..., "expected": ...} per line')
    ev.add_argument(
        "--agent",
        required=True,
        help="module:attribute naming an agent (shared by all tasks) or a function returning one "
        "(called once per task)",
    )
    ev.add_argument("-c", "--concurrency", type=_positive, default=4, help="tasks run at once (default 4)")
    ev.add_argument("--output", help="the results file (default: <TASKS stem>.results.jsonl here)")
    ev.add_argument(
        "--scorer",
        default="exact",
        help="exact, numeric, contains, judge or module:function (default exact); a task's own wins",
    )
    ev.add_argument(
        "--tolerance", type=_tolerance, help="numeric: how close is equal, 0.01 (absolute) or 1%% (relative)"
    )
    ev.add_argument("--judge-model", help="judge: the model that judges (a name as for codeloop run --model)")
    ev.add_argument(
        "--judge-api-base", default=os.environ.get("OPENAI_BASE_URL"), help="judge: its OpenAI-compatible API"
    )
    ev.add_argument("--judge-api-key", help="judge: its API key (default: $OPENAI_API_KEY)")
    _add_ray_options(ev)
    ev.add_argument("--no-resume", action="store_true", help="run every task again; start the file afresh")
    ev.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(handler=eval_command)


def _add_ray_options(ev: argparse.ArgumentParser) -> None:
    """--ray [ADDRESS] (no ADDRESS: "", a Ray instance of the eval's own) and its CPUs per task."""
    ev.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run the tasks on a Ray cluster: at ADDRESS (auto, host:port, ray://host:port), or "
        "with no ADDRESS on a Ray instance started here for the eval",
    )
    ev.add_argument(
        "--ray-cpus-per-task", type=_cpus, default=1.0, help="--ray: CPUs each worker reserves (default 1)"
    )


def eval_command(args: argparse.Namespace) -> int:
    """Run `codeloop eval`; raises the command's `CommandFailed` when it cannot."""
    from ..evals import TaskFileError, load_tasks, print_summary

    tasks = _checked(lambda: load_tasks(args.tasks), TaskFileError)
    output = Path(args.output or f"{Path(args.tasks).stem}.results.jsonl")
    source = _agent_source(args.agent)  # the spec checked here, even when Ray workers build theirs
    try:
        if args.ray is not None:
            report = _evaluate_on_ray(args, tasks, output)
        else:
            judge = _checked(lambda: _judge(args), ConfigurationError)
            report = _evaluate(args, tasks, source, judge, output)
    finally:
        _close_source(source)
    print_summary(report.summary, sys.stdout, title=f"Eval: {args.tasks}")
    print(f"results in {report.output}", file=sys.stderr)
    return 0


def _evaluate(
    args: argparse.Namespace, tasks: list[EvalTask], source: AgentSource, judge: Model | None, output: Path
) -> EvalReport:
    from ..evals import aevaluate

    run = aevaluate(
        tasks, source, scorer=args.scorer, judge=judge, tolerance=args.tolerance,
        concurrency=args.concurrency, output=output, resume=not args.no_resume, progress=not args.quiet,
    )  # fmt: skip
    try:
        return _run(run)
    finally:
        _close(judge)


def _evaluate_on_ray(args: argparse.Namespace, tasks: list[EvalTask], output: Path) -> EvalReport:
    """The eval on Ray workers, the agent sent as its spec (`--agent`) and the judge as a
    `ModelSpec`: each worker builds its own."""
    from ..evals import RayBackend, aevaluate

    judge = _checked(lambda: _judge_spec(args), ConfigurationError)
    cpus = args.ray_cpus_per_task
    backend = RayBackend(args.ray or None, concurrency=args.concurrency, num_cpus_per_task=cpus)
    run = aevaluate(
        tasks, args.agent, scorer=args.scorer, judge=judge, tolerance=args.tolerance, output=output,
        resume=not args.no_resume, progress=not args.quiet, backend=backend,
    )  # fmt: skip
    return _run(run)


def _run(run: Coroutine[Any, Any, EvalReport]) -> EvalReport:
    """Run the eval; its errors become the command's (usage, or could not run)."""
    from . import CommandFailed

    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the summary's
            return asyncio.run(run)
    except ConfigurationError as exc:  # a scorer that cannot be used, a results file that is not one
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    except Exception as exc:
        raise CommandFailed(f"the eval could not run: {type(exc).__name__}: {exc}", EXIT_FAILED) from None


def _checked(build: Callable[[], T], usage: type[Exception]) -> T:
    """`build()`, its `usage` errors turned into the command's usage error."""
    from . import CommandFailed

    try:
        return build()
    except usage as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None


class _Factory:
    """The spec's agent function, called once per task; the agent it built when the spec was
    checked runs the first task."""

    def __init__(self, function: Callable[[], MultiStepAgent], first: MultiStepAgent) -> None:
        self.function = function
        self.first: MultiStepAgent | None = first

    def __call__(self) -> MultiStepAgent:
        if self.first is not None:
            agent, self.first = self.first, None
            return agent
        return self.function()


def _agent_source(spec: str) -> AgentSource:
    """The spec's agent (shared) or a `_Factory` of its function (see the module docstring)."""
    from . import CommandFailed

    try:
        agent = load_agent(spec)
    except AgentSpecError as failure:
        raise CommandFailed(str(failure), failure.code) from None
    module_name, _, attr = spec.partition(":")
    named = getattr(sys.modules[module_name], attr)
    return agent if named is agent else _Factory(named, agent)


def _close_source(source: AgentSource) -> None:
    """Close the shared agent, or the factory's checked agent if no task took it."""
    from ..agents import MultiStepAgent

    agent = source.first if isinstance(source, _Factory) else source
    if isinstance(agent, MultiStepAgent):
        with contextlib.redirect_stdout(sys.stderr):
            agent.close()


def _judge(args: argparse.Namespace) -> Model | None:
    """The judge model (`--judge-model`), started now if local; None when no judge is needed."""
    from ..models.retry import with_retries
    from .models import build_model, prepare_model
    from .progress import Display

    if not args.judge_model:
        if args.scorer == "judge":
            raise ConfigurationError("--scorer judge needs --judge-model MODEL (a name as for codeloop run)")
        return None
    display = Display(sys.stderr, quiet=args.quiet)
    model = build_model(args.judge_model, args.judge_api_base, args.judge_api_key, display=display)
    prepare_model(model, display)
    return with_retries(model)


def _judge_spec(args: argparse.Namespace) -> ModelSpec | None:
    """`--judge-model` as a `ModelSpec` for the Ray workers (checked here: a hosted model is
    built once and closed); the key is `--judge-api-key` or this environment's OPENAI_API_KEY."""
    from ..evals import ModelSpec
    from .models import LOCAL_MODELS

    if not args.judge_model:
        if args.scorer == "judge":
            raise ConfigurationError("--scorer judge needs --judge-model MODEL (a name as for codeloop run)")
        return None
    key = args.judge_api_key or os.environ.get("OPENAI_API_KEY")
    spec = ModelSpec(args.judge_model, args.judge_api_base, key)
    if spec.name not in LOCAL_MODELS or spec.api_base:
        _close(spec.build())
    return spec


def _close(model: Model | None) -> None:
    close = getattr(model, "close", None)
    if callable(close):
        close()


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _cpus(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of CPUs (0 or more, e.g. 0.5)")
    return value


def _tolerance(text: str) -> dict[str, float]:
    """ "0.01" -> an absolute tolerance; "1%" -> a relative one (0.01)."""
    relative = text.strip().endswith("%")
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        value = -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a tolerance like 0.01 (absolute) or 1% (relative)")
    return {"rel_tol": value / 100, "abs_tol": 0.0} if relative else {"abs_tol": value, "rel_tol": 0.0}
