"""`codeloop mcp serve`: agents from tests/mcp_serve_agents.py served as real separate processes,
talked to with the official MCP client over stdio and streamable HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

from mcp import ClientSession, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

TESTS_DIR = Path(__file__).parent
SERVE = [sys.executable, "-m", "codeloop.cli", "mcp", "serve"]


def server_params(spec: str, *options: str) -> StdioServerParameters:
    # cwd: the command finds the fixture module in the current directory.
    return StdioServerParameters(command=SERVE[0], args=[*SERVE[1:], spec, *options], cwd=TESTS_DIR)


@asynccontextmanager
async def stdio_session(spec: str, *options: str) -> AsyncIterator[ClientSession]:
    async with stdio_client(server_params(spec, *options)) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


def text_of(result: Any) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


# ---- stdio ------------------------------------------------------------------------------------


async def test_lists_the_agent_tool_and_its_own_tools_with_schemas() -> None:
    async with stdio_session("mcp_serve_agents:shop", "--expose-tools") as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == {"shop_assistant", "get_price"}
    agent = tools["shop_assistant"]
    assert agent.description == "Answers questions about the shop's prices."
    assert agent.input_schema["required"] == ["task"]
    assert agent.input_schema["properties"]["task"]["type"] == "string"
    assert "additional_args" in agent.input_schema["properties"]
    assert agent.output_schema is None  # no output_type
    price = tools["get_price"]
    assert price.description == "Look up the price of an item in the shop."
    assert price.input_schema["properties"]["item"] == {"type": "string", "description": "The item's name."}
    assert price.input_schema["required"] == ["item"]


async def test_without_expose_tools_only_the_agent_is_listed() -> None:
    async with stdio_session("mcp_serve_agents:shop") as session:
        names = [t.name for t in (await session.list_tools()).tools]
        with pytest.raises(MCPError, match="Unknown tool 'get_price'; this server offers 'shop_assistant'"):
            await session.call_tool("get_price", {"item": "pear"})
    assert names == ["shop_assistant"]


async def test_calling_the_agent_runs_it_and_reports_progress() -> None:
    updates: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, message))

    async with stdio_session("mcp_serve_agents:shop") as session:
        result = await session.call_tool(
            "shop_assistant", {"task": "What do two pears cost?"}, progress_callback=on_progress
        )
    assert not result.is_error, text_of(result)
    assert text_of(result) == "1.5"
    messages = [m for _, m in updates]
    assert messages[0] == "shop_assistant started: What do two pears cost?"
    assert "shop_assistant step 1: running code" in messages
    assert "shop_assistant step 1 finished" in messages
    assert "shop_assistant step 2 finished" in messages
    assert messages[-1] == "shop_assistant finished: success"
    values = [p for p, _ in updates]
    assert values == sorted(set(values))  # strictly increasing, as the protocol requires


async def test_a_run_without_an_answer_is_a_tool_error_naming_its_state() -> None:
    async with stdio_session("mcp_serve_agents:stuck") as session:
        result = await session.call_tool("stuck_assistant", {"task": "Think forever."})
    assert result.is_error
    assert "stuck_assistant gave no answer (state: max_steps_exceeded)" in text_of(result)


async def test_a_structured_answer_comes_with_its_schema_and_structured_content() -> None:
    async with stdio_session("mcp_serve_agents:city") as session:
        tool = (await session.list_tools()).tools[0]
        result = await session.call_tool("city_facts", {"task": "The largest city in France?"})
    assert tool.output_schema is not None
    assert tool.output_schema["type"] == "object"
    assert set(tool.output_schema["required"]) == {"name", "population"}
    assert not result.is_error, text_of(result)
    assert result.structured_content == {"name": "Paris", "population": 2100000}
    assert json.loads(text_of(result)) == {"name": "Paris", "population": 2100000}


async def test_a_factory_builds_the_agent_and_invalid_agent_arguments_are_refused() -> None:
    async with stdio_session("mcp_serve_agents:make_price_desk") as session:
        refused = await session.call_tool("price_desk", {"task": ""})
        wrong_type = await session.call_tool(
            "price_desk", {"task": "Price of an apple?", "additional_args": 3}
        )
        result = await session.call_tool("price_desk", {"task": "Price of an apple?"})
    assert refused.is_error and "Invalid arguments for price_desk: task:" in text_of(refused)
    assert wrong_type.is_error and "additional_args" in text_of(wrong_type)
    assert not result.is_error, text_of(result)
    assert text_of(result) == "An apple costs 0.5."


async def test_concurrent_calls_run_at_once_each_with_its_own_state() -> None:
    """Two calls at once are two runs of one agent object, interleaved: each sees its own steps
    and variables (a shared session would give one run the other's `x` or `who`)."""
    async with stdio_session("mcp_serve_agents:counter", "--name", "count") as session:
        assert [t.name for t in (await session.list_tools()).tools] == ["count"]
        a, b = await asyncio.gather(
            session.call_tool("count", {"task": "Count for A.", "additional_args": {"who": "A"}}),
            session.call_tool("count", {"task": "Count for B.", "additional_args": {"who": "B"}}),
        )
    assert not a.is_error and not b.is_error, (text_of(a), text_of(b))
    assert (text_of(a), text_of(b)) == ("A:one", "B:two")


async def test_exposed_tool_calls_are_validated_and_run_through_the_tool() -> None:
    async with stdio_session("mcp_serve_agents:shop", "--expose-tools") as session:
        ok = await session.call_tool("get_price", {"item": "pear"})
        invalid = await session.call_tool("get_price", {"item": 3})
        missing = await session.call_tool("get_price", {})
        failing = await session.call_tool("get_price", {"item": "plum"})
    assert not ok.is_error and text_of(ok) == "0.75"
    assert invalid.is_error and "item" in text_of(invalid) and "string" in text_of(invalid)
    assert missing.is_error and "item" in text_of(missing)
    assert failing.is_error and "Tool get_price failed: KeyError" in text_of(failing)


def test_stdout_carries_only_the_protocol_while_the_agent_renders_its_steps() -> None:
    """Raw JSON-RPC over the pipes: the `shop` agent's step view must go to stderr."""
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "shop_assistant", "arguments": {"task": "Two pears?"}},
        },
    ]
    proc = subprocess.Popen(
        [*SERVE, "mcp_serve_agents:shop"],
        cwd=TESTS_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    replies: list[dict[str, Any]] = []
    try:
        for message in messages:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
            while "id" in message and not any(r.get("id") == message["id"] for r in replies):
                line = proc.stdout.readline()
                assert line, "the server closed stdout before answering"
                replies.append(json.loads(line))  # every line on stdout is a JSON-RPC message
        rest, errors = proc.communicate(timeout=30)  # closes stdin: the server stops
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    replies += [json.loads(line) for line in rest.splitlines()]
    call = next(r for r in replies if r.get("id") == 2)
    assert call["result"]["content"][0]["text"] == "1.5"
    assert "one pear costs 0.75" in errors  # the rendered observation, on stderr
    assert proc.returncode == 0


# ---- streamable HTTP --------------------------------------------------------------------------


async def test_streamable_http_on_a_free_local_port() -> None:
    proc = await asyncio.create_subprocess_exec(
        *SERVE,
        "mcp_serve_agents:shop",
        "--transport",
        "streamable-http",
        "--port",
        "0",
        "--expose-tools",
        cwd=TESTS_DIR,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        url = await _announced_url(proc)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
        updates: list[str | None] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            updates.append(message)

        async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            names = {t.name for t in (await session.list_tools()).tools}
            price = await session.call_tool("get_price", {"item": "apple"})
            result = await session.call_tool(
                "shop_assistant", {"task": "Two pears?"}, progress_callback=on_progress
            )
    finally:
        proc.terminate()
        await proc.wait()
    assert names == {"shop_assistant", "get_price"}
    assert text_of(price) == "0.5"
    assert text_of(result) == "1.5"
    assert "shop_assistant step 2 finished" in updates


async def _announced_url(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    seen = []
    while line := (await asyncio.wait_for(proc.stderr.readline(), 30)).decode():
        seen.append(line)
        if line.startswith("codeloop: serving MCP on "):
            return line.removeprefix("codeloop: serving MCP on ").strip()
    raise AssertionError(f"the server never said where it listens; stderr: {''.join(seen)}")


# ---- bad specs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("mcp_serve_agents", "is not module:attribute; e.g. my_agents:agent"),
        ("no_such_module:agent", "no module named 'no_such_module'"),
        ("mcp_serve_agents:nothing", "has no attribute 'nothing'; its agents: city, counter, shop, stuck"),
        ("mcp_serve_agents:not_an_agent", "is 42 (of type int), not an agent"),
        ("mcp_serve_agents:City", "is the class City, not an agent"),
        ("mcp_serve_agents:needs_a_model", "needs arguments"),
    ],
)
def test_a_bad_spec_is_a_usage_error_saying_what_to_do(spec: str, says: str) -> None:
    done = subprocess.run(
        [*SERVE, spec], cwd=TESTS_DIR, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("codeloop: ") and says in done.stderr


def test_the_module_is_found_through_pythonpath_too() -> None:
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    done = subprocess.run(
        [*SERVE, "mcp_serve_agents:nothing"],
        cwd=TESTS_DIR.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2 and "has no attribute 'nothing'" in done.stderr
