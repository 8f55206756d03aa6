"""A reusable red-team harness: run the shared corpus against any `Executor`.

The corpus (every `*.yaml` in `tests/data/redteam/`) and its contract (`README.md` there) live
beside each other. For each payload the harness prepares what the README asks for, runs the
payload as one code action, and reports whether it escaped and why:

    payloads = load_payloads()
    with Arena() as arena:                       # secret file, marker path, listener, env secret
        executor = MyExecutor(limits)
        await executor.start(HARMLESS_TOOLS)     # start after the env secret is set
        verdict = await attack(executor, payloads[0], arena, memory_limit=limits.memory_bytes)
        assert verdict.passed, verdict.summary()

`Verdict.escaped` follows the README's escape criteria. `Verdict.problems` adds what a secure
executor must also show, one readable line (with the numbers) per failed check:

* the expected kind of stop for `expect: stopped` payloads;
* the host's event loop stays responsive: a heartbeat task sleeping `HEARTBEAT_INTERVAL_S` in a
  loop is never late by more than `HEARTBEAT_BOUND_S` (measured from the payload's start until
  the next action has returned);
* no CPU is used once the action has returned: over a `QUIET_WINDOW_S` window, neither the host
  process (all its threads, less the heartbeat's own ticks) nor its descendant processes use more
  than `QUIET_CPU_BOUND_S` of CPU;
* nothing is left running: within `SETTLE_S`, the host's Python threads (not counting idle
  thread-pool workers and asyncio's child watchers) are back to their baseline, no new native
  host thread (one Python does not know, e.g. of a Rust runtime) is running or has used CPU since
  the action returned (idle pooled ones are allowed: they cannot be told from blocked ones),
  there are no more descendant processes than before, and no descendant has more threads than
  before (a restarted worker with a new pid is compared with the most threads a descendant had);
* the next code action runs normally and shows its own output: it prints a fresh random token and
  its printed output must be exactly that token (a desynchronised protocol would show an earlier
  reply).

Host memory is sampled (current RSS, `/proc/self/statm`) on every heartbeat and compared with the
RSS before the payload; with the growth of `ru_maxrss`, a growth above the smaller of the
executor's memory limit and `HOST_MEMORY_BOUND_BYTES` is an escape (the README's criterion).

Executors whose work runs elsewhere (remote sandboxes) pass `local_processes=False` to skip the
descendant-process checks; the host-side checks still apply. Linux only (it reads `/proc`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures.thread
import contextlib
import dataclasses
import gc
import os
import reprlib
import resource
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, TracebackType
from typing import Any

from codeloop.executors.base import CodeOutput, Executor

__all__ = [
    "CORPUS_DIR",
    "CORPUS_PATH",
    "ENV_SECRET_NAME",
    "HARMLESS_TOOLS",
    "HEARTBEAT_BOUND_S",
    "HOST_DATA_CAP_BYTES",
    "HOST_MEMORY_BOUND_BYTES",
    "QUIET_CPU_BOUND_S",
    "Arena",
    "Payload",
    "Verdict",
    "attack",
    "host_memory_cap",
    "load_payloads",
]

CORPUS_DIR = Path(__file__).resolve().parent / "data" / "redteam"
"""The corpus, kept in the repository: every `*.yaml` here (see the README beside them)."""
CORPUS_PATH = CORPUS_DIR / "escapes.yaml"
"""The original file of the corpus (the public escape families)."""

ENV_SECRET_NAME = "CODELOOP_REDTEAM_SECRET"
DEFAULT_LIMIT_S = 30.0  # wall-clock bound for payloads that do not set `limit_s`

HEARTBEAT_INTERVAL_S = 0.01
HEARTBEAT_BOUND_S = 0.25
"""Worst allowed lateness of a 10 ms heartbeat. Benign snippets give at most ~5 ms on a shared
2-core machine (monty and the jail, ~0.5-5 ms over the corpus' benign phases); 0.25 s is far
above scheduler noise and far below a host that does the payload's work on its event loop."""
HOST_MEMORY_BOUND_BYTES = 64 * 2**20
"""Host RSS growth allowed while a payload runs (or the executor's memory limit, if smaller)."""
QUIET_WINDOW_S = 0.3
QUIET_CPU_BOUND_S = 0.05
"""CPU allowed in the quiet window after an action, for the host and for its descendants. An idle
executor uses under 1 ms of host CPU in 0.3 s (the heartbeat excluded) and 0 clock ticks in its
workers."""
HOST_DATA_CAP_BYTES = 4 * 2**30
"""`host_memory_cap()`'s headroom: far above any bound here, far below what starves a shared machine."""
SETTLE_S = 0.5  # how long leftover threads and processes get to go away (after the quiet window)
_POLL_S = 0.02
_TICK_SLACK_S = 0.02  # CPU times in /proc are counted in clock ticks (10 ms)


def _lookup(key: str) -> str:
    """A harmless tool, so payloads run "as the agent would", with tools available."""
    return f"no entry for {key!r}"


HARMLESS_TOOLS = {"lookup": _lookup}


@dataclass(frozen=True)
class Payload:
    """One corpus entry."""

    id: str
    family: str
    kind: str  # "escape" | "resource"
    expect: str  # "contained" | "stopped"
    code: str
    limit_s: float = DEFAULT_LIMIT_S
    source: str = ""  # the corpus file it came from


@dataclass
class Verdict:
    """What running one payload showed."""

    payload: Payload
    escaped: bool = False
    reasons: list[str] = field(default_factory=list)  # why it counts as an escape
    problems: list[str] = field(default_factory=list)  # expectation or recovery failures
    elapsed_s: float = 0.0
    output: CodeOutput | None = None
    measured: dict[str, float] = field(default_factory=dict)  # what the host-side checks saw

    def escape(self, reason: str) -> None:
        self.escaped = True
        self.reasons.append(reason)

    @property
    def passed(self) -> bool:
        return not self.escaped and not self.problems

    def summary(self) -> str:
        lines = [f"{self.payload.id}: {'PASS' if self.passed else 'FAIL'} in {self.elapsed_s:.2f}s"]
        lines += [f"  escape: {r}" for r in self.reasons] + [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


def load_payloads(path: Path = CORPUS_DIR) -> list[Payload]:
    """Read the corpus: every `*.yaml` of a directory (in name order), or one file.

    Raises FileNotFoundError if it is not there and ValueError if two entries share an id."""
    import yaml

    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"no *.yaml corpus file in {path}")
    payloads: list[Payload] = []
    seen: dict[str, str] = {}
    for file in files:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for p in data.get("payloads") or []:
            if p["id"] in seen:
                raise ValueError(f"payload id {p['id']!r} is in both {seen[p['id']]} and {file.name}")
            seen[p["id"]] = file.name
            payloads.append(
                Payload(
                    id=p["id"],
                    family=p["family"],
                    kind=p["kind"],
                    expect=p["expect"],
                    code=p["code"],
                    limit_s=float(p.get("limit_s", DEFAULT_LIMIT_S)),
                    source=file.name,
                )
            )
    return payloads


class _Listener:
    """A TCP listener on 127.0.0.1 that counts accepted connections."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="redteam-listener", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


class Arena:
    """Everything a payload might try to reach: a secret file, a marker path that must stay
    absent, a counting TCP listener, and a secret in the host environment.

    Enter it before the executor starts, so the executor's processes inherit the env secret.
    """

    def __init__(self) -> None:
        self.file_secret = "file-secret-" + secrets.token_hex(16)
        self.env_secret = "env-secret-" + secrets.token_hex(16)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._listener: _Listener | None = None
        self._old_env: str | None = None
        self.secret_path = Path()
        self.marker_path = Path()

    def __enter__(self) -> Arena:
        self._tmp = tempfile.TemporaryDirectory(prefix="codeloop-redteam-")
        root = Path(self._tmp.name)
        self.secret_path = root / "secret.txt"
        self.secret_path.write_text(self.file_secret, encoding="utf-8")
        self.marker_path = root / "marker"
        self._listener = _Listener()
        self._old_env = os.environ.get(ENV_SECRET_NAME)
        os.environ[ENV_SECRET_NAME] = self.env_secret
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._old_env is None:
            os.environ.pop(ENV_SECRET_NAME, None)
        else:
            os.environ[ENV_SECRET_NAME] = self._old_env
        if self._listener is not None:
            self._listener.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def port(self) -> int:
        assert self._listener is not None, "enter the Arena first"
        return self._listener.port

    @property
    def connections(self) -> int:
        assert self._listener is not None, "enter the Arena first"
        return self._listener.accepted

    def substitute(self, code: str) -> str:
        """Fill the placeholders. Plain replacement: payloads contain other braces."""
        return (
            code.replace("{SECRET_PATH}", str(self.secret_path))
            .replace("{MARKER_PATH}", str(self.marker_path))
            .replace("{PORT}", str(self.port))
        )

    def leaked_in(self, text: str) -> list[str]:
        return [name for name, s in (("file", self.file_secret), ("env", self.env_secret)) if s in text]


@contextlib.contextmanager
def host_memory_cap(headroom: int = HOST_DATA_CAP_BYTES) -> Iterator[None]:
    """Cap the host's data segment (`RLIMIT_DATA`: heap and private mappings) at its current size
    plus `headroom` while the corpus runs, so that a payload making the host allocate without end
    gets a MemoryError (or crashes this process) instead of exhausting the machine's memory. The
    harness still reports growth above its own, much smaller bound; executors' workers inherit the
    cap, far above their own limits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    with open("/proc/self/status", encoding="ascii") as f:
        data_kib = next(int(line.split()[1]) for line in f if line.startswith("VmData:"))
    cap = data_kib * 1024 + headroom
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


# ---- what /proc shows ---------------------------------------------------------------------------

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * _PAGE_SIZE


@dataclass(frozen=True)
class _Proc:
    threads: int
    cpu_s: float
    state: str


def _proc_stat(pid: int, task: int | None = None) -> _Proc | None:
    """A process' (or one of this process' threads') `stat`: threads, CPU time and state."""
    where = f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat"
    try:
        with open(where, encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # fields 3.. of proc(5); the name may hold spaces
    utime, stime, threads = int(fields[11]), int(fields[12]), int(fields[17])
    return _Proc(threads=threads, cpu_s=(utime + stime) / _CLOCK_TICKS, state=fields[0])


def _descendants(root: int | None = None) -> dict[int, _Proc]:
    """Every process below `root` (this one by default), by pid, from each thread's children."""
    found: dict[int, _Proc] = {}
    todo = [os.getpid() if root is None else root]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                continue
            for child in children:
                stat = _proc_stat(child)
                if stat is not None and child not in found:
                    found[child] = stat
                    todo.append(child)
    return found


def _parked_codes() -> set[CodeType]:
    """Where a thread waits when it is idle housekeeping: a thread-pool worker waiting for work,
    or asyncio's per-child watcher thread blocked in waitpid (the process checks cover its child)."""
    codes = {concurrent.futures.thread._worker.__code__}
    watcher: Any = getattr(asyncio, "ThreadedChildWatcher", None)
    if watcher is not None and hasattr(watcher, "_do_waitpid"):
        codes.add(watcher._do_waitpid.__code__)
    return codes


_PARKED = _parked_codes()


def _busy_threads() -> dict[int, str]:
    """The host's Python threads that are doing something (not parked), by ident -> name."""
    frames = sys._current_frames()
    busy: dict[int, str] = {}
    for thread in threading.enumerate():
        ident = thread.ident
        if ident is None:
            continue
        frame = frames.get(ident)
        if frame is not None and frame.f_code in _PARKED:
            continue
        busy[ident] = thread.name
    return busy


def _native_threads() -> dict[int, _Proc]:
    """The host's threads that Python does not know (e.g. an extension's Rust runtime), by tid."""
    python = {t.native_id for t in threading.enumerate()}
    found = {}
    for name in os.listdir("/proc/self/task"):
        tid = int(name)
        if tid not in python and (stat := _proc_stat(os.getpid(), tid)) is not None:
            found[tid] = stat
    return found


@dataclass(frozen=True)
class _Census:
    """Threads and processes at one moment."""

    busy: dict[int, str]
    native: dict[int, _Proc]
    processes: dict[int, _Proc]

    @classmethod
    def take(cls, local_processes: bool) -> _Census:
        return cls(
            busy=_busy_threads(),
            native=_native_threads(),
            processes=_descendants() if local_processes else {},
        )

    def leftovers(self, now: _Census, since: dict[int, _Proc]) -> list[str]:
        """What `now` has that this baseline did not. A new native thread counts when it runs or
        has used CPU since `since` (the action's return): an idle one is a runtime's pooled
        thread, which Python cannot tell apart from a blocked one."""
        found = []
        extra = {i: n for i, n in now.busy.items() if i not in self.busy}
        if extra:
            found.append(f"{len(extra)} host thread(s) still running: {sorted(extra.values())}")
        working = [
            f"{tid} ({t.state}, {t.cpu_s - (since[tid].cpu_s if tid in since else 0.0):.2f} s CPU since)"
            for tid, t in now.native.items()
            if tid not in self.native
            and (t.state in "RD" or t.cpu_s - (since[tid].cpu_s if tid in since else 0.0) > _TICK_SLACK_S)
        ]
        if working:
            found.append(f"{len(working)} new native host thread(s) still working: {', '.join(working)}")
        if len(now.processes) > len(self.processes):
            found.append(
                f"{len(now.processes)} descendant processes, {len(self.processes)} before "
                f"({_describe(now.processes)})"
            )
        most = max((p.threads for p in self.processes.values()), default=0)
        for pid, proc in now.processes.items():
            before = self.processes[pid].threads if pid in self.processes else most
            if proc.threads > before:
                found.append(f"descendant {pid} has {proc.threads} threads, {before} before")
        return found


def _describe(processes: dict[int, _Proc]) -> str:
    return ", ".join(f"{pid}:{p.state}/{p.threads}t" for pid, p in sorted(processes.items())[:8])


# ---- the heartbeat --------------------------------------------------------------------------------


class _Heartbeat:
    """A task that sleeps `interval` in a loop on the running event loop and records how late it
    wakes (the worst per phase), the host's current RSS on every beat, and its own CPU time."""

    def __init__(self, interval: float = HEARTBEAT_INTERVAL_S) -> None:
        self.interval = interval
        self.phase = "during the payload"
        self.worst: dict[str, float] = {}
        self.peak_rss = _rss_bytes()
        self.own_cpu_s = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Heartbeat:
        self._task = asyncio.create_task(self._beat())
        await asyncio.sleep(0)  # let it take its first timestamp
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            started = time.thread_time()
            late = loop.time() - due
            if late > self.worst.get(self.phase, 0.0):
                self.worst[self.phase] = late
            self.peak_rss = max(self.peak_rss, _rss_bytes())
            self.own_cpu_s += time.thread_time() - started


# ---- the attack -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def attack(
    executor: Executor,
    payload: Payload,
    arena: Arena,
    *,
    memory_limit: int,
    local_processes: bool = True,
    quiet_window_s: float = QUIET_WINDOW_S,
) -> Verdict:
    """Run `payload` on a started `executor` and judge it (see the module docstring).

    `local_processes=False` is for executors whose work runs elsewhere: the descendant-process
    checks (their CPU after the action, their number and threads) are skipped. Objects the test
    process made before are frozen out of the garbage collector meanwhile: a full collection
    over them (a big heap late in a test session) would stall the event loop for reasons that
    are not the payload's."""
    with _frozen_heap():
        verdict = Verdict(payload)
        memory_bound = min(memory_limit, HOST_MEMORY_BOUND_BYTES)
        connections, peak, rss = arena.connections, _peak_rss_bytes(), _rss_bytes()
        baseline = _Census.take(local_processes)
        async with _Heartbeat() as heartbeat:
            started = time.monotonic()
            out = await _run_bounded(executor, arena.substitute(payload.code), payload.limit_s, verdict)
            verdict.elapsed_s = time.monotonic() - started
            verdict.output = out
            heartbeat.phase = "after the action"
            returned = _native_threads()
            await asyncio.sleep(0.05)  # let a connection attempt reach the listener thread
            await _judge_quiet(verdict, heartbeat, local_processes, quiet_window_s)
            await _judge_leftovers(verdict, baseline, returned, local_processes)
            await _judge_recovery(verdict, executor)
        _judge_effects(verdict, arena, connections, peak, memory_bound)
        _judge_host_memory(verdict, heartbeat.peak_rss - rss, memory_bound)
        _judge_heartbeat(verdict, heartbeat)
        if out is not None:
            _judge_output(verdict, arena, out)
        return verdict


async def _run_bounded(executor: Executor, code: str, limit_s: float, verdict: Verdict) -> CodeOutput | None:
    try:
        return await asyncio.wait_for(executor.run(code), timeout=limit_s)
    except asyncio.TimeoutError:
        verdict.escape(f"the executor hung past limit_s={limit_s:g}s")
    except Exception as exc:  # run() must report snippet problems, not raise them
        verdict.escape(f"the executor raised {type(exc).__name__}: {exc}")
    return None


def _judge_effects(verdict: Verdict, arena: Arena, connections: int, peak: int, bound: int) -> None:
    if arena.marker_path.exists():
        verdict.escape(f"the marker file was created: {arena.marker_path}")
        arena.marker_path.unlink()
    if arena.connections > connections:
        verdict.escape(f"the listener accepted {arena.connections - connections} connection(s)")
    growth = _peak_rss_bytes() - peak
    verdict.measured["ru_maxrss_growth_bytes"] = growth
    if growth > bound:
        verdict.escape(f"host peak memory (ru_maxrss) grew by {growth / 2**20:.0f} MiB (bound {_mib(bound)})")


def _judge_host_memory(verdict: Verdict, growth: int, bound: int) -> None:
    verdict.measured["rss_growth_bytes"] = growth
    if growth > bound:
        verdict.escape(f"host RSS grew by {growth / 2**20:.0f} MiB during the attack (bound {_mib(bound)})")


def _mib(n: int) -> str:
    return f"{n / 2**20:g} MiB"


def _judge_heartbeat(verdict: Verdict, heartbeat: _Heartbeat) -> None:
    for phase, late in heartbeat.worst.items():
        verdict.measured[f"heartbeat_late_s ({phase})"] = late
        if late > HEARTBEAT_BOUND_S:
            verdict.problems.append(
                f"the host's event loop was blocked {phase}: a {heartbeat.interval * 1e3:g} ms heartbeat "
                f"woke {late:.3f} s late (bound {HEARTBEAT_BOUND_S:g} s)"
            )


async def _judge_quiet(
    verdict: Verdict, heartbeat: _Heartbeat, local_processes: bool, window_s: float
) -> None:
    """CPU used by the host and its descendants over a quiet window after the action."""
    host, own = time.process_time(), heartbeat.own_cpu_s
    before = _descendants() if local_processes else {}
    await asyncio.sleep(window_s)
    host_cpu = time.process_time() - host - (heartbeat.own_cpu_s - own)
    verdict.measured["quiet_host_cpu_s"] = host_cpu
    if host_cpu > QUIET_CPU_BOUND_S:
        verdict.problems.append(
            f"the host used {host_cpu:.3f} s of CPU in the {window_s:g} s after the action returned "
            f"(bound {QUIET_CPU_BOUND_S:g} s): work is still running in it"
        )
    if not local_processes:
        return
    after = _descendants()
    spent = {pid: p.cpu_s - (before[pid].cpu_s if pid in before else 0.0) for pid, p in after.items()}
    total = sum(spent.values())
    verdict.measured["quiet_descendants_cpu_s"] = total
    if total > QUIET_CPU_BOUND_S:
        top = sorted(spent.items(), key=lambda kv: -kv[1])[:3]
        busiest = ", ".join(f"{pid}: {s:.2f} s" for pid, s in top)
        verdict.problems.append(
            f"descendant processes used {total:.2f} s of CPU in the {window_s:g} s after the action "
            f"returned (bound {QUIET_CPU_BOUND_S:g} s; {busiest})"
        )


async def _judge_leftovers(
    verdict: Verdict, baseline: _Census, returned: dict[int, _Proc], local_processes: bool
) -> None:
    found = await _settled(lambda: baseline.leftovers(_Census.take(local_processes), returned))
    verdict.measured["new_native_threads"] = len(set(_native_threads()) - set(baseline.native))
    verdict.problems += [f"left behind after the action (waited {SETTLE_S:g} s): {what}" for what in found]


async def _settled(check: Callable[[], list[str]]) -> list[str]:
    deadline = time.monotonic() + SETTLE_S
    while True:
        found = check()
        if not found or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(_POLL_S)


_SCAN_BUDGET = 1_000_000  # parts of a returned value searched for the secrets


def _texts_in(value: Any, budget: int = _SCAN_BUDGET) -> tuple[list[str], bool]:
    """Every distinct string inside a returned value (containers, dataclasses and object
    attributes walked once each), and whether the walk was complete. Not `repr()`: a value built
    from shared parts can be small in memory and have a repr of gigabytes."""
    texts: list[str] = []
    seen: set[int] = set()
    stack = [value]
    while stack:
        if budget <= 0:
            return texts, False
        budget -= 1
        item = stack.pop()
        if item is None or isinstance(item, (bool, int, float, complex)) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, (bytes, bytearray)):
            texts.append(bytes(item).decode("latin-1"))
        elif isinstance(item, dict):
            stack += [*item.keys(), *item.values()]
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack += list(item)
        elif dataclasses.is_dataclass(item):
            stack += [getattr(item, f.name, None) for f in dataclasses.fields(item)]
        elif hasattr(item, "__dict__"):
            stack += list(vars(item).values())
        else:
            texts.append(reprlib.repr(item))
    return texts, True


