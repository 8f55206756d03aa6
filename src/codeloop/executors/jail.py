"""The jail executor: full CPython (numpy, pandas, your installed packages) in an OS jail.

This module is a **security boundary**. Each session is one persistent CPython worker
(`worker.py`) that is jailed before it reads any code:

* bubblewrap, when `bwrap` is installed (or `use_bwrap=True`): new user, pid, net, ipc and uts
  namespaces; only the interpreter, the stdlib, site-packages, shared libraries and a few system
  files are mounted, read-only; a private scratch directory is the working directory; the
  environment is cleared;
* inside the worker, `confine.apply()`: rlimits (address space, file size, open files), Landlock
  (read-only interpreter and libraries, read-write scratch, no exec, no TCP) and seccomp (no
  exec, no process creation - threads are fine -, no sockets, no ptrace, no mount).

Without bwrap, the in-worker layers alone still block file, network and process access. If the
kernel lacks a mechanism (Landlock, seccomp, user namespaces when bwrap is used), the executor
refuses to start with `JailUnavailable` saying what is missing and what to use instead: it never
runs unjailed. Linux only.

The environment holds only what you pass in `env`, on top of a few fixed values (`HOME` and
`TMPDIR` pointing at the scratch directory, `LANG=C.UTF-8`, one BLAS/OpenMP thread). A
`workdir` is mounted read-only (`workdir_mode="ro"`) or read-write (`"rw"`) at its own path.

Scratch space and its quota (`max_scratch_bytes`, default 256 MiB):

* with bwrap, the scratch directory is a tmpfs of that size inside the sandbox: a write past the
  quota fails with `OSError(ENOSPC)` in the snippet. It lives as long as the worker: files persist
  from action to action, and are lost (with the variables) when the worker is restarted. The
  host cannot read it (`scratch_dir` is its path inside the sandbox). Its pages are host memory
  bounded by the quota; the number of (empty) files is bounded only by the time limit.
* without bwrap (no mount namespace), it is a host directory that persists across restarts until
  `close()`. Each file is capped by RLIMIT_FSIZE (`min(max_file_bytes, max_scratch_bytes)`,
  EFBIG); the total is checked by the host every 0.25 s while an action runs and after it: over
  the quota (or over `_MAX_SCRATCH_FILES` entries), the worker is killed, the directory emptied,
  a fresh sandbox started and the action fails with an `OSError` naming the quota. So the
  overshoot is bounded by what the code writes in 0.25 s, and the snippet gets no ENOSPC.

Limits (`ExecutorLimits`): `timeout_s` is enforced by the host, which kills the worker, starts a
new one and reports `state_lost=True`; `memory_bytes` caps the worker's address space on top of
`BASE_ADDRESS_SPACE` for the interpreter and its libraries; `max_output_chars`,
`max_recursion_depth`; files the worker writes are capped at `max_file_bytes` and open files at
`max_open_files`. Tools run in the host and are called from the snippet over the worker's pipe:
they are the trusted part, so give the agent only functions that are safe with untrusted input.

Threat model. The boundary is the OS layers (bwrap, Landlock, seccomp, rlimits), never the
import allow-list: `additional_authorized_imports` is a policy for well-behaved code, and module
attributes bypass it (`random._os`, `os.sys.modules`, any module re-exporting `threading`).
Snippets run in full CPython inside the worker, so they can read and change the worker's own
memory, including the protocol's secret and request id. The guarantee is about the host: every
line from the worker is validated (size, structure, decoding, secret, request id) before it is
believed, anything else ends the session with `WorkerProtocolError` and a fresh sandbox, so at
worst a session forges its own result, which it could already do with `final_answer`. Nothing an
action starts may outlive it: seccomp refuses new processes, and a thread still running when
the action ends makes the host recycle the worker (the observation says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..errors import ConfigurationError
from .base import CodeOutput, ExecutionFailure, ExecutorLimits, HostFunction
from .process import (
    BASE_ADDRESS_SPACE,
    ProcessTransport,
    Transport,
    WorkerClient,
    WorkerExecutor,
    WorkerStartError,
    worker_argv,
)

__all__ = ["JailExecutor"]

"""Address space allowed on top of `memory_bytes`: the interpreter, numpy/pandas and their libraries."""

_MAX_SCRATCH_FILES = 10_000
_SCRATCH_POLL_S = 0.25
_FIXED_ENV = {"LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class JailExecutor(WorkerExecutor):
    """Runs snippets in a jailed CPython worker; see the module docstring for the guarantees.

    `additional_authorized_imports` keeps smolagents' meaning (the safe defaults plus these
    modules and their submodules; `"*"` for any installed module); the jail, not the import
    list, is the security boundary. `use_bwrap=None` uses bubblewrap when it works here.
    `max_scratch_bytes` is the scratch directory's quota (see the module docstring).
    """

    def __init__(
        self,
        limits: ExecutorLimits | None = None,
        additional_authorized_imports: Sequence[str] = (),
        *,
        workdir: str | None = None,
        workdir_mode: Literal["ro", "rw"] = "ro",
        env: Mapping[str, str] | None = None,
        use_bwrap: bool | None = None,
        max_open_files: int = 64,
        max_file_bytes: int = 16 * 2**20,
        max_scratch_bytes: int = 256 * 2**20,
    ) -> None:
        if not sys.platform.startswith("linux"):
            raise ConfigurationError(
                f"The jail executor needs Linux (Landlock, seccomp, namespaces); this is {sys.platform}. "
                "Use executor='monty' (secure, Python subset) or a remote sandbox instead."
            )
        super().__init__(limits, additional_authorized_imports)
        self.workdir = _check_workdir(workdir, workdir_mode)
        self.workdir_mode = workdir_mode
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        self.max_open_files = max_open_files
        self.max_file_bytes = max_file_bytes
        if max_scratch_bytes <= 0:
            raise ConfigurationError(f"max_scratch_bytes must be positive, not {max_scratch_bytes}.")
        self.max_scratch_bytes = max_scratch_bytes
        from . import confine

        self.use_bwrap = confine.bwrap_available() if use_bwrap is None else use_bwrap
        missing = confine.missing_mechanisms(bwrap=self.use_bwrap)
        if missing:
            raise confine.JailUnavailable(missing)
        self._read_only = _read_only_paths()  # probes the interpreter once per process (~20 ms)
        self._scratch: str | None = None

    @property
    def scratch_dir(self) -> str | None:
        """The session's private writable directory (None before `start()`)."""
        return self._scratch

    async def start(self, functions: Mapping[str, HostFunction]) -> None:
        """Start a fresh jailed worker (with a fresh scratch directory)."""
        self._remove_scratch()
        self._scratch = tempfile.mkdtemp(prefix="codeloop-jail-")
        await super().start(functions)

    async def close(self) -> None:
        """Stop the worker and delete the scratch directory."""
        await super().close()
        self._remove_scratch()

    async def _spawn(self) -> Transport:
        from . import confine

        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="codeloop-jail-")
        policy = self._policy()
        env = {**_FIXED_ENV, "HOME": self._scratch, "TMPDIR": self._scratch, **self.env}
        inner = worker_argv("--jail", policy.to_json(), isolated=True)
        argv = confine.bwrap_argv(policy, inner, env) if self.use_bwrap else inner
        return await ProcessTransport.spawn(argv, env=env, cwd=self._scratch, line_limit=self._line_limit)

    async def _boot(self) -> Any:
        from . import confine

        try:
            return await super()._boot()
        except WorkerStartError as exc:
            if exc.kind == "JailUnavailable":  # the worker could not confine itself: it exited
                raise confine.JailUnavailable(exc.details.get("missing") or [str(exc)]) from None
            raise

    def _policy(self) -> Any:
        from . import confine

        assert self._scratch is not None
        read_only = self._read_only
        if self.workdir is not None and self.workdir_mode == "ro":
            read_only += (self.workdir,)
        return confine.JailPolicy(
            scratch_dir=self._scratch,
            read_only=read_only,
            read_write=(self.workdir,) if self.workdir is not None and self.workdir_mode == "rw" else (),
            memory_bytes=self.limits.memory_bytes + BASE_ADDRESS_SPACE,
            max_open_files=self.max_open_files,
            max_file_bytes=min(self.max_file_bytes, self.max_scratch_bytes),
            scratch_tmpfs_bytes=self.max_scratch_bytes if self.use_bwrap else None,
        )

    async def _run(self, client: WorkerClient, code: str, restarted: bool) -> CodeOutput:
        if self.use_bwrap or self._scratch is None:  # bwrap: the tmpfs enforces the quota itself
            return await super()._run(client, code, restarted)
        watcher = asyncio.ensure_future(self._watch_scratch(client, self._scratch))
        try:
            out = await super()._run(client, code, restarted)
        finally:
            killed = watcher.done() and not watcher.cancelled() and watcher.result()
            watcher.cancel()
        used, files = await asyncio.to_thread(_tree_usage, self._scratch)
        if not killed and used <= self.max_scratch_bytes and files <= _MAX_SCRATCH_FILES:
            return out
        await asyncio.to_thread(_empty_dir, self._scratch)
        await self._restart()
        message = (
            f"the code wrote more than the scratch quota ({self.max_scratch_bytes} bytes or "
            f"{_MAX_SCRATCH_FILES} files, max_scratch_bytes); the scratch directory was emptied"
        )
        return CodeOutput(logs=out.logs, error=ExecutionFailure("OSError", message, state_lost=True))

    async def _watch_scratch(self, client: WorkerClient, scratch: str) -> bool:
        """Kill the worker once the scratch directory is over the quota; True if it did."""
        while True:
            await asyncio.sleep(_SCRATCH_POLL_S)
            used, files = await asyncio.to_thread(_tree_usage, scratch)
            if used > self.max_scratch_bytes or files > _MAX_SCRATCH_FILES:
                await client.transport.kill()
                return True

    def _remove_scratch(self) -> None:
        scratch, self._scratch = self._scratch, None
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _tree_usage(root: str) -> tuple[int, int]:
    """Bytes allocated (st_blocks) and entries under `root`, not following symlinks."""
    used = count = 0
    stack = [root]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as entries:
            for entry in entries:
                count += 1
                with contextlib.suppress(OSError):
                    used += entry.stat(follow_symlinks=False).st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
    return used, count


