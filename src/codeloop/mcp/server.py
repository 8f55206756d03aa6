"""A codeloop agent as an MCP server (needs the `mcp` extra, version 2 of the SDK).

    from codeloop.mcp import serve
    serve(agent)                                         # over stdio
    serve(agent, transport="streamable-http", port=8000)  # http://127.0.0.1:8000/mcp

The agent becomes one MCP tool, named after it (`agent.name`), described by
`agent.description`, taking `task` (a string) and optionally `additional_args` (an object). A
call runs the agent on the task from a fresh memory; a run that succeeds answers with its output
as text, plus `structuredContent` when the answer is structured (an `output_type` agent also
declares its `outputSchema`; a non-object answer is sent as `{"result": ...}`). A run that ends
without an answer is a tool error (`isError`) naming its state and error. When the client asks
for progress, each step is reported as it happens (`notifications/progress`, one short line per
code action, tool call and finished step).

`expose_tools=True` also lists the agent's own tools (managed agents included), each called
through its `Tool`: arguments are validated first, and invalid ones or a failing tool give a
tool error saying what was wrong.

Each call is its own run of the agent (a run holds its own memory, executor session and
variables), so concurrent calls of the agent tool, of a managed agent's tool and of the other
exposed tools all run at the same time.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import sys
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Literal

from ..errors import AgentError, ConfigurationError
from ..events import Event, RunFinished
from ..result import RunResult

if TYPE_CHECKING:
    from mcp import types
    from mcp.server import Server, ServerRequestContext

    from ..agents import MultiStepAgent
    from ..tools import Tool

__all__ = ["AgentServer", "Transport", "serve"]

Transport = Literal["stdio", "streamable-http"]
TRANSPORTS: tuple[Transport, ...] = ("stdio", "streamable-http")
DEFAULT_PORT = 8000
HTTP_PATH = "/mcp"


class AgentServer:
    """Serves `agent` over MCP. `run()` / `await arun()` serve until the client disconnects
    (stdio) or the process is stopped (streamable HTTP). `name` is the agent tool's name (default:
    `agent.name`); the server is named after it too."""

    def __init__(
        self,
        agent: MultiStepAgent,
        *,
        expose_tools: bool = False,
        name: str | None = None,
    ) -> None:
        from ..agents import MultiStepAgent

        if not isinstance(agent, MultiStepAgent):
            raise ConfigurationError(
                "AgentServer serves a codeloop agent (a CodeAgent or ToolCallingAgent), "
                f"got {type(agent).__name__}."
            )
        self.agent = agent
        self.name = name or agent.name
        self.tools: dict[str, Tool] = dict(_exposed(agent, self.name)) if expose_tools else {}
        self.on_listening: Callable[[str], Any] = _announce
        """Called with the URL once a streamable HTTP server listens (default: says so on stderr)."""

    # ---- the MCP surface ----------------------------------------------------------------------

    def list_tools(self) -> list[types.Tool]:
        from ._serve_content import agent_tool

        return [agent_tool(self.agent, self.name), *(_mcp_tool(n, t) for n, t in self.tools.items())]

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None, progress: _Progress | None = None
    ) -> types.CallToolResult:
        """Run the tool `name`; `progress(value, message)` is told of each step of an agent run."""
        if name == self.name:
            return await self._call_agent(arguments or {}, progress)
        if name in self.tools:
            return await self._call_exposed(self.tools[name], arguments or {})
        from mcp import MCPError
        from mcp.types import INVALID_PARAMS

        offered = ", ".join(repr(n) for n in [self.name, *self.tools])
        raise MCPError(INVALID_PARAMS, f"Unknown tool {name!r}; this server offers {offered}.")

    async def _call_agent(
        self, arguments: dict[str, Any], progress: _Progress | None
    ) -> types.CallToolResult:
        import pydantic

        from ._serve_content import AgentCall, answer_result, error_result, failed_run_result

        try:
            call = AgentCall.model_validate(arguments)
        except pydantic.ValidationError as exc:
            return error_result(f"Invalid arguments for {self.name}: {_problems(exc)}")
        try:
            result = await self._run(call.task, call.additional_args, progress)
        except Exception as exc:  # a failure outside the loop's own handling (a guard, a bug)
            return error_result(f"The agent {self.name} failed: {type(exc).__name__}: {exc}")
        if not result.succeeded:
            return failed_run_result(self.name, result)
        return answer_result(result, self.agent.output_spec)

    async def _run(
        self, task: str, additional_args: dict[str, Any] | None, progress: _Progress | None
    ) -> RunResult:
        from ._serve_content import progress_message

        result: RunResult | None = None
        reported = 0
        events: AsyncIterator[Event] = self.agent.astream(task, additional_args=additional_args)
        async with contextlib.aclosing(events):  # type: ignore[type-var]
            async for event in events:
                if isinstance(event, RunFinished) and event.depth == 0:
                    result = event.result
                message = progress_message(event) if progress is not None else None
                if progress is not None and message is not None:
                    reported += 1
                    await progress(reported, message)
        if result is None:  # astream always ends with RunFinished
            raise RuntimeError(f"The run of {self.name} ended without a RunFinished event.")
        return result

    async def _call_exposed(self, tool: Tool, arguments: dict[str, Any]) -> types.CallToolResult:
        from ._serve_content import error_result, value_result

        try:
            value = await tool.acall(arguments)
        except AgentError as exc:  # invalid arguments (AgentToolCallError) or a failing tool
            return error_result(str(exc))
        return value_result(value)

    # ---- serving --------------------------------------------------------------------------------

    def build_server(self) -> Server[Any]:
        """The SDK's low-level `Server` answering `tools/list` and `tools/call` for this agent."""
        server_class = _lowlevel_server_class()

        async def on_list_tools(
            ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
        ) -> types.ListToolsResult:
            from mcp import types

            return types.ListToolsResult(tools=self.list_tools())

        async def on_call_tool(
            ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
        ) -> types.CallToolResult:
            async def progress(value: float, message: str) -> None:
                await ctx.session.report_progress(value, None, message)

            return await self.call_tool(params.name, params.arguments, progress)

        try:
            return server_class(self.name, on_list_tools=on_list_tools, on_call_tool=on_call_tool)
        except TypeError as exc:  # the 1.x SDK registers handlers with decorators instead
            raise ConfigurationError(
                f"Serving an agent needs version 2 of the MCP SDK ({exc}): pip install -U 'mcp>=2'."
            ) from exc

    def run(
        self, transport: Transport = "stdio", *, host: str = "127.0.0.1", port: int = DEFAULT_PORT
    ) -> None:
        """Serve until the client disconnects (stdio) or the process is stopped (HTTP)."""
        import anyio

        anyio.run(functools.partial(self.arun, transport, host=host, port=port))

    async def arun(
        self, transport: Transport = "stdio", *, host: str = "127.0.0.1", port: int = DEFAULT_PORT
    ) -> None:
        """The async form of `run`."""
        if transport == "stdio":
            await self._serve_stdio()
        elif transport == "streamable-http":
            await self._serve_http(host, port)
        else:
            raise ConfigurationError(
                f"Unknown MCP transport {transport!r}; use one of {', '.join(TRANSPORTS)}."
            )

    async def _serve_stdio(self) -> None:
        from mcp.server.stdio import stdio_server

        server = self.build_server()
        async with stdio_server() as (read, write):
            # The wire has its own copy of stdout now: anything else printed (a renderer, the
            # agent's tools) goes to stderr and never into the protocol.
            with contextlib.redirect_stdout(sys.stderr):
                await server.run(read, write, server.create_initialization_options())

    async def _serve_http(self, host: str, port: int) -> None:
        import uvicorn

        app = self.build_server().streamable_http_app(streamable_http_path=HTTP_PATH, host=host)
        listener = _listen(host, port)
        bound_port = listener.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        self.on_listening(f"http://{_url_host(host)}:{bound_port}{HTTP_PATH}")
        await server.serve(sockets=[listener])


