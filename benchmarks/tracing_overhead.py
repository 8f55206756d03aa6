"""Tracing overhead per step: what `codeloop.telemetry` costs a CodeAgent per step, off and on.

    python -m benchmarks.tracing_overhead [--steps 20] [--repeats 30]          # off, on, on+content
    python -m benchmarks.tracing_overhead --alone never|off [--steps 20] [--repeats 30]
    (also the `tracing_overhead` figure of `python -m benchmarks`, each in a fresh process)

A CodeAgent with a `ScriptedModel` (instant replies) and the Monty executor runs `--steps`-step
tasks: every step but the last calls a tool, the last gives the final answer, so a traced run
makes 3 spans per step (chat, execute_code, execute_tool) and one for the run. The main process
runs three variants interleaved, round after round (the order rotates each round):

* off: no run observer (`uninstrument()` after the on rounds), `auto_instrument_from_env()`
  called before each run as the core's hook does, no OTEL_* variable set;
* on: `instrument()` with an SDK `TracerProvider` and a `BatchSpanProcessor` exporting to an
  exporter that only counts the spans (no network, no serialization: what is measured is
  codeloop's event-to-span mapping and the SDK's span bookkeeping, not a collector);
* on + content: the same with `capture_content=True` (message, code and tool content as JSON).

`--alone` runs one variant in a process of its own, for "off costs nothing": `never` never
imports the OpenTelemetry API; `off` also calls the hook before each run but is never switched
on (what every user without OTEL_* variables gets). Since the loop itself calls the hook (the
OTEL_* check), both kinds of process import the small `codeloop.telemetry` package and pay the
loop's call; the figure of 2026-12-03 was measured before that, with `never` importing nothing. The
figure alternates the three kinds of process, and times the off hook itself with `timeit`. Each
process prints one JSON line: per variant, the wall time per step of every round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path
from typing import Any

from .common import record, record_replies

__all__ = ["figure_rows", "main", "measure"]

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("off", "on", "content")
LABELS = {"off": "off", "on": "on", "content": "on + content"}


# ---- the measurement --------------------------------------------------------------------------------


def spans_per_run(steps: int) -> int:
    """A traced run's spans: the run, a chat and a code action per step, a tool call per step but the last."""
    return 1 + 2 * steps + (steps - 1)


async def _one_run(steps: int, hook: bool) -> float:
    """Wall seconds per step of one `steps`-step run; checks that it ran every step. `hook`:
    call `auto_instrument_from_env()` first, as the core does at each run's start."""
    from codeloop import CodeAgent, ScriptedModel, tool

    if hook:
        from codeloop.telemetry import auto_instrument_from_env

        auto_instrument_from_env()
    model = ScriptedModel(record_replies(steps), chunk_size=10_000)
    async with CodeAgent([tool(record)], model, max_steps=steps, max_repeats=None) as agent:
        start = time.perf_counter()
        result = await agent.arun("Benchmark task.")
        elapsed = time.perf_counter() - start
    if result != (steps - 2) * 2 or len(model.requests) != steps:
        raise RuntimeError(f"the scripted run ended with {result!r} after {len(model.requests)} model calls")
    return elapsed / steps


def _counting_provider() -> tuple[Any, Any]:
    """An SDK tracer provider whose batch processor exports to a span counter."""
    from collections.abc import Sequence

    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Counter(SpanExporter):
        def __init__(self) -> None:
            self.count = 0

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            self.count += len(spans)
            return SpanExportResult.SUCCESS

    counter = Counter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(counter))
    return provider, counter


def _switch(variant: str, provider: Any) -> None:
    from codeloop import telemetry

    if variant == "off":
        telemetry.uninstrument()
    else:
        telemetry.instrument(provider, capture_content=variant == "content")


async def _measure(steps: int, repeats: int) -> dict[str, list[float]]:
    from codeloop import telemetry

    provider, counter = _counting_provider()
    traced_runs = 0
    try:
        for name in VARIANTS:  # warm-up: imports, first spans, caches
            _switch(name, provider)
            await _one_run(steps, hook=True)
        ms: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for round_index in range(repeats):
            shift = round_index % len(VARIANTS)
            for name in VARIANTS[shift:] + VARIANTS[:shift]:
                _switch(name, provider)
                ms[name].append(await _one_run(steps, hook=True) * 1000)
        traced_runs = 2 * (repeats + 1)
    finally:
        telemetry.uninstrument()
        provider.shutdown()  # exports what is left
    if counter.count != traced_runs * spans_per_run(steps):
        raise RuntimeError(f"{counter.count} spans exported, expected {traced_runs * spans_per_run(steps)}")
    return ms


def _hook_cost_us(loops: int = 200_000) -> float:
    """Microseconds per run of what tracing costs when off: the core's hook and observer check."""
    from codeloop import CodeAgent, ScriptedModel
    from codeloop.events import run_observers
    from codeloop.telemetry import auto_instrument_from_env

    agent = CodeAgent([], ScriptedModel([]))

    def hook() -> None:
        auto_instrument_from_env()
        run_observers(agent)

    return min(timeit.repeat(hook, number=loops, repeat=5)) / loops * 1e6


