"""Replay recorded (or scripted) provider HTTP traffic from a local server, for adapter tests.

`ReplayServer` serves a list of `Reply`s in order from a `ThreadingHTTPServer` bound to
127.0.0.1 on an ephemeral port. Each incoming request takes the next reply; its method and URL
path are checked against the reply's (path matched as a suffix, so `/v1`, `/openai/v1` or
`/api/v1` base URLs all fit, and query strings are ignored). SSE bodies are written with chunked
transfer encoding, one piece per event (split after each blank line), so clients parse them
incrementally. Every request received is kept in `server.requests` for assertions.

    with ReplayServer.from_fixture("openai/chat_text.yaml") as server:
        client = AsyncOpenAI(base_url=server.url("/v1"), api_key="test")
        ...
        assert server.requests[0].json["model"] == "gpt-4o"

Scripted replies: `ReplayServer([Reply.json({...}), Reply.sse([chunk, ...]), {"status": 500}])`.
Fixtures live in `tests/data/wire` (copied with their source and licence in its README; override
with the `CODELOOP_WIRE_FIXTURES` environment variable); a missing fixture is an error, never a skip.
A mismatched or unexpected request gets HTTP 418 (which no SDK retries) and is listed in
`server.errors`; leaving the `with` block asserts there were none.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

__all__ = [
    "WIRE_DIR",
    "ReceivedRequest",
    "ReplayServer",
    "Reply",
    "is_subset",
    "load_fixture",
    "replay",
    "sse",
]

WIRE_DIR = Path(os.environ.get("CODELOOP_WIRE_FIXTURES") or Path(__file__).resolve().parent / "data" / "wire")


def sse(events: Sequence[Any], *, done: bool = True) -> str:
    """Build an SSE body. Items: a dict/list (one `data:` JSON line), an `(event, data)` pair
    (an `event:` line too), or a raw string (written as given, e.g. `": keep-alive"`)."""
    parts = []
    for item in events:
        if isinstance(item, str):
            parts.append(item.rstrip("\n") + "\n\n")
        elif isinstance(item, tuple):
            name, data = item
            parts.append(f"event: {name}\ndata: {json.dumps(data)}\n\n")
        else:
            parts.append(f"data: {json.dumps(item)}\n\n")
    if done:
        parts.append("data: [DONE]\n\n")
    return "".join(parts)


@dataclass
class Reply:
    """One HTTP response to serve, and what request it expects."""

    status: int = 200
    body: str = ""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = "POST"
    path: str | None = None
    """Expected path (suffix match either way); None accepts any path."""
    delay: float = 0.0
    """Seconds to wait before answering (for timeout tests)."""
    expected_json: Any = None
    """The request body recorded with a fixture, for optional subset comparisons."""

    @property
    def is_sse(self) -> bool:
        return self.content_type.startswith("text/event-stream")

    @classmethod
    def json(cls, body: Any, status: int = 200, **kwargs: Any) -> Reply:
        return cls(status=status, body=json.dumps(body), **kwargs)

    @classmethod
    def sse(cls, events: Sequence[Any], *, done: bool = True, **kwargs: Any) -> Reply:
        kwargs.setdefault("content_type", "text/event-stream; charset=utf-8")
        return cls(body=sse(events, done=done), **kwargs)

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Reply:
        """A scripted reply: `{"status", "json" | "sse" | "body", "content_type", "headers",
        "method", "path", "delay"}`; every key is optional."""
        spec = dict(spec)
        if "json" in spec:
            spec["body"] = json.dumps(spec.pop("json"))
        if "sse" in spec:
            spec["body"] = sse(spec.pop("sse"), done=spec.pop("done", True))
            spec.setdefault("content_type", "text/event-stream; charset=utf-8")
        return cls(**spec)

    @classmethod
    def from_interaction(cls, interaction: dict[str, Any]) -> Reply:
        """A reply from one VCR-style fixture interaction (see the fixtures' README)."""
        request, response = interaction["request"], interaction["response"]
        headers = {k.lower(): v[0] if isinstance(v, list) else v for k, v in response["headers"].items()}
        content_type = headers.pop("content-type", "application/json")
        if "parsed_body" in response:
            body = json.dumps(response["parsed_body"])
        else:
            body = response["body"]["string"]
        return cls(
            status=response["status"]["code"],
            body=body,
            content_type=content_type,
            headers=headers,
            method=request["method"],
            path=urlsplit(request["uri"]).path,
            expected_json=request.get("parsed_body"),
        )

    def pieces(self) -> list[bytes]:
        """The body as written on the wire: SSE split after each blank line, else one piece."""
        if not self.is_sse:
            return [self.body.encode("utf-8")]
        chunks = [part + "\n\n" for part in self.body.split("\n\n")[:-1]]
        rest = self.body[sum(len(c) for c in chunks) :]
        return [c.encode("utf-8") for c in [*chunks, rest] if c]


@dataclass
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def load_fixture(name: str) -> dict[str, Any]:
    """Load `WIRE_DIR/name` (e.g. "openai/chat_text.yaml"); a missing fixture fails the test."""
    path = WIRE_DIR / name
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


def _path_matches(expected: str | None, actual: str) -> bool:
    if expected is None:
        return True
    exp, act = expected.rstrip("/"), actual.rstrip("/")
    shorter, longer = sorted((exp, act), key=len)
    return longer == shorter or longer.endswith("/" + shorter.lstrip("/"))


class ReplayServer:
    """Serve `replies` in order on 127.0.0.1; a context manager (start/stop)."""

    def __init__(self, replies: Sequence[Reply | dict[str, Any]]) -> None:
        self.replies = [r if isinstance(r, Reply) else Reply.from_dict(r) for r in replies]
        self.requests: list[ReceivedRequest] = []
        self.errors: list[str] = []
        self._next = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_fixture(cls, name: str, interactions: Sequence[int] | None = None) -> ReplayServer:
        """Serve a fixture's interactions (all, or only the given indexes, in that order)."""
        recorded = load_fixture(name)["interactions"]
        chosen = recorded if interactions is None else [recorded[i] for i in interactions]
        return cls([Reply.from_interaction(i) for i in chosen])

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> ReplayServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.01,), name="wire-replay", daemon=True
        )  # a short poll interval makes stop() quick
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.stop()
        if exc_type is None:
            assert not self.errors, f"replay server errors: {self.errors}"

    # -- for tests -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    def url(self, prefix: str = "") -> str:
        """Base URL for a client, e.g. `server.url("/v1")`."""
        return f"http://127.0.0.1:{self.port}{prefix}"

    @property
    def bodies(self) -> list[Any]:
        """The JSON bodies received, in order."""
        return [r.json for r in self.requests]

    @property
    def remaining(self) -> int:
        return len(self.replies) - self._next

    # -- serving ---------------------------------------------------------------------------
    def _take(self, request: ReceivedRequest) -> Reply | None:
        with self._lock:
            self.requests.append(request)
            if self._next >= len(self.replies):
                self.errors.append(
                    f"unexpected request #{len(self.requests)}: {request.method} {request.path}"
                )
                return None
            reply = self.replies[self._next]
            self._next += 1
        if (reply.method and reply.method != request.method) or not _path_matches(reply.path, request.path):
            self.errors.append(f"expected {reply.method} {reply.path}, got {request.method} {request.path}")
            return None
        return reply


