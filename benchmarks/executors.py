"""Executor benchmark: cold start, warm round trip, a CPU-bound loop against native CPython, and a
tool call's round trip, for each local executor and for smolagents' LocalPythonExecutor.

    python -m benchmarks.executors [--repeats N] [--no-smolagents]      (also part of `python -m benchmarks`)

Every number is the median over repeats, with the min and max beside it. Definitions:

* cold start: build a new executor, `start()` it with one tool, run a trivial snippet;
* warm round trip: one trivial `run()` on a started executor;
* CPU loop ratio: a pure-Python loop run as a snippet, divided by the same loop run natively by
  this interpreter (smolagents: natively in its own process, with a smaller loop: it is slow);
* tool call: a snippet calling a host function in a loop, per call.

smolagents is not a dependency of codeloop: its measurements run in a private venv under
`.bench/smolagents` (see `benchmarks/common.py`) in a subprocess. The table is printed and the
numbers are written to `benchmarks/results/executors.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.common import smolagents_python
from codeloop.executors.base import Executor, ExecutorLimits

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "executors.json"
LOOP = "def work(n):\n    total = 0\n    for i in range(n):\n        total += i * i % 7\n    return total\n"
N_LOOP, N_LOOP_SMOL, TOOL_CALLS, WARM_CALLS = 5_000_000, 50_000, 1_000, 200
LIMITS = ExecutorLimits(timeout_s=120.0, memory_bytes=512 * 2**20)
TARGETS = {"jail_cpu_ratio": 1.2, "jail_cold_start_s": 0.150, "monty_cpu_ratio": 2.0, "loop_speedup": 30.0}


def add(a: int, b: int) -> int:
    return a + b


def stat(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "n": len(samples)}


def native_loop(n: int, repeats: int) -> list[float]:
    namespace: dict[str, Any] = {}
    exec(LOOP, namespace)
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        namespace["work"](n)
        samples.append(time.perf_counter() - started)
    return samples


async def timed(action: Awaitable[Any]) -> float:
    started = time.perf_counter()
    out = await action
    elapsed = time.perf_counter() - started
    if getattr(out, "error", None) is not None:
        raise RuntimeError(f"benchmark snippet failed: {out.error}")
    return elapsed


async def cold_start(factory: Callable[[], Executor]) -> float:
    started = time.perf_counter()
    executor = factory()
    await executor.start({"add": add})
    await executor.run("x = 1")
    elapsed = time.perf_counter() - started
    await executor.close()
    return elapsed


async def measure(factory: Callable[[], Executor], repeats: int) -> dict[str, Any]:
    """All four numbers for one executor. Each loop run is paired with a native run just before
    it, so that load from other processes on the machine affects both sides alike."""
    cold = [await cold_start(factory) for _ in range(repeats)]
    executor = factory()
    await executor.start({"add": add})
    try:
        await executor.run("x = 1")
        warm = [await timed(executor.run("x = 1")) for _ in range(WARM_CALLS)]
        await executor.run(LOOP)
        loop = []
        for _ in range(repeats):
            native = native_loop(N_LOOP, 1)[0]
            loop.append(await timed(executor.run(f"work({N_LOOP})")) / native)
        calls = f"for _ in range({TOOL_CALLS}):\n    add(1, 2)"
        tool = [await timed(executor.run(calls)) / TOOL_CALLS for _ in range(repeats)]
    finally:
        await executor.close()
    return {"cold_start_s": stat(cold), "warm_round_trip_s": stat(warm), "cpu_loop_ratio": stat(loop),
            "tool_call_s": stat(tool)}  # fmt: skip


async def monty_alone(repeats: int) -> dict[str, Any]:
    """The CPU loop run by pydantic-monty itself, with no codeloop in between: a worker session
    checked out with no options, paired with a native run like `measure`'s. What MontyExecutor
    adds on top of this is codeloop's part of Monty's loop time."""
    import pydantic_monty as pm

    ratios = []
    async with pm.AsyncMonty(min_processes=1, max_processes=1) as monty, monty.checkout() as session:
        await session.feed_run(LOOP)
        for _ in range(repeats):
            native = native_loop(N_LOOP, 1)[0]
            started = time.perf_counter()
            await session.feed_run(f"work({N_LOOP})")
            ratios.append((time.perf_counter() - started) / native)
    return {"cpu_loop_ratio": stat(ratios)}


def factories() -> dict[str, Callable[[], Executor]]:
    from codeloop.executors import confine
    from codeloop.executors.jail import JailExecutor
    from codeloop.executors.local import LocalExecutor
    from codeloop.executors.monty import MontyExecutor

    found: dict[str, Callable[[], Executor]] = {"monty": lambda: MontyExecutor(LIMITS)}
    if not confine.missing_mechanisms(bwrap=False):
        if confine.bwrap_available():
            found["jail"] = lambda: JailExecutor(LIMITS, use_bwrap=True)
        found["jail (no bwrap)"] = lambda: JailExecutor(LIMITS, use_bwrap=False)
    found["local"] = lambda: LocalExecutor(LIMITS)
    return found


# -- smolagents, in its own venv ------------------------------------------------------------------

SMOL_SCRIPT = r"""
import json, statistics, sys, time
started = time.perf_counter()
from smolagents.local_python_executor import LocalPythonExecutor
import_s = time.perf_counter() - started
loop, n, tool_calls, warm_calls, repeats = json.loads(sys.argv[1])

