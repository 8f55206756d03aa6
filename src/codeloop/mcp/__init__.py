"""Tools from Model Context Protocol servers (needs the `mcp` extra: `pip install codeloop[mcp]`)."""

from .client import MCPClient, MCPServerError, MCPToolError, ServerParameters, ToolCollection

__all__ = ["MCPClient", "MCPServerError", "MCPToolError", "ServerParameters", "ToolCollection"]
