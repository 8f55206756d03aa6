"""Two real-model task sets, each run several ways against one llama.cpp server:

- `tool_tasks`: the tool-heavy set (`benchmarks/tool_tasks`), by codeloop's CodeAgent on each
  executor asked for and by smolagents' CodeAgent (its default executor);
- `code_tasks`: the code-writing set (`benchmarks/code_tasks`), by the model alone in one plain
  chat request, by codeloop's CodeAgent and by smolagents' CodeAgent.

Every model request goes through a recording proxy (`model_proxy.py`), so token counts and
model time are read the same way for every side and include sub-agents. A side's results are
kept with when and on what code they were measured; a later run of only some sides (`--sides`)
is merged with the same day's earlier ones, and the figure's rows are recomputed over the tasks
both compared sides ran. Each failed task's transcript (the model's replies and what it was sent)
is written to `results/transcripts/<date>/<figure>/<side>/<task>.md`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .common import ROOT
from .model_proxy import OVER_BUDGET, Exchange, ModelProxy
from .transcripts import write_transcripts

__all__ = ["SET_FIGURES", "code_tasks", "per_task_markdown", "qwen_server", "rows_for", "tool_tasks"]

Side = Callable[..., Any]
Rows = list[dict[str, Any]]
SET_FIGURES = ("tool_tasks", "code_tasks")
RESULTS = ROOT / "benchmarks" / "results"
TRANSCRIPTS = RESULTS / "transcripts"
_SIDES_HELP = "codeloop, smolagents, alone"


def tool_tasks(args: argparse.Namespace, ours: Side, theirs: Side) -> dict[str, Any]:
    from .tool_tasks.tasks import load_tasks

    tasks = load_tasks(args.task_limit, args.task_filter)
    return _run_set("tool_tasks", args, tasks, {"codeloop": ours, "smolagents": theirs})


def code_tasks(args: argparse.Namespace, ours: Side, theirs: Side) -> dict[str, Any]:
    from .code_tasks.check import load_tasks

    tasks = load_tasks(args.task_limit, args.task_filter)
    return _run_set("code_tasks", args, tasks, {"alone": None, "codeloop": ours, "smolagents": theirs})


def _run_set(
    figure: str, args: argparse.Namespace, tasks: Rows, runners: dict[str, Side | None]
) -> dict[str, Any]:
    """Run the wanted sides of one task set; returns {side name: side results}."""
    wanted = {s.strip() for s in args.sides.split(",") if s.strip()}
    unknown = wanted - {"codeloop", "smolagents", "alone"}
    if unknown:
        raise SystemExit(f"--sides takes {_SIDES_HELP}; got {sorted(unknown)}")
    settings = {"max_steps": args.max_steps, "max_tokens": args.max_tokens, "task_minutes": args.task_minutes}
    budget = args.side_minutes * 60 if args.side_minutes else None
    task_budget = args.task_minutes * 60 if args.task_minutes else None
    sides: dict[str, Any] = {}
    with (
        qwen_server() as (api_base, api_key),
        ModelProxy(api_base, log=_progress, task_budget_s=task_budget) as proxy,
    ):
        for name, runner in runners.items():
            for side, extra in _variants(name, args) if name in wanted else ():
                earlier = _earlier_side(figure, side) if args.continue_sides else None
                todo = [t for t in tasks if t["id"] not in _ids(earlier)]
                part = len(_parts(earlier)) + 1 if earlier else None
                run = _SideRun(figure, side, {**settings, **extra}, todo, proxy, api_key, part)
                sides[side] = _continued(earlier, run.go(runner, budget))
    return sides


def _earlier_side(figure: str, side: str) -> dict[str, Any] | None:
    """The side's results of today's earlier run, if any (for --continue-sides)."""
    path = RESULTS / f"{time.strftime('%Y-%m-%d')}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("task_sets", {}).get(figure, {}).get(side)


def _ids(side: dict[str, Any] | None) -> set[str]:
    return {row["id"] for row in side["rows"]} if side else set()


def _continued(earlier: dict[str, Any] | None, fresh: dict[str, Any]) -> dict[str, Any]:
    """One side's results from an earlier run of some tasks and this run of the rest."""
    if not earlier:
        return fresh
    parts = [*_parts(earlier), _part(fresh)]
    rows = earlier["rows"] + fresh["rows"]
    return {**fresh, "rows": rows, "wall_s": earlier["wall_s"] + fresh["wall_s"], "parts": parts}


