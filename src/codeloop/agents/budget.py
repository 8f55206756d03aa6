"""Budgets: how much one run may spend before it ends, whatever the model does.

    agent = CodeAgent(tools, model, budget=Budget(max_cost=0.50, max_duration=120))
    agent.run(task, budget=Budget(max_input_tokens=200_000))   # this run only

`max_input_tokens` and `max_output_tokens` count the run's tokens over all its model calls
(planning included); `max_cost` prices them with `prices` (US dollars per million input and
output tokens, by model id glob; `DEFAULT_PRICES` when not given; a budget in dollars for a
model without a price is a `ConfigurationError` when the run starts, not a silent pass);
`max_duration` is wall-clock seconds since the run started. They are checked between steps:
reaching one ends the run with `RunState.BUDGET_EXCEEDED` and `BudgetExceeded` naming it, its
memory intact (a step already under way finishes first).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from ..errors import ConfigurationError, RunFailed
from ..messages import Usage

__all__ = ["DEFAULT_PRICES", "Budget", "BudgetExceeded", "Price", "price_for"]


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float


DEFAULT_PRICES: Mapping[str, Price] = {
    # The providers' published list prices (US$ per million tokens, 2025); override with `prices=`.
    "gpt-4o-mini*": Price(0.15, 0.60),
    "gpt-4o*": Price(2.50, 10.00),
    "gpt-4.1-mini*": Price(0.40, 1.60),
    "gpt-4.1*": Price(2.00, 8.00),
    "o3-mini*": Price(1.10, 4.40),
    "claude-3-5-haiku*": Price(0.80, 4.00),
    "claude-sonnet-4*": Price(3.00, 15.00),
    "scripted": Price(0.0, 0.0),
    "*.gguf": Price(0.0, 0.0),  # local models
}
"""Model-id glob -> price; the first match in order wins (specific ids before their families)."""


class BudgetExceeded(RunFailed):
    """A run reached one of its budget's limits. `limit` names it ("max_cost"...)."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


def price_for(model_id: str, prices: Mapping[str, Price]) -> Price | None:
    """The price of `model_id`: the first glob in `prices` that matches it (case-insensitive)."""
    name = model_id.lower()
    return next((p for glob, p in prices.items() if fnmatchcase(name, glob.lower())), None)


@dataclass(frozen=True)
class Budget:
    """Limits for one run; None means no limit."""

    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_cost: float | None = None
    max_duration: float | None = None
    prices: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    def __post_init__(self) -> None:
        for name in ("max_input_tokens", "max_output_tokens", "max_cost", "max_duration"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigurationError(f"Budget {name} must be positive, got {value!r}.")

    def check_model(self, model_id: str) -> None:
        """Refuse a dollar budget for a model without a price (it could never be enforced)."""
        if self.max_cost is not None and price_for(model_id, self.prices) is None:
            raise ConfigurationError(
                f"Budget(max_cost=...) needs a price for model {model_id!r}: pass "
                f"Budget(prices={{{model_id!r}: Price(input=..., output=...)}}) (US$ per million tokens)."
            )

    def cost(self, usage: Usage, model_id: str) -> float:
        price = price_for(model_id, self.prices) or Price(0.0, 0.0)
        return (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1e6

    def exceeded(self, usage: Usage, model_id: str, started: float) -> BudgetExceeded | None:
        """The limit reached by a run that used `usage` since `started` (a `time.time()`), if any."""
        checks = (
            ("max_input_tokens", self.max_input_tokens, usage.input_tokens, "input tokens"),
            ("max_output_tokens", self.max_output_tokens, usage.output_tokens, "output tokens"),
            ("max_cost", self.max_cost, self.cost(usage, model_id), "US$"),
            ("max_duration", self.max_duration, time.time() - started, "seconds"),
        )
        for name, limit, used, unit in checks:
            if limit is not None and used >= limit:
                shown = f"{used:.4g}" if isinstance(used, float) else str(used)
                return BudgetExceeded(
                    name, f"The run reached its budget: {name}={limit:g} ({shown} {unit} used)."
                )
        return None