_Progress = Callable[[float, str], Any]


def serve(
    agent: MultiStepAgent,
    *,
    transport: Transport = "stdio",
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    expose_tools: bool = False,
    name: str | None = None,
) -> None:
    """Serve `agent` over MCP until the client disconnects or the process is stopped (see
    `AgentServer`). `port=0` picks a free port; the URL is said on stderr."""
    AgentServer(agent, expose_tools=expose_tools, name=name).run(transport, host=host, port=port)


def _exposed(agent: MultiStepAgent, agent_tool_name: str) -> list[tuple[str, Tool]]:
    tools = [(t.wire_name, t) for t in agent.tools.values()]
    clash = [n for n, _ in tools if n == agent_tool_name]
    if clash:
        raise ConfigurationError(
            f"The agent's tool {agent_tool_name!r} has the agent's own name; "
            "pass name= to serve the agent under another one."
        )
    return tools


def _mcp_tool(name: str, tool: Tool) -> types.Tool:
    from mcp import types

    schema = tool.json_schema()
    return types.Tool(name=name, description=schema["description"], input_schema=schema["parameters"])


def _problems(exc: Any) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in exc.errors()
    )


def _lowlevel_server_class() -> type[Server[Any]]:
    try:
        from mcp.server.lowlevel import Server
    except ImportError as exc:
        raise ConfigurationError(
            f"Serving an agent over MCP needs the mcp package ({exc}): pip install 'codeloop[mcp]'."
        ) from exc
    return Server


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise ConfigurationError(
            f"Cannot listen on {host}:{port} ({exc}); pick another --port (0: any free one)."
        ) from exc
    listener.listen(128)
    listener.setblocking(False)
    return listener


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _announce(url: str) -> None:
    print(f"codeloop: serving MCP on {url}", file=sys.stderr, flush=True)
