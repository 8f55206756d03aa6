"""Load the task set and check an agent's answer against it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["is_correct", "load_tasks"]

TASKS_FILE = Path(__file__).with_name("tasks.json")


def load_tasks(limit: int | None = None) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = json.loads(TASKS_FILE.read_text())["tasks"]
    return tasks[:limit] if limit else tasks


def is_correct(task: dict[str, Any], answer: Any) -> bool:
    """Whether `answer` (any value an agent returned) matches the task's expected answer."""
    return _matches(task["check"], task["answer"], answer, task.get("decimals"))


def _matches(check: str, expected: Any, answer: Any, decimals: int | None) -> bool:
    if check == "number":
        return _number(expected, answer, decimals)
    if check == "text":
        return isinstance(answer, str) and answer.strip().strip(".").lower() == str(expected).lower()
    if check == "bool":
        text = str(answer).strip().strip(".").lower()
        return text in ("true", "yes") if expected else text in ("false", "no")
    if check == "list":
        items = _as_list(answer)
        return (
            items is not None
            and len(items) == len(expected)
            and all(
                _matches("number" if isinstance(e, (int, float)) else "text", e, a, None)
                for e, a in zip(expected, items, strict=True)
            )
        )
    raise ValueError(f"unknown check {check!r}")


def _number(expected: float, answer: Any, decimals: int | None) -> bool:
    try:
        value = float(str(answer).strip().replace(",", "").lstrip("$").rstrip("."))
    except ValueError:
        return False
    if decimals is not None:
        value = round(value, decimals)
    return math.isclose(value, float(expected), rel_tol=1e-6, abs_tol=1e-9)


def _as_list(answer: Any) -> list[Any] | None:
    if isinstance(answer, (list, tuple)):
        return list(answer)
    if isinstance(answer, str):
        try:
            parsed = json.loads(answer.replace("'", '"'))
        except json.JSONDecodeError:
            return [part.strip() for part in answer.strip("[]").split(",")]
        return parsed if isinstance(parsed, list) else None
    return None
