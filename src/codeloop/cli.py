"""The `codeloop` command.

    codeloop run "What is the 20th Fibonacci number?"

runs a CodeAgent with a live view of its steps on stderr and prints the answer on stdout.
With no model named, it uses the packaged local model (Qwen2.5-Coder-1.5B, offline);
`--model NAME` with `--api-base` / `OPENAI_API_KEY` uses any OpenAI-compatible server.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .errors import ConfigurationError, RunFailed

if TYPE_CHECKING:
    from .agents import MultiStepAgent
    from .models.base import Model

__all__ = ["build_model", "main"]

LOCAL_MODELS = ("local", "qwen", "smollm2")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
    except ConfigurationError as exc:
        print(f"codeloop: {exc}", file=sys.stderr)
        return 2
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="codeloop", description="Agents whose actions are code.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run an agent on a task and print its answer")
    run.add_argument("task", help="the task, in plain words")
    run.add_argument(
        "--model",
        default=os.environ.get("CODELOOP_MODEL", "local"),
        help="'local' (packaged Qwen2.5-Coder-1.5B, offline; the default), 'smollm2', or a model id "
        "served by an OpenAI-compatible API (then see --api-base; env CODELOOP_MODEL)",
    )
    run.add_argument(
        "--api-base", default=os.environ.get("OPENAI_BASE_URL"), help="OpenAI-compatible base URL"
    )
    run.add_argument("--api-key", default=None, help="API key (default: $OPENAI_API_KEY)")
    run.add_argument("--agent", choices=("code", "tool-calling"), default="code", help="agent type")
    run.add_argument("--max-steps", type=int, default=8)
    run.add_argument("--executor", default="monty", help="executor for the code agent (default: monty)")
    run.add_argument("--imports", default="", help="comma-separated extra modules the code may import")
    run.add_argument("-q", "--quiet", action="store_true", help="print only the answer")
    run.add_argument("--stream-text", action="store_true", help="also stream the model's text as it comes")
    return parser


def build_model(name: str, api_base: str | None = None, api_key: str | None = None) -> Model:
    """The model the CLI uses for `--model NAME`."""
    if name in LOCAL_MODELS and not api_base:
        from .models.llamacpp import LlamaCppModel

        return LlamaCppModel.smollm2() if name == "smollm2" else LlamaCppModel.qwen_coder()
    from .models.openai import OpenAIModel

    return OpenAIModel(name, api_base=api_base, api_key=api_key)


def _build_agent(args: argparse.Namespace, model: Model) -> MultiStepAgent:
    from .agents import CodeAgent, ToolCallingAgent
    from .render import ConsoleRenderer

    verbosity = 2 if args.stream_text else 1
    handlers = [] if args.quiet else [ConsoleRenderer(verbosity, file=sys.stderr)]
    if args.agent == "tool-calling":
        return ToolCallingAgent([], model, max_steps=args.max_steps, event_handlers=handlers)
    imports = [m.strip() for m in args.imports.split(",") if m.strip()]
    return CodeAgent(
        [],
        model,
        max_steps=args.max_steps,
        executor=args.executor,
        additional_authorized_imports=imports,
        event_handlers=handlers,
    )


def _run(args: argparse.Namespace) -> int:
    model = build_model(args.model, args.api_base, args.api_key)
    agent = _build_agent(args, model)
    try:
        answer = agent.run(args.task)
    except RunFailed as exc:
        print(f"codeloop: no answer: {exc}", file=sys.stderr)
        return 1
    finally:
        agent.close()
        close = getattr(model, "close", None)
        if callable(close):
            close()
    print(answer)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
