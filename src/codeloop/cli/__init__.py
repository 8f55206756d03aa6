"""The `codeloop` command.

    codeloop run "What is the 20th Fibonacci number?"

runs a CodeAgent with a live view of its steps on stderr and prints the answer on stdout.
`--json` prints the run's events instead, one JSON object per line (see `codeloop.cli.jsonl`),
with no live view: stdout is pure JSON Lines for another program, its last line the
`RunFinished` that carries the answer (`output`) or the failure (`state`, `error`).
`--model` picks the model (the rule is in `codeloop.cli.models`): the packaged local
Qwen2.5-Coder-1.5B by default, or any model on an OpenAI-compatible API.

What a person sees besides the run: progress while a local model is joined (once) and loaded;
every failure once, on stderr, as `codeloop: ...`, with exit code 2 for a usage error (a bad
option, an empty task, a model name that fits nothing) and 1 for a run or model that failed;
Ctrl-C stops at once with `codeloop: interrupted` and exit code 130, after stopping the model
server and the sandbox workers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from ..errors import ConfigurationError, RunFailed
from .approve import add_approve_command
from .eval import add_eval_command
from .mcp import add_mcp_command
from .models import LOCAL_MODELS, build_model, prepare_model
from .resume import add_resume_command
from .runs import add_runs_command
from .ui import add_ui_command

if TYPE_CHECKING:
    from ..agents import MultiStepAgent
    from ..models.base import Model
    from .progress import Display

__all__ = [
    "EMPTY_TASK",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "LOCAL_MODELS",
    "CommandFailed",
    "build_model",
    "main",
]

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
CLI_SETTINGS = "codeloop_run"
"""The key of a `codeloop run` run's settings in its stored `run_metadata`: `codeloop resume`
rebuilds the agent from them (never an API key)."""
REBUILT_FROM = ("model", "api_base", "agent", "max_steps", "executor", "imports")
EMPTY_TASK = 'the task is empty: say what the agent should do, e.g. codeloop run "What is 2**10?"'
T = TypeVar("T")


class CommandFailed(Exception):
    """Ends the command: printed once as `codeloop: <message>`, exit status `code`."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with `argv` (default: `sys.argv[1:]`); return its exit status."""
    try:
        args = _parser().parse_args(argv)
        return getattr(args, "handler", _run)(args)
    except CommandFailed as failure:
        _say(str(failure))
        return failure.code
    except KeyboardInterrupt:
        _say("interrupted", new_line=sys.stderr.isatty())  # after the terminal's "^C"
        return EXIT_INTERRUPTED


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"codeloop: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="codeloop", description="Agents whose actions are code.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run an agent on a task and print its answer")
    run.add_argument("task", help="the task, in plain words")
    run.add_argument(
        "--model",
        default=os.environ.get("CODELOOP_MODEL", "local"),
        help="'local' (the default: the packaged Qwen2.5-Coder-1.5B, offline), 'qwen' (the same), "
        "'smollm2' (tiny, offline), or a hosted model id: then --api-key and/or --api-base "
        "(env CODELOOP_MODEL)",
    )
    run.add_argument(
        "--api-base",
        default=os.environ.get("OPENAI_BASE_URL"),
        help="URL of an OpenAI-compatible API (default: $OPENAI_BASE_URL, else OpenAI's)",
    )
    run.add_argument("--api-key", default=None, help="API key of a hosted model (default: $OPENAI_API_KEY)")
    run.add_argument("--agent", choices=("code", "tool-calling"), default="code", help="agent type")
    run.add_argument("--max-steps", type=int, default=8)
    run.add_argument("--executor", default="monty", help="executor for the code agent (default: monty)")
    run.add_argument("--imports", default="", help="comma-separated extra modules the code may import")
    run.add_argument("-q", "--quiet", action="store_true", help="print only the answer (and errors)")
    run.add_argument("--stream-text", action="store_true", help="also stream the model's text as it comes")
    run.add_argument(
        "--json",
        action="store_true",
        help="print the run's events on stdout, one JSON object per line (no live view; the answer "
        "is in the last line, RunFinished); with --stream-text the model's text pieces too",
    )
    run.add_argument("--store", help="keep the run in this store (default: the user's; see `codeloop runs`)")
    run.add_argument("--no-store", action="store_true", help="keep no record of the run")
    add_mcp_command(commands)
    add_runs_command(commands)
    add_eval_command(commands)
    add_resume_command(commands)
    add_approve_command(commands)
    add_ui_command(commands)
    return parser


