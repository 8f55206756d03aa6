"""`codeloop mcp serve module:attr`: serve an agent over MCP (see `codeloop.mcp.server`).

`module:attr` names an agent object, or a function taking no arguments that returns one, in a
module importable from the current directory (or the Python path). Over stdio, stdout carries
nothing but the protocol: whatever the module prints while it is imported, and whatever the
agent's renderers print while it serves, goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import os
import sys
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..agents import MultiStepAgent

__all__ = ["add_mcp_command", "load_agent", "serve_command"]

EXIT_FAILED, EXIT_USAGE = 1, 2
_WHAT = "an agent object (a CodeAgent or ToolCallingAgent) or a function taking no arguments returning one"
_SPEC_EXAMPLE = "e.g. codeloop mcp serve my_agents:agent (my_agents.py in the current directory)"


class _Failed(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def add_mcp_command(commands: Any) -> None:
    """Add `mcp serve` to the `codeloop` command's subcommands (`commands`: argparse's)."""
    mcp = commands.add_parser("mcp", help="Model Context Protocol: serve an agent as an MCP server")
    actions = mcp.add_subparsers(dest="mcp_command", required=True)
    serve = actions.add_parser("serve", help="serve an agent as an MCP tool")
    serve.add_argument("agent", help="module:attribute naming an agent or a function returning one")
    serve.add_argument("--transport", choices=("stdio", "streamable-http"), default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="streamable-http: address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="streamable-http: port (0: any free one)")
    serve.add_argument("--name", default=None, help="the agent tool's name (default: the agent's name)")
    serve.add_argument("--expose-tools", action="store_true", help="also serve the agent's own tools")
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    """Run `codeloop mcp serve`; raises the command's `CommandFailed` on a bad spec or setup."""
    from . import CommandFailed

    try:
        agent = load_agent(args.agent)
        from ..mcp.server import AgentServer

        server = AgentServer(agent, expose_tools=args.expose_tools, name=args.name)
    except _Failed as failure:
        raise CommandFailed(str(failure), failure.code) from None
    except (ConfigurationError, ImportError) as exc:
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    try:
        server.run(args.transport, host=args.host, port=args.port)
    except ConfigurationError as exc:  # e.g. the port is taken
        raise CommandFailed(str(exc), EXIT_USAGE) from None
    finally:
        with contextlib.redirect_stdout(sys.stderr):
            agent.close()
    return 0


def load_agent(spec: str) -> MultiStepAgent:
    """The agent `spec` ("module:attr") names; the current directory is searched first."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise _Failed(f"{spec!r} is not module:attribute; {_SPEC_EXAMPLE}", EXIT_USAGE)
    with contextlib.redirect_stdout(sys.stderr):  # stdout may be the MCP wire
        module = _import(module_name)
        if not hasattr(module, attr):
            raise _Failed(_missing(module, module_name, attr), EXIT_USAGE)
        return _agent_from(getattr(module, attr), spec)


def _import(module_name: str) -> Any:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise _Failed(
                f"no module named {module_name!r} in {cwd} or on the Python path: run the command "
                "from the directory that holds it, or add that directory to PYTHONPATH",
                EXIT_USAGE,
            ) from None
        raise _Failed(f"importing {module_name} failed: {exc}", EXIT_FAILED) from None
    except Exception as exc:
        raise _Failed(f"importing {module_name} failed: {type(exc).__name__}: {exc}", EXIT_FAILED) from None


def _missing(module: Any, module_name: str, attr: str) -> str:
    from ..agents import MultiStepAgent

    agents = sorted(n for n, v in vars(module).items() if isinstance(v, MultiStepAgent))
    hint = f"; its agents: {', '.join(agents)}" if agents else "; it defines no agent object"
    return f"module {module_name} has no attribute {attr!r}{hint}"


def _agent_from(value: Any, spec: str) -> MultiStepAgent:
    from ..agents import MultiStepAgent

    if isinstance(value, MultiStepAgent):
        return value
    what = _WHAT
    if isinstance(value, type) or not callable(value):
        raise _Failed(f"{spec} is {_kind(value)}, not an agent: name {what}", EXIT_USAGE)
    if not _takes_no_arguments(value):
        raise _Failed(f"{spec} needs arguments: name {what}", EXIT_USAGE)
    try:
        built = value()
    except ConfigurationError as exc:
        raise _Failed(f"{spec}() could not build the agent: {exc}", EXIT_USAGE) from None
    except Exception as exc:
        raise _Failed(f"{spec}() failed: {type(exc).__name__}: {exc}", EXIT_FAILED) from None
    if not isinstance(built, MultiStepAgent):
        raise _Failed(f"{spec}() returned {_kind(built)}, not an agent: name {what}", EXIT_USAGE)
    return built


def _takes_no_arguments(function: Any) -> bool:
    try:
        inspect.signature(function).bind()
    except TypeError:
        return False
    except ValueError:  # no signature to read (some builtins): let the call decide
        return True
    return True


def _kind(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__}"
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return f"{shown} (of type {type(value).__name__})"
