"""`codeloop approve`: list the tool calls paused runs wait for, and answer them.

    codeloop approve --list [--store ...]                          # what waits, one call a line
    codeloop approve RUN_ID CALL_ID --agent module:attr            # approve, and continue the run
    codeloop approve RUN_ID CALL_ID --deny "too much" --agent ...  # deny, with the reason the model sees

Answering resumes the run in this process with the run's agent (`module:attr`, as for
`codeloop resume`) and prints its answer; a run that pauses again on another call says so and
exits with status 3.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from ..errors import ConfigurationError, RunFailed
from .agent_spec import EXIT_FAILED, EXIT_USAGE, AgentSpecError, load_agent

__all__ = ["add_approve_command", "approve_command"]

EXIT_PAUSED = 3


def add_approve_command(commands: Any) -> None:
    """Add `approve` to the `codeloop` command's subcommands (`commands`: argparse's)."""
    approve = commands.add_parser("approve", help="list or answer the tool calls paused runs wait for")
    approve.add_argument("run_id", nargs="?", help="the paused run")
    approve.add_argument("call_id", nargs="?", help="the call to answer (see --list)")
    approve.add_argument("--list", action="store_true", help="list the calls that wait for an answer")
    approve.add_argument("--deny", metavar="REASON", help="deny the call, with this reason")
    approve.add_argument("--agent", help="module:attribute naming the run's agent")
    approve.add_argument("--store", help="the run store (default: the agent's, else the user's)")
    approve.set_defaults(handler=approve_command)


def approve_command(args: argparse.Namespace) -> int:
    from . import CommandFailed

    if args.list:
        return _list(args.store)
    if not (args.run_id and args.call_id and args.agent):
        raise CommandFailed("give RUN_ID CALL_ID and --agent module:attr (or --list)", EXIT_USAGE)
    try:
        agent = load_agent(args.agent)
    except AgentSpecError as failure:
        raise CommandFailed(str(failure), failure.code) from None
    agent.store = args.store or agent.store or True
    answer: bool | str = True if args.deny is None else args.deny
    try:
        result = asyncio.run(_answer(agent, args.run_id, {args.call_id: answer}))
    except (ConfigurationError, ValueError) as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    except (RunFailed, LookupError) as exc:
        raise CommandFailed(f"no answer: {exc}", EXIT_FAILED) from None
    if result.state.value == "awaiting_approval":
        raise CommandFailed(
            f"run {args.run_id} waits for another answer: codeloop approve --list", EXIT_PAUSED
        )
    if not result.succeeded:
        raise CommandFailed(f"no answer: {result.error}", EXIT_FAILED)
    print(result.output)
    return 0


def _list(store: str | None) -> int:
    from ..agents.approval import pending_approvals
    from ..store import open_store

    for call in asyncio.run(pending_approvals(open_store(store))):
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        print(f"{call.run_id}  {call.call_id}  {call.tool}({arguments})  [{call.agent_name}] {call.task}")
    return 0


async def _answer(agent: Any, run_id: str, approvals: dict[str, bool | str]) -> Any:
    try:
        return await agent.aresume(run_id, approvals=approvals, return_full_result=True)
    finally:
        await agent.aclose()
