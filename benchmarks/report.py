"""Rendering the benchmark report: a terminal table and a markdown file."""

from __future__ import annotations

from typing import Any

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
    lines += [f"- {r['metric']}: {_verdict(r)} (ratio {r['ratio']:.3g})" for r in missed] or ["- none"]
    lines += ["", "## Notes", ""] + [f"- {r['metric']}: {r['note']}" for r in report["rows"] if r["note"]]
    return "\n".join(lines) + "\n"
