"""`codeloop mcp serve module:attr`: serve an agent over MCP (see `codeloop.mcp.server`).

`module:attr` names an agent object, or a function taking no arguments that returns one, in a
module importable from the current directory (or the Python path). Over stdio, stdout carries
nothing but the protocol: whatever the module prints while it is imported, and whatever the
agent's renderers print while it serves, goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from ..errors import ConfigurationError
from .agent_spec import EXIT_USAGE, AgentSpecError, load_agent

__all__ = ["add_mcp_command", "serve_command"]


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
    except AgentSpecError as failure:
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
