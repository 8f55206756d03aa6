"""The E2B executor: the worker runs in an E2B cloud sandbox (a Firecracker microVM).

    executor = E2BExecutor(template="base")                       # or executor="e2b"
    agent = CodeAgent(tools, model, executor="e2b", executor_kwargs={"template": "my-template"})

Needs `pip install 'codeloop[e2b]'` and an E2B API key (`E2B_API_KEY`, or `api_key=`). One
sandbox is created per session on `start()` and killed on `close()`. The worker is started in it
as a background command with stdin (`python3 -c BOOTSTRAP`, the worker's source following on
stdin: nothing is installed or uploaded), and the host speaks the worker protocol over the
command's stdin and stdout: tools run on the host, `final_answer`, variables and errors behave as
locally, nothing is pickled. The template needs `python3` (`python`: its command), 3.9 or newer.

When the time limit fires or the worker dies, the worker process is killed and a new one is
started in the same sandbox: variables are lost (the model is told), files the code wrote stay.
The sandbox has no internet access unless `internet=True`. `sandbox_timeout` (seconds) bounds
the sandbox's life, as E2B's own `timeout`. `sandbox_kwargs` passes anything else to
`AsyncSandbox.create` (`domain`, `metadata`, `network`, ...).

Boundary: as strong as E2B's microVM. It does not protect the host from its own tools, which run
on the host with arguments the model chose; and anything sent into the sandbox (variables, tool
results) is on E2B's infrastructure.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigurationError, ExecutorError
from .base import ExecutorLimits
from .process import Transport, WorkerGone
from .remote import RemoteExecutor, RemoteTransport, require_sdk, sdk_installed

__all__ = ["E2BExecutor"]


class _Command:
    """The worker as an E2B background command; its end is awaited in a task."""

    def __init__(self) -> None:
        self.handle: Any = None
        self.ended: asyncio.Task[str] | None = None

    def watch(self, handle: Any, transport: RemoteTransport) -> None:
        self.handle = handle
        self.ended = asyncio.ensure_future(self._wait(transport))

    async def _wait(self, transport: RemoteTransport) -> str:
        try:
            result = await self.handle.wait()
            reason = f"exit code {result.exit_code}"
        except Exception as exc:  # CommandExitException (a non-zero exit) or a broken stream
            code, error = getattr(exc, "exit_code", None), getattr(exc, "error", None)
            reason = f"exit code {code}" + (f", {error}" if error else "") if code is not None else str(exc)
        finally:
            transport.feed_eof()
        return reason

    async def send(self, data: bytes) -> None:
        if self.handle is None:
            raise WorkerGone("the worker was not started")
        await self.handle.send_stdin(data)

    async def terminate(self) -> None:
        try:
            if self.handle is not None:
                await self.handle.kill()
        finally:
            if self.ended is not None:
                self.ended.cancel()

    async def exit_reason(self) -> str:
        if self.ended is None:
            return "it never started"
        return await self.ended


class E2BExecutor(RemoteExecutor):
    """Runs snippets in a `worker.py` process inside an E2B sandbox; see the module docstring."""

    def __init__(
        self,
        limits: ExecutorLimits | None = None,
        additional_authorized_imports: Sequence[str] = (),
        *,
        template: str | None = None,
        api_key: str | None = None,
        python: str = "python3",
        env: Mapping[str, str] | None = None,
        internet: bool = False,
        sandbox_timeout: int = 3600,
        cwd: str | None = None,
        user: str | None = None,
        sandbox_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if not sdk_installed("e2b"):
            require_sdk("e2b", "e2b", "E2B")
        super().__init__(limits, additional_authorized_imports, python=python, env=env)
        self.template, self.api_key, self.internet = template, api_key, internet
        self.sandbox_timeout, self.cwd, self.user = sandbox_timeout, cwd, user
        self.sandbox_kwargs = dict(sandbox_kwargs or {})
        self._sandbox: Any = None

    @property
    def sandbox(self) -> Any:
        """The session's `e2b.AsyncSandbox` (None before `start()` and after `close()`)."""
        return self._sandbox

    async def _spawn(self) -> Transport:
        sandbox = await self._ensure_sandbox()
        command = _Command()
        transport = RemoteTransport(command, line_limit=self._line_limit)
        e2b = require_sdk("e2b", "e2b", "E2B")
        options: dict[str, Any] = {
            "background": True, "stdin": True, "envs": self.env, "cwd": self.cwd, "user": self.user,
            "timeout": 0, "on_stdout": lambda text: transport.feed(text.encode("utf-8")),
            "on_stderr": lambda text: transport.feed(text.encode("utf-8"), stderr=True),
        }  # fmt: skip
        if "retain_output" in inspect.signature(sandbox.commands.run).parameters:
            options["retain_output"] = False  # newer SDKs: don't keep the session's whole stdout in memory
        try:
            handle = await sandbox.commands.run(shlex.join(self.argv), **options)
        except e2b.SandboxException as exc:
            raise ExecutorError(f"The worker could not be started in the E2B sandbox: {exc}") from None
        command.watch(handle, transport)
        return await self._attach(transport)

    async def _ensure_sandbox(self) -> Any:
        if self._sandbox is None:
            self._sandbox = await self._create_sandbox()
        return self._sandbox

    async def _create_sandbox(self) -> Any:
        e2b = require_sdk("e2b", "e2b", "E2B")
        options: dict[str, Any] = {"timeout": self.sandbox_timeout, "allow_internet_access": self.internet}
        if self.template:
            options["template"] = self.template
        if self.api_key:
            options["api_key"] = self.api_key
        options.update(self.sandbox_kwargs)
        if not options.get("debug") and not options.get("api_key") and not os.environ.get("E2B_API_KEY"):
            raise ConfigurationError(
                "The E2B executor needs an API key: set E2B_API_KEY or pass api_key=... "
                "(executor_kwargs={'api_key': ...})."
            )
        try:
            return await e2b.AsyncSandbox.create(**options)
        except e2b.AuthenticationException as exc:
            raise ConfigurationError(f"E2B refused the API key: {exc}") from None
        except Exception as exc:  # SandboxException, or the network
            raise ExecutorError(f"No E2B sandbox could be created: {type(exc).__name__}: {exc}") from None

    async def _shutdown(self) -> None:
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            with contextlib.suppress(Exception):  # already gone (timed out), or unreachable
                await sandbox.kill()
