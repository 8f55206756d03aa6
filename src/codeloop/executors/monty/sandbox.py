"""Where a Monty session lives: its worker, its checkout, and the inputs fed to it.

`DedicatedSandbox` is one session in a worker process of its own, checked out for the session's
whole life from a pool that belongs to the executor (a fresh process per session: the worker is
recycled after one checkout). The executor runs each code action inside `action()`, which costs
nothing here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ...errors import ConfigurationError, ExecutorError
from ..base import ExecutorLimits
from .failures import Inputs
from .rewrite import PRELUDE

if TYPE_CHECKING:
    import pydantic_monty as pm

__all__ = ["DedicatedSandbox", "Sandbox", "bind_variables", "checkout_options", "define_prelude"]

T = TypeVar("T")


class Sandbox(Protocol):
    """Where the executor's Monty session lives (`DedicatedSandbox`, `pooled.PooledSandbox`).

    `session` is the live `pm.AsyncMontySession` inside `action()` (a dedicated sandbox keeps it
    between actions too); `inputs` numbers what was fed to the session, across workers."""

    inputs: Inputs
    session: Any
    needs_restart: bool

    @property
    def started(self) -> bool:
        """Whether `open()` has been called (the executor was started)."""
        ...

    @property
    def ready(self) -> bool:
        """Whether a session is open and usable (no restart pending)."""
        ...

    @property
    def lost(self) -> bool:
        """Whether the session's state was lost with its worker in the last action."""
        ...

    async def open(self, variables: Mapping[str, Any]) -> None: ...
    async def bind(self, values: Mapping[str, Any]) -> None: ...
    async def load_prelude(self) -> None: ...
    def action(self) -> contextlib.AbstractAsyncContextManager[None]: ...
    async def wait(self, snap: Any, output: Any, work: Awaitable[T]) -> tuple[Any, T]: ...
    async def close_session(self) -> None: ...
    async def close(self) -> None: ...


def checkout_options(limits: ExecutorLimits, host_modules: Mapping[str, Any]) -> dict[str, Any]:
    """The options of every checkout for a session with `limits`: limits enforced by the
    interpreter, sleeps that return at once, and the host-implemented modules."""
    import pydantic_monty as pm

    return {
        "limits": {
            "max_feed_duration_secs": limits.timeout_s,
            "max_memory": limits.memory_bytes,
            "max_recursion_depth": limits.max_recursion_depth,
            "max_suspensions": 1_000_000_000,
        },
        "os_policy": {"sleep": "zero"},
        "external_modules": {name: pm.ExternalModule(attrs) for name, attrs in host_modules.items()},
    }


class DedicatedSandbox:
    """One Monty session in a worker process of its own (see the module docstring)."""

    def __init__(self, limits: ExecutorLimits, host_modules: Mapping[str, Any]) -> None:
        self.limits = limits
        self.host_modules = host_modules
        self.inputs = Inputs()
        self.session: Any = None  # pm.AsyncMontySession while open
        self.needs_restart = False
        self._pool: Any = None

    @property
    def started(self) -> bool:
        return self._pool is not None

    @property
    def ready(self) -> bool:
        return self.session is not None and not self.needs_restart

    @property
    def lost(self) -> bool:
        """Whether the session's worker is gone (then its state is gone with it)."""
        return self.session is None or self.session.worker_pid is None

    async def open(self, variables: Mapping[str, Any]) -> None:
        """Open a fresh session (the worker pool first, if needed) with `variables` bound."""
        if self._pool is None:
            self._pool = await _open_pool()
        checkout = self._pool.checkout(**checkout_options(self.limits, self.host_modules))
        self.inputs = Inputs()
        self.session = await checkout.__aenter__()
        self.needs_restart = False
        if variables:
            await self.bind(variables)

    async def bind(self, values: Mapping[str, Any]) -> None:
        """Bind `values` as globals of the session now."""
        if self.session is None:
            raise ExecutorError("MontyExecutor.start() must be called before send_variables().")
        await bind_variables(self.session, self.inputs, values)

    async def load_prelude(self) -> None:
        await define_prelude(self.session, self.inputs)

    @contextlib.asynccontextmanager
    async def action(self) -> AsyncIterator[None]:
        """The span of one code action: the session is in its worker throughout."""
        yield

    async def wait(self, snap: Any, output: Any, work: Awaitable[T]) -> tuple[Any, T]:
        """Wait for host-side `work` while the snippet is suspended at `snap`; the worker is this
        session's alone, so it just waits. The snapshot to resume, and the work's result."""
        return snap, await work

    async def close_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            with contextlib.suppress(Exception):  # a crashed or abandoned session may refuse a clean exit
                await session.__aexit__(None, None, None)

    async def close(self) -> None:
        """End the session and stop the worker pool."""
        await self.close_session()
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.__aexit__(None, None, None)


async def bind_variables(session: Any, inputs: Inputs, values: Mapping[str, Any]) -> None:
    """Bind `values` as globals of `session` (an input of its own, numbered in `inputs`)."""
    inputs.add("None")
    try:
        await session.feed_start("None", inputs=dict(values))
    except Exception as exc:
        inputs.drop_last()
        raise ConfigurationError(f"Variables cannot be sent into the Monty sandbox: {exc}") from exc


async def define_prelude(session: Any, inputs: Inputs) -> None:
    """Define the helpers that rewritten snippets call (sandbox code; once per session)."""
    import pydantic_monty as pm

    inputs.add(PRELUDE)
    try:
        await session.feed_start(PRELUDE)
    except pm.MontyError as exc:
        raise ExecutorError(f"The Monty sandbox refused codeloop's helper definitions: {exc}") from exc
    inputs.prelude = inputs.current


async def _open_pool() -> pm.AsyncMonty:
    import pydantic_monty as pm

    pool = pm.AsyncMonty(min_processes=1, max_processes=2, max_checkouts_per_worker=1)
    try:
        await pool.__aenter__()
    except Exception as exc:
        raise ExecutorError(f"The Monty sandbox could not start: {exc}") from exc
    return pool