def _parts(side: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs a side's results come from (one, unless it was continued)."""
    return list(side.get("parts", [_part(side)]))


def _part(side: dict[str, Any]) -> dict[str, Any]:
    keys = ("measured", "code", "wall_s", "stopped")
    return {**{k: side[k] for k in keys if k in side}, "tasks": len(side["rows"])}


@dataclass
class _SideRun:
    """One side of one task set: its runner gets each task's own proxy URL."""

    figure: str
    side: str
    settings: dict[str, Any]
    tasks: Rows
    proxy: ModelProxy
    api_key: str
    part: int | None = None
    """Which part of the side's run this is (`--continue-sides`), None for a whole run."""

    def go(self, runner: Side | None, budget: float | None) -> dict[str, Any]:
        started, code = time.perf_counter(), _code_version()  # the code measured, before any later commit
        bases = {t["id"]: self.proxy.base_url(f"{self.side}/{t['id']}") for t in self.tasks}
        options = {**self.settings, "api_key": self.api_key, "tasks": self.tasks, "api_bases": bases}
        out = {"rows": _alone(options)} if runner is None else runner("agent_tasks", budget, **options)
        result = _finish(self, out["rows"], started)
        result["code"] = code
        if "stopped_after_s" in out:
            result["stopped"] = f"stopped after {out['stopped_after_s'] / 60:g} min, {len(out['rows'])} done"
        return result


def _progress(tag: str, exchange: Exchange) -> None:
    print(
        f"    {tag}: {exchange.input_tokens:,} tokens in ({exchange.cached_tokens:,} cached), "
        f"{exchange.output_tokens} out, {exchange.wall_s:.1f} s {exchange.error}".rstrip(),
        file=sys.stderr,
        flush=True,
    )


def _variants(name: str, args: argparse.Namespace) -> Iterator[tuple[str, dict[str, Any]]]:
    if name != "codeloop":
        yield name, {}
        return
    contexts = [c.strip() for c in args.contexts.split(",") if c.strip()]
    if unknown := set(contexts) - set(CONTEXT_SUFFIX):
        raise SystemExit(f"--contexts takes {', '.join(CONTEXT_SUFFIX)}; got {sorted(unknown)}")
    for executor in (e.strip() for e in args.executors.split(",") if e.strip()):
        for context in contexts:
            yield f"codeloop-{executor}{CONTEXT_SUFFIX[context]}", {"executor": executor, "context": context}


CONTEXT_SUFFIX = {"default": "", "full": "-full-history"}
"""`--contexts`: codeloop's default context policy, or `FullHistory` (smolagents' way: every step
verbatim), as a side of its own (`codeloop-monty-full-history`)."""


def _finish(run: _SideRun, rows: Rows, started: float) -> dict[str, Any]:
    """Attach each task's model traffic and verdict; write the failures' transcripts."""
    figure, side, proxy, settings = run.figure, run.side, run.proxy, run.settings
    by_id = {t["id"]: t for t in run.tasks}
    traffic = {row["id"]: proxy.take(f"{side}/{row['id']}") for row in rows}
    for row in rows:
        row.update(_traffic_totals(traffic[row["id"]]))
        if any(OVER_BUDGET in e.error for e in traffic[row["id"]]):
            row["state"] = f"{row['state']} (task time budget spent)"
        row["solved"], row["detail"] = _judge(figure, by_id[row["id"]], row["answer"])
    failed = {r["id"]: (by_id[r["id"]], r, traffic[r["id"]]) for r in rows if not r["solved"]}
    date = time.strftime("%Y-%m-%d")
    write_transcripts(TRANSCRIPTS / date / figure / side, failed, run.part)
    return {"measured": time.strftime("%Y-%m-%dT%H:%M:%S"), "settings": settings,
            "wall_s": time.perf_counter() - started, "rows": rows}  # fmt: skip


def _traffic_totals(exchanges: list[Exchange]) -> dict[str, Any]:
    keys = ("input_tokens", "cached_tokens", "output_tokens", "prompt_s", "decode_s")
    totals: dict[str, Any] = {k: sum(getattr(e, k) for e in exchanges) for k in keys}
    totals["requests"] = len(exchanges)
    return totals


def _judge(figure: str, task: dict[str, Any], answer: Any) -> tuple[bool, str]:
    if figure == "tool_tasks":
        from .tasks.check import is_correct

        return is_correct(task, answer), ""
    from .code_tasks.check import run_hidden_tests

    outcome = run_hidden_tests(task["id"], answer)
    return outcome.solved, f"{outcome.passed}/{outcome.total} hidden tests" + (
        f"; failed: {outcome.detail}" if outcome.detail else ""
    )


def _code_version() -> str:
    """The commit the run used, and whether codeloop's source had uncommitted changes."""

    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], capture_output=True, text=True, cwd=ROOT).stdout.strip()

    dirty = git("status", "--porcelain", "--", "src")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes in src/" if dirty else "")


