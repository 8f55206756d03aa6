"""Event-loop latency under hostile load: how late a 10 ms heartbeat on the host's event loop
wakes while N sandboxed runs execute at once, each on its own executor.

    python -m benchmarks.hostile_load --executor monty --load hostile [--n 100]
    (also the `hostile_load` figure of `python -m benchmarks`, one fresh process per measurement)

It drives the executors directly (not whole agents): N executors are started (not measured),
then each runs one snippet concurrently while a heartbeat task sleeps 10 ms in a loop on the same
event loop and records how late it wakes. `--load hostile` cycles the N runs through a
representative set of abusive snippets (`HOSTILE`); `--load benign` runs a short CPU-bound loop
in every one (so on a small machine the host competes for CPU with N busy workers: the benign
figure is the floor that contention alone gives). It prints one JSON line: the worst and
99th-percentile lateness, the wall time of the runs, the host's RSS growth and how the runs ended.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codeloop.executors.base import CodeOutput, Executor, ExecutorLimits

__all__ = ["BENIGN", "HOSTILE", "figure_rows", "main", "measure"]

ROOT = Path(__file__).resolve().parents[1]
LIMITS = ExecutorLimits(timeout_s=1.0, memory_bytes=128 * 2**20, max_output_chars=2_000)
INTERVAL_S = 0.01
RUN_BOUND_S = 120.0  # a run still going after this long is counted as hung
BOUND_MS = 250.0  # the red-team harness' HEARTBEAT_BOUND_S (tests/redteam.py)

BENIGN = "total = 0\nfor i in range(100000):\n    total += i % 7\nprint(total)"
HOSTILE: dict[str, str] = {
    "infinite loop": "while True:\n    pass",
    "memory bomb": "blocks = []\nwhile True:\n    blocks.append('x' * (10 * 2**20))",
    "output flood": "while True:\n    print('y' * 100000)",
    "shared-structure tool argument": "x = [1]\nfor _ in range(24):\n    x = [x, x]\nlookup(x)",
    "textwrap on the host": "import textwrap\nprint(len(textwrap.fill('a ' * 10**6, width=1)))",
    "statistics on huge Decimals": (
        "import statistics\nfrom decimal import Decimal\n"
        "print(statistics.mean([Decimal('1e100000') + i for i in range(2000)]))"
    ),
    "forged protocol line": (
        "import os\nfor fd in range(3, 12):\n    try:\n"
        '        os.write(fd, b\'{"type": "result", "ok": true}\\n\')\n'
        "    except OSError:\n        pass\nwhile True:\n    pass"
    ),
}


def lookup(key: Any) -> str:
    """The one tool: harmless, but it receives whatever the snippet passes."""
    return f"no entry for {str(key)[:40]!r}"


def _factory(kind: str) -> Callable[[], Executor]:
    if kind == "monty":
        from codeloop.executors.monty import MontyExecutor

        return lambda: MontyExecutor(LIMITS)
    if kind == "jail":
        from codeloop.executors.jail import JailExecutor

        return lambda: JailExecutor(LIMITS, ["*"])  # every import: the jail itself is the boundary
    raise SystemExit(f"unknown executor {kind!r} (monty or jail)")


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Heartbeat:
    def __init__(self) -> None:
        self.late: list[float] = []
        self.peak_rss_mb = _rss_mb()

    async def beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + INTERVAL_S
            await asyncio.sleep(INTERVAL_S)
            self.late.append(loop.time() - due)
            self.peak_rss_mb = max(self.peak_rss_mb, _rss_mb())


def _outcome(name: str, out: CodeOutput | BaseException) -> str:
    if isinstance(out, BaseException):
        return f"{name}: {type(out).__name__}"
    if out.error is None:
        return f"{name}: ok"
    return f"{name}: {out.error.limit or out.error.type}"


async def _one(executor: Executor, name: str, code: str) -> str:
    try:
        out: CodeOutput | BaseException = await asyncio.wait_for(executor.run(code), RUN_BOUND_S)
    except Exception as exc:
        out = exc
    return _outcome(name, out)


async def measure(kind: str, load: str, n: int) -> dict[str, Any]:
    make = _factory(kind)
    snippets = (
        [("benign", BENIGN)] * n
        if load == "benign"
        else [list(HOSTILE.items())[i % len(HOSTILE)] for i in range(n)]
    )
    executors = [make() for _ in range(n)]
    started = time.perf_counter()
    await asyncio.gather(*(e.start({"lookup": lookup}) for e in executors))
    start_s = time.perf_counter() - started
    await asyncio.gather(*(e.run("x = 1") for e in executors))  # warm, outside the measurement
    heartbeat = _Heartbeat()
    rss = heartbeat.peak_rss_mb
    beat = asyncio.create_task(heartbeat.beat())
    started = time.perf_counter()
    runs = zip(executors, snippets, strict=True)
    outcomes = await asyncio.gather(*(_one(e, name, code) for e, (name, code) in runs))
    wall_s = time.perf_counter() - started
    beat.cancel()
    await asyncio.gather(beat, return_exceptions=True)
    await asyncio.gather(*(e.close() for e in executors), return_exceptions=True)
    late = sorted(heartbeat.late) or [0.0]
    p99 = statistics.quantiles(late, n=100, method="inclusive")[98] if len(late) > 1 else late[0]
    return {
        "executor": kind,
        "load": load,
        "n": n,
        "worst_ms": late[-1] * 1e3,
        "p99_ms": p99 * 1e3,
        "median_ms": statistics.median(late) * 1e3,
        "beats": len(heartbeat.late),
        "wall_s": wall_s,
        "start_s": start_s,
        "rss_growth_mb": heartbeat.peak_rss_mb - rss,
        "outcomes": dict(collections.Counter(outcomes)),
    }


def _measure_fresh(kind: str, load: str, n: int) -> dict[str, Any]:
    """One measurement in a fresh interpreter."""
    argv = [
        sys.executable,
        "-m",
        "benchmarks.hostile_load",
        "--executor",
        kind,
        "--load",
        load,
        "--n",
        str(n),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    lines = done.stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("{"):
        raise RuntimeError(
            f"hostile_load {kind} {load} failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
        )
    # A measurement printed before a crash at exit still stands; the crash is reported with it.
    return {**json.loads(lines[-1]), "exit_code": done.returncode}


def figure_rows(args: argparse.Namespace) -> list[Any]:
    """The `hostile_load` figure: per executor, benign vs hostile load, each measured `repeats`
    times in a fresh process; the worst heartbeat lateness of hostile load should stay under the
    red-team harness' bound (0.25 s)."""
    from benchmarks.common import Stat
    from benchmarks.figures import Row

    repeats, n = (1, 100) if args.quick else (3, 100)
    rows = []
    for kind in ("monty", "jail"):
        for load in ("benign", "hostile"):
            runs = [_measure_fresh(kind, load, n) for _ in range(repeats)]
            worst, p99 = Stat.of([r["worst_ms"] for r in runs]), Stat.of([r["p99_ms"] for r in runs])
            outcomes = collections.Counter[str]()
            for r in runs:
                outcomes.update(r["outcomes"])
            note = (
                f"{n} executors driven directly (not agents), one snippet each, concurrently; "
                f"{statistics.median(r['wall_s'] for r in runs):.1f} s of runs, "
                f"{min(r['beats'] for r in runs)}+ beats; ended: "
                + ", ".join(f"{k} x{v}" for k, v in sorted(outcomes.items()))
            )
            crashed = [r["exit_code"] for r in runs if r["exit_code"] != 0]
            if crashed:
                note += f"; the process exited with {crashed} after printing its result ({len(runs)} runs)"
            row = Row(
                "hostile load", f"{kind}, {load}: worst heartbeat lateness", "ms", worst, None, note=note
            )
            if load == "hostile":
                row.target, row.met = f"≤ {BOUND_MS:g} ms", worst.high <= BOUND_MS
            rows += [row, Row("hostile load", f"{kind}, {load}: p99 heartbeat lateness", "ms", p99, None)]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.hostile_load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--executor", default="monty", help="monty or jail")
    parser.add_argument("--load", default="hostile", choices=["hostile", "benign"])
    parser.add_argument("--n", type=int, default=100, help="concurrent runs, one executor each")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(measure(args.executor, args.load, args.n))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
