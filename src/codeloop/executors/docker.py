"""The Docker executor: the worker runs in a locked-down container, one container per worker.

    executor = DockerExecutor(image="python:3.12-slim")          # or executor="docker"
    agent = CodeAgent(tools, model, executor="docker", executor_kwargs={"image": "my/image:1"})

Needs `pip install 'codeloop[docker]'` and a reachable Docker daemon (`DOCKER_HOST`, or the local
socket; `base_url` overrides both). The image only needs Python 3.9+ (`python`: its command);
codeloop is not installed in it: the worker program is sent over stdin (see `remote`).

Each worker is the main process of its own container, created with: no network
(`network=False`; `True` uses the default bridge), a read-only root file system with a `/tmp`
tmpfs as the working directory, all capabilities dropped, `no-new-privileges`, an unprivileged
user (`user`, default nobody), a memory cap (`memory_bytes` plus `BASE_ADDRESS_SPACE`, no
swap), a process cap (`pids_limit`) and a CPU cap (`cpus`). `runtime="runsc"` runs it under
gVisor where installed. `container_kwargs` and `host_config_kwargs` add or override any option
of the `docker` SDK's `APIClient.create_container` and `create_host_config`.

The host attaches to the container's stdin and stdout (the multiplexed stream is demultiplexed
here) and speaks the worker protocol: tools run on the host, nothing is pickled. When the time
limit fires or the worker dies, the container is removed and a new one started: variables and
files written in `/tmp` are lost, and the model is told.

Boundary: as strong as a container on the daemon's kernel (namespaces, cgroups, seccomp; gVisor
with `runsc`). A kernel exploit escapes a plain container; loosening the defaults through
`container_kwargs` (privileged, host mounts, host network) weakens it. Tools run on the host.
If the host process dies, the worker sees its stdin close and exits; its container is left
stopped (not removed), labelled `codeloop.worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from ..errors import ConfigurationError, ExecutorError
from .base import ExecutorLimits
from .process import BASE_ADDRESS_SPACE, Transport
from .remote import RemoteExecutor, RemoteTransport, require_sdk, sdk_installed

__all__ = ["DockerExecutor", "FrameDecoder"]

_HEADER = struct.Struct(">BxxxL")  # stream type, 3 bytes padding, payload length (big-endian)
_ATTACH = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
LABEL = "codeloop.worker"


class FrameDecoder:
    """Docker's multiplexed attach stream (no TTY): an 8-byte header (stream 1 = stdout, 2 =
    stderr; payload length) before each payload. Feed bytes in any split; get whole frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        """The complete (stream, payload) frames that `data` finishes, in order."""
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            stream, size = _HEADER.unpack_from(self._buffer)
            end = _HEADER.size + size
            if len(self._buffer) < end:
                return
            payload = bytes(self._buffer[_HEADER.size : end])
            del self._buffer[:end]
            yield stream, payload

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame."""
        return len(self._buffer)


class _Container:
    """One worker container: its attach socket, a reader thread, and its removal."""

    def __init__(self, api: Any, ident: str, sock: Any) -> None:
        self.api, self.id = api, ident
        self.sock = getattr(sock, "_sock", sock)  # the SDK hands out socket.SocketIO on plain sockets
        self._removed = False

    def read_into(self, deliver: Callable[..., None]) -> None:
        """Start a thread that demultiplexes the container's output into `deliver`."""
        threading.Thread(
            target=self._read, args=(deliver,), name="codeloop-docker-attach", daemon=True
        ).start()

    def _read(self, deliver: Callable[..., None]) -> None:
        decoder = FrameDecoder()
        try:
            while chunk := self.sock.recv(65536):
                for stream, payload in decoder.feed(chunk):
                    deliver(payload, stderr=stream != 1)
        except OSError:
            pass
        finally:
            deliver(None)

    async def send(self, data: bytes) -> None:
        await asyncio.to_thread(self.sock.sendall, data)

    async def terminate(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        if not self._removed:
            self._removed = True
            await asyncio.to_thread(self.api.remove_container, self.id, force=True)

    async def exit_reason(self) -> str:
        def inspect() -> str:
            result = self.api.wait(self.id, timeout=5)
            state = self.api.inspect_container(self.id).get("State", {})
            if state.get("OOMKilled"):
                return "the container ran out of memory and was killed"
            code = result.get("StatusCode", state.get("ExitCode"))
            return "killed by signal SIGKILL" if code == 137 else f"exit code {code}"

        return await asyncio.to_thread(inspect)


class DockerExecutor(RemoteExecutor):
    """Runs snippets in a `worker.py` process inside a Docker container; see the module docstring."""

    def __init__(
        self,
        limits: ExecutorLimits | None = None,
        additional_authorized_imports: Sequence[str] = (),
        *,
        image: str = "python:3.12-slim",
        base_url: str | None = None,
        python: str = "python3",
        env: Mapping[str, str] | None = None,
        pull: Literal["missing", "always", "never"] = "missing",
        network: bool = False,
        user: str = "65534:65534",
        pids_limit: int = 128,
        cpus: float | None = 1.0,
        runtime: str | None = None,
        container_kwargs: Mapping[str, Any] | None = None,
        host_config_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if not sdk_installed("docker"):
            require_sdk("docker", "docker", "Docker")
        super().__init__(limits, additional_authorized_imports, python=python, env=env)
        self.image, self.base_url, self.pull = image, base_url, pull
        self.network, self.user, self.pids_limit, self.cpus = network, user, pids_limit, cpus
        self.runtime = runtime
        self.container_kwargs = dict(container_kwargs or {})
        self.host_config_kwargs = dict(host_config_kwargs or {})
        self._client: Any = None

    def container_options(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The `create_container` and `create_host_config` options of each worker container."""
        memory = self.limits.memory_bytes + BASE_ADDRESS_SPACE
        create: dict[str, Any] = {
            "command": self.argv, "stdin_open": True, "tty": False,  # not detached: StdinOnce
            "environment": {**self.env, "HOME": "/tmp"}, "working_dir": "/tmp", "user": self.user,
            "labels": {LABEL: "1"},
        }  # fmt: skip
        host: dict[str, Any] = {
            "read_only": True, "tmpfs": {"/tmp": "rw,size=64m,mode=1777"}, "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"], "mem_limit": memory, "memswap_limit": memory,
            "pids_limit": self.pids_limit, "network_mode": "bridge" if self.network else "none",
        }  # fmt: skip
        if self.cpus:
            host["nano_cpus"] = int(self.cpus * 1e9)
        if self.runtime:
            host["runtime"] = self.runtime
        return {**create, **self.container_kwargs}, {**host, **self.host_config_kwargs}

    async def _spawn(self) -> Transport:
        api = await self._connect()
        ident = await asyncio.to_thread(self._create, api)
        try:
            sock = await asyncio.to_thread(api.attach_socket, ident, params=dict(_ATTACH))
            await asyncio.to_thread(api.start, ident)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(api.remove_container, ident, force=True)
            raise
        process = _Container(api, ident, sock)
        transport = RemoteTransport(process, line_limit=self._line_limit)
        process.read_into(transport.feed_threadsafe)
        return await self._attach(transport)

    def _create(self, api: Any) -> str:
        create, host = self.container_options()
        docker = require_sdk("docker", "docker", "Docker")
        try:
            reply = api.create_container(self.image, host_config=api.create_host_config(**host), **create)
        except docker.errors.APIError as exc:
            raise ExecutorError(f"The worker container could not be created: {exc}") from None
        return str(reply["Id"])

    async def _connect(self) -> Any:
        """The daemon's client (made once per executor) with the image present."""
        if self._client is None:
            client = await asyncio.to_thread(self._make_client)
            await asyncio.to_thread(self._ensure_image, client)
            self._client = client
        return self._client.api

    def _make_client(self) -> Any:
        docker = require_sdk("docker", "docker", "Docker")
        try:
            client = docker.DockerClient(base_url=self.base_url) if self.base_url else docker.from_env()
            client.ping()
        except docker.errors.DockerException as exc:
            where = self.base_url or "DOCKER_HOST or the default socket"
            raise ConfigurationError(
                f"The Docker daemon is not reachable ({where}): {exc}. Start Docker, or set DOCKER_HOST "
                "(or DockerExecutor(base_url=...)) to a daemon you may use."
            ) from None
        return client

    def _ensure_image(self, client: Any) -> None:
        docker = require_sdk("docker", "docker", "Docker")
        if self.pull != "always":
            try:
                client.images.get(self.image)
                return
            except docker.errors.ImageNotFound:
                if self.pull == "never":
                    raise ConfigurationError(
                        f"The image {self.image!r} is not on the Docker host and pull='never'."
                    ) from None
        try:
            client.images.pull(self.image)
        except docker.errors.APIError as exc:
            raise ExecutorError(f"The image {self.image!r} could not be pulled: {exc}") from None

    async def _shutdown(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(client.close)
