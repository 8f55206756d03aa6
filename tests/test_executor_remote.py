"""Remote executors (Docker, E2B, Modal) end to end against local stand-ins of their services.

No credentials or Docker engine exist here, so each SDK talks to a fake of its service on this
machine, and each fake runs the remote command (the real bootstrap + `worker.py`) as a real
local subprocess:

* Docker: the official `docker` SDK against a fake Engine API on a unix socket (create, attach
  with the real HTTP 101 upgrade and multiplexed framing, start, wait, inspect, remove).
* E2B: the official `e2b` SDK in its debug mode against a fake envd Process service built from the
  SDK's own generated Connect server stub (`ProcessWSGIApplication`), served over HTTP/1.1.
* Modal: see the Modal section.

Live tests (`-m live`) run the red-team corpus against the real services; they are skipped unless
credentials or a Docker daemon are available.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import queue
import re
import shlex
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import uuid
import wsgiref.simple_server
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from codeloop.errors import ConfigurationError
from codeloop.executors import create_executor
from codeloop.executors.base import Executor, ExecutorLimits
from codeloop.executors.remote import BOOTSTRAP, RemoteExecutor

LIMITS = ExecutorLimits(timeout_s=20.0, memory_bytes=128 * 2**20, max_output_chars=500)
QUICK = ExecutorLimits(timeout_s=1.0, memory_bytes=128 * 2**20, max_output_chars=500)


def _local_argv(argv: list[str]) -> list[str]:
    """The remote command, run here: the sandbox's `python3` is this interpreter."""
    assert argv[1:] == ["-c", BOOTSTRAP], argv
    return [sys.executable, *argv[1:]]


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


# -- a fake Docker Engine ---------------------------------------------------------------------------


