"""The Modal executor: the worker runs in a Modal Sandbox (a gVisor container), one per worker.

    executor = ModalExecutor(image="python:3.12-slim")           # or executor="modal"
    agent = CodeAgent(tools, model, executor="modal", executor_kwargs={"app_name": "my-agents"})

Needs `pip install 'codeloop[modal]'` and a Modal token (`modal token new`, or `MODAL_TOKEN_ID`
and `MODAL_TOKEN_SECRET`). Each worker is the entrypoint of its own Sandbox
(`python3 -c BOOTSTRAP`, the worker's source following on stdin: nothing is installed or
uploaded), in the App `app_name` (created if missing). The host speaks the worker protocol over
the Sandbox's stdin and stdout: tools run on the host, `final_answer`, variables and errors behave
as locally, nothing is pickled.

`image` is a registry tag (`modal.Image.from_registry`) or a `modal.Image`; the default is
`modal.Image.debian_slim()`. The Sandbox has no network (`internet=False` sets
`block_network=True`), `memory` MiB (default: `memory_bytes` plus `BASE_ADDRESS_SPACE`) and `cpu`
cores; `sandbox_timeout` (seconds) bounds its life. `sandbox_kwargs` passes anything else to
`modal.Sandbox.create` (`region`, `gpu`, `secrets`, `volumes`, ...).

When the time limit fires or the worker dies, its Sandbox is terminated and a new one created
(a second or so): variables and files are lost, and the model is told.

Boundary: as strong as Modal's gVisor sandbox. It does not protect the host from its own tools,
which run on the host with arguments the model chose; anything sent into the sandbox is on
Modal's infrastructure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigurationError, ExecutorError
from .base import ExecutorLimits
from .process import BASE_ADDRESS_SPACE, Transport
from .remote import RemoteExecutor, RemoteTransport, require_sdk, sdk_installed

__all__ = ["ModalExecutor"]


class _Sandbox:
    """One worker Sandbox, driven through the SDK's async (`.aio`) interface."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox

    async def send(self, data: bytes) -> None:
        self.sandbox.stdin.write(data)
        await self.sandbox.stdin.drain.aio()

    async def terminate(self) -> None:
        await self.sandbox.terminate.aio()

    async def exit_reason(self) -> str:
        await self.sandbox.wait.aio(raise_on_termination=False)
        return f"exit code {self.sandbox.returncode}"


class ModalExecutor(RemoteExecutor):
    """Runs snippets in a `worker.py` process inside a Modal Sandbox; see the module docstring."""

    def __init__(
        self,
        limits: ExecutorLimits | None = None,
        additional_authorized_imports: Sequence[str] = (),
        *,
        image: Any = None,
        app_name: str = "codeloop",
        python: str = "python3",
        env: Mapping[str, str] | None = None,
        internet: bool = False,
        cpu: float | None = 1.0,
        memory: int | None = None,
        sandbox_timeout: int = 3600,
        sandbox_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if not sdk_installed("modal"):
            require_sdk("modal", "modal", "Modal")
        super().__init__(limits, additional_authorized_imports, python=python, env=env)
        self.image, self.app_name, self.internet, self.cpu = image, app_name, internet, cpu
        self.memory = memory or -(-(self.limits.memory_bytes + BASE_ADDRESS_SPACE) // 2**20)
        self.sandbox_timeout = sandbox_timeout
        self.sandbox_kwargs = dict(sandbox_kwargs or {})
        self._app: Any = None

    def sandbox_options(self) -> dict[str, Any]:
        """The `modal.Sandbox.create` options of each worker Sandbox (besides `app` and `image`)."""
        options: dict[str, Any] = {
            "env": dict(self.env), "timeout": self.sandbox_timeout, "block_network": not self.internet,
            "memory": self.memory,
        }  # fmt: skip
        if self.cpu:
            options["cpu"] = self.cpu
        return {**options, **self.sandbox_kwargs}

    async def _spawn(self) -> Transport:
        sandbox = _Sandbox(await self._create_sandbox(self.argv))
        transport = RemoteTransport(sandbox, line_limit=self._line_limit)
        transport.pump(sandbox.sandbox.stdout)
        transport.pump(sandbox.sandbox.stderr, stderr=True)
        return await self._attach(transport)

    async def _create_sandbox(self, argv: list[str]) -> Any:
        """A started `modal.Sandbox` running `argv`."""
        modal = require_sdk("modal", "modal", "Modal")
        _check_token(modal)
        try:
            if self._app is None:
                self._app = await modal.App.lookup.aio(self.app_name, create_if_missing=True)
            image = self._image(modal)
            return await modal.Sandbox.create.aio(*argv, app=self._app, image=image, **self.sandbox_options())
        except modal.exception.AuthError as exc:
            raise ConfigurationError(f"Modal refused the token: {exc}. Run `modal token new`.") from None
        except Exception as exc:  # modal.exception.Error, or the network
            raise ExecutorError(f"No Modal sandbox could be created: {type(exc).__name__}: {exc}") from None

    def _image(self, modal: Any) -> Any:
        if self.image is None:
            return modal.Image.debian_slim()
        if isinstance(self.image, str):
            return modal.Image.from_registry(self.image)
        return self.image

    async def _shutdown(self) -> None:
        self._app = None  # worker Sandboxes end with their workers; the App stays (it costs nothing)


def _check_token(modal: Any) -> None:
    config = modal.config.config
    if not (config.get("token_id") and config.get("token_secret")):
        raise ConfigurationError(
            "The Modal executor needs a Modal token: run `modal token new`, or set MODAL_TOKEN_ID and "
            "MODAL_TOKEN_SECRET."
        )
