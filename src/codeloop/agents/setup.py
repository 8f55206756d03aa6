"""Checking and assembling an agent's configuration: the model, the limits, the tools (managed
agents included) and the renderer that `verbosity_level` asks for."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..events import Event
from ..models.base import Model
from ..tools import Tool, tool
from .managed import ManagedAgentTool

if TYPE_CHECKING:
    from .base import MultiStepAgent

__all__ = ["check_arguments", "checked_model", "collect_tools", "renderers"]


def checked_model(agent: str, model: Model | None) -> Model:
    if model is None:
        raise ConfigurationError(f"{agent} needs a model, e.g. model=OpenAIModel('gpt-4o-mini').")
    return model


def check_arguments(max_steps: int, planning_interval: int | None, add_base_tools: bool) -> None:
    if max_steps < 1:
        raise ConfigurationError(f"max_steps must be at least 1, got {max_steps}.")
    if planning_interval is not None and planning_interval < 1:
        raise ConfigurationError(f"planning_interval must be at least 1, got {planning_interval}.")
    if add_base_tools:
        raise ConfigurationError(
            "add_base_tools=True: codeloop has no default toolkit yet (smolagents' web search, "
            "visit_webpage...). Pass the tools you need in tools= (functions decorated with @tool, "
            "or Tool subclasses) and leave add_base_tools at False."
        )


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


def renderers(verbosity_level: int) -> list[Callable[[Event], Any]]:
    if verbosity_level <= 0:
        return []
    from ..render import ConsoleRenderer

    return [ConsoleRenderer(verbosity_level=verbosity_level)]
