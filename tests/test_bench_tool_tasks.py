"""The tool-heavy task set: well formed, answers that follow from the tools' data through each
task's reference solution, and failures that say how to retry."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from benchmarks.tasks.check import is_correct
from benchmarks.tool_tasks import tasks as task_module
from benchmarks.tool_tasks import tools
from benchmarks.tool_tasks.tasks import TASKS, load_tasks

LOADED = {t["id"]: t for t in load_tasks()}


def test_the_set_is_large_and_mixed() -> None:
    assert len(LOADED) == len(TASKS) >= 30
    assert Counter(t["category"] for t in LOADED.values()) == {"chain": 18, "retry": 10, "team": 7}


@pytest.mark.parametrize("task", LOADED.values(), ids=list(LOADED))
def test_each_task_is_well_formed(task: dict[str, Any]) -> None:
    assert set(task["tools"]) <= set(tools.TOOLS)
    assert task["check"] in ("number", "text", "bool")
    assert (task["team"] is not None) == (task["category"] == "team")
    if task["team"]:
        team = tools.TEAMS[task["team"]]
        assert not set(team.tools) & set(task["tools"]), "the sub-agent must be needed"


@pytest.mark.parametrize("task", LOADED.values(), ids=list(LOADED))
def test_the_reference_answer_passes_the_checker(task: dict[str, Any]) -> None:
    assert is_correct(task, task["answer"])
    answer = re.escape(str(task["answer"]).lower())
    assert not re.search(rf"(?<![\w.-]){answer}(?![\w-])", task["task"].lower()), "answered in the question"


@pytest.fixture
def recorded_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The tool calls the reference solutions make (through the task module's own names)."""
    calls: list[str] = []

    def counting(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return function(*args, **kwargs)

        return wrapper

    for name in tools.TOOLS:
        if hasattr(task_module, name):
            monkeypatch.setattr(task_module, name, counting(name, getattr(task_module, name)))
    yield calls


@pytest.mark.parametrize("task", TASKS, ids=[t.id for t in TASKS])
def test_references_use_the_tools_a_task_gets(task: task_module.ToolTask, recorded_calls: list[str]) -> None:
    task.reference()
    team_tools = set(tools.TEAMS[task.team].tools) if task.team else set()
    assert set(recorded_calls) <= set(task.tools) | team_tools
    if task.category == "chain":
        assert len(recorded_calls) >= 2
    if task.team:
        assert set(recorded_calls) & team_tools, "the sub-agent's tools are needed"


@pytest.mark.parametrize(
    ("call", "error", "hint"),
    [
        (lambda: tools.get_order("992605"), ValueError, "'ORD-992605'"),
        (lambda: tools.get_product("zk-8312"), ValueError, "'ZK-8312'"),
        (lambda: tools.get_product("QA-9724"), LookupError, "replacement is QA-5539"),
        (lambda: tools.get_product("VS-0201"), LookupError, "replacement is VS-0921"),
        (lambda: tools.get_stock("CQ-0290", "Osaka"), ValueError, "Osaka is 'OSK'"),
        (lambda: tools.get_stock("RE-3669", "bremen"), ValueError, "Bremen is 'BRM'"),
        (lambda: tools.get_employee("Chiara Kuhlmann"), ValueError, "find_employee('Chiara')"),
        (lambda: tools.orders_placed_on("April 22, 2026"), ValueError, "YYYY-MM-DD"),
        (lambda: tools.exchange_rate("usd", "jpy"), ValueError, "'USD'"),
        (lambda: tools.exchange_rate("GBP", "USD"), KeyError, "divide by it"),
        (lambda: tools.shipping_quote(4.2, "Japan", "standard"), ValueError, "Japan is 'JP'"),
        (lambda: tools.shipping_quote(31, "JP", "standard"), ValueError, "at most 30 kg"),
        (lambda: tools.shipping_quote(1, "JP", "overnight"), ValueError, "'standard' or 'express'"),
    ],
)
def test_a_wrong_first_call_fails_with_a_way_forward(call: Callable[[], Any], error: type, hint: str) -> None:
    with pytest.raises(error, match=hint.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_tools_hand_out_copies() -> None:
    order = tools.get_order("ORD-166662")
    order["items"].clear()
    assert tools.get_order("ORD-166662")["items"]


def test_shipping_bills_each_started_half_kilo() -> None:
    rate = tools.DATA["shipping"]["standard"][str(tools.DATA["shipping"]["zones"]["JP"])]
    assert tools.shipping_quote(4.2, "JP", "standard") == round(rate["base"] + 9 * rate["per_half_kg"], 2)
    assert tools.shipping_quote(4.5, "JP", "standard") == round(rate["base"] + 9 * rate["per_half_kg"], 2)


def test_both_frameworks_can_build_the_tools() -> None:
    """codeloop builds every tool from its signature and docstring (smolagents does the same in
    its own environment when the benchmark runs)."""
    from codeloop import tool

    for name, function in tools.TOOLS.items():
        built = tool(function)
        assert built.name == name
        assert set(built.inputs) == set(function.__code__.co_varnames[: function.__code__.co_argcount])


def test_load_tasks_limits_and_filters() -> None:
    assert [t["category"] for t in load_tasks(6)] == ["chain", "retry", "team"] * 2
    assert {t["category"] for t in load_tasks(only="team-")} == {"team"}
    assert [t["id"] for t in load_tasks(1, only="retry-")] == ["retry-order-prefix"]
