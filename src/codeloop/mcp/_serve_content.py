"""What an agent served over MCP says: its tool's schemas, its answer as MCP content, and a short
progress line per event. Pure functions over codeloop's types and the SDK's `mcp.types`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pydantic
import pydantic_core
from mcp import types

from ..events import (
    CodeAction,
    Event,
    FinalAnswer,
    PlanReady,
    RunFinished,
    RunStarted,
    StepFinished,
    ToolCallRequested,
)
from ..memory import ActionStep
from ..result import RunResult

if TYPE_CHECKING:
    from ..agents import MultiStepAgent
    from ..agents.output import OutputSpec

__all__ = [
    "AgentCall",
    "agent_tool",
    "answer_result",
    "error_result",
    "failed_run_result",
    "progress_message",
    "value_result",
]

_TASK_SHOWN = 60  # characters of the task in the "started" progress line


class AgentCall(pydantic.BaseModel):
    """The arguments of the agent's MCP tool."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    task: str = pydantic.Field(min_length=1, description="The task for the agent, in plain words.")
    additional_args: dict[str, Any] | None = pydantic.Field(
        default=None,
        description="Values the agent can use while it works (its code sees them as variables).",
    )


def agent_tool(agent: MultiStepAgent, name: str) -> types.Tool:
    """The MCP tool that runs `agent`."""
    description = agent.description or (
        f"Runs the {type(agent).__name__} {agent.name!r} on a task and returns its answer."
    )
    schema = AgentCall.model_json_schema()
    schema.pop("title", None)
    for prop in schema["properties"].values():
        prop.pop("title", None)
    return types.Tool(
        name=name,
        description=description,
        input_schema=schema,
        output_schema=_output_schema(agent.output_spec),
    )


def _output_schema(spec: OutputSpec | None) -> dict[str, Any] | None:
    """The answer's schema as an MCP output schema (an object at the root: a non-object answer is
    wrapped as `{"result": ...}`), or None without `output_type`."""
    if spec is None:
        return None
    schema = dict(spec.json_schema)
    if schema.get("type") == "object":
        return schema
    wrapper: dict[str, Any] = {"type": "object", "properties": {}, "required": ["result"]}
    if "$defs" in schema:
        wrapper["$defs"] = schema.pop("$defs")
    wrapper["properties"]["result"] = schema
    return wrapper


def answer_result(result: RunResult, spec: OutputSpec | None) -> types.CallToolResult:
    """A successful run's answer: text, plus structured content for a structured answer."""
    output = result.output
    if spec is not None and spec.adapter is not None:
        jsonable = spec.adapter.dump_python(output, mode="json")
    else:
        jsonable = _jsonable(output)
    structured: dict[str, Any] | None = None
    if spec is not None:
        schema_is_object = spec.json_schema.get("type") == "object"
        structured = jsonable if schema_is_object else {"result": jsonable}
    elif isinstance(jsonable, dict):
        structured = jsonable
    return types.CallToolResult(content=[_text(output, jsonable)], structured_content=structured)


def value_result(value: Any) -> types.CallToolResult:
    """A tool's return value: text, plus structured content when it is a JSON object."""
    jsonable = _jsonable(value)
    structured = jsonable if isinstance(jsonable, dict) else None
    return types.CallToolResult(content=[_text(value, jsonable)], structured_content=structured)


def failed_run_result(agent_name: str, result: RunResult) -> types.CallToolResult:
    """A run that ended without an answer: an MCP tool error naming the state and the error."""
    detail = f": {result.error}" if result.error else ""
    return error_result(f"The agent {agent_name} gave no answer (state: {result.state.value}){detail}")


def error_result(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def _jsonable(value: Any) -> Any:
    return pydantic_core.to_jsonable_python(value, fallback=repr)


def _text(value: Any, jsonable: Any) -> types.TextContent:
    if isinstance(value, str):
        return types.TextContent(text=value)
    return types.TextContent(text=json.dumps(jsonable, ensure_ascii=False))


def progress_message(event: Event) -> str | None:
    """One short line for a progress notification, or None for events not worth one (the
    model's streamed text, observations...)."""
    where = f"{event.agent} step {event.step}"
    if isinstance(event, RunStarted):
        task = event.task if len(event.task) <= _TASK_SHOWN else event.task[: _TASK_SHOWN - 3] + "..."
        return f"{event.agent} started: {task}"
    if isinstance(event, PlanReady):
        return f"{event.agent} made a plan"
    if isinstance(event, CodeAction):
        return f"{where}: running code"
    if isinstance(event, ToolCallRequested):
        return f"{where}: calling {event.call.name}"
    if isinstance(event, StepFinished) and isinstance(event.memory_step, ActionStep):
        error = event.memory_step.error
        return f"{where} finished" + (f" with an error ({error.type})" if error else "")
    if isinstance(event, FinalAnswer):
        return f"{event.agent} has a final answer"
    if isinstance(event, RunFinished):
        return f"{event.agent} finished: {event.result.state.value}"
    return None
