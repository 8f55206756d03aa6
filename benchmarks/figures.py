"""The figures: each runs both sides and returns table rows with the ratio and its target."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import task_sets
from .common import ROOT, Stat, smolagents_python

__all__ = ["FIGURES", "Figure", "Row"]

Side = Callable[..., Any]


@dataclass
class Row:
    figure: str
    metric: str
    unit: str
    codeloop: Stat | float | None
    smolagents: Stat | float | None
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.codeloop is None or self.smolagents is None:
            return None
        ours, theirs = _value(self.codeloop), _value(self.smolagents)
        return ours / theirs if theirs else None

    def to_dict(self) -> dict[str, Any]:
        def plain(v: Stat | float | None) -> Any:
            return v.to_dict() if isinstance(v, Stat) else v

        return {
            "figure": self.figure, "metric": self.metric, "unit": self.unit,
            "codeloop": plain(self.codeloop), "smolagents": plain(self.smolagents), "ratio": self.ratio,
            "target": self.target, "met": self.met, "note": self.note,
        }  # fmt: skip


def paired_rows(
    figure: str, label: str, ms: list[float], base: list[float], base_label: str, extra_unit: str = "ms"
) -> list[Row]:
    """A variant's wall time per step against a baseline measured in the same rounds: the time,
    the difference (in `extra_unit`: ms or µs) and the ratio, paired round by round."""
    scale = 1000 if extra_unit == "µs" else 1
    extra = [(a - b) * scale for a, b in zip(ms, base, strict=True)]
    ratio = [a / b for a, b in zip(ms, base, strict=True)]
    medians = (
        f"paired round by round; ratio of medians {statistics.median(ms) / statistics.median(base):.3g}x"
    )
    return [
        Row(figure, f"{label}: wall per step", "ms", Stat.of(ms), None),
        Row(figure, f"{label}: overhead per step vs {base_label}", extra_unit, Stat.of(extra), None),
        Row(figure, f"{label}: wall per step / {base_label}", "x", Stat.of(ratio), None, note=medians),
    ]


def _value(v: Stat | float) -> float:
    return v.median if isinstance(v, Stat) else float(v)


def _ratio_target(row: Row, at_most: float) -> Row:
    row.target, row.met = f"ratio ≤ {at_most:g}", row.ratio is not None and row.ratio <= at_most
    return row


@dataclass
class Figure:
    name: str
    title: str
    run: Callable[[argparse.Namespace, Side, Side], list[Row]]
    needs_real_model: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# ---- 1. framework overhead per step ------------------------------------------------------------


def overhead(args: argparse.Namespace, ours: Side, theirs: Side) -> list[Row]:
    repeats = 3 if args.quick else 20
    rows = []
    for agent in ("code", "tool"):
        options = {"agent": agent, "steps": 10, "repeats": repeats}
        mine = Stat.of(ours("overhead", **options)["ms_per_step"])
        other = Stat.of(theirs("overhead", **options)["ms_per_step"])
        name = "CodeAgent" if agent == "code" else "ToolCallingAgent"
        note = "scripted instant model, 10-step runs, output off" + (
            ", executor included" if agent == "code" else ""
        )
        rows.append(_ratio_target(Row("overhead", f"{name} per step", "ms", mine, other, note=note), 0.25))
    return rows


# ---- 2. executor speed --------------------------------------------------------------------------

_EXECUTOR_METRICS = [
    ("cold start", "cold_start_s", "ms", 1e3),
    ("warm round trip", "warm_round_trip_s", "ms", 1e3),
    ("CPU-bound loop vs native CPython", "cpu_loop_ratio", "x native", 1.0),
    ("tool call round trip", "tool_call_s", "us", 1e6),
]


def executor_speed(args: argparse.Namespace, ours: Side, theirs: Side) -> list[Row]:
    repeats = "2" if args.quick else "7"
    subprocess.run([sys.executable, "-m", "benchmarks.executors", "--repeats", repeats], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    report = json.loads((ROOT / "benchmarks" / "results" / "executors.json").read_text())
    results, targets = report["results"], report["targets"]
    smol = results.get("smolagents")
    rows = []
    for name, measured in results.items():
        if name == "smolagents":
            continue
        for label, key, unit, scale in _EXECUTOR_METRICS:
            theirs_stat = _scaled(smol[key], scale) if smol else None
            note = "smolagents: LocalPythonExecutor, in process" if not rows else ""
            mine = _scaled(measured[key], scale)
            rows.append(Row("executors", f"{name}: {label}", unit, mine, theirs_stat, note=note))
    if "monty_alone" in report:
        alone, ours_ = report["monty_alone"]["cpu_loop_ratio"], results["monty"]["cpu_loop_ratio"]
        times = ours_["median"] / alone["median"]
        note = (f"pydantic-monty's own worker session, no codeloop: MontyExecutor's loop takes "
                f"{times:.2f}x its time (codeloop's part: the limits it sets)")  # fmt: skip
        label = "Monty interpreter alone: CPU loop x native"
        rows.append(Row("executors", label, "x native", _scaled(alone, 1), None, note=note))
    for label, verdict in targets.items():
        rows.append(Row("executors", f"target: {label}", "", verdict["measured"], None,
                        target=f"{verdict['target']:g}", met=verdict["met"]))  # fmt: skip
    return rows


def _scaled(entry: dict[str, float], scale: float) -> Stat:
    return Stat(entry["median"] * scale, entry["min"] * scale, entry["max"] * scale, int(entry["n"]))


# ---- 3. prompt tokens ----------------------------------------------------------------------------


def prompt_tokens(args: argparse.Namespace, ours: Side, theirs: Side) -> list[Row]:
    options = {"tool_counts": [1, 5]}
    mine, other = ours("prompt_tokens", **options), theirs("prompt_tokens", **options)
    labels = {
        "code_0": "CodeAgent, no tools",
        "code_1": "CodeAgent, 1 tool",
        "code_5": "CodeAgent, 5 tools",
        "tool_calling_1": "ToolCallingAgent, 1 tool",
        "tool_calling_5": "ToolCallingAgent, 5 tools",
    }
    return [
        _ratio_target(
            Row("prompt tokens", f"system prompt: {label}", "cl100k tokens", mine[k], other[k]), 0.4
        )
        for k, label in labels.items()
    ]


# ---- 4. tokens over a run ------------------------------------------------------------------------


def run_tokens(args: argparse.Namespace, ours: Side, theirs: Side) -> list[Row]:
    mine = ours("run_tokens")["input_tokens_per_request"]
    other = theirs("run_tokens")["input_tokens_per_request"]
    note = (
        "scripted 20-step CodeAgent run, printed output 120-3000 chars per step; "
        f"last request: {mine[-1]} vs {other[-1]}"
    )
    return [
        Row(
            "tokens over a run",
            "input tokens sent, 20 steps",
            "cl100k tokens",
            sum(mine),
            sum(other),
            note=note,
        )
    ]


# ---- 4b. tokens over long runs: the context policy ----------------------------------------------

CONTEXT_RUNS = (20, 50, 100)


def context_tokens(args: argparse.Namespace, ours: Side, theirs: Side) -> list[Row]:
    """`run_tokens` over 20-, 50- and 100-step runs: codeloop's default context policy and its
    `FullHistory` against smolagents (which sends every step each time)."""
    mine = ours("context_tokens", steps=list(CONTEXT_RUNS))
    other = theirs("context_tokens", steps=list(CONTEXT_RUNS))["smolagents"]
    default, full = mine["default"], mine["full"]
    note = f"scripted CodeAgent runs as in run_tokens; default policy: {mine['default_policy']}"
    rows: list[Row] = []
    for steps in (str(n) for n in CONTEXT_RUNS):
        total = Row("context tokens", f"input tokens, {steps}-step run, default policy", "cl100k tokens",
                    sum(default[steps]), sum(other[steps]), note=note if steps == "20" else "")  # fmt: skip
        rows.append(_ratio_target(total, 0.25) if steps == "20" else total)
        rows.append(Row("context tokens", f"input tokens, {steps}-step run, FullHistory", "cl100k tokens",
                        sum(full[steps]), sum(other[steps])))  # fmt: skip
        rows.append(Row("context tokens", f"last request, {steps}-step run, default policy", "cl100k tokens",
                        default[steps][-1], other[steps][-1]))  # fmt: skip
    return [*rows, _flatness(default["100"], other["100"])]


def _flatness(mine: list[int], other: list[int]) -> Row:
    """Mean tokens per request over requests 51-100 against requests 21-50 of the 100-step run
    (whole cycles of the trajectory's output sizes): 1 is flat, smolagents' grows with the run."""

    def growth(tokens: list[int]) -> float:
        return statistics.fmean(tokens[50:100]) / statistics.fmean(tokens[20:50])

    row = Row("context tokens", "tokens per request, requests 51-100 ÷ requests 21-50", "x",
              growth(mine), growth(other), note="100-step run; default policy vs smolagents")  # fmt: skip
    row.target, row.met = "codeloop ≤ 1.05 (flat)", growth(mine) <= 1.05
    return row


# ---- 5. import time and memory -------------------------------------------------------------------

_IMPORT_PROBE = (
    "import resource, time, json; t = time.perf_counter(); import {module}; "
    "print(json.dumps([time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]))"
)


def _import_costs(python: str, module: str, times: int) -> tuple[Stat, Stat]:
    seconds, megabytes = [], []
    for _ in range(times):
        out = subprocess.run([python, "-c", _IMPORT_PROBE.format(module=module)], capture_output=True,
                             text=True, check=True, cwd=ROOT / ".bench").stdout  # fmt: skip
        elapsed, rss = (float(x) for x in out.strip().strip("[]").split(","))
        seconds.append(elapsed * 1000)
        megabytes.append(rss)
    return Stat.of(seconds), Stat.of(megabytes)


def imports(args: argparse.Namespace, ours: Side, theirs: Side) -> list[Row]:
    times = 3 if args.quick else 10
    my_time, my_mem = _import_costs(sys.executable, "codeloop", times)
    other_time, other_mem = _import_costs(str(smolagents_python()), "smolagents", times)
    also = _import_costs(sys.executable, "codeloop; codeloop.CodeAgent", times)[0]
    return [
        Row("import", "import time", "ms", my_time, other_time,
            note=f"fresh interpreter each; with `codeloop.CodeAgent` accessed: {also.median:.0f} ms"),
        Row("import", "RSS after import", "MB", my_mem, other_mem, note="whole interpreter"),
    ]  # fmt: skip


# ---- 6. concurrency ------------------------------------------------------------------------------


@contextmanager
def _scripted_server(latency: float, steps: int) -> Iterator[str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fake_server", "--latency", str(latency), "--steps", str(steps)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        yield f"http://127.0.0.1:{server.stdout.readline().strip()}/v1"
    finally:
        server.terminate()
        server.wait()


def concurrency(args: argparse.Namespace, ours: Side, theirs: Side) -> list[Row]:
    """N concurrent 5-step CodeAgent runs: codeloop on pooled Monty (the default), codeloop with a
    Monty worker process per run, and smolagents (threads). Each N is repeated 3 times (once with
    --quick), the three sides interleaved; every repeat is a fresh process per side. Then a new
    session's start plus first action, pooled and per-process (what the warm pool takes off a
    run's critical path)."""
    counts = [10] if args.quick else [int(n) for n in args.concurrency.split(",")]
    times = 1 if args.quick else 3
    rows: list[Row] = []
    with _scripted_server(latency=0.2, steps=5) as api_base:
        for n in counts:
            options = {"api_base": api_base, "n": n, "steps": 5}
            sides: dict[str, list[dict[str, Any]]] = {"pooled": [], "per-process": [], "smolagents": []}
            for _ in range(times):  # interleaved, so a busy spell of the machine hits every side
                sides["pooled"].append(ours("concurrency", **options, pooled=True))
                sides["per-process"].append(ours("concurrency", **options, pooled=False))
                sides["smolagents"].append(theirs("concurrency", **options))
            rows += _concurrency_rows(n, sides)
    rows += _sandbox_start_rows(ours("sandbox_start", repeats=5 if args.quick else 30))
    return rows


def _concurrency_rows(n: int, sides: dict[str, list[dict[str, Any]]]) -> list[Row]:
    other = sides["smolagents"]

    def stat(side: list[dict[str, Any]], value: Callable[[dict[str, Any]], float]) -> Stat:
        return Stat.of([value(r) for r in side])

    def throughput(r: dict[str, Any]) -> float:
        return float(r["runs_ok"] / r["wall_s"])

    rows = []
    for name in ("pooled", "per-process"):
        mine = sides[name]
        ok = [min(r["runs_ok"] for r in side) for side in (mine, other)]
        note = f"completed (worst repeat): {ok[0]}/{n} vs {ok[1]}/{n}; codeloop async, smolagents threads"
        peak = stat(mine, lambda r: r["peak_rss_mb"]), stat(other, lambda r: r["peak_rss_mb"])
        memory = Row("concurrency", f"N={n}: peak memory, process tree, Monty {name}", "MB", *peak)
        rows += [
            Row("concurrency", f"N={n}: wall time, 5-step runs, 200 ms model latency, Monty {name}", "s",
                stat(mine, lambda r: r["wall_s"]), stat(other, lambda r: r["wall_s"]), note=note),
            Row("concurrency", f"N={n}: throughput, Monty {name}", "runs/s", stat(mine, throughput),
                stat(other, throughput)),
            _ratio_target(memory, 1.0) if name == "pooled" else memory,
        ]  # fmt: skip
    return rows


def _sandbox_start_rows(result: dict[str, list[float]]) -> list[Row]:
    note = "a new MontyExecutor's start() and first run('1 + 1'); the smolagents column is per-process Monty"
    return [
        Row("concurrency", "new session: start + first action, pooled (vs per-process)", "ms",
            Stat.of(result["pooled_ms"]), Stat.of(result["process_ms"]), note=note),
    ]  # fmt: skip


# ---- 7. smolagents' interpreter cases --------------------------------------------------------------

# Monty's stdlib pass rate before issue 8 (the count; on these cases it was 221/254, 87.0%).
MONTY_STDLIB_BEFORE = 88.0


def smolagents_cases(args: argparse.Namespace, ours: Side, theirs: Side) -> list[Row]:
    """smolagents' own interpreter tests, extracted as cases, through every local executor (in a
    fresh process; the full run takes about a minute, so --quick runs it whole too)."""
    out = ROOT / "benchmarks" / "results" / "smolagents_cases.json"
    subprocess.run([sys.executable, "-m", "benchmarks.smolagents_cases.harness", "--json", str(out)],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)  # fmt: skip
    rows = []
    for executor, report in json.loads(out.read_text()).items():
        rates = report["rates"]
        for scope, label in (("stdlib", "stdlib cases"), ("all", "all applicable cases")):
            passed, total = rates[scope]
            rate = 100 * passed / total
            note = f"{passed}/{total}" + (" (stdlib + numpy/pandas)" if scope == "all" else "")
            if executor == "monty" and scope == "stdlib":
                note += "; before issue 8: 221/254"
            row = Row("smolagents cases", f"{executor}: {label} passed", "%", rate, None, note=note)
            if executor == "monty" and scope == "stdlib":
                row.target, row.met = f"> {MONTY_STDLIB_BEFORE:g}%", rate > MONTY_STDLIB_BEFORE
            rows.append(row)
    return rows


# ---- 8. task success with a real model ------------------------------------------------------------


def task_success(args: argparse.Namespace, ours: Side, theirs: Side) -> list[Row]:
    from .tasks.check import is_correct, load_tasks

    tasks = load_tasks(args.task_limit)
    with task_sets.qwen_server() as (api_base, api_key):
        options = {
            "api_base": api_base, "api_key": api_key, "tasks": tasks,
            "max_steps": args.max_steps, "max_tokens": args.max_tokens,
        }  # fmt: skip
        mine, other = ours("tasks", **options)["rows"], theirs("tasks", **options)["rows"]
    by_id = {t["id"]: t for t in tasks}
    solved = [sum(is_correct(by_id[r["id"]], r["answer"]) for r in rs) for rs in (mine, other)]
    note = (
        f"{len(tasks)} tasks, Qwen2.5-Coder-1.5B Q4_K_M via one llama.cpp server, temperature 0, 1 thread, "
        f"max_steps={args.max_steps}, max_tokens={args.max_tokens} per model call"
    )
    rows = [Row("task success", "tasks solved", "count", solved[0], solved[1], note=note)]
    for key, unit in (
        ("steps", "steps"),
        ("input_tokens", "tokens"),
        ("output_tokens", "tokens"),
        ("wall_s", "s"),
    ):
        mean = [statistics.fmean(r[key] for r in rs) for rs in (mine, other)]
        rows.append(Row("task success", f"mean {key.replace('_', ' ')} per task", unit, *mean))
    _figure("tasks").extra["per_task"] = {"codeloop": mine, "smolagents": other}
    return rows


# ---- 9. two more task sets with the real model: tool-heavy, and code-writing ---------------------


def _task_set(name: str) -> Callable[[argparse.Namespace, Side, Side], list[Row]]:
    """A figure of `benchmarks.task_sets`: its sides' results are kept (in `extra["sides"]`) for
    the results file, where later partial runs of the same day merge with them."""

    def run(args: argparse.Namespace, ours: Side, theirs: Side) -> list[Row]:
        sides = getattr(task_sets, name)(args, ours, theirs)
        _figure(name).extra["sides"] = sides
        return list(task_sets.rows_for(name, sides))

    return run


# ---- 10. event-loop latency under hostile load (benchmarks/hostile_load.py) ----------------------


def hostile_load(args: argparse.Namespace, ours: Side, theirs: Side) -> list[Row]:
    from .hostile_load import figure_rows

    return list(figure_rows(args))


# ---- 11. store overhead per step (benchmarks/store_overhead.py) -----------------------------------


def store_overhead(args: argparse.Namespace, ours: Side, theirs: Side) -> list[Row]:
    from .store_overhead import figure_rows

    return list(figure_rows(args))


# ---- 12. tracing overhead per step (benchmarks/tracing_overhead.py) -------------------------------


def tracing_overhead(args: argparse.Namespace, ours: Side, theirs: Side) -> list[Row]:
    from .tracing_overhead import figure_rows

    return list(figure_rows(args))


def _figure(name: str) -> Figure:
    (figure,) = [f for f in FIGURES if f.name == name]
    return figure


FIGURES = [
    Figure("overhead", "framework overhead per step", overhead),
    Figure("executors", "executor speed", executor_speed),
    Figure("prompt_tokens", "system prompt tokens", prompt_tokens),
    Figure("run_tokens", "input tokens over a 20-step run", run_tokens),
    Figure("context_tokens", "input tokens over 20-, 50- and 100-step runs: context policy", context_tokens),
    Figure("imports", "import time and memory", imports),
    Figure("concurrency", "concurrent runs against a 200 ms model", concurrency),
    Figure("smolagents_cases", "smolagents' interpreter test cases through each executor", smolagents_cases),
    Figure("hostile_load", "event-loop latency while 100 runs execute hostile code", hostile_load),
    Figure("store_overhead", "store overhead per step: none, SQLite, PostgreSQL", store_overhead),
    Figure("tracing_overhead", "tracing overhead per step: off, on, never imported", tracing_overhead),
    Figure("tasks", "task success with a real local model", task_success, needs_real_model=True),
    Figure("tool_tasks", "tool-heavy tasks with a real local model", _task_set("tool_tasks"),
           needs_real_model=True),
    Figure("code_tasks", "code-writing tasks with a real local model", _task_set("code_tasks"),
           needs_real_model=True),
]  # fmt: skip
