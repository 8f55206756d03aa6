"""The local executor: full CPython in a plain subprocess. **Not a security boundary.**

Snippets run in a `worker.py` subprocess with your user's privileges: they can read and write
your files, reach the network, read the environment and start programs. Use it only for code
you trust (your own tasks, development, tests); for model-written code from untrusted input use
`executor="jail"` (CPython in an OS jail) or the default `executor="monty"`.

What it does give you: the same protocol and behaviour as the jail - persistent variables, tools
called from the snippet and run in the host, an uncatchable `final_answer`, the import list
(`additional_authorized_imports`, a policy here, not a boundary), and the limits: `timeout_s`
(the host kills and restarts the worker; variables are lost and the model is told),
`max_output_chars`, `max_recursion_depth`, and `memory_bytes` (the worker's address space is
capped at `memory_bytes` plus `BASE_ADDRESS_SPACE` for the interpreter and its libraries).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from .base import ExecutorLimits, HostFunction
from .process import BASE_ADDRESS_SPACE, ProcessTransport, Transport, WorkerExecutor, worker_argv

__all__ = ["LocalExecutor"]

"""Address space allowed on top of `memory_bytes`: the interpreter, numpy/pandas and their libraries."""

_warned = False


class LocalExecutor(WorkerExecutor):
    """Runs snippets in a plain CPython subprocess with no isolation; see the module docstring.

    `workdir` is the worker's current directory (default: this process's); `env` its environment
    (default: this process's environment, inherited)."""

    def __init__(
        self,
        limits: ExecutorLimits | None = None,
        additional_authorized_imports: Sequence[str] = (),
        *,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(limits, additional_authorized_imports)
        self.workdir = workdir
        self.env = dict(env) if env is not None else None

    async def start(self, functions: Mapping[str, HostFunction]) -> None:
        """Start a fresh worker; the first start in a process warns that this is no boundary."""
        _warn_once()
        await super().start(functions)

    async def _spawn(self) -> Transport:
        env = dict(os.environ) if self.env is None else dict(self.env)
        return await ProcessTransport.spawn(
            worker_argv(), env=env, cwd=self.workdir, line_limit=self._line_limit
        )

    def _configure_message(self) -> dict[str, Any]:
        return {**super()._configure_message(), "memory_bytes": self.limits.memory_bytes + BASE_ADDRESS_SPACE}


def _warn_once() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(
            "LocalExecutor is not a security boundary: model-written code runs with your privileges "
            "(files, network, environment, processes). Use it only for trusted code; "
            "use executor='jail' or 'monty' otherwise.",
            UserWarning,
            stacklevel=3,  # the caller of start()
        )
