"""Checking and assembling an agent's configuration: the model, the limits, the tools (managed
agents included) and the renderer that `verbosity_level` asks for."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..events import Event
from ..models.base import Model
from ..tools import Tool, tool
from .managed import ManagedAgentTool

if TYPE_CHECKING:
    from .base import MultiStepAgent
    from .budget import Price

__all__ = ["check_arguments", "checked_model", "collect_tools", "renderers"]


def checked_model(agent: str, model: Model | None) -> Model:
    if model is None:
        raise ConfigurationError(f"{agent} needs a model, e.g. model=OpenAIModel('gpt-4o-mini').")
    return model


def check_arguments(max_steps: int, planning_interval: int | None) -> None:
    if max_steps < 1:
        raise ConfigurationError(f"max_steps must be at least 1, got {max_steps}.")
    if planning_interval is not None and planning_interval < 1:
        raise ConfigurationError(f"planning_interval must be at least 1, got {planning_interval}.")


def with_base_tools(
    tools: Sequence[Tool | Callable[..., Any]], *, python: bool
) -> list[Tool | Callable[..., Any]]:
    """`tools` plus the default toolkit (`add_base_tools=True`), minus the toolkit's tools whose
    names the user's tools already take; `python` adds the Python interpreter tool (not for a
    CodeAgent, whose actions are code already)."""
    try:
        from ..toolkit import base_tools
    except ImportError as exc:
        raise ConfigurationError(
            f"add_base_tools=True needs the toolkit's packages ({exc.name} is missing): "
            "pip install 'codeloop[toolkit]'."
        ) from exc
    taken = {getattr(t, "name", getattr(t, "__name__", None)) for t in tools}
    return [*tools, *(t for t in base_tools(python=python) if t.name not in taken)]


def collect_tools(
    tools: Sequence[Tool | Callable[..., Any]], managed: Sequence[MultiStepAgent]
) -> dict[str, Tool]:
    collected: dict[str, Tool] = {}
    items: list[Tool | Callable[..., Any]] = [*tools, *(ManagedAgentTool(a) for a in managed)]
    for item in items:
        built = item if isinstance(item, Tool) else tool(item)
        if built.name == "final_answer":
            raise ConfigurationError("The name final_answer is reserved: the agent provides it.")
        if built.name in collected:
            raise ConfigurationError(
                f"Two tools or managed agents are named {built.name!r}; names must be unique."
            )
        collected[built.name] = built
    return collected


def renderers(
    verbosity_level: int, prices: Mapping[str, Price] | None = None
) -> list[Callable[[Event], Any]]:
    """The terminal view `verbosity_level` asks for; it prices runs with the budget's `prices`."""
    if verbosity_level <= 0:
        return []
    from ..render import ConsoleRenderer

    return [ConsoleRenderer(verbosity_level=verbosity_level, prices=prices)]
