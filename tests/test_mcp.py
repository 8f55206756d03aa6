"""MCPClient against the real `mcp-server-time` server over stdio: tools, arguments checked before
the server, `isError` results, both agent kinds, a server SIGKILLed (prompt `MCPServerError`) or
stopped (the call timeout). Other servers and transports (git over stdio, streamable HTTP, legacy
SSE, images, instructions, reconnect, a real local model): tests/test_mcp_servers.py."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

import pytest

pytest.importorskip("mcp")
pytest.importorskip("mcp_server_time")

from mcp import StdioServerParameters

from codeloop import AgentToolCallError, CodeAgent, ConfigurationError, ScriptedModel, ToolCallingAgent
from codeloop.mcp import MCPClient, MCPServerError, MCPToolError, ToolCollection
from codeloop.tools import Tool

TIME_SERVER = StdioServerParameters(command=sys.executable, args=["-m", "mcp_server_time"])
call = ScriptedModel.call


def fenced(code: str, thought: str = "Thought: next step.") -> str:
    return f"{thought}\n```python\n{code}\n```"


def by_name(tools: list[Tool]) -> dict[str, Tool]:
    return {t.name: t for t in tools}


def test_lists_tools_and_calls_get_current_time() -> None:
    with MCPClient(TIME_SERVER) as tools:
        assert set(by_name(tools)) == {"get_current_time", "convert_time"}
        result = by_name(tools)["get_current_time"](timezone="UTC")
    assert isinstance(result, dict)
    assert result["timezone"] == "UTC" and "datetime" in result


def test_dict_parameters_and_text_output() -> None:
    params = {"command": sys.executable, "args": ["-m", "mcp_server_time"]}
    with MCPClient(params, structured_output=False) as tools:
        result = by_name(tools)["get_current_time"](timezone="UTC")
    assert isinstance(result, str) and '"timezone": "UTC"' in result


def test_allowed_tools_filters_and_rejects_unknown_names() -> None:
    with MCPClient(TIME_SERVER, allowed_tools=["convert_time"]) as tools:
        assert [t.name for t in tools] == ["convert_time"]
    with pytest.raises(ConfigurationError, match=r"'nope'.*offers: 'get_current_time', 'convert_time'"):
        MCPClient(TIME_SERVER, allowed_tools=["nope"]).get_tools()


def test_invalid_argument_is_rejected_before_the_server() -> None:
    client = MCPClient(TIME_SERVER)
    tools = by_name(client.get_tools())
    sent: list[Any] = []
    original = client.call_tool

    async def spy(name: str, arguments: Any) -> Any:
        sent.append(arguments)
        return await original(name, arguments)

    client.call_tool = spy  # type: ignore[method-assign]
    try:
        with pytest.raises(TypeError, match="valid string"):
            tools["get_current_time"](timezone=42)
        with pytest.raises(AgentToolCallError, match="valid string"):  # how an agent's call fails
            asyncio.run(tools["get_current_time"].acall({"timezone": 42}))
        assert sent == []
        with pytest.raises(MCPToolError, match="Invalid timezone") as info:
            tools["get_current_time"](timezone="Nowhere/Else")
        assert info.value.tool == "get_current_time"
        assert len(sent) == 1
    finally:
        client.disconnect()


async def test_async_context_manager() -> None:
    async with MCPClient(TIME_SERVER) as tools:
        result = await by_name(tools)["get_current_time"].acall({"timezone": "UTC"})
    assert result["timezone"] == "UTC"


def test_tool_collection_requires_trust_remote_code() -> None:
    with pytest.raises(ConfigurationError, match="trust_remote_code=True"):
        with ToolCollection.from_mcp(TIME_SERVER):
            pass
    with ToolCollection.from_mcp(TIME_SERVER, trust_remote_code=True) as collection:
        assert {t.name for t in collection.tools} == {"get_current_time", "convert_time"}
        assert collection.instructions is None  # this server sends none (see test_mcp_servers.py)


def test_code_agent_uses_the_server_tool() -> None:
    model = ScriptedModel(
        [
            fenced("now = get_current_time(timezone='UTC')\nprint(now['timezone'])"),
            fenced("final_answer(now['day_of_week'])"),
        ]
    )
    with MCPClient(TIME_SERVER) as tools:
        result = CodeAgent(tools, model, max_steps=3).run("What day is it?", return_full_result=True)
    assert result.error is None
    assert result.output in {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}


def test_tool_calling_agent_uses_the_server_tool() -> None:
    model = ScriptedModel([[call("get_current_time", timezone="UTC")], [call("final_answer", answer="done")]])
    with MCPClient(TIME_SERVER) as tools:
        result = ToolCallingAgent(tools, model, max_steps=3).run("Time?", return_full_result=True)
    assert result.output == "done"
    tool_result = result.memory.action_steps()[0].tool_results[0]
    assert not tool_result.is_error and "UTC" in tool_result.content


def _child_pids() -> set[int]:
    """Our child processes (any thread may have started them), from /proc."""
    tasks = f"/proc/{os.getpid()}/task"
    if not os.path.isdir(tasks):
        pytest.skip("needs /proc to find the server process")
    pids: set[int] = set()
    for tid in os.listdir(tasks):
        with open(f"{tasks}/{tid}/children") as f:
            pids.update(int(p) for p in f.read().split())
    return pids


def test_killed_server_gives_a_typed_error_naming_it() -> None:
    before = _child_pids()
    with MCPClient(TIME_SERVER, call_timeout_s=10) as tools:
        server_pids = _child_pids() - before
        assert len(server_pids) == 1
        tool = by_name(tools)["get_current_time"]
        assert tool(timezone="UTC")["timezone"] == "UTC"
        os.kill(server_pids.pop(), signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(MCPServerError, match="mcp_server_time"):
            tool(timezone="UTC")
        assert time.monotonic() - started < 10.5


SLOW_TIME_SERVER = StdioServerParameters(
    command=sys.executable,
    args=[
        "-c",
        "import runpy, time; time.sleep(2); runpy.run_module('mcp_server_time', run_name='__main__')",
    ],
)
SILENT_SERVER = StdioServerParameters(command=sys.executable, args=["-c", "import time; time.sleep(60)"])


def test_a_server_slower_to_start_than_a_call_timeout_still_connects() -> None:
    with MCPClient(SLOW_TIME_SERVER, call_timeout_s=0.5) as tools:  # connecting takes over 2 s
        assert by_name(tools)["get_current_time"](timezone="UTC")["timezone"] == "UTC"


def test_a_server_that_never_answers_fails_within_the_connect_timeout() -> None:
    before = _child_pids()
    started = time.monotonic()
    expected = r"could not connect: no tool list within 1s \(connect_timeout_s\)"
    with pytest.raises(MCPServerError, match=expected):
        MCPClient(SILENT_SERVER, connect_timeout_s=1).connect()
    assert time.monotonic() - started < 8  # 1 s and stopping the server, not disconnect's 10 s wait
    assert not (_child_pids() - before)  # the silent server was stopped


def test_call_timeout_names_the_server() -> None:
    before = _child_pids()
    with MCPClient(TIME_SERVER, call_timeout_s=1) as tools:
        (pid,) = _child_pids() - before
        os.kill(pid, signal.SIGSTOP)
        try:
            with pytest.raises(MCPServerError, match=r"mcp_server_time.*no answer within 1s"):
                by_name(tools)["get_current_time"](timezone="UTC")
        finally:
            os.kill(pid, signal.SIGCONT)