async def _measure_alone(kind: str, steps: int, repeats: int) -> dict[str, list[float]]:
    """A process of its own: `never` (telemetry never imported: runs without the hook) or `off`
    (telemetry imported, never switched on: runs with the hook and without it, interleaved, so
    the hook's cost is paired round by round in one process)."""
    variants = ("hook", "bare") if kind == "off" else ("bare",)
    for name in variants:
        await _one_run(steps, hook=name == "hook")
    ms: dict[str, list[float]] = {name: [] for name in variants}
    for round_index in range(repeats):
        order = variants[round_index % len(variants) :] + variants[: round_index % len(variants)]
        for name in order:
            ms[name].append(await _one_run(steps, hook=name == "hook") * 1000)
    # The loop calls the off hook itself now, so `codeloop.telemetry` (no OpenTelemetry in it) is
    # imported in both kinds of process: what must never be imported is the tracing API.
    tracing = [m for m in sys.modules if m.startswith(("opentelemetry.trace", "opentelemetry.sdk"))]
    if tracing:
        raise RuntimeError(f"{kind}: tracing modules imported with tracing off: {tracing}")
    return ms


def measure(steps: int, repeats: int, alone: str | None) -> dict[str, Any]:
    """The JSON-able result: the three variants interleaved, or a process `alone` (see above)."""
    if alone is not None:
        ms_alone = asyncio.run(_measure_alone(alone, steps, repeats))
        return {"steps": steps, "repeats": repeats, "ms_per_step": ms_alone}
    ms = asyncio.run(_measure(steps, repeats))
    return {"steps": steps, "repeats": repeats, "ms_per_step": ms, "hook_us_per_run": _hook_cost_us()}


# ---- the figure -------------------------------------------------------------------------------------


def _subprocess(steps: int, repeats: int, alone: str | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.tracing_overhead", "--steps", str(steps)]
    command += ["--repeats", str(repeats)]
    command += ["--alone", alone] if alone else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}  # off means off
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmarks.tracing_overhead failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def figure_rows(args: argparse.Namespace) -> list[Any]:
    """The `tracing_overhead` figure: fresh processes, by turns the main one (off, on and on +
    content interleaved), a never-imported one and an off-alone one; wall time per step of each
    variant, on's overhead per step against off (paired round by round), and off-alone against
    never imported (the medians of the processes of each turn)."""
    steps, repeats, turns = (5, 3, 1) if args.quick else (20, 30, 6)
    kinds = ("main", "never", "off")
    found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for turn in range(turns):
        for kind in kinds[turn % 3 :] + kinds[: turn % 3]:
            found[kind].append(_subprocess(steps, repeats, None if kind == "main" else kind))
    return _main_rows(steps, repeats, found["main"]) + _off_rows(found)


def _main_rows(steps: int, repeats: int, mains: list[dict[str, Any]]) -> list[Any]:
    from benchmarks.common import Stat
    from benchmarks.figures import Row, paired_rows

    ms = {name: [v for m in mains for v in m["ms_per_step"][name]] for name in VARIANTS}
    note = (
        f"CodeAgent, ScriptedModel (instant), Monty executor, {steps}-step runs ({steps - 1} tool calls, "
        f"{spans_per_run(steps)} spans per traced run), {repeats} rounds x {len(mains)} processes, variants "
        "interleaved; on = instrument() with an SDK TracerProvider + BatchSpanProcessor exporting to a "
        "counting no-op exporter (no collector, no serialization)"
    )
    rows = [Row("tracing overhead", "off: wall per step", "ms", Stat.of(ms["off"]), None, note=note)]
    for name in ("on", "content"):
        rows += paired_rows("tracing overhead", LABELS[name], ms[name], ms["off"], "off", extra_unit="µs")
    return rows


def _off_rows(found: dict[str, list[dict[str, Any]]]) -> list[Any]:
    from benchmarks.common import Stat
    from benchmarks.figures import Row

    never = [r["ms_per_step"]["bare"] for r in found["never"]]
    hooked = [r["ms_per_step"]["hook"] for r in found["off"]]
    bare = [r["ms_per_step"]["bare"] for r in found["off"]]
    paired = [(a - b) * 1000 for h, n in zip(hooked, bare, strict=True) for a, b in zip(h, n, strict=True)]
    gaps = [(statistics.median(a) - statistics.median(b)) * 1000 for a, b in zip(hooked, never, strict=True)]
    hook = [m["hook_us_per_run"] for m in found["main"]]
    never_all, off_all = Stat.of([v for r in never for v in r]), Stat.of([v for r in hooked for v in r])
    return [
        Row("tracing overhead", "never imported: wall per step", "ms", never_all, None,
            note="codeloop.telemetry and the OpenTelemetry API never imported, in processes of their own"),
        Row("tracing overhead", "off, never switched on: wall per step", "ms", off_all, None,
            note="codeloop.telemetry imported, the hook called before each run, no OTEL_* variable"),
        Row("tracing overhead", "off: the hook's cost per step, paired in one process", "µs", Stat.of(paired),
            None, note="the off process's runs with the hook minus its runs without, round by round"),
        Row("tracing overhead", "off, never switched on - never imported: per step", "µs", Stat.of(gaps),
            None, note="per turn, the median step of the off process minus that of the never-imported one "
            "(different processes: their spread is process-to-process noise)"),
        Row("tracing overhead", "off: hook + observer check per run", "µs", Stat.of(hook), None,
            note="timeit: auto_instrument_from_env() + run_observers(agent), no observer; per run, not step"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tracing_overhead", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--steps", type=int, default=20, help="steps per run (the last one answers)")
    parser.add_argument("--repeats", type=int, default=30, help="measured rounds, after one warm-up")
    parser.add_argument("--alone", choices=("never", "off"), help="one variant in this process (see above)")
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    print(json.dumps(measure(args.steps, args.repeats, args.alone)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