def _visible_text(out: CodeOutput, verdict: Verdict) -> str:
    texts, complete = _texts_in(out.output)
    if not complete:
        verdict.measured["output_scan_incomplete"] = 1
    parts = [*texts, out.logs]
    if out.error is not None:
        parts += [out.error.describe(), out.error.message, out.error.source_line or ""]
    return "\n".join(parts)


def _judge_output(verdict: Verdict, arena: Arena, out: CodeOutput) -> None:
    visible = _visible_text(out, verdict)
    for which in arena.leaked_in(visible):
        verdict.escape(f"the {which} secret appears in what the executor returned")
    payload = verdict.payload
    if payload.kind == "resource" and verdict.elapsed_s > payload.limit_s:
        verdict.escape(f"not stopped within limit_s={payload.limit_s:g}s ({verdict.elapsed_s:.1f}s)")
    if payload.kind == "resource" and out.error is None:
        verdict.escape("a resource payload ended without a clear error")
    if payload.expect == "stopped" and (out.error is None or out.error.limit is None):
        got = out.error.describe() if out.error else "no error"
        verdict.problems.append(f"expected a resource limit to fire, got: {got[:300]}")


async def _judge_recovery(verdict: Verdict, executor: Executor) -> None:
    token = "next-" + secrets.token_hex(8)
    try:
        after: Any = await asyncio.wait_for(executor.run(f"print({token!r})"), timeout=DEFAULT_LIMIT_S)
    except Exception as exc:
        verdict.problems.append(f"the next code action raised {type(exc).__name__}: {exc}")
        return
    if after.error is not None:
        verdict.problems.append(f"the next code action failed: {after.error.describe()[:300]}")
    elif after.logs.strip() != token:
        verdict.problems.append(
            f"the next code action printed {after.logs[:200]!r}, not its own token {token!r} "
            "(a stale or desynchronised reply)"
        )