def add(a, b):
    return a + b

def new():
    executor = LocalPythonExecutor(additional_authorized_imports=[])
    executor.send_tools({"add": add})
    return executor

def timed(function, *args):
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started

cold = [timed(lambda: new()("x = 1")) for _ in range(repeats)]
executor = new()
executor("x = 1")
warm = [timed(executor, "x = 1") for _ in range(warm_calls)]
executor(loop)
namespace = {}
exec(loop, namespace)
ratio = []
for _ in range(repeats):
    native = timed(namespace["work"], n)
    ratio.append(timed(executor, f"work({n})") / native)
calls = f"for _ in range({tool_calls}):\n    add(1, 2)"
tool = [timed(executor, calls) / tool_calls for _ in range(repeats)]
print(json.dumps({"import_s": import_s, "cold": cold, "warm": warm, "loop": ratio, "tool": tool}))
"""


def measure_smolagents(repeats: int) -> dict[str, Any]:
    args = json.dumps([LOOP, N_LOOP_SMOL, TOOL_CALLS, WARM_CALLS, repeats])
    done = subprocess.run(
        [str(smolagents_python()), "-c", SMOL_SCRIPT, args], capture_output=True, text=True, check=True
    )
    raw = json.loads(done.stdout.strip().splitlines()[-1])
    return {"cold_start_s": stat(raw["cold"]), "warm_round_trip_s": stat(raw["warm"]),
            "cpu_loop_ratio": stat(raw["loop"]), "tool_call_s": stat(raw["tool"]),
            "import_s": raw["import_s"]}  # fmt: skip


# -- report -----------------------------------------------------------------------------------------


def _cell(entry: dict[str, float], scale: float, digits: int) -> str:
    low, mid, high = (f"{entry[k] * scale:.{digits}f}" for k in ("min", "median", "max"))
    return f"{mid} ({low}-{high})"


COLUMNS = [
    ("cold start ms", "cold_start_s", 1e3, 1),
    ("warm run ms", "warm_round_trip_s", 1e3, 3),
    ("CPU loop x native", "cpu_loop_ratio", 1, 2),
    ("tool call us", "tool_call_s", 1e6, 1),
]


def table(results: dict[str, dict[str, Any]]) -> str:
    header = f"{'executor':<18}" + "".join(f"{title:<24}" for title, *_ in COLUMNS)
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        cells = [_cell(r[key], scale, digits) for _, key, scale, digits in COLUMNS]
        lines.append(f"{name:<18}" + "".join(f"{c:<24}" for c in cells))
    return "\n".join(lines)


def verdicts(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each target of issue 3 with the measured median and whether it was met."""
    med = {name: {k: v["median"] for k, v in r.items() if isinstance(v, dict)} for name, r in results.items()}
    checks: list[tuple[str, float, float, bool]] = []  # label, measured, target, "at least"
    if "jail" in med:
        checks.append(
            ("jail CPU ratio <= 1.2", med["jail"]["cpu_loop_ratio"], TARGETS["jail_cpu_ratio"], False)
        )
        cold = med["jail"]["cold_start_s"]
        checks.append(("jail cold start <= 150 ms", cold, TARGETS["jail_cold_start_s"], False))
    checks.append(
        ("monty CPU ratio <= 2.0", med["monty"]["cpu_loop_ratio"], TARGETS["monty_cpu_ratio"], False)
    )
    smol = med.get("smolagents", {}).get("cpu_loop_ratio")
    for name in ("jail", "monty"):
        if name in med and smol is not None:
            speedup = smol / med[name]["cpu_loop_ratio"]
            checks.append(
                (f"{name} >= 30x faster than smolagents on the loop", speedup, TARGETS["loop_speedup"], True)
            )
    return {
        label: {"measured": value, "target": target, "met": value >= target if at_least else value <= target}
        for label, value, target, at_least in checks
    }


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip


async def run_all(repeats: int, with_smolagents: bool) -> dict[str, Any]:
    native = statistics.median(native_loop(N_LOOP, repeats))
    results: dict[str, dict[str, Any]] = {}
    for name, factory in factories().items():
        print(f"measuring {name}...", file=sys.stderr)
        results[name] = await measure(factory, repeats)
    print("measuring the Monty interpreter alone...", file=sys.stderr)
    alone = await monty_alone(repeats)
    if with_smolagents:
        print("measuring smolagents (in .bench/smolagents)...", file=sys.stderr)
        results["smolagents"] = measure_smolagents(repeats)
    return {"machine": machine(), "native_loop_s": native, "loop_n": N_LOOP, "smolagents_loop_n": N_LOOP_SMOL,
            "results": results, "monty_alone": alone, "targets": verdicts(results)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-smolagents", action="store_true", help="skip smolagents (no venv is created)")
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore", message="LocalExecutor is not a security boundary")
    report = asyncio.run(run_all(args.repeats, not args.no_smolagents))
    print(table(report["results"]))
    smol = report["results"].get("smolagents")
    if smol:
        print(f"(smolagents: importing it took {smol['import_s']:.2f} s, not counted in its cold start)")
    print()
    for label, v in report["targets"].items():
        verdict = "MET " if v["met"] else "MISS"
        print(f"{verdict}  {label}: measured {v['measured']:.3g} (target {v['target']:g})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
