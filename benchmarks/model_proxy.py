"""A recording proxy in front of the llama.cpp server, shared by every side of a real-model figure.

Each run is sent to its own base URL, `proxy.base_url(tag)`, so every model request is filed
under its task whichever agent (manager or sub-agent) sent it. For each request the proxy keeps
the messages, the reply text, and llama.cpp's own counts and timings: prompt tokens (all of them,
cached or not), output tokens, prompt-processing and decoding time. Token figures are read here,
identically for all sides, instead of from each framework's bookkeeping (which leaves out
sub-agents in both). Replies are buffered and passed on unchanged, streamed or not.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote

__all__ = ["OVER_BUDGET", "Exchange", "ModelProxy"]

OVER_BUDGET = "the task's time budget is spent"

_PREFIX = "/run/"


@dataclass
class Exchange:
    """One model request as the server saw it."""

    messages: list[dict[str, Any]]
    reply: str = ""
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    prompt_s: float = 0.0
    decode_s: float = 0.0
    wall_s: float = 0.0
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ModelProxy:
    """`with ModelProxy(upstream) as proxy:` serves on a free local port until the block ends."""

    upstream: str
    """The server's OpenAI-style base URL, ending in /v1."""
    log: Callable[[str, Exchange], None] | None = None
    """Called after each request with its tag and exchange (progress lines for long runs)."""
    exchanges: dict[str, list[Exchange]] = field(default_factory=lambda: defaultdict(list))
    task_budget_s: float | None = None
    """Wall time a tag (a task) may use from its first request: later requests are refused with
    HTTP 400 (no client retries that), which ends the run as a failure, on every side alike."""
    _first_request: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)

    def base_url(self, tag: str) -> str:
        assert self._server is not None, "use the proxy as a context manager"
        return f"http://127.0.0.1:{self._server.server_port}{_PREFIX}{quote(tag, safe='')}/v1"

    def take(self, tag: str) -> list[Exchange]:
        """The exchanges filed under `tag`, forgotten by the proxy."""
        return self.exchanges.pop(tag, [])

    def __enter__(self) -> ModelProxy:
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    proxy: ModelProxy
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        tag, _, rest = self.path.removeprefix(_PREFIX).partition("/v1")
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request = json.loads(body or b"{}")
        exchange = Exchange(messages=request.get("messages", []))
        self.proxy.exchanges[unquote(tag)].append(exchange)
        started = time.perf_counter()
        first = self.proxy._first_request.setdefault(unquote(tag), started)
        budget = self.proxy.task_budget_s
        if budget is not None and started - first > budget:
            message = f"{OVER_BUDGET} ({budget / 60:g} min)"
            status, kind, payload = (
                400,
                "application/json",
                json.dumps({"error": {"message": message}}).encode(),
            )
        else:
            status, kind, payload = self._forward(rest, body)
        exchange.wall_s = time.perf_counter() - started
        _record(exchange, status, kind, payload)
        if self.proxy.log:
            self.proxy.log(unquote(tag), exchange)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a side stopped mid-request
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    def _forward(self, rest: str, body: bytes) -> tuple[int, str, bytes]:
        headers = {"Content-Type": "application/json"}
        if self.headers.get("Authorization"):
            headers["Authorization"] = self.headers["Authorization"]
        request = urllib.request.Request(f"{self.proxy.upstream}{rest}", data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=1800) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type", "application/json"), err.read()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _record(exchange: Exchange, status: int, kind: str, payload: bytes) -> None:
    if status != 200:
        exchange.error = f"HTTP {status}: {payload[:500].decode(errors='replace')}"
        return
    text = payload.decode()
    timings: dict[str, Any]
    if kind.startswith("text/event-stream"):
        chunks = [json.loads(line[5:]) for line in text.splitlines()
                  if line.startswith("data:") and line[5:].strip() != "[DONE]"]  # fmt: skip
        deltas = [choice.get("delta") or {} for c in chunks for choice in c.get("choices", [])]
        exchange.reply = "".join(delta.get("content") or "" for delta in deltas)
        timings = next((c["timings"] for c in reversed(chunks) if "timings" in c), {})
    else:
        body = json.loads(text)
        exchange.reply = body["choices"][0]["message"].get("content") or ""
        timings = body.get("timings", {})
    exchange.cached_tokens = int(timings.get("cache_n", 0))
    exchange.input_tokens = exchange.cached_tokens + int(timings.get("prompt_n", 0))
    exchange.output_tokens = int(timings.get("predicted_n", 0))
    exchange.prompt_s = float(timings.get("prompt_ms", 0.0)) / 1000
    exchange.decode_s = float(timings.get("predicted_ms", 0.0)) / 1000
