"""The task-success benchmark's task set: well formed, and its tool answers match the tools."""

from __future__ import annotations

import pytest

from benchmarks.tasks import tools
from benchmarks.tasks.check import is_correct, load_tasks

TASKS = {t["id"]: t for t in load_tasks()}


def test_task_set_is_well_formed() -> None:
    assert len(TASKS) >= 30
    categories = {t["category"] for t in TASKS.values()}
    assert {"arithmetic", "strings and lists", "dates", "tools", "retry after error"} <= categories
    for task in TASKS.values():
        assert set(task["tools"]) <= set(tools.TOOLS), task["id"]
        assert is_correct(task, task["answer"]), task["id"]


@pytest.mark.parametrize(
    ("task_id", "answer"),
    [
        ("tool-populations", tools.lookup_population("Paris") + tools.lookup_population("Berlin")),
        ("tool-exchange", 250 * tools.get_exchange_rate("USD", "EUR")),
        ("tool-basket", 3 * tools.get_product_price("A-100") + 2 * tools.get_product_price("B-200")),
        ("tool-marathon", tools.convert_units(26.2, "miles", "km")),
        ("tool-fever", tools.convert_units(100, "fahrenheit", "celsius")),
        ("retry-discontinued", 4 * tools.get_product_price("D-401")),
        (
            "multi-trip",
            0.15 * tools.convert_units(120, "miles", "km") * tools.get_exchange_rate("USD", "EUR"),
        ),
    ],
)
def test_tool_answers_follow_from_the_tools(task_id: str, answer: float) -> None:
    assert is_correct(TASKS[task_id], answer)


def test_retry_tasks_fail_first_with_a_hint() -> None:
    with pytest.raises(KeyError, match="New York"):
        tools.lookup_population("new york")
    with pytest.raises(ValueError, match="C-300"):
        tools.get_product_price("c-300")
    with pytest.raises(LookupError, match="D-401"):
        tools.get_product_price("D-400")


@pytest.mark.parametrize(
    ("check", "expected", "given", "ok"),
    [
        ("number", 10.8, "10.80", True),
        ("number", 10.8, 10.79, False),
        ("text", "Delhi", " delhi. ", True),
        ("bool", True, "True", True),
        ("bool", False, True, False),
        ("list", [88, 56], "[88, 56]", True),
        ("list", ["bird", "cat"], ["bird", "dog"], False),
    ],
)
def test_checker(check: str, expected: object, given: object, ok: bool) -> None:
    assert is_correct({"check": check, "answer": expected}, given) is ok