def _empty_dir(root: str) -> None:
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _check_workdir(workdir: str | None, mode: str) -> str | None:
    if mode not in ("ro", "rw"):
        raise ConfigurationError(f"workdir_mode must be 'ro' or 'rw', not {mode!r}.")
    if workdir is None:
        return None
    path = os.path.realpath(workdir)
    if not os.path.isdir(path):
        raise ConfigurationError(f"The jail's workdir {workdir!r} is not an existing directory.")
    if path == "/" or path == os.path.realpath(os.path.expanduser("~")):
        raise ConfigurationError(f"Refusing to mount {path!r} into the jail: choose a project directory.")
    return path


@functools.lru_cache(maxsize=1)
def _read_only_paths() -> tuple[str, ...]:
    """What the jailed interpreter needs to read: confine's defaults, minus host `sys.path`
    entries the worker's own interpreter does not use (the host script's directory, PYTHONPATH,
    test runners' insertions), which may be project directories."""
    from . import confine

    probe = [sys.executable, "-I", "-c", "import sys, json; print(json.dumps(sys.path))"]
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=True, env={})
        worker_path = {os.path.abspath(p) for p in json.loads(done.stdout) if p}
        extras = {os.path.abspath(p) for p in sys.path if p} - worker_path
        return tuple(p for p in confine.default_read_only_paths() if p not in extras)
    return confine.default_read_only_paths()
