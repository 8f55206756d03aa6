"""`codeloop resume RUN_ID --agent module:attr`: continue a stored run to its end, in this
process, whatever process started it (see `MultiStepAgent.resume`).

The agent (`module:attr`, an agent object or a function taking no arguments returning one)
must be the run's agent: the same tools, under the same names. `--store` overrides the store
it was built with (a SQLite file or a postgresql:// URL). The answer is printed on stdout; a run
that ends without one exits with status 1 and says why.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from ..errors import ConfigurationError, RunFailed
from .agent_spec import EXIT_FAILED, EXIT_USAGE, AgentSpecError, load_agent

__all__ = ["add_resume_command", "resume_command"]


def add_resume_command(commands: Any) -> None:
    """Add `resume` to the `codeloop` command's subcommands (`commands`: argparse's)."""
    resume = commands.add_parser("resume", help="continue a stored run to its end")
    resume.add_argument("run_id", help="the run's id (see `codeloop runs`)")
    resume.add_argument("--agent", required=True, help="module:attribute naming the run's agent")
    resume.add_argument("--store", help="the run store (default: the one the agent was built with)")
    resume.add_argument("--max-steps", type=int, default=None, help="the run's new step limit")
    resume.set_defaults(handler=resume_command)


def resume_command(args: argparse.Namespace) -> int:
    """Run `codeloop resume`; raises the command's `CommandFailed` when there is no answer."""
    from . import CommandFailed

    try:
        agent = load_agent(args.agent)
    except AgentSpecError as failure:
        raise CommandFailed(str(failure), failure.code) from None
    if args.store:
        agent.store = args.store
    if not agent.store:
        raise CommandFailed(f"{args.agent} has no store: pass --store (a SQLite file or URL)", EXIT_USAGE)
    try:
        answer = asyncio.run(_resume(agent, args.run_id, args.max_steps))
    except ConfigurationError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    except (RunFailed, LookupError) as exc:
        raise CommandFailed(f"no answer: {exc}", EXIT_FAILED) from None
    print(answer, file=sys.stdout)
    return 0


async def _resume(agent: Any, run_id: str, max_steps: int | None) -> Any:
    try:
        return await agent.aresume(run_id, max_steps=max_steps)
    finally:
        await agent.aclose()
