"""Budgets: a run that reaches one of its limits ends with its own state, memory intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeloop import Budget, BudgetExceeded, CodeAgent, ConfigurationError, Price, RunState, ScriptedModel
from codeloop.models.openai import OpenAIModel


def busy(n: int = 6) -> list[str]:
    return [f"Thought: step {i}.\n```python\nx = {i}\nprint(x)\n```" for i in range(n)]


def test_output_tokens_budget_ends_the_run_with_its_state_and_memory() -> None:
    agent = CodeAgent([], ScriptedModel(busy()), max_steps=6, budget=Budget(max_output_tokens=20))
    result = agent.run("Count.", return_full_result=True)
    assert result.state is RunState.BUDGET_EXCEEDED
    assert isinstance(result.exception, BudgetExceeded) and result.exception.limit == "max_output_tokens"
    assert result.token_usage.output_tokens >= 20
    steps = result.memory.action_steps()
    assert 1 <= len(steps) < 6 and steps[-1].observations  # the step under way finished first
    with pytest.raises(BudgetExceeded, match=r"max_output_tokens=20 \(\d+ output tokens used\)"):
        CodeAgent([], ScriptedModel(busy()), max_steps=6, budget=Budget(max_output_tokens=20)).run("Count.")


def test_cost_budget_prices_tokens_with_the_price_table() -> None:
    prices = {"scripted": Price(input=100_000.0, output=0.0)}  # 10 US cents per input token
    model = ScriptedModel(busy())
    result = CodeAgent([], model, max_steps=6, budget=Budget(max_cost=5.0, prices=prices)).run(
        "Count.", return_full_result=True
    )
    assert result.state is RunState.BUDGET_EXCEEDED and "max_cost=5" in str(result.error)
    assert result.token_usage.input_tokens * 0.1 >= 5.0
    assert len(result.memory.action_steps()) == 1  # the first prompt alone is over $5


def test_input_tokens_and_duration_budgets() -> None:
    tokens = CodeAgent([], ScriptedModel(busy()), max_steps=6, budget=Budget(max_input_tokens=1))
    assert tokens.run("Count.", return_full_result=True).exception.limit == "max_input_tokens"  # type: ignore[union-attr]
    slow = ScriptedModel(busy(), latency_s=0.05)
    timed = CodeAgent([], slow, max_steps=6, budget=Budget(max_duration=0.01))
    result = timed.run("Count.", return_full_result=True)
    assert result.state is RunState.BUDGET_EXCEEDED and result.exception.limit == "max_duration"  # type: ignore[union-attr]


def test_a_larger_budget_lets_the_agent_go_on_from_the_same_memory() -> None:
    model = ScriptedModel([*busy(2), "```python\nfinal_answer(x)\n```"])
    agent = CodeAgent([], model, max_steps=6, budget=Budget(max_output_tokens=5))
    assert agent.run("Count.", return_full_result=True).state is RunState.BUDGET_EXCEEDED
    kept = len(agent.memory.action_steps())
    agent.budget = Budget(max_output_tokens=10_000)
    assert agent.run("Go on.", reset=False) == 1  # the variable from before is still there
    assert len(agent.memory.action_steps()) > kept


def test_a_cost_budget_needs_a_price_and_limits_must_be_positive() -> None:
    model = OpenAIModel("my-private-model", api_base="http://127.0.0.1:9/v1", api_key="k")
    with pytest.raises(ConfigurationError, match=r"needs a price for model 'my-private-model'.*prices="):
        CodeAgent([], model, budget=Budget(max_cost=1.0))
    CodeAgent([], model, budget=Budget(max_cost=1.0, prices={"my-private-*": Price(1.0, 2.0)}))
    with pytest.raises(ConfigurationError, match="max_duration must be positive"):
        Budget(max_duration=-1)


def test_a_stored_run_that_hit_its_budget_is_resumed_with_a_larger_one(tmp_path: Path) -> None:
    store = str(tmp_path / "runs.db")
    tight = CodeAgent(
        [], ScriptedModel(busy(2)), store=store, max_steps=6, budget=Budget(max_output_tokens=5)
    )
    stopped = tight.run("Count.", return_full_result=True)
    assert stopped.state is RunState.BUDGET_EXCEEDED
    finish = ScriptedModel(["```python\nfinal_answer(x * 10)\n```"])
    roomy = CodeAgent([], finish, store=store, max_steps=6, budget=Budget(max_output_tokens=10_000))
    assert roomy.resume(stopped.run_id) == 0  # x from the stored step, replayed; no step repeated
