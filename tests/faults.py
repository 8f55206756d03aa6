"""A fault-injecting local HTTP server for retry tests: `FaultServer` is a `ReplayServer` whose
scripted replies may also be faults a real provider (or the network in between) produces.

    with FaultServer([Fault.hang(), Fault.cut(Reply.sse(events), keep=2), Reply.json(ok)]) as server:
        ...

* `Fault.hang()` accepts the request and never answers (until the server stops), so the client's
  own timeout fires.
* `Fault.cut(reply, keep)` starts writing `reply` (status, headers, and the first `keep` SSE events
  or, for other bodies, the first `keep` bytes of a body whose full length was announced), then
  resets the connection (TCP RST), as a crashing server or a dropped connection would.

Ordinary failures need no fault: `Reply.json(body, status=429, headers={"retry-after": "7"})`,
a 200 with a malformed JSON body, or an error object inside a 200 SSE stream are plain `Reply`s.
The clock and sleeps of the retry policy under test are injected: `FakeClock`.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from wire import ReplayServer, Reply, _ReplayHandler

__all__ = ["FakeClock", "Fault", "FaultServer"]


@dataclass
class Fault(Reply):
    """A reply that goes wrong on the wire: `kind` is "hang" or "cut"."""

    kind: str = "hang"
    keep: int = 0
    """For "cut": SSE events (or body bytes) written before the connection is reset."""

    @classmethod
    def hang(cls) -> Fault:
        return cls(kind="hang")

    @classmethod
    def cut(cls, reply: Reply, keep: int) -> Fault:
        return cls(
            status=reply.status,
            body=reply.body,
            content_type=reply.content_type,
            headers=dict(reply.headers),
            kind="cut",
            keep=keep,
        )


class FaultServer(ReplayServer):
    """A `ReplayServer` that also serves `Fault`s. Stopping it releases hung requests."""

    def __init__(self, replies: Sequence[Reply | dict[str, Any]]) -> None:
        super().__init__(replies)
        self.released = threading.Event()

    def start(self) -> FaultServer:
        self.released.clear()
        handler = type("Handler", (_FaultHandler,), {"replay": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.01,), name="wire-faults", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        super().stop()


class _FaultHandler(_ReplayHandler):
    replay: FaultServer

    def _write(self, reply: Reply) -> None:
        if not isinstance(reply, Fault):
            super()._write(reply)
        elif reply.kind == "hang":
            self.replay.released.wait(timeout=60)
            self._reset()
        else:
            self._write_cut(reply)
            self._reset()

    def _write_cut(self, reply: Fault) -> None:
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.is_sse:
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for piece in reply.pieces()[: reply.keep]:
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        else:
            data = reply.body.encode("utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: reply.keep])
        self.wfile.flush()

    def _reset(self) -> None:
        """Close the connection with a TCP RST (linger 0) instead of an orderly FIN."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


@dataclass
class FakeClock:
    """An injected clock for `RetryPolicy(clock=..., sleep=...)`: `sleep` records the wait and
    moves the clock forward instantly, so backoff is measured without waiting."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
