"""Prompt templates (Jinja). Short on purpose: every token costs seconds on a small local model."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Template

__all__ = ["render_prompt"]


@cache
def _template(name: str) -> Template:
    from jinja2 import Environment, StrictUndefined

    env = Environment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
    return env.from_string(files(__name__).joinpath(f"{name}.jinja").read_text(encoding="utf-8"))


def render_prompt(name: str, **values: Any) -> str:
    """Render the template `name` (code_agent, tool_calling_agent, planning)."""
    return _template(name).render(**values).strip()
