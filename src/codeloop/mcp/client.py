"""`MCPClient`: tools from a Model Context Protocol server, on the official `mcp` SDK.

The MCP session lives on a private event loop in a background thread, so the client works the
same from sync code (`with MCPClient(...) as tools:`) and async code (`async with ...`). Each
server tool becomes a `Tool.from_schema(...)` whose async function submits the call to that loop
and waits for it on the caller's loop, bounded by `call_timeout_s`. Tool names that are not Python
identifiers (`get-tiny-image`) are called by a Python name in code (`get_tiny_image`) and by
their real name on the wire.

Transports (see `_transports`): stdio, streamable HTTP and legacy SSE. What a call returns
(text, structured content, `ImageContent` for images, `MCPToolError` for `isError`): see
`_results`. The server's `instructions` (from its initialize answer) are `client.instructions`;
pass them to an agent's `instructions=` if you want the model to read them.

A client does not reconnect by itself: once the server is gone, every call fails promptly with
`MCPServerError`; `client.reconnect()` starts a new session, and the tools already handed out
use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any

from ..errors import ConfigurationError
from ..tools import Tool, code_names
from ._results import MCPServerError, MCPToolError, field, result_value
from ._transports import ServerParameters, check_parameters, server_label, server_streams

__all__ = ["MCPClient", "MCPServerError", "MCPToolError", "ServerParameters", "ToolCollection"]


class MCPClient:
    """Connects to one MCP server and offers its tools as codeloop `Tool`s.

    `server_parameters`: `mcp.StdioServerParameters`, a dict `{"command", "args", "env", "cwd"}`
    for a stdio server, or `{"url": ..., "transport": "streamable-http" | "sse"}`. `allowed_tools`
    keeps only those tool names. `structured_output` returns a tool's `structuredContent` (a dict)
    when it has one, and keeps its output schema. `call_timeout_s` bounds every call to the
    server; `connect_timeout_s` bounds connecting (starting the server, its initialize answer and
    its tool list), which can take longer than a call. After connecting, `instructions` holds
    the server's instructions (or None).
    """

    def __init__(
        self,
        server_parameters: ServerParameters,
        *,
        allowed_tools: Sequence[str] | None = None,
        structured_output: bool = True,
        call_timeout_s: float = 60.0,
        connect_timeout_s: float = 30.0,
        connect: bool = False,
    ) -> None:
        check_parameters(server_parameters)
        self.server_parameters = server_parameters
        self.server_name = server_label(server_parameters)
        self.allowed_tools = list(allowed_tools) if allowed_tools is not None else None
        self.structured_output = structured_output
        self.call_timeout_s = call_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._session: Any = None
        self._done: Future[None] | None = None
        self._serving: asyncio.Task[None] | None = None  # `_serve`, on the private loop
        self._tools: list[Tool] | None = None
        self.instructions: str | None = None
        """What the server tells clients about using it (its initialize answer), once connected."""
        if connect:
            self.connect()

    # -- lifecycle -------------------------------------------------------------------------

    def connect(self) -> None:
        """Start the server session (idempotent) and load its tools."""
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="codeloop-mcp", daemon=True)
        self._thread.start()
        self._loop = loop
        ready: Future[list[Any]] = Future()
        self._done = asyncio.run_coroutine_threadsafe(self._serve(ready), loop)
        try:
            server_tools = ready.result(timeout=self.connect_timeout_s)
        except BaseException as error:
            self.disconnect()
            if isinstance(error, MCPServerError | ConfigurationError):
                raise
            if isinstance(error, TimeoutError):
                reason = f"no tool list within {self.connect_timeout_s:g}s (connect_timeout_s)"
                raise MCPServerError(self.server_name, f"could not connect: {reason}.") from error
            raise MCPServerError(self.server_name, f"could not connect: {error!r}") from error
        try:
            self._tools = self._build_tools(server_tools)
        except BaseException:
            self.disconnect()
            raise

    async def _serve(self, ready: Future[list[Any]]) -> None:
        from mcp import ClientSession

        self._stop = asyncio.Event()
        self._serving = asyncio.current_task()
        try:
            async with (
                server_streams(self.server_parameters) as (read, write),
                ClientSession(read, write) as session,
            ):
                initialized = await session.initialize()
                self.instructions = getattr(initialized, "instructions", None) or None
                self._session = session
                ready.set_result(await self._list_tools(session))
                await self._stop.wait()
        except BaseException as error:
            if not ready.done():
                ready.set_exception(error)
            raise
        finally:
            self._session = None

    @staticmethod
    async def _list_tools(session: Any) -> list[Any]:
        tools: list[Any] = []
        cursor = None
        while True:
            if cursor is None:
                page = await session.list_tools()
            else:
                from mcp.types import PaginatedRequestParams

                page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
            tools.extend(page.tools)
            cursor = field(page, "next_cursor", "nextCursor")
            if not cursor:
                return tools

    def disconnect(self) -> None:
        """Close the session, stop the server and the background loop (idempotent)."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        if self._stop is not None:
            loop.call_soon_threadsafe(self._stop.set)
        if self._serving is not None and self._session is None:  # still connecting: stop that
            loop.call_soon_threadsafe(self._serving.cancel)
        if self._done is not None:
            with contextlib.suppress(BaseException):
                self._done.result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not loop.is_running():
            loop.close()
        self._tools = self._serving = None

    def reconnect(self) -> None:
        """A new session with the server (after it restarted, say); tools handed out before keep
        working and call the new session. Tools the server no longer offers fail when called."""
        self.disconnect()
        self.connect()

    def get_tools(self) -> list[Tool]:
        """The server's tools (after `allowed_tools`), connecting first if needed."""
        self.connect()
        assert self._tools is not None
        return list(self._tools)

    def __enter__(self) -> list[Tool]:
        return self.get_tools()

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    async def __aenter__(self) -> list[Tool]:
        return await asyncio.to_thread(self.get_tools)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.disconnect)

    # -- tools -----------------------------------------------------------------------------

    def _build_tools(self, server_tools: list[Any]) -> list[Tool]:
        names = [t.name for t in server_tools]
        if self.allowed_tools is not None:
            unknown = [n for n in self.allowed_tools if n not in names]
            if unknown:
                raise ConfigurationError(
                    f"MCP server {self.server_name!r} has no tool named {', '.join(map(repr, unknown))}; "
                    f"it offers: {', '.join(map(repr, names)) or '(none)'}."
                )
            server_tools = [t for t in server_tools if t.name in self.allowed_tools]
        python_names = code_names(t.name for t in server_tools)
        return [self._tool(t, python_names[t.name]) for t in server_tools]

    def _tool(self, server_tool: Any, python_name: str) -> Tool:
        output_schema = (
            field(server_tool, "output_schema", "outputSchema") if self.structured_output else None
        )
        return Tool.from_schema(
            server_tool.name,
            server_tool.description,
            field(server_tool, "input_schema", "inputSchema"),
            self._caller(server_tool.name),
            output_schema,
            code_name=python_name,
        )

    def _caller(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        async def call(**arguments: Any) -> Any:
            return await self.call_tool(name, arguments)

        call.__name__ = name
        return call

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> Any:
        """Call a server tool from any event loop; the converted result (see module doc)."""
        loop = self._loop
        if loop is None:
            raise MCPServerError(
                self.server_name, "not connected (use the client as a context manager, or call connect())."
            )
        future = asyncio.run_coroutine_threadsafe(self._call_on_loop(name, dict(arguments)), loop)
        return await asyncio.wrap_future(future)

    async def _call_on_loop(self, name: str, arguments: dict[str, Any]) -> Any:
        session, done = self._session, self._done
        if session is None or done is None or done.done():
            raise MCPServerError(self.server_name, f"the session has ended{self._end_reason()}.")
        try:
            result = await asyncio.wait_for(session.call_tool(name, arguments), timeout=self.call_timeout_s)
        except asyncio.TimeoutError as error:
            raise MCPServerError(
                self.server_name, f"tool {name!r} got no answer within {self.call_timeout_s:g}s."
            ) from error
        except Exception as error:
            raise MCPServerError(self.server_name, f"tool {name!r} failed: {error!r}") from error
        return result_value(result, self.server_name, name, self.structured_output)

    def _end_reason(self) -> str:
        """Why the session ended, for error messages: the server's or the transport's error."""
        done = self._done
        if done is None or not done.done() or done.cancelled():
            return " (did the server exit?); it does not reconnect by itself: call reconnect()"
        error = done.exception()
        while getattr(error, "exceptions", None):  # an exception group: its first member
            error = error.exceptions[0]  # type: ignore[union-attr]
        cause = f" ({error!r})" if error is not None else " (the client closed it)"
        return f"{cause}; it does not reconnect by itself: call reconnect()"


class ToolCollection:
    """smolagents' `ToolCollection.from_mcp(...)`: a context manager whose value has `.tools`
    (and `.instructions`, the server's instructions or None)."""

    def __init__(self, tools: Sequence[Tool], instructions: str | None = None) -> None:
        self.tools = list(tools)
        self.instructions = instructions

    @classmethod
    @contextlib.contextmanager
    def from_mcp(
        cls,
        server_parameters: ServerParameters,
        *,
        trust_remote_code: bool = False,
        allowed_tools: Sequence[str] | None = None,
        structured_output: bool = True,
        call_timeout_s: float = 60.0,
        connect_timeout_s: float = 30.0,
    ) -> Iterator[ToolCollection]:
        """Tools from an MCP server. `trust_remote_code=True` is required: the server's tool
        descriptions reach the model's prompt and its tools run whatever code the server has."""
        if not trust_remote_code:
            raise ConfigurationError(
                "Loading tools from an MCP server runs code you do not control (the server process and "
                "its tools) and puts its tool descriptions in the model's prompt; pass "
                "trust_remote_code=True if you trust this server."
            )
        client = MCPClient(
            server_parameters, allowed_tools=allowed_tools, structured_output=structured_output,
            call_timeout_s=call_timeout_s, connect_timeout_s=connect_timeout_s,
        )  # fmt: skip
        with client as tools:
            yield cls(tools, client.instructions)
