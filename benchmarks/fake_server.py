"""A local OpenAI-compatible chat server for the concurrency benchmark: it answers every request
after a fixed latency with the next scripted code action of that conversation (counted from the
assistant turns already in it), so both frameworks run the same 5-step trajectory.

    python -m benchmarks.fake_server --latency 0.2 --steps 5     # prints the port, then serves
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from typing import Any

__all__ = ["action_for", "main"]


def action_for(messages: list[dict[str, Any]], steps: int) -> str:
    """The reply for a conversation: step k prints k; the last step gives the final answer."""
    step = 1 + sum(1 for m in messages if m.get("role") == "assistant")
    code = "final_answer('done')" if step >= steps else f"x = {step}\nprint(x)"
    return f"Thought: step {step}.\n<code>\n{code}\n</code>"


def _completion(text: str, stream: bool) -> tuple[str, bytes]:
    usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    base = {"id": "bench", "created": int(time.time()), "model": "bench"}
    if not stream:
        message = {"role": "assistant", "content": text}
        body = {**base, "object": "chat.completion", "usage": usage,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip
        return "application/json", json.dumps(body).encode()
    chunk = {**base, "object": "chat.completion.chunk"}
    events = [
        {
            **chunk,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}],
        },
        {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**chunk, "choices": [], "usage": usage},
    ]
    sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return "text/event-stream", sse.encode()


async def _handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float, steps: int
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = dict(
                line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line
            )
            length = int({k.lower(): v for k, v in headers.items()}.get("content-length", "0"))
            request = json.loads(await reader.readexactly(length) or b"{}")
            await asyncio.sleep(latency)
            kind, body = _completion(
                action_for(request.get("messages", []), steps), bool(request.get("stream"))
            )
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve(latency: float, steps: int) -> None:
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, latency, steps), "127.0.0.1", 0, backlog=4096
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        asyncio.run(_serve(args.latency, args.steps))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
