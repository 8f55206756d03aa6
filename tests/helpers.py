"""Helpers shared by the tests of the model adapters (and of the agents): messages, tool schemas,
scripted chat-completions replies and chunks, comparing what was sent with what was recorded,
collecting streams, and checking that an adapter imports its SDK lazily; and a store holding a
run whose worker died."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any

from codeloop import tool
from codeloop.messages import ChatMessage, MessageDelta, Role, ToolCall
from codeloop.models.base import Model

from wire import ReplayServer, Reply, is_subset

__all__ = [
    "CODE_ANSWER",
    "USAGE_CHUNK",
    "add",
    "call_chunk",
    "chunk",
    "closed_port",
    "collect",
    "completion_reply",
    "parsed_arguments",
    "schema",
    "sdk_loaded_by_import",
    "sent_matches_recorded",
    "store_with_a_dead_workers_run",
    "system",
    "tool_result",
    "user",
]

CODE_ANSWER = "Thought: add.\n```py\nprint(1 + 1)\n```<end_code>\nObservation: 2 (hallucinated)"
"""A code answer that runs on past its stop sequence, as a server that ignores `stop` sends it."""


# -- messages and tools ----------------------------------------------------------------------------
def user(text: str) -> ChatMessage:
    return ChatMessage(role=Role.USER, content=text)


def system(text: str) -> ChatMessage:
    return ChatMessage(role=Role.SYSTEM, content=text)


def tool_result(call: ToolCall, content: str) -> ChatMessage:
    return ChatMessage(role=Role.TOOL, content=content, tool_call_id=call.id, name=call.name)


def schema(tool_name: str, description: str = "", **properties: str) -> dict[str, Any]:
    """A function schema with the given `properties` (name → JSON type), all required."""
    return {
        "name": tool_name,
        "description": description,
        "parameters": {
            "type": "object",
            "properties": {key: {"type": kind} for key, kind in properties.items()},
            "required": list(properties),
            "additionalProperties": False,
        },
    }


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


# -- scripted chat-completions replies -----------------------------------------------------------
def completion_reply(content: str) -> Reply:
    return Reply.json(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": content}}
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 30, "total_tokens": 33},
        }
    )


def chunk(content: str | None = None, finish: str | None = None, **delta: Any) -> dict[str, Any]:
    if content is not None:
        delta["content"] = content
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [choice]}


def call_chunk(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    part = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    return chunk(tool_calls=[part])


USAGE_CHUNK = {
    "id": "x",
    "object": "chat.completion.chunk",
    "created": 0,
    "model": "m",
    "choices": [],
    "usage": {"prompt_tokens": 3, "completion_tokens": 30, "total_tokens": 33},
}


# -- what was sent, what came back -------------------------------------------------------------------
def parsed_arguments(body: Any) -> Any:
    """The body with tool-call arguments parsed (JSON spacing differs between serializers)."""
    if isinstance(body, dict):
        return {k: json.loads(v) if k == "arguments" else parsed_arguments(v) for k, v in body.items()}
    return [parsed_arguments(item) for item in body] if isinstance(body, list) else body


def sent_matches_recorded(
    server: ReplayServer, index: int, keys: tuple[str, ...] = ("model", "messages")
) -> bool:
    """The request sent contains the recorded request's `keys` (compared as a JSON subset)."""
    expected = server.replies[index].expected_json
    return is_subset(parsed_arguments({k: expected[k] for k in keys}), parsed_arguments(server.bodies[index]))


async def collect(model: Model, messages: list[ChatMessage], **kwargs: Any) -> list[MessageDelta]:
    return [delta async for delta in model.astream(messages, **kwargs)]


# -- the environment ---------------------------------------------------------------------------------
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed again)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def sdk_loaded_by_import(modules: str, *sdk: str) -> str:
    """What a fresh interpreter prints ("True" or "False") for whether `import sys, <modules>`
    loaded any of the `sdk` modules."""
    loaded = " or ".join(f"{name!r} in sys.modules" for name in sdk)
    code = f"import sys, {modules}; print({loaded})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def store_with_a_dead_workers_run(path: str) -> None:
    """Make the SQLite store at `path` hold two `running` runs: "dead-worker", whose lease has
    expired (its process was killed, say), and "still-alive", whose lease runs for 10 minutes."""
    import asyncio
    import concurrent.futures
    import time

    from codeloop.store import RunRecord, open_store

    async def record() -> None:
        async with open_store(path) as store:
            for run_id, ttl in (("dead-worker", 0.01), ("still-alive", 600.0)):
                await store.create_run(RunRecord(run_id=run_id, agent_name="a", task=f"task of {run_id}"))
                assert await store.acquire_lease(run_id, "worker-1", ttl)

    with concurrent.futures.ThreadPoolExecutor(1) as thread:  # the caller may be inside an event loop
        thread.submit(asyncio.run, record()).result()
    time.sleep(0.05)  # the first lease expires