def _run(args: argparse.Namespace) -> int:
    from .progress import Display

    task = args.task.strip()
    if not task:
        raise CommandFailed(EMPTY_TASK, EXIT_USAGE)
    display = Display(sys.stderr, quiet=args.quiet or args.json)
    model = _configured(lambda: build_model(args.model, args.api_base, args.api_key, display=display))
    try:
        agent = _configured(lambda: _build_agent(args, model))
        _load(model, display)
        answer = asyncio.run(_answer(agent, task))  # Ctrl-C cancels it, then raises KeyboardInterrupt
    finally:
        _close(model)
    if not args.json:  # its RunFinished line carries the answer
        print(answer)
    return 0


def _configured(build: Callable[[], T]) -> T:
    """`build()`, a configuration mistake turned into a usage error."""
    try:
        return build()
    except ConfigurationError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None


def _load(model: Model, display: Display) -> None:
    try:
        prepare_model(model, display)
    except ConfigurationError as exc:  # the model file is there, but llama.cpp cannot serve it
        raise CommandFailed(str(exc), EXIT_FAILED) from None


def _build_agent(args: argparse.Namespace, model: Model) -> MultiStepAgent:
    from ..agents import CodeAgent, ToolCallingAgent
    from .jsonl import JsonLines

    handlers = _event_handlers(args)
    store = None if args.no_store else (args.store or True)
    agent: MultiStepAgent
    if args.agent == "tool-calling":
        agent = ToolCallingAgent([], model, max_steps=args.max_steps, event_handlers=handlers, store=store)
    else:
        agent = CodeAgent(
            [],
            model,
            max_steps=args.max_steps,
            executor=args.executor,
            additional_authorized_imports=[m.strip() for m in args.imports.split(",") if m.strip()],
            event_handlers=handlers,
            store=store,
        )
    agent.run_metadata = {CLI_SETTINGS: {key: getattr(args, key) for key in REBUILT_FROM}}
    for handler in handlers:
        if isinstance(handler, JsonLines):  # nobody reads the events any more: stop the run
            handler.on_closed = lambda: agent.cancel(reason="the reader of the JSON output went away")
    return agent


def _event_handlers(args: argparse.Namespace) -> list[Any]:
    """The JSON lines on stdout (--json), the live view on stderr, or nothing (--quiet)."""
    from ..render import ConsoleRenderer
    from .jsonl import JsonLines

    if args.json:
        return [JsonLines(deltas=args.stream_text)]
    if args.quiet:
        return []
    return [ConsoleRenderer(2 if args.stream_text else 1, file=sys.stderr, run_error=False)]


async def _answer(agent: MultiStepAgent, task: str) -> Any:
    try:
        return await agent.arun(task)
    except RunFailed as exc:
        kept = f" (run {exc.result.run_id}, kept: see codeloop runs)" if exc.result and agent.store else ""
        raise CommandFailed(f"no answer: {exc}{kept}", EXIT_FAILED) from None
    finally:
        await agent.aclose()  # the sandbox workers, also when the run was cancelled


def _close(model: Model) -> None:
    """Stop the model (a local server: under a second), not to be cut short by another Ctrl-C."""
    close = getattr(model, "close", None)
    if not callable(close):
        return
    if threading.current_thread() is not threading.main_thread():
        close()
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        close()
    finally:
        signal.signal(signal.SIGINT, previous)


def _say(message: str, *, new_line: bool = False) -> None:
    sys.stdout.flush()
    print(f"{chr(10) if new_line else ''}codeloop: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
