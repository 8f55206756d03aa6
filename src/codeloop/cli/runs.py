"""`codeloop runs`: list the runs kept in a run store (see `codeloop.store`).

    codeloop runs                          # the default SQLite store in the user's data directory
    codeloop runs --store postgresql://... --state running --limit 20
    codeloop runs --agent shop --since 2026-12-01

One line per run, newest first: its id, state, agent, steps, tokens, when it was last written
and the start of its task. `--json` prints one JSON object per line instead. A run still
`running` whose lease has expired is shown as `abandoned` (`"abandoned": true` in JSON): the
process running it died (a killed worker, a crashed machine) and `codeloop resume` can take it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime, timezone
from typing import Any

from ..errors import ConfigurationError

__all__ = ["add_runs_command", "runs_command"]

EXIT_FAILED, EXIT_USAGE = 1, 2


def add_runs_command(commands: Any) -> None:
    """Add `runs` to the `codeloop` command's subcommands (`commands`: argparse's)."""
    runs = commands.add_parser("runs", help="list the runs kept in a run store")
    runs.add_argument("--store", help="a SQLite file or a postgresql:// URL (default: the user's store)")
    runs.add_argument("--state", help="only runs in this state (running, success, cancelled...)")
    runs.add_argument("--agent", help="only runs of the agent with this name")
    runs.add_argument("--since", type=_day, help="only runs written since this date (YYYY-MM-DD)")
    runs.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    runs.add_argument("--json", action="store_true", help="one JSON object per run")
    runs.set_defaults(handler=runs_command)


def runs_command(args: argparse.Namespace) -> int:
    from ..store import StoreError, open_store

    try:
        store = open_store(args.store)
        records = asyncio.run(_list(store, args))
    except (StoreError, ConfigurationError, OSError) as exc:
        print(f"codeloop: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for record in records:
        print(json.dumps(_as_json(record)) if args.json else _line(record))
    if not records and not args.json:
        print(f"No runs in {store.where}.", file=sys.stderr)
    return 0


async def _list(store: Any, args: argparse.Namespace) -> list[Any]:
    async with store:
        found: list[Any] = await store.list_runs(
            state=args.state, agent_name=args.agent, since=args.since, limit=args.limit
        )
        return found


def _day(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-12-01") from None


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def _line(record: Any) -> str:
    task = " ".join(record.task.split())
    task = task if len(task) <= 60 else task[:59] + "…"
    tokens = record.usage.input_tokens + record.usage.output_tokens
    state = "abandoned" if record.abandoned else record.state
    return (
        f"{record.run_id}  {state:<18} {record.agent_name:<16} {record.step_count:>3} steps "
        f"{tokens:>8} tokens  {_when(record.updated_at or record.created_at)}  {task}"
    )


def _as_json(record: Any) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "state": record.state,
        "agent": record.agent_name,
        "task": record.task,
        "steps": record.step_count,
        "input_tokens": record.usage.input_tokens,
        "output_tokens": record.usage.output_tokens,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "error": record.error,
        "abandoned": record.abandoned,
    }