class _FakeContainer:
    def __init__(self, ident: str, config: dict[str, Any]) -> None:
        self.id = ident
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None
        self.started = threading.Event()

    def start(self) -> None:
        env = dict(item.split("=", 1) for item in self.config.get("Env") or [])
        self.process = subprocess.Popen(
            _local_argv(self.config["Cmd"]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, cwd=tempfile.gettempdir(), start_new_session=True,
        )  # fmt: skip
        self.started.set()

    def kill(self) -> None:
        if self.process is not None:
            _kill_group(self.process)

    def state(self) -> dict[str, Any]:
        code = None if self.process is None else self.process.poll()
        status = "created" if self.process is None else "running" if code is None else "exited"
        exit_code = 128 - code if code is not None and code < 0 else code or 0
        return {"Status": status, "Running": status == "running", "ExitCode": exit_code, "OOMKilled": False}


class FakeDockerEngine:
    """The Engine API calls DockerExecutor makes, served on a unix socket."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.images = {"python:3.12-slim"}
        self.containers: dict[str, _FakeContainer] = {}
        self.created: list[dict[str, Any]] = []
        self.removed: list[str] = []
        engine = self

        class Handler(_EngineHandler):
            fake = engine

        self.server = socketserver.ThreadingUnixStreamServer(path, Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"unix://{self.path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for container in list(self.containers.values()):
            container.kill()


class _EngineHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeDockerEngine

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = re.sub(r"^/v[\d.]+", "", unquote(url.path))
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        for pattern, verb, handler in _ROUTES:
            match = re.fullmatch(pattern, path)
            if match and verb == method:
                return handler(self, *match.groups(), query=query, body=body)
        self._json(404, {"message": f"fake engine: no route for {method} {path}"})

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _empty(self, status: int = 204) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _container(self, ident: str) -> _FakeContainer | None:
        container = self.fake.containers.get(ident)
        if container is None:
            self._json(404, {"message": f"No such container: {ident}"})
        return container

    # -- routes --

    def version(self, **_: Any) -> None:
        self._json(200, {"ApiVersion": "1.44", "MinAPIVersion": "1.24", "Version": "fake"})

    def ping(self, **_: Any) -> None:
        data = b"OK"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def image(self, name: str, **_: Any) -> None:
        if name in self.fake.images:
            self._json(200, {"Id": "sha256:" + "0" * 64, "RepoTags": [name]})
        else:
            self._json(404, {"message": f"No such image: {name}"})

    def pull(self, *, query: dict[str, str], **_: Any) -> None:
        self.fake.images.add(f"{query['fromImage']}:{query.get('tag', 'latest')}")
        self._json(200, {"status": "Downloaded newer image"})

    def create(self, *, body: dict[str, Any], **_: Any) -> None:
        ident = uuid.uuid4().hex
        self.fake.containers[ident] = _FakeContainer(ident, body)
        self.fake.created.append(body)
        self._json(201, {"Id": ident, "Warnings": []})

    def inspect(self, ident: str, **_: Any) -> None:
        if container := self._container(ident):
            config = container.config
            host = config.get("HostConfig", {})
            self._json(200, {"Id": ident, "Config": config, "HostConfig": host, "State": container.state()})

    def start(self, ident: str, **_: Any) -> None:
        if container := self._container(ident):
            container.start()
            self._empty()

    def wait(self, ident: str, **_: Any) -> None:
        if (container := self._container(ident)) and container.process is not None:
            container.process.wait()
            self._json(200, {"StatusCode": container.state()["ExitCode"], "Error": None})

    def remove(self, ident: str, **_: Any) -> None:
        if container := self._container(ident):
            container.kill()
            del self.fake.containers[ident]
            self.fake.removed.append(ident)
            self._empty()

    def attach(self, ident: str, *, query: dict[str, str], **_: Any) -> None:
        container = self._container(ident)
        if container is None:
            return
        self.wfile.write(
            b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        )
        self.wfile.flush()
        container.started.wait(10)
        assert container.process is not None and query.get("stdin") in ("1", "True")
        self.close_connection = True
        _Hijacked(self.connection, self.rfile, container.process).run()


class _Hijacked:
    """An attached connection: raw stdin in, stdout/stderr out in Docker's 8-byte-header frames."""

    def __init__(self, sock: socket.socket, rfile: Any, process: subprocess.Popen[bytes]) -> None:
        self.sock, self.rfile, self.process = sock, rfile, process
        self.lock = threading.Lock()

    def run(self) -> None:
        assert self.process.stdout is not None and self.process.stderr is not None
        threading.Thread(target=self._stdin, daemon=True).start()
        errors = threading.Thread(target=self._output, args=(self.process.stderr, 2), daemon=True)
        errors.start()
        self._output(self.process.stdout, 1)
        errors.join()
        try:  # the container ended: end the stream (this also wakes the stdin thread)
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _stdin(self) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            while data := self.rfile.read1(65536):
                stdin.write(data)
                stdin.flush()
        except (OSError, ValueError):
            pass
        finally:
            try:
                stdin.close()  # stdin_once: the client went away
            except OSError:
                pass

    def _output(self, stream: Any, kind: int) -> None:
        while data := os.read(stream.fileno(), 65536):
            frame = bytes([kind, 0, 0, 0]) + len(data).to_bytes(4, "big") + data
            with self.lock:
                try:
                    self.sock.sendall(frame)
                except OSError:
                    return


_ROUTES: list[tuple[str, str, Callable[..., None]]] = [
    (r"/version", "GET", _EngineHandler.version),
    (r"/_ping", "GET", _EngineHandler.ping),
    (r"/images/(.+)/json", "GET", _EngineHandler.image),
    (r"/images/create", "POST", _EngineHandler.pull),
    (r"/containers/create", "POST", _EngineHandler.create),
    (r"/containers/(\w+)/json", "GET", _EngineHandler.inspect),
    (r"/containers/(\w+)/start", "POST", _EngineHandler.start),
    (r"/containers/(\w+)/wait", "POST", _EngineHandler.wait),
    (r"/containers/(\w+)/attach", "POST", _EngineHandler.attach),
    (r"/containers/(\w+)", "DELETE", _EngineHandler.remove),
]


@pytest.fixture
def docker_engine() -> Iterator[FakeDockerEngine]:
    pytest.importorskip("docker")
    with tempfile.TemporaryDirectory(prefix="codeloop-fake-docker-") as tmp:
        engine = FakeDockerEngine(str(Path(tmp) / "docker.sock"))
        yield engine
        engine.close()


# -- a fake E2B envd ----------------------------------------------------------------------------------


class _QuietWSGIHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


def _fake_envd_service() -> Any:
    """envd's Process service (Start, SendInput, SendSignal) on the e2b SDK's own generated stub;
    each started command is the real bootstrap in a local subprocess."""
    from e2b.envd.process import process_connect, process_pb
    from protobuf import Oneof as oneof_type

    event = process_pb.ProcessEvent
    Oneof: Any = oneof_type  # the stubs want literal field names; these are checked at run time

    class FakeEnvd(process_connect.ProcessSync):
        def __init__(self) -> None:
            self.processes: dict[int, subprocess.Popen[bytes]] = {}
            self.commands: list[tuple[str, dict[str, str]]] = []

        def start(self, request: Any, ctx: Any) -> Iterator[Any]:
            config = request.process
            assert config.cmd == "/bin/bash" and request.stdin, config
            self.commands.append((config.args[-1], dict(config.envs)))
            process = subprocess.Popen(
                _local_argv(shlex.split(config.args[-1])), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, env=dict(config.envs), start_new_session=True,
            )  # fmt: skip
            self.processes[process.pid] = process
            yield process_pb.StartResponse(
                event=event(event=Oneof("start", event.StartEvent(pid=process.pid)))
            )
            for stream, chunk in _merged_output(process):
                data = event.DataEvent(output=Oneof(stream, chunk))
                yield process_pb.StartResponse(event=event(event=Oneof("data", data)))
            code = process.wait()
            end = event.EndEvent(exit_code=code, exited=True, status=f"exit status {code}")
            if code < 0:
                end = event.EndEvent(
                    exit_code=-1, exited=False, status="signal: killed", error="signal: killed"
                )
            yield process_pb.StartResponse(event=event(event=Oneof("end", end)))

        def _process(self, selector: Any) -> subprocess.Popen[bytes]:
            from connectrpc.code import Code
            from connectrpc.errors import ConnectError

            process = self.processes.get(selector.selector.value)
            if process is None or process.poll() is not None:
                raise ConnectError(Code.NOT_FOUND, "process not found")
            return process

        def send_input(self, request: Any, ctx: Any) -> Any:
            stdin = self._process(request.process).stdin
            assert stdin is not None and request.input.input.field == "stdin"
            stdin.write(request.input.input.value)
            stdin.flush()
            return process_pb.SendInputResponse()

        def send_signal(self, request: Any, ctx: Any) -> Any:
            _kill_group(self._process(request.process))
            return process_pb.SendSignalResponse()

    return FakeEnvd()


def _merged_output(process: subprocess.Popen[bytes]) -> Iterator[tuple[str, bytes]]:
    """("stdout" | "stderr", chunk) as the process writes them, until both streams end."""
    chunks: queue.Queue[tuple[str, bytes] | None] = queue.Queue()

    def read(name: str, stream: Any) -> None:
        while data := os.read(stream.fileno(), 65536):
            chunks.put((name, data))
        chunks.put(None)

    for name, stream in (("stdout", process.stdout), ("stderr", process.stderr)):
        threading.Thread(target=read, args=(name, stream), daemon=True).start()
    open_streams = 2
    while open_streams:
        item = chunks.get()
        if item is None:
            open_streams -= 1
        else:
            yield item


class _Limited:
    """A request body of known length (wsgiref hands the app the raw socket stream)."""

    def __init__(self, raw: Any, length: int) -> None:
        self.raw, self.left = raw, length

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(self.left if size < 0 else min(size, self.left)) if self.left else b""
        self.left -= len(data)
        return bytes(data)


class _Dechunked:
    """A chunked request body, decoded."""

    def __init__(self, raw: Any) -> None:
        self.raw, self.left, self.done = raw, 0, False

    def read(self, size: int = -1) -> bytes:
        if self.done:
            return b""
        if self.left == 0:
            self.left = int(self.raw.readline().split(b";")[0], 16)
            if self.left == 0:
                self.raw.readline()  # the blank line after the last chunk
                self.done = True
                return b""
        data = self.raw.read(self.left if size < 0 else min(size, self.left))
        self.left -= len(data)
        if self.left == 0:
            self.raw.readline()  # the CRLF after a chunk
        return bytes(data)


def _framed_bodies(app: Callable[..., Any]) -> Callable[..., Any]:
    """Give the app a request body that ends where the request does (chunked or sized)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        raw = environ["wsgi.input"]
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            environ["wsgi.input"] = _Dechunked(raw)
        else:
            environ["wsgi.input"] = _Limited(raw, int(environ.get("CONTENT_LENGTH") or 0))
        return app(environ, start_response)

    return wrapped


class FakeE2B:
    """A fake envd on 127.0.0.1, and the `sandbox_kwargs` that point the e2b SDK at it."""

    def __init__(self) -> None:
        from e2b.envd.process import process_connect

        self.envd = _fake_envd_service()
        app = process_connect.ProcessWSGIApplication(self.envd)
        self.server = wsgiref.simple_server.make_server(
            "127.0.0.1",
            0,
            _framed_bodies(app),
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietWSGIHandler,
        )
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def sandbox_kwargs(self) -> dict[str, Any]:
        port = self.server.server_address[1]
        return {"debug": True, "sandbox_url": f"http://127.0.0.1:{port}", "http_version": "1.1"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for process in self.envd.processes.values():
            _kill_group(process)


@pytest.fixture
def e2b_service() -> Iterator[FakeE2B]:
    pytest.importorskip("e2b")
    fake = FakeE2B()
    yield fake
    fake.close()


# -- a local stand-in for a Modal Sandbox --------------------------------------------------------------
#
# Modal's SDK reaches its control plane and each task's command router over gRPC (a dozen RPCs
# with image building and JWT access); no test double ships with it beyond a servicer helper.
# So the Modal adapter is tested one level up: `_create_sandbox` returns this object, shaped
# like `modal.Sandbox`'s async interface (`stdin.write` + `stdin.drain.aio()`, async iteration of
# `stdout`/`stderr`, `terminate.aio()`, `wait.aio()`, `returncode`), running the real bootstrap and
# worker in a local subprocess. `test_modal_sdk_has_the_interface_the_adapter_uses` checks the
# real SDK against that shape. The gRPC calls themselves are covered only by the live test.


class _Aio:
    """`thing.method.aio(...)`, as synchronicity exposes Modal's async methods."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.aio = function


class _LocalStdin:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._pending = bytearray()
        self.drain = _Aio(self._drain)

    def write(self, data: bytes | str) -> None:
        self._pending += data.encode() if isinstance(data, str) else data

    async def _drain(self) -> None:
        data, self._pending = bytes(self._pending), bytearray()
        assert self._process.stdin is not None
        self._process.stdin.write(data)
        await self._process.stdin.drain()


class LocalModalSandbox:
    def __init__(self, process: asyncio.subprocess.Process, argv: list[str], options: dict[str, Any]) -> None:
        self.process, self.argv, self.options = process, argv, options
        self.stdin = _LocalStdin(process)
        self.stdout = self._text(process.stdout)
        self.stderr = self._text(process.stderr)
        self.terminate = _Aio(self._terminate)
        self.wait = _Aio(self._wait)
        self.terminated = False

    @classmethod
    async def start(cls, argv: list[str], options: dict[str, Any]) -> LocalModalSandbox:
        process = await asyncio.create_subprocess_exec(
            *_local_argv(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=options["env"], start_new_session=True,
        )  # fmt: skip
        return cls(process, argv, options)

    @staticmethod
    async def _text(stream: asyncio.StreamReader | None) -> AsyncIterator[str]:
        assert stream is not None
        while chunk := await stream.read(65536):
            yield chunk.decode()

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def _terminate(self) -> None:
        self.terminated = True
        if self.process.returncode is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        await self.process.wait()

    async def _wait(self, raise_on_termination: bool = True) -> None:
        await self.process.wait()


def _local_modal_executor(limits: ExecutorLimits, **kwargs: Any) -> Any:
    pytest.importorskip("modal")
    from codeloop.executors.modal import ModalExecutor

    class LocalModalExecutor(ModalExecutor):
        sandboxes: list[LocalModalSandbox]

        async def _create_sandbox(self, argv: list[str]) -> Any:
            sandbox = await LocalModalSandbox.start(argv, self.sandbox_options())
            self.sandboxes.append(sandbox)
            return sandbox

    executor = LocalModalExecutor(limits, **kwargs)
    executor.sandboxes = []
    return executor


# -- the same behaviour through every remote transport ---------------------------------------------------


class Remote:
    """One remote executor kind wired to its local stand-in, and what the stand-in saw."""

    def __init__(self, kind: str, make: Callable[..., RemoteExecutor], alive: Callable[[], int]) -> None:
        self.kind, self.make, self.alive = kind, make, alive


@pytest.fixture(params=["docker", "e2b", "modal"])
def remote(request: pytest.FixtureRequest) -> Iterator[Remote]:
    kind = request.param
    if kind == "docker":
        from codeloop.executors.docker import DockerExecutor

        engine = request.getfixturevalue("docker_engine")
        yield Remote(
            kind, lambda limits, **kw: DockerExecutor(limits, base_url=engine.base_url, **kw),
            lambda: sum(c.state()["Running"] for c in engine.containers.values()),
        )  # fmt: skip
    elif kind == "e2b":
        from codeloop.executors.e2b import E2BExecutor

        service = request.getfixturevalue("e2b_service")
        yield Remote(
            kind, lambda limits, **kw: E2BExecutor(limits, sandbox_kwargs=service.sandbox_kwargs, **kw),
            lambda: sum(p.poll() is None for p in service.envd.processes.values()),
        )  # fmt: skip
    else:
        made: list[Any] = []

        def make(limits: ExecutorLimits, **kw: Any) -> Any:
            made.append(_local_modal_executor(limits, **kw))
            return made[-1]

        yield Remote(kind, make, lambda: sum(s.returncode is None for e in made for s in e.sandboxes))


class Tools:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def add(self, a: int, b: int = 0) -> int:
        self.calls.append(("add", (a, b)))
        return a + b

    async def fetch(self, key: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        self.calls.append(("fetch", key))
        return {"key": key, "rows": [1, 2, 3]}

    def fail(self) -> None:
        raise ValueError("bad input: 42")

    def functions(self) -> dict[str, Any]:
        return {"add": self.add, "fetch": self.fetch, "fail": self.fail}


@pytest.fixture
async def session(remote: Remote) -> AsyncIterator[tuple[RemoteExecutor, Tools]]:
    tools = Tools()
    executor = remote.make(LIMITS, additional_authorized_imports=["os", "json"])
    await executor.start(tools.functions())
    yield executor, tools
    await executor.close()


async def test_tools_run_on_the_host_and_variables_persist(session: tuple[RemoteExecutor, Tools]) -> None:
    executor, tools = session
    await executor.send_variables({"base": 10, "when": (2026, 11)})
    out = await executor.run(
        "total = add(base, 5)\ninfo = fetch('k')\nprint('rows', info['rows'])\ntotal * 2"
    )
    assert out.error is None and out.output == 30 and out.logs == "rows [1, 2, 3]\n"
    assert tools.calls == [("add", (10, 5)), ("fetch", "k")]
    out = await executor.run("total + len(info['rows']), when")
    assert out.output == (18, (2026, 11))


async def test_final_answer_ends_the_snippet_and_cannot_be_swallowed(
    session: tuple[RemoteExecutor, Tools],
) -> None:
    executor, _ = session
    code = "try:\n    final_answer({'answer': add(40, 2)})\nexcept BaseException:\n    pass\nprint('after')"
    out = await executor.run(code)
    assert out.is_final_answer and out.output == {"answer": 42} and "after" not in out.logs


async def test_errors_come_back_model_readable(session: tuple[RemoteExecutor, Tools]) -> None:
    executor, _ = session
    out = await executor.run("x = 1\ny = x / 0")
    assert out.error is not None and out.error.type == "ZeroDivisionError"
    assert out.error.line == 2 and out.error.source_line == "y = x / 0" and not out.error.state_lost
    out = await executor.run("try:\n    fail()\nexcept ValueError as e:\n    print('caught', e)")
    assert out.error is None and out.logs == "caught bad input: 42\n"
    out = await executor.run("import socket")
    assert out.error is not None and out.error.type == "ImportError"
    assert "/" not in out.error.describe()  # no host (or sandbox) paths in what the model sees


async def test_a_time_limit_kills_the_remote_worker_and_starts_a_new_one(remote: Remote) -> None:
    executor = remote.make(QUICK)
    await executor.start({})
    try:
        await executor.run("kept = 1")
        out = await executor.run("while True:\n    pass")
        assert out.error is not None and out.error.limit == "timeout_s" and out.error.state_lost
        assert remote.alive() == 1  # the old worker is gone, its successor runs
        out = await executor.run("print(1 + 1)\n'kept' in globals()")
        assert out.error is None and out.logs.endswith("2\n") and out.output is False
    finally:
        await executor.close()
    assert remote.alive() == 0


async def test_a_crashed_worker_is_replaced(session: tuple[RemoteExecutor, Tools], remote: Remote) -> None:
    executor, _ = session
    out = await executor.run("import os\nos._exit(3)")
    assert out.error is not None and out.error.state_lost and "died" in out.error.message
    assert "exit code 3" in out.error.message
    assert (await executor.run("21 * 2")).output == 42
    assert remote.alive() == 1


async def test_the_remote_worker_gets_no_host_environment(
    session: tuple[RemoteExecutor, Tools], monkeypatch: pytest.MonkeyPatch
) -> None:
    executor, _ = session
    out = await executor.run(
        "import os\nsorted(k for k in os.environ if k.startswith(('CODELOOP', 'HOME', 'PATH')))"
    )
    assert out.error is None and "CODELOOP_HOST_ONLY" not in out.output


@pytest.fixture(autouse=True)
def _host_only_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODELOOP_HOST_ONLY", "must-not-reach-the-sandbox")


async def test_a_code_agent_runs_through_a_remote_executor_chosen_by_name(
    docker_engine: FakeDockerEngine,
) -> None:
    from codeloop import CodeAgent, ScriptedModel
    from codeloop.result import RunState

    prices = {"apple": 0.5, "pear": 0.75}

    def price(item: str) -> float:
        """Look up a price.

        Args:
            item: The item's name.
        """
        return prices[item]

    model = ScriptedModel([
        "Thought: look up.\n```python\ntotal = 3 * price('apple') + 2 * price('pear')\nprint(total)\n```",
        "Thought: answer.\n```python\nfinal_answer(total)\n```",
    ])  # fmt: skip
    agent = CodeAgent(
        [price], model, executor="docker", executor_kwargs={"base_url": docker_engine.base_url},
        executor_limits=LIMITS, max_steps=3,
    )  # fmt: skip
    with agent:
        result = await asyncio.to_thread(
            agent.run, "What do 3 apples and 2 pears cost?", return_full_result=True
        )
    assert result.state is RunState.SUCCESS and result.output == 3.0
    assert result.memory.action_steps()[0].observations.strip() == "3.0"


# -- Docker specifics --------------------------------------------------------------------------------------


def test_frames_are_demultiplexed_whatever_the_chunking() -> None:
    from codeloop.executors.docker import FrameDecoder

    frames = [(1, b'{"op":"ready"}\n'), (2, b"warning\n"), (1, b""), (1, b"x" * 70_000)]
    stream = b"".join(bytes([k, 0, 0, 0]) + len(p).to_bytes(4, "big") + p for k, p in frames)
    for size in (1, 3, 8, 9, 4096, len(stream)):
        decoder = FrameDecoder()
        got = [f for i in range(0, len(stream), size) for f in decoder.feed(stream[i : i + size])]
        assert got == frames and decoder.pending == 0


async def test_docker_containers_are_locked_down(docker_engine: FakeDockerEngine) -> None:
    from codeloop.executors.docker import DockerExecutor

    executor = DockerExecutor(LIMITS, base_url=docker_engine.base_url, env={"MODE": "test"})
    await executor.start({})
    await executor.close()
    config = docker_engine.created[0]
    assert config["Image"] == "python:3.12-slim" and config["Cmd"] == ["python3", "-c", BOOTSTRAP]
    assert config["OpenStdin"] and config["StdinOnce"] and not config["Tty"]
    assert config["User"] == "65534:65534" and config["WorkingDir"] == "/tmp"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["MODE"] == "test" and env["HOME"] == "/tmp" and "CODELOOP_HOST_ONLY" not in env
    host = config["HostConfig"]
    memory = LIMITS.memory_bytes + 256 * 2**20
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"] and host["PidsLimit"] == 128
    assert host["Memory"] == host["MemorySwap"] == memory and host["NanoCpus"] == 10**9
    assert docker_engine.containers == {}  # removed on close


async def test_docker_options_can_be_loosened_explicitly(docker_engine: FakeDockerEngine) -> None:
    from codeloop.executors.docker import DockerExecutor

    executor = DockerExecutor(
        LIMITS, base_url=docker_engine.base_url, network=True, runtime="runc", cpus=None,
        host_config_kwargs={"pids_limit": 16}, container_kwargs={"hostname": "sandbox"},
    )  # fmt: skip
    await executor.start({})
    await executor.close()
    config = docker_engine.created[0]
    host = config["HostConfig"]
    assert host["NetworkMode"] == "bridge" and host["Runtime"] == "runc" and host["PidsLimit"] == 16
    assert "NanoCpus" not in host and config["Hostname"] == "sandbox"


async def test_a_missing_image_is_pulled_or_refused(docker_engine: FakeDockerEngine) -> None:
    from codeloop.executors.docker import DockerExecutor

    refusing = DockerExecutor(LIMITS, base_url=docker_engine.base_url, image="python:3.13-slim", pull="never")
    with pytest.raises(ConfigurationError, match=r"python:3\.13-slim.*pull='never'"):
        await refusing.start({})
    pulling = DockerExecutor(LIMITS, base_url=docker_engine.base_url, image="python:3.13-slim")
    await pulling.start({})
    try:
        assert (await pulling.run("6 * 7")).output == 42
    finally:
        await pulling.close()
    assert "python:3.13-slim" in docker_engine.images


async def test_an_unreachable_docker_daemon_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("docker")
    from codeloop.executors.docker import DockerExecutor

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    executor = DockerExecutor(LIMITS)  # building it contacts nothing
    with pytest.raises(ConfigurationError, match=r"Docker daemon is not reachable.*DOCKER_HOST"):
        await executor.start({})
    await executor.close()


# -- E2B specifics -------------------------------------------------------------------------------------


async def test_e2b_starts_the_bootstrap_with_stdin_and_only_the_given_environment(
    e2b_service: FakeE2B,
) -> None:
    from codeloop.executors.e2b import E2BExecutor
    from codeloop.executors.remote import DEFAULT_ENV

    executor = E2BExecutor(LIMITS, env={"MODE": "test"}, sandbox_kwargs=e2b_service.sandbox_kwargs)
    await executor.start({})
    assert executor.sandbox is not None
    await executor.close()
    assert executor.sandbox is None
    command, envs = e2b_service.envd.commands[0]
    assert shlex.split(command) == ["python3", "-c", BOOTSTRAP]
    assert envs == {**DEFAULT_ENV, "MODE": "test"}


async def test_e2b_without_an_api_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("e2b")
    from codeloop.executors.e2b import E2BExecutor

    monkeypatch.delenv("E2B_API_KEY", raising=False)
    executor = E2BExecutor(LIMITS)
    with pytest.raises(ConfigurationError, match="E2B_API_KEY"):
        await executor.start({})
    await executor.close()


# -- Modal specifics -------------------------------------------------------------------------------------


async def test_modal_sandboxes_are_created_without_network_and_with_limits() -> None:
    from codeloop.executors.remote import DEFAULT_ENV

    executor = _local_modal_executor(LIMITS, env={"MODE": "test"})
    await executor.start({})
    await executor.close()
    (sandbox,) = executor.sandboxes
    assert sandbox.argv == ["python3", "-c", BOOTSTRAP] and sandbox.terminated
    assert sandbox.options == {
        "env": {**DEFAULT_ENV, "MODE": "test"}, "timeout": 3600, "block_network": True, "memory": 384,
        "cpu": 1.0,
    }  # fmt: skip


async def test_modal_without_a_token_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("modal")
    from codeloop.executors.modal import ModalExecutor

    for name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODAL_CONFIG_PATH", "/nonexistent/.modal.toml")
    executor = ModalExecutor(LIMITS)
    with pytest.raises(ConfigurationError, match="modal token new"):
        await executor.start({})
    await executor.close()


def test_modal_sdk_has_the_interface_the_adapter_uses() -> None:
    import inspect

    modal = pytest.importorskip("modal")

    for method in (modal.Sandbox.create, modal.Sandbox.terminate, modal.Sandbox.wait, modal.App.lookup):
        assert callable(method.aio)
    assert callable(modal.io_streams.StreamWriter.write) and callable(modal.io_streams.StreamWriter.drain.aio)
    assert hasattr(modal.io_streams.StreamReader, "__aiter__")
    for name in ("stdin", "stdout", "stderr", "returncode"):
        assert isinstance(inspect.getattr_static(modal.Sandbox, name), property)
    create = inspect.signature(modal.Sandbox.create).parameters
    assert {"app", "image", "env", "timeout", "block_network", "memory", "cpu"} <= set(create)
    assert "raise_on_termination" in inspect.signature(modal.Sandbox.wait).parameters


# -- the shared pieces --------------------------------------------------------------------------------


async def test_the_bootstrap_leaves_what_follows_the_source_to_the_worker() -> None:
    from codeloop.executors.remote import bootstrap_argv, worker_payload

    process = await asyncio.create_subprocess_exec(
        *_local_argv(bootstrap_argv()), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={}
    )
    assert process.stdin is not None and process.stdout is not None
    hello, run = b'{"op":"hello","secret":"s3"}\n', b'{"op":"run","id":"r1","code":"6 * 7"}\n'
    process.stdin.write(worker_payload() + hello + run)  # in one write
    await process.stdin.drain()
    assert json.loads(await process.stdout.readline())["op"] == "ready"
    assert json.loads(await process.stdout.readline())["output"] == 42
    process.stdin.close()
    assert await process.wait() == 0  # the host went away: the worker ends


class _Stdin:
    """A RemoteProcess whose stdin is a list (the transport, not a process, is under test)."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[bytes] = []
        self.fail = fail
        self.terminated = 0

    async def send(self, data: bytes) -> None:
        if self.fail:
            raise ConnectionResetError("stream reset by peer")
        self.sent.append(data)

    async def terminate(self) -> None:
        self.terminated += 1

    async def exit_reason(self) -> str:
        return "exit code 9"


async def test_remote_transport_lines_limits_and_failures() -> None:
    from codeloop.executors.process import WorkerGone
    from codeloop.executors.remote import RemoteTransport

    process = _Stdin()
    transport = RemoteTransport(process, line_limit=64)
    transport.feed(b'{"op":')
    transport.feed(b'"ready"}\n{"op"', stderr=False)
    transport.feed(b"Traceback: boom\n", stderr=True)
    assert await transport.read_line() == b'{"op":"ready"}\n'
    assert transport.stderr_tail() == "Traceback: boom\n"
    transport.feed(b"x" * 100 + b"\n")
    with pytest.raises(WorkerGone, match="oversized"):
        await transport.read_line()
    await transport.write_line(b"{}")
    assert process.sent == [b"{}\n"]
    transport.feed_eof()
    assert await transport.exit_reason() == "exit code 9"
    await transport.kill()
    await transport.kill()
    assert process.terminated == 1 and await transport.read_line() == b""
    assert await transport.exit_reason() == "it was killed by the host"
    with pytest.raises(WorkerGone):
        await transport.write_line(b"{}")
    broken = RemoteTransport(_Stdin(fail=True), line_limit=64)
    with pytest.raises(WorkerGone, match="ConnectionResetError: stream reset by peer"):
        await broken.write_line(b"{}")


@pytest.mark.parametrize(("name", "module"), [("docker", "docker"), ("e2b", "e2b"), ("modal", "modal")])
def test_registered_by_name_with_a_clear_error_when_the_extra_is_missing(
    name: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip(module)
    executor = create_executor(name, limits=LIMITS, additional_authorized_imports=["json"])
    assert isinstance(executor, RemoteExecutor) and isinstance(executor, Executor)
    assert "json" in executor.importable_modules
    monkeypatch.setitem(sys.modules, module, None)  # as if the SDK were not installed
    with pytest.raises(ConfigurationError, match=re.escape(f"pip install 'codeloop[{name}]'")):
        create_executor(name, limits=LIMITS)


def test_no_pickle_on_any_remote_code_path() -> None:
    import ast

    import codeloop.executors as package

    here = Path(package.__file__).parent
    for name in ("remote", "docker", "e2b", "modal", "process", "worker"):
        tree = ast.parse((here / f"{name}.py").read_text())
        imported = {
            a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
        }
        imported |= {
            n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
        }
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        unsafe = {"pickle", "cloudpickle", "dill", "marshal", "shelve", "joblib"}
        assert not (imported | names) & unsafe, name


# -- live: the real services (skipped without credentials or a daemon) -----------------------------------


def _docker_reachable() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def _modal_token() -> bool:
    try:
        from modal.config import config
    except ImportError:
        return False
    return bool(config.get("token_id") and config.get("token_secret"))


LIVE = [
    pytest.param(
        "e2b", marks=pytest.mark.skipif(not os.environ.get("E2B_API_KEY"), reason="needs E2B_API_KEY")
    ),
    pytest.param("modal", marks=pytest.mark.skipif(not _modal_token(), reason="needs a Modal token")),
    pytest.param("docker", marks=pytest.mark.skipif(not _docker_reachable(), reason="needs a Docker daemon")),
]
LIVE_LIMITS = ExecutorLimits(timeout_s=5.0, memory_bytes=128 * 2**20, max_output_chars=2_000)


@pytest.mark.live
@pytest.mark.parametrize("kind", LIVE)
async def test_live_protocol_round_trip(kind: str) -> None:
    tools = Tools()
    executor = create_executor(kind, limits=LIVE_LIMITS)
    await executor.start(tools.functions())
    try:
        out = await executor.run("x = add(2, 3)\nprint('x =', x)\nx")
        assert out.error is None and out.output == 5 and out.logs == "x = 5\n"
        out = await executor.run("while True:\n    pass")
        assert out.error is not None and out.error.limit == "timeout_s" and out.error.state_lost
        assert (await executor.run("final_answer(add(40, 2))")).output == 42
    finally:
        await executor.close()


@pytest.mark.live
@pytest.mark.parametrize("kind", LIVE)
async def test_live_redteam_corpus_is_contained(kind: str) -> None:
    from redteam import HARMLESS_TOOLS, Arena, attack, load_payloads

    with Arena() as arena:
        executor = create_executor(kind, limits=LIVE_LIMITS)
        await executor.start(HARMLESS_TOOLS)
        try:
            verdicts = [
                await attack(
                    executor, payload, arena, memory_limit=LIVE_LIMITS.memory_bytes, local_processes=False
                )
                for payload in load_payloads()
            ]
        finally:
            await executor.close()
    failures = [verdict.summary() for verdict in verdicts if not verdict.passed]
    assert not failures, "\n".join(failures)
