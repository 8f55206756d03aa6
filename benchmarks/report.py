"""Rendering the benchmark report: a terminal table and a markdown file."""

from __future__ import annotations

from typing import Any

from .task_sets import per_task_markdown
from .tasks.check import is_correct, load_tasks

__all__ = ["render_markdown", "render_table"]


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return f"{_num(value['median'])} [{_num(value['low'])}-{_num(value['high'])}]"
    return _num(value)


def _num(x: float) -> str:
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:,.0f}"


def _verdict(row: dict[str, Any]) -> str:
    if row["met"] is None:
        return ""
    return f"{row['target']}: {'met' if row['met'] else 'MISSED'}"


def _cells(row: dict[str, Any]) -> list[str]:
    ratio = "—" if row["ratio"] is None else f"{row['ratio']:.3g}x"
    return [row["figure"], row["metric"], row["unit"], _fmt(row["codeloop"]), _fmt(row["smolagents"]), ratio,
            _verdict(row)]  # fmt: skip


HEADERS = ["figure", "metric", "unit", "codeloop", "smolagents", "ratio", "target"]


def _header_line(report: dict[str, Any]) -> str:
    m = report["machine"]
    return (
        f"{m['date']} · {m['cpus']} cores · Python {m['python']} · {m['platform']} · "
        f"smolagents {report['smolagents']}"
    )


def render_table(report: dict[str, Any]) -> str:
    rows = [HEADERS] + [_cells(r) for r in report["rows"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = [_header_line(report), "median [min-max]; ratio = codeloop / smolagents", ""]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    notes = [f"- {r['metric']}: {r['note']}" for r in report["rows"] if r["note"]]
    return "\n".join([*lines, "", *notes])


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Benchmark results, {report['machine']['date']}",
        "",
        _header_line(report) + ". Medians with [min-max]; ratio = codeloop / smolagents.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |" for r in report["rows"]]
    missed = [r for r in report["rows"] if r["met"] is False]
    lines += ["", "## Targets missed", ""]
    lines += [f"- {r['metric']}: {_verdict(r)}, measured {_fmt(r['codeloop'])}" for r in missed] or ["- none"]
    lines += ["", "## Notes", ""] + [f"- {r['metric']}: {r['note']}" for r in report["rows"] if r["note"]]
    if report.get("per_task"):
        lines += ["", *_per_task(report["per_task"])]
    for figure, sides in report.get("task_sets", {}).items():
        lines += ["", *per_task_markdown(figure, sides)]
    return "\n".join(lines) + "\n"


def _per_task(per_task: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every task's answer and how each run ended, so the solved counts can be checked by hand."""
    tasks = {t["id"]: t for t in load_tasks()}
    ours = {r["id"]: r for r in per_task["codeloop"]}
    theirs = {r["id"]: r for r in per_task["smolagents"]}
    out_of_steps = [sum("max_steps" in r["state"] for r in rs.values()) for rs in (ours, theirs)]
    prose = [
        sum(_in_prose(tasks[i], r["answer"]) and not is_correct(tasks[i], r["answer"]) for i, r in rs.items())
        for rs in (ours, theirs)
    ]
    lines = [
        "## Task success, task by task",
        "",
        f"Runs that used up max_steps: codeloop {out_of_steps[0]}, smolagents {out_of_steps[1]}. "
        "codeloop then reports no answer; smolagents asks the model for one last answer, which is "
        "counted only if it passes the task's check like any other answer. Answers that fail the "
        f"check but contain the expected value in a sentence: codeloop {prose[0]}, smolagents "
        f"{prose[1]} (not counted as solved).",
        "",
        "| task | expected | codeloop answer (state, steps) | smolagents answer (state, steps) |",
        "|---|---|---|---|",
    ]
    for task_id, task in tasks.items():
        if task_id in ours and task_id in theirs:
            cells = [_outcome(task, ours[task_id]), _outcome(task, theirs[task_id])]
            lines.append(f"| {task_id} | {_short(task['answer'])} | {cells[0]} | {cells[1]} |")
    return lines


def _in_prose(task: dict[str, Any], answer: Any) -> bool:
    """Whether a sentence-like answer mentions the expected value (e.g. "the speed is 72.0 km/h")."""
    if not isinstance(answer, str) or " " not in answer.strip():
        return False
    expected = task["answer"]
    forms = {str(expected)}
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        forms |= {f"{float(expected):g}", f"{float(expected)}", f"{expected:,}"}
    return any(form.lower() in answer.lower() for form in forms)


def _outcome(task: dict[str, Any], row: dict[str, Any]) -> str:
    mark = "ok" if is_correct(task, row["answer"]) else "wrong"
    return f"{mark}: {_short(row['answer'])} ({row['state']}, {row['steps']})"


def _short(value: Any, limit: int = 60) -> str:
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."