# ---- the model alone: one plain chat request per task ---------------------------------------------


def _alone(options: dict[str, Any]) -> Rows:
    return [_ask_alone(task, options) for task in options["tasks"]]


def _ask_alone(task: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    import json

    body = {"model": "local", "temperature": 0.0, "max_tokens": options["max_tokens"],
            "messages": [{"role": "user", "content": task["prompt"]}]}  # fmt: skip
    request = urllib.request.Request(
        f"{options['api_bases'][task['id']]}/chat/completions", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {options['api_key']}"},
    )  # fmt: skip
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=1800) as response:
            message = json.loads(response.read())["choices"][0]["message"]
        reply, state = message.get("content") or "", "success"
    except OSError as exc:  # a failed request counts as a failure, with its reason
        reply, state = None, f"crash: {type(exc).__name__}: {exc}"
    return {"id": task["id"], "answer": reply, "state": state, "steps": 1,
            "wall_s": time.perf_counter() - started}  # fmt: skip


@contextmanager
def qwen_server() -> Iterator[tuple[str, str]]:
    """Qwen2.5-Coder-1.5B on one llama.cpp server (one thread); yields its base URL and key."""
    from codeloop.models.llamacpp import LlamaCppModel

    model = LlamaCppModel.qwen_coder(n_threads=1, n_ctx=8192)
    try:
        url = model.start()
        assert model.api_key is not None
        yield f"{url}/v1", model.api_key
    finally:
        model.close()


# ---- rows: a function of the stored sides, so partial runs merge ---------------------------------


def rows_for(figure: str, sides: dict[str, Any]) -> list[Any]:
    """The figure's table rows from its sides' stored results."""
    from .figures import Row

    label = "tool tasks" if figure == "tool_tasks" else "code tasks"
    ours: list[str | None] = [s for s in sides if s.startswith("codeloop-")] or [None]
    rows: list[Row] = []
    for mine in ours:
        rows += _pair_rows(label, figure, sides, mine, "smolagents" if "smolagents" in sides else None)
    for mine in ours:
        full = f"{mine}{CONTEXT_SUFFIX['full']}"
        if mine and full in sides:
            rows += _context_rows(label, figure, sides, mine, full)
    if "alone" in sides:
        rows += _alone_rows(label, sides)
    return rows


