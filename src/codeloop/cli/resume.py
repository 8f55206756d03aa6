"""`codeloop resume RUN_ID [--agent module:attr]`: continue a stored run to its end, in this
process, whatever process started it (see `MultiStepAgent.resume`).

A run `codeloop run` started needs no `--agent`: its settings (model, API base, agent type,
executor, imports, step limit; never an API key) were stored with it, and the same agent is built
again (`--api-key` for a hosted model; `--api-base` if it is served elsewhere now). Any other
run's agent is named with `--agent` (`module:attr`, an agent object or a function taking no
arguments returning one) and must be the run's agent: the same tools, under the same names.
`--store` overrides the store (a SQLite file or a postgresql:// URL; default: the agent's, or
the user's for a `codeloop run` run). The answer is printed on stdout; a run that ends without
one exits with status 1 and says why.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, RunFailed
from .agent_spec import EXIT_FAILED, EXIT_USAGE, AgentSpecError, load_agent

if TYPE_CHECKING:
    from ..models.base import Model

__all__ = ["add_resume_command", "resume_command"]


def add_resume_command(commands: Any) -> None:
    """Add `resume` to the `codeloop` command's subcommands (`commands`: argparse's)."""
    resume = commands.add_parser("resume", help="continue a stored run to its end")
    resume.add_argument("run_id", help="the run's id (see `codeloop runs`)")
    resume.add_argument(
        "--agent", help="module:attribute naming the run's agent (not needed for a run of `codeloop run`)"
    )
    resume.add_argument("--store", help="the run store (default: the agent's, else the user's)")
    resume.add_argument("--max-steps", type=int, default=None, help="the run's new step limit")
    resume.add_argument("--api-key", help="a `codeloop run` run's hosted model: its API key")
    resume.add_argument("--api-base", help="a `codeloop run` run's model: where it is served now")
    resume.set_defaults(handler=resume_command)


def resume_command(args: argparse.Namespace) -> int:
    """Run `codeloop resume`; raises the command's `CommandFailed` when there is no answer."""
    from . import CommandFailed, _close

    model: Model | None = None
    if args.agent:
        agent = _named_agent(args)
    else:
        agent, model = _rebuilt_agent(args)
    try:
        answer = asyncio.run(_resume(agent, args.run_id, args.max_steps))
    except ConfigurationError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    except (RunFailed, LookupError) as exc:
        raise CommandFailed(f"no answer: {exc}", EXIT_FAILED) from None
    finally:
        if model is not None:
            _close(model)
    print(answer, file=sys.stdout)
    return 0


def _named_agent(args: argparse.Namespace) -> Any:
    from . import CommandFailed

    try:
        agent = load_agent(args.agent)
    except AgentSpecError as failure:
        raise CommandFailed(str(failure), failure.code) from None
    if args.store:
        agent.store = args.store
    if not agent.store:
        raise CommandFailed(f"{args.agent} has no store: pass --store (a SQLite file or URL)", EXIT_USAGE)
    return agent


def _rebuilt_agent(args: argparse.Namespace) -> tuple[Any, Model]:
    """The agent `codeloop run` built for the run, from the settings stored with it."""
    from . import REBUILT_FROM, _build_agent, _configured, _load
    from .models import build_model
    from .progress import Display

    settings = _stored_settings(args)
    options = argparse.Namespace(
        **{key: settings.get(key) for key in REBUILT_FROM},
        quiet=True, json=False, stream_text=False, store=args.store, no_store=False,
    )  # fmt: skip
    options.api_base = args.api_base or options.api_base
    display = Display(sys.stderr, quiet=True)
    model = _configured(lambda: build_model(options.model, options.api_base, args.api_key, display=display))
    _load(model, display)
    return _configured(lambda: _build_agent(options, model)), model


def _stored_settings(args: argparse.Namespace) -> dict[str, Any]:
    from ..store import StoreError, open_store
    from . import CLI_SETTINGS, CommandFailed

    async def read() -> Any:
        async with open_store(args.store) as store:
            return await store.get_run(args.run_id)

    try:
        record = asyncio.run(read())
    except (StoreError, ConfigurationError, OSError) as exc:
        raise CommandFailed(f"no answer: {exc}", EXIT_FAILED) from None
    settings = record.metadata.get("run_metadata", {}).get(CLI_SETTINGS)
    if not isinstance(settings, dict):
        raise CommandFailed(
            f"run {args.run_id} was not started by `codeloop run`: name its agent with --agent module:attr",
            EXIT_USAGE,
        )
    return settings


async def _resume(agent: Any, run_id: str, max_steps: int | None) -> Any:
    try:
        return await agent.aresume(run_id, max_steps=max_steps)
    finally:
        await agent.aclose()
