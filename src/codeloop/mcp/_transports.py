"""How `MCPClient` reaches a server: stdio (a child process), streamable HTTP or legacy SSE.

The parameters follow smolagents: `mcp.StdioServerParameters` or a dict
`{"command", "args", "env", "cwd"}` for a stdio server, `{"url": ..., "transport":
"streamable-http"}` (the default for a URL) or `{"url": ..., "transport": "sse"}` for a remote one.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..errors import ConfigurationError

__all__ = [
    "HTTP_TRANSPORTS", "ServerParameters", "check_parameters", "http_transport", "is_http", "server_label",
    "server_streams",
]  # fmt: skip

ServerParameters = Any  # `mcp.StdioServerParameters` or a dict (stdio: command/args/env; HTTP: url)

HTTP_TRANSPORTS = ("streamable-http", "sse")
_STDIO_KEYS = ("command", "args", "env", "cwd")
_HTTP_KEYS = ("url", "transport")


def is_http(params: ServerParameters) -> bool:
    return isinstance(params, Mapping) and "url" in params


def server_label(params: ServerParameters) -> str:
    """How errors name the server: its URL, or its command line."""
    if is_http(params):
        return str(params["url"])
    if isinstance(params, Mapping):
        if "command" not in params:
            raise ConfigurationError(
                "MCP server parameters need a 'command' (stdio server) or a 'url' (HTTP server); "
                f"got the keys {sorted(params)}."
            )
        command, args = params["command"], params.get("args", [])
    else:
        command, args = params.command, params.args
    return " ".join([str(command), *map(str, args)])


def _check_keys(params: Mapping[str, Any], allowed: tuple[str, ...], kind: str) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigurationError(
            f"MCP {kind} server parameters do not support {', '.join(map(repr, unknown))}; "
            f"the supported keys are {', '.join(map(repr, allowed))}."
        )


def _stdio_parameters(params: ServerParameters) -> Any:
    from mcp import StdioServerParameters

    if isinstance(params, StdioServerParameters):
        return params
    _check_keys(params, _STDIO_KEYS, "stdio")
    return StdioServerParameters(**dict(params))


def http_transport(params: Mapping[str, Any]) -> str:
    _check_keys(params, _HTTP_KEYS, "HTTP")
    transport = params.get("transport", "streamable-http")
    if transport not in HTTP_TRANSPORTS:
        raise ConfigurationError(
            f"MCP transport {transport!r} is not supported; use 'streamable-http' or 'sse' (legacy)."
        )
    return str(transport)


def check_parameters(params: ServerParameters) -> None:
    """Raise `ConfigurationError` now for parameters that could never connect."""
    if is_http(params):
        http_transport(params)
    elif isinstance(params, Mapping):
        _check_keys(params, _STDIO_KEYS, "stdio")


@contextlib.asynccontextmanager
async def _streamable_http(url: str) -> AsyncIterator[tuple[Any, Any]]:
    from mcp.client import streamable_http

    opener = getattr(streamable_http, "streamable_http_client", None)
    if opener is None:  # mcp 1.x
        opener = getattr(streamable_http, "streamablehttp_client")  # noqa: B009
    async with opener(url) as streams:
        yield streams[0], streams[1]


@contextlib.asynccontextmanager
async def _sse(url: str) -> AsyncIterator[tuple[Any, Any]]:
    from mcp.client.sse import sse_client

    async with sse_client(url) as streams:
        yield streams[0], streams[1]


@contextlib.asynccontextmanager
async def server_streams(params: ServerParameters) -> AsyncIterator[tuple[Any, Any]]:
    """The (read, write) streams of a session with the server, open for the block."""
    if is_http(params):
        opener = _sse if http_transport(params) == "sse" else _streamable_http
        async with opener(str(params["url"])) as streams:
            yield streams
        return
    from mcp.client.stdio import stdio_client

    async with stdio_client(_stdio_parameters(params)) as (read, write):
        yield read, write