def _pair_rows(
    label: str, figure: str, sides: dict[str, Any], mine: str | None, theirs: str | None
) -> list[Any]:
    from .figures import Row

    names = [n for n in (mine, theirs) if n]
    if not names:
        return []
    common = set.intersection(*({r["id"] for r in sides[n]["rows"]} for n in names))
    picked = {n: [r for r in sides[n]["rows"] if r["id"] in common] for n in names}
    who = _who(mine)

    def value(name: str | None, metric: Callable[[Rows], float]) -> float | None:
        return metric(picked[name]) if name else None

    solved = Row(label, f"tasks solved ({who})", "count", value(mine, _solved), value(theirs, _solved),
                 note=_note(figure, sides, names, len(common)))  # fmt: skip
    _solved_target(figure, solved, sides, common)
    rows = [solved]
    if mine:
        share = 100 * _solved(picked[mine]) / max(len(common), 1)
        rows.append(Row(label, f"share solved ({who})", "%", share, None, target="≥ 80%", met=share >= 80))
    for key, unit in _MEANS:
        row = Row(label, f"mean {key.replace('_', ' ')} per task ({who})", unit,
                  value(mine, _mean(key)), value(theirs, _mean(key)))  # fmt: skip
        if key == "input_tokens" and mine and theirs:
            row.target, row.met = "ratio ≤ 0.15", row.ratio is not None and row.ratio <= 0.15
        rows.append(row)
    return rows


def _who(side: str | None) -> str:
    if side is None:
        return "CodeAgent"
    executor = side.removeprefix("codeloop-").removesuffix(CONTEXT_SUFFIX["full"])
    full = side.endswith(CONTEXT_SUFFIX["full"])
    return f"CodeAgent, executor {executor}" + (", full history" if full else "")


def _context_rows(label: str, figure: str, sides: dict[str, Any], mine: str, full: str) -> list[Any]:
    """Task success and input tokens with the default context policy against `FullHistory`, on
    the tasks both ran (target: no fewer solved with the policy)."""
    from .figures import Row

    common = {r["id"] for r in sides[mine]["rows"]} & {r["id"] for r in sides[full]["rows"]}
    picked = {n: [r for r in sides[n]["rows"] if r["id"] in common] for n in (mine, full)}
    solved, solved_full = _solved(picked[mine]), _solved(picked[full])
    who = _who(mine).removeprefix("CodeAgent, ")
    note = f"full history solved {solved_full:g}; " + _note(figure, sides, [mine, full], len(common))
    target = f"≥ full history ({solved_full:g})"
    rows = [Row(label, f"tasks solved, context policy vs full history ({who})", "count", solved, None,
                note=note, target=target, met=solved >= solved_full)]  # fmt: skip
    for key, unit in (("input_tokens", "tokens"), ("steps", "steps")):
        mean, mean_full = _mean(key)(picked[mine]), _mean(key)(picked[full])
        ratio = f"{mean / mean_full:.3g}x" if mean_full else "—"
        rows.append(Row(label, f"mean {key.replace('_', ' ')} per task, context policy ({who})", unit, mean,
                        None, note=f"full history: {mean_full:,.4g} (policy / full = {ratio})"))  # fmt: skip
    return rows


_MEANS = [("steps", "steps"), ("requests", "requests"), ("input_tokens", "tokens"),
          ("output_tokens", "tokens"), ("wall_s", "s"), ("prompt_s", "s"), ("decode_s", "s")]  # fmt: skip


def _solved(rows: Rows) -> float:
    return float(sum(bool(r["solved"]) for r in rows))


def _mean(key: str) -> Callable[[Rows], float]:
    return lambda rows: statistics.fmean(r[key] for r in rows) if rows else 0.0


