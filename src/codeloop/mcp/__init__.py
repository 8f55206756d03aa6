"""Tools from Model Context Protocol servers (needs the `mcp` extra: `pip install codeloop[mcp]`)."""

from .client import MCPClient, MCPServerError, MCPToolError, ServerParameters, ToolCollection
from .server import AgentServer, serve

__all__ = [
    "AgentServer",
    "MCPClient",
    "MCPServerError",
    "MCPToolError",
    "ServerParameters",
    "ToolCollection",
    "serve",
]