def _make_handler(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_ReplayHandler):
        replay = server

    return Handler


class _ReplayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real providers do
    replay: ReplayServer

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        received = ReceivedRequest(
            method=self.command,
            path=urlsplit(self.path).path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        reply = self.replay._take(received)
        if reply is None:
            reply = Reply.json({"error": {"message": self.replay.errors[-1]}}, status=418)
        time.sleep(reply.delay)
        self._write(reply)

    def _write(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if not reply.is_sse:
            data = reply.body.encode("utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for piece in reply.pieces():
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


@pytest.fixture
def replay() -> Iterator[Callable[..., ReplayServer]]:
    """Pytest fixture: a factory `replay(fixture_name | replies, interactions=None)` that
    starts a `ReplayServer` and stops it (checking for errors) after the test.
    Use it with `from wire import replay` in a test module."""
    servers: list[ReplayServer] = []

    def start(
        source: str | Sequence[Reply | dict[str, Any]], interactions: Sequence[int] | None = None
    ) -> ReplayServer:
        if isinstance(source, str):
            server = ReplayServer.from_fixture(source, interactions)
        else:
            server = ReplayServer(source)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()
    errors = [e for s in servers for e in s.errors]
    assert not errors, f"replay server errors: {errors}"


def is_subset(expected: Any, actual: Any) -> bool:
    """True when every key in `expected` (recursively) is in `actual` with an equal value;
    lists must have the same length and match item by item."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and is_subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(is_subset(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual)