def _solved_target(figure: str, row: Any, sides: dict[str, Any], common: set[str]) -> None:
    if figure == "tool_tasks" and row.codeloop is not None and row.smolagents is not None:
        row.target, row.met = "ratio ≥ 1.5", row.ratio is not None and row.ratio >= 1.5
    if figure == "code_tasks" and row.codeloop is not None and "alone" in sides:
        alone = _solved([r for r in sides["alone"]["rows"] if r["id"] in common])
        row.target, row.met = f"> model alone ({alone:g})", row.codeloop > alone


def _alone_rows(label: str, sides: dict[str, Any]) -> list[Any]:
    from .figures import Row

    rows = sides["alone"]["rows"]
    solved = _solved(rows)
    note = f"{len(rows)} tasks, one plain chat request each, no framework: the same value for both columns"
    return [
        Row(label, "tasks solved (the model alone)", "count", solved, solved, note=note),
        Row(
            label, "mean input tokens per task (the model alone)", "tokens", _mean("input_tokens")(rows), None
        ),
        Row(label, "mean wall s per task (the model alone)", "s", _mean("wall_s")(rows), None),
    ]


def _note(figure: str, sides: dict[str, Any], names: list[str], count: int) -> str:
    settings = sides[names[0]]["settings"]
    runs = "; ".join(
        f"{n} measured "
        + " + ".join(_part_note(p) for p in _parts(sides[n]))
        + (f", at most {m:g} min a task" if (m := sides[n]["settings"].get("task_minutes")) else "")
        for n in names
    )
    what = "tool-heavy" if figure == "tool_tasks" else "code-writing"
    return (
        f"{count} {what} tasks both ran; Qwen2.5-Coder-1.5B Q4_K_M, one llama.cpp server, 1 thread, "
        f"temperature 0, max_steps={settings['max_steps']}, max_tokens={settings['max_tokens']} per call; "
        f"tokens and model time from the server, sub-agents included; {runs}"
    )


def _part_note(part: dict[str, Any]) -> str:
    stopped = f" ({part['stopped']})" if part.get("stopped") else ""
    minutes = part["wall_s"] / 60
    return f"{part['measured']} on {part['code']}, {part['tasks']} tasks in {minutes:.0f} min{stopped}"


# ---- per-task tables for the results file -----------------------------------------------------


def per_task_markdown(figure: str, sides: dict[str, Any]) -> list[str]:
    """Every task's outcome on every side, so the solved counts can be checked by hand."""
    names = list(sides)
    ids = list(dict.fromkeys(r["id"] for n in names for r in sides[n]["rows"]))
    by_side = {n: {r["id"]: r for r in sides[n]["rows"]} for n in names}
    expected = _expected_answers() if figure == "tool_tasks" else {}
    title = "Tool-heavy tasks" if figure == "tool_tasks" else "Code-writing tasks"
    lines = [
        f"## {title}, task by task",
        "",
        f"Transcripts of every failed task: `transcripts/<date>/{figure}/<side>/<task>.md` beside this file.",
        "",
        "| task | "
        + ("expected | " if expected else "")
        + " | ".join(f"{n} (state, steps, requests)" for n in names)
        + " |",
        "|---|" + "---|" * (len(names) + bool(expected)),
    ]
    for task_id in ids:
        cells = [_short(expected.get(task_id))] if expected else []
        cells += [_cell(figure, by_side[n].get(task_id)) for n in names]
        lines.append(f"| {task_id} | " + " | ".join(cells) + " |")
    return lines


def _expected_answers() -> dict[str, Any]:
    from .tool_tasks.tasks import load_tasks

    return {t["id"]: t["answer"] for t in load_tasks()}


def _cell(figure: str, row: dict[str, Any] | None) -> str:
    if row is None:
        return "—"
    mark = "ok" if row["solved"] else "wrong"
    what = _short(row["detail"] if figure == "code_tasks" else row["answer"])
    return f"{mark}: {what} ({_short(row['state'], 40)}, {row['steps']}, {row['requests']})"


def _short(value: Any, limit: int = 60) -> str:
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
