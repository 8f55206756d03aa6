"""Store overhead per step: what `store=` costs a CodeAgent per step, in one run, side by side.

    python -m benchmarks.store_overhead [--steps 20] [--repeats 15]
    (also the `store_overhead` figure of `python -m benchmarks`, measured in one fresh process)

A CodeAgent with a `ScriptedModel` (instant replies) and the Monty executor runs `--steps`-step
tasks: every step but the last calls a tool (so every step writes its in-progress reply, one
journaled tool call and the ended step), the last gives the final answer. Three variants run
interleaved, round after round (the order rotates each round, so drift hits all alike):

* no store;
* SQLite: a `SQLiteStore` on a temporary file (WAL, synchronous=FULL, as the store sets it);
* PostgreSQL: a `PostgresStore` on a PostgreSQL server this benchmark starts on 127.0.0.1 (its
  cluster made by `initdb` in a temporary folder, as `nobody` when run as root, stopped and
  removed at the end; default durability settings: fsync and synchronous_commit on).

Each store is opened once and shared by the runs (a worker's steady state); the run's row and
lease (taken at the start of each run) are part of the measured time. It prints one JSON line:
per variant, the wall time per step of every round, and the PostgreSQL server's version.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import record, record_replies
from .pg_server import PostgresServer

__all__ = ["figure_rows", "main", "measure"]

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("none", "sqlite", "postgres")
LABELS = {"none": "no store", "sqlite": "SQLite", "postgres": "PostgreSQL"}


# ---- the measurement --------------------------------------------------------------------------------


async def _one_run(store: Any, steps: int) -> float:
    """Wall seconds per step of one `steps`-step run; checks that it ran every step."""
    from codeloop import CodeAgent, ScriptedModel, tool

    model = ScriptedModel(record_replies(steps), chunk_size=10_000)
    async with CodeAgent([tool(record)], model, max_steps=steps, max_repeats=None, store=store) as agent:
        start = time.perf_counter()
        result = await agent.arun("Benchmark task.")
        elapsed = time.perf_counter() - start
    if result != (steps - 2) * 2:
        raise RuntimeError(f"the scripted run ended with {result!r}, not {(steps - 2) * 2}")
    if len(model.requests) != steps:
        raise RuntimeError(f"the scripted run made {len(model.requests)} model calls, not {steps}")
    return elapsed / steps


async def _check_stored(name: str, store: Any, steps: int, runs: int) -> None:
    """Every run was stored whole: its state, its steps and one journaled call per tool step."""
    stored = await store.list_runs(limit=10_000)
    if len(stored) != runs:
        raise RuntimeError(f"{name}: {len(stored)} runs stored, expected {runs}")
    for run in stored:
        calls = await store.tool_calls(run.run_id)
        if run.state != "success" or run.step_count < steps or len(calls) != steps - 1:
            raise RuntimeError(
                f"{name}: run {run.run_id} stored as {run.state}, {run.step_count} steps, {len(calls)} calls"
            )


async def _measure(dsn: str, sqlite_path: Path, steps: int, repeats: int) -> dict[str, list[float]]:
    from codeloop.store import PostgresStore, SQLiteStore

    sqlite, postgres = SQLiteStore(sqlite_path), PostgresStore(dsn)
    await sqlite.open()
    await postgres.open()
    stores: dict[str, Any] = {"none": None, "sqlite": sqlite, "postgres": postgres}
    try:
        for name in VARIANTS:  # warm-up: imports, schema, first connections, caches
            await _one_run(stores[name], steps)
        ms: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for round_index in range(repeats):
            shift = round_index % len(VARIANTS)
            for name in VARIANTS[shift:] + VARIANTS[:shift]:
                ms[name].append(await _one_run(stores[name], steps) * 1000)
        for name in ("sqlite", "postgres"):
            await _check_stored(name, stores[name], steps, runs=repeats + 1)
        return ms
    finally:
        await sqlite.close()
        await postgres.close()


def measure(steps: int, repeats: int) -> dict[str, Any]:
    """Start PostgreSQL, measure the three variants interleaved, stop it; the JSON-able result."""
    server = PostgresServer.start(durable=True)
    try:
        database = "bench"
        import psycopg

        with psycopg.connect(server.dsn(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
        with tempfile.TemporaryDirectory(prefix="codeloop-bench-sqlite-") as folder:
            ms = asyncio.run(_measure(server.dsn(database), Path(folder) / "runs.db", steps, repeats))
        version = server.version()
    finally:
        server.stop()
    return {"steps": steps, "repeats": repeats, "ms_per_step": ms, "postgres_version": version}


# ---- the figure -------------------------------------------------------------------------------------


def figure_rows(args: argparse.Namespace) -> list[Any]:
    """The `store_overhead` figure, measured in one fresh process: wall time per step for each
    variant, and each store's overhead per step against no store (difference and ratio, paired
    round by round)."""
    from benchmarks.common import Stat
    from benchmarks.figures import Row, paired_rows

    steps, repeats = (5, 3) if args.quick else (20, 15)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.store_overhead", "--steps", str(steps), "--repeats", str(repeats)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"benchmarks.store_overhead failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    ms: dict[str, list[float]] = report["ms_per_step"]
    note = (
        f"CodeAgent, ScriptedModel (instant), Monty executor, {steps}-step runs ({steps - 1} tool calls), "
        f"{repeats} rounds, variants interleaved; stores opened once and shared by the runs; "
        f"SQLite: temp file, WAL, synchronous=FULL; PostgreSQL {report['postgres_version']} on 127.0.0.1 "
        "started by the benchmark, default fsync/synchronous_commit"
    )
    rows = [Row("store overhead", "no store: wall per step", "ms", Stat.of(ms["none"]), None, note=note)]
    for name in ("sqlite", "postgres"):
        rows += paired_rows("store overhead", LABELS[name], ms[name], ms["none"], "no store")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.store_overhead", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--steps", type=int, default=20, help="steps per run (the last one answers)")
    parser.add_argument("--repeats", type=int, default=15, help="measured rounds, after one warm-up")
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    print(json.dumps(measure(args.steps, args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
