"""Prompt templates (Jinja). Short on purpose: every token costs seconds on a small local model.

An agent keeps its templates in `agent.prompt_templates`, a nested dict under smolagents' keys
(`PromptTemplates`); pass `prompt_templates=` to override any of them (a partial dict is merged
over the defaults). The keys and what codeloop does with them:

* `system_prompt`: the system prompt (`code_agent.jinja` / `tool_calling_agent.jinja`).
* `planning.initial_plan` / `planning.update_plan_post_messages`: the request for the first
  plan / for an updated plan, sent as a user message after the conversation so far.
* `planning.update_plan_pre_messages`: empty by default; when set, it replaces the system prompt
  of plan-update requests (smolagents sends it in place of the system prompt).
* `managed_agent.task` / `managed_agent.report`: empty by default, meaning a managed agent gets
  its manager's task as is and returns its answer as is (any Python value). When set, they wrap
  the task and turn the answer into the rendered report text, as in smolagents.
* `final_answer.*`: accepted, never used: codeloop does not ask the model for a best guess when
  `max_steps` runs out (the run ends with `RunState.MAX_STEPS`).

Templates see smolagents' variables (`tools`, `managed_agents`, `custom_instructions`,
`authorized_imports`, `code_block_opening_tag`/`code_block_closing_tag`, `task`,
`remaining_steps`, `name`, `final_answer`) and codeloop's own (`instructions`, `stubs`,
`imports`, `agent_tools`, and for a ToolCallingAgent `native_tool_calls`: whether the model is
sent the tools natively), so templates written for smolagents render unchanged. The filter
`tool_entry` renders a tool (or a smolagents-style template tool) as the CodeAgent's prompt lists
it: its call signature with no `def`, then what it does, takes and returns (`stubs` and
`tool.to_code_prompt()` are smolagents' `def` stubs instead).

What the default CodeAgent prompt teaches, and why (each point was tried on Qwen2.5-Coder-1.5B):

* tools are listed as calls to make, not as `def` stubs, and the rules say that facts come only
  from tool results and that a tool is never redefined: the model copied stubs and filled their
  bodies with made-up data;
* the worked example calls a tool and answers from its results in one block. The tool is named
  as an example (and renamed if a real tool has its name). An example showing an
  `Observation:` line was imitated: replies began with made-up "observations" instead of calls;
  a thought stating a fact ("Counts come from a tool") had replies open with made-up facts,
  where "I will ..." had them open with a plan;
* code the task asks for is handed back with `final_answer(the_function)`, whose answer is the
  function's source (the model defined the function and never handed it back);
* the standard library is not listed module by module (about 80 tokens in every request): only
  the imports the user authorized on top (`imports`) are named, and an import the sandbox
  refuses answers with the list. `authorized_imports` (smolagents' variable) is the full list.

A ToolCallingAgent whose model takes tools natively gets no tool list and no JSON format: its
server renders the tools into the prompt already, and a second list was copied into replies.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from functools import lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any, TypedDict, cast

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from jinja2 import Template

    from ..tools import Tool

__all__ = [
    "FinalAnswerPromptTemplate",
    "ManagedAgentPromptTemplate",
    "PlanningPromptTemplate",
    "PromptTemplates",
    "TemplateTool",
    "default_prompt_templates",
    "load_template",
    "merge_prompt_templates",
    "populate_template",
]


class PlanningPromptTemplate(TypedDict):
    initial_plan: str
    update_plan_pre_messages: str
    update_plan_post_messages: str


class ManagedAgentPromptTemplate(TypedDict):
    task: str
    report: str


class FinalAnswerPromptTemplate(TypedDict):
    pre_messages: str
    post_messages: str


class PromptTemplates(TypedDict):
    """An agent's prompt templates, under smolagents' keys (see the module docstring)."""

    system_prompt: str
    planning: PlanningPromptTemplate
    managed_agent: ManagedAgentPromptTemplate
    final_answer: FinalAnswerPromptTemplate


def load_template(name: str) -> str:
    """The source of a packaged template: code_agent, tool_calling_agent, planning_initial,
    planning_update."""
    return files(__name__).joinpath(f"{name}.jinja").read_text(encoding="utf-8")


def default_prompt_templates(system_prompt: str) -> PromptTemplates:
    """The default templates of an agent whose system prompt is the packaged `system_prompt`."""
    return PromptTemplates(
        system_prompt=load_template(system_prompt),
        planning=PlanningPromptTemplate(
            initial_plan=load_template("planning_initial"),
            update_plan_pre_messages="",
            update_plan_post_messages=load_template("planning_update"),
        ),
        managed_agent=ManagedAgentPromptTemplate(task="", report=""),
        final_answer=FinalAnswerPromptTemplate(pre_messages="", post_messages=""),
    )


def merge_prompt_templates(defaults: PromptTemplates, overrides: Mapping[str, Any] | None) -> PromptTemplates:
    """`defaults` with `overrides` applied key by key; unknown keys and non-text values raise
    `ConfigurationError`."""
    merged: dict[str, Any] = copy.deepcopy(dict(defaults))
    for key, value in (overrides or {}).items():
        if key not in merged:
            raise ConfigurationError(
                f"prompt_templates has no key {key!r}; the keys are: {', '.join(merged)}."
            )
        if isinstance(merged[key], dict):
            merged[key].update(_checked_section(key, merged[key], value))
        else:
            merged[key] = _checked_text(f"[{key!r}]", value)
    if any(merged["final_answer"].values()):
        warnings.warn(
            "prompt_templates['final_answer'] is not used: codeloop never asks the model for a "
            "best-guess answer when max_steps runs out; the run ends with RunState.MAX_STEPS.",
            UserWarning,
            stacklevel=4,
        )
    return cast(PromptTemplates, merged)


def _checked_section(key: str, defaults: Mapping[str, str], value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"prompt_templates[{key!r}] must be a dict with keys {', '.join(defaults)}, "
            f"not {type(value).__name__}."
        )
    unknown = [k for k in value if k not in defaults]
    if unknown:
        raise ConfigurationError(
            f"prompt_templates[{key!r}] has no key {unknown[0]!r}; its keys are: {', '.join(defaults)}."
        )
    return {k: _checked_text(f"[{key!r}][{k!r}]", v) for k, v in value.items()}


def _checked_text(where: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(
            f"prompt_templates{where} must be a Jinja template string, not {type(value).__name__}."
        )
    return value


def populate_template(template: str, variables: Mapping[str, Any], *, where: str = "") -> str:
    """Render a Jinja template (undefined variables are errors), stripped of outer whitespace.
    A template that cannot be rendered raises `ConfigurationError` naming the variables."""
    from jinja2 import TemplateError

    try:
        return _compile(template).render(**variables).strip()
    except TemplateError as exc:
        known = ", ".join(sorted(variables))
        raise ConfigurationError(
            f"prompt_templates{where} cannot be rendered: {type(exc).__name__}: {exc}. "
            f"The variables it can use are: {known}."
        ) from exc


@lru_cache(maxsize=64)
def _compile(source: str) -> Template:
    from jinja2 import Environment, StrictUndefined

    env = Environment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
    env.filters["tool_entry"] = _tool_entry
    return env.from_string(source)


def _tool_entry(tool: Tool | TemplateTool) -> str:
    from ..tools._render import tool_entry

    return tool_entry(tool.tool if isinstance(tool, TemplateTool) else tool)


class TemplateTool:
    """A tool, or a managed agent, as smolagents' templates see it: `name`, `description`,
    `inputs`, `output_type`, `to_code_prompt()` and `to_tool_calling_prompt()`."""

    def __init__(self, tool: Tool, description: str | None = None) -> None:
        self.tool = tool
        self.name = tool.name
        self.description = tool.description if description is None else description
        self.inputs = tool.inputs
        self.output_type = tool.output_type

    def to_code_prompt(self) -> str:
        return self.tool.to_code_prompt()

    def to_tool_calling_prompt(self) -> str:
        return (
            f"{self.name}: {self.description}\n    Takes inputs: {self.inputs}\n"
            f"    Returns an output of type: {self.output_type}"
        )
