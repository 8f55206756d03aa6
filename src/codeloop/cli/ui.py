"""`codeloop ui`: serve the local web UI (see `codeloop.ui`) for an agent.

    codeloop ui                                   # the default CodeAgent on the local model
    codeloop ui --model smollm2 --port 8000
    codeloop ui --agent my_agents:agent --store runs.db

`--agent module:attr` serves that agent (as for `codeloop resume`); without it the agent is the
CodeAgent `codeloop run` builds, on `--model`. Runs are kept in `--store` (default: the agent's
store, else the user's), so the history lists them. The URL is printed once the port is bound;
Ctrl-C stops the server, cancelling the runs in progress (they are stored as cancelled and can be
resumed), and a local model's server with it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .agent_spec import EXIT_FAILED, EXIT_USAGE, AgentSpecError, load_agent

if TYPE_CHECKING:
    from ..agents import MultiStepAgent
    from ..models.base import Model

__all__ = ["add_ui_command", "ui_command"]

_DEFAULT_AGENT_OPTIONS = ("model", "max_steps", "executor", "imports")


def add_ui_command(commands: Any) -> None:
    """Add `ui` to the `codeloop` command's subcommands (`commands`: argparse's)."""
    ui = commands.add_parser("ui", help="serve the local web UI: runs, traces, approvals")
    ui.add_argument("--agent", help="module:attribute naming the agent to serve (default: a CodeAgent)")
    ui.add_argument("--store", help="keep and list runs in this store: a SQLite file or a postgresql:// URL")
    ui.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=7860, help="the port (default 7860; 0: any free one)")
    ui.add_argument(
        "--model",
        default=None,
        help="the default agent's model, as for `codeloop run` (default: $CODELOOP_MODEL or 'local')",
    )
    ui.add_argument("--api-base", default=os.environ.get("OPENAI_BASE_URL"), help="as for `codeloop run`")
    ui.add_argument("--api-key", default=None, help="as for `codeloop run` (default: $OPENAI_API_KEY)")
    ui.add_argument("--max-steps", type=int, help="the default agent's step limit (default 8)")
    ui.add_argument("--executor", help="the default agent's executor (default: monty)")
    ui.add_argument("--imports", help="comma-separated extra modules the default agent's code may import")
    ui.set_defaults(handler=ui_command)


def ui_command(args: argparse.Namespace) -> int:
    """Run `codeloop ui` until Ctrl-C; raises the command's `CommandFailed` on a usage error."""
    from . import CommandFailed

    _check_extra()
    given = [f"--{name.replace('_', '-')}" for name in _DEFAULT_AGENT_OPTIONS if getattr(args, name)]
    if args.agent and given:
        raise CommandFailed(
            f"{', '.join(given)}: for the default agent; the agent given by --agent has its own", EXIT_USAGE
        )
    if not 0 <= args.port <= 65535:
        raise CommandFailed(f"--port {args.port} is not a port (0 to 65535)", EXIT_USAGE)
    model: Model | None = None
    try:
        if args.agent:
            agent = _named_agent(args.agent)
        else:
            model = _model(args)
            agent = _default_agent(args, model)
        _serve(agent, args)
    except ConfigurationError as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    finally:
        if model is not None:
            _close(model)
    return 0


def _check_extra() -> None:
    from . import CommandFailed

    try:
        import sse_starlette  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise CommandFailed(
            f'codeloop ui needs the ui extra ({exc.name} is missing): pip install "codeloop[ui]"', EXIT_FAILED
        ) from None


def _named_agent(spec: str) -> MultiStepAgent:
    from . import CommandFailed

    try:
        return load_agent(spec)
    except AgentSpecError as failure:
        raise CommandFailed(str(failure), failure.code) from None


def _model(args: argparse.Namespace) -> Model:
    from .models import build_model, prepare_model
    from .progress import Display

    display = Display(sys.stderr)
    name = args.model or os.environ.get("CODELOOP_MODEL", "local")
    model = build_model(name, args.api_base, args.api_key, display=display)
    try:
        prepare_model(model, display)
    except BaseException:
        _close(model)
        raise
    return model


def _default_agent(args: argparse.Namespace, model: Model) -> MultiStepAgent:
    """The CodeAgent `codeloop run` builds (no console view: the page shows the runs)."""
    from ..agents import CodeAgent

    imports = [m.strip() for m in (args.imports or "").split(",") if m.strip()]
    return CodeAgent(
        [],
        model,
        max_steps=args.max_steps or 8,
        executor=args.executor or "monty",
        additional_authorized_imports=imports,
        store=args.store or True,
    )


def _serve(agent: MultiStepAgent, args: argparse.Namespace) -> None:
    from ..ui import is_loopback, serve

    if not is_loopback(args.host):
        print(
            f"codeloop ui: warning: listening on {args.host}: anyone who can reach it can run the agent"
            " and read its runs (the UI has no login)",
            file=sys.stderr,
            flush=True,
        )
    if args.store:
        agent.store = args.store
    try:
        serve(agent, args.host, args.port, store=args.store or None, announce=_announce(agent))
    except KeyboardInterrupt:  # uvicorn stopped cleanly, then passed the Ctrl-C on
        pass
    print("codeloop ui: stopped", file=sys.stderr, flush=True)


def _announce(agent: MultiStepAgent) -> Any:
    def announce(url: str) -> None:
        """Say where the UI is, on stdout."""
        print(f"codeloop ui: serving {agent.name} at {url} (Ctrl-C stops it)", flush=True)

    return announce


def _close(model: Model) -> None:
    close = getattr(model, "close", None)
    if callable(close):
        close()
