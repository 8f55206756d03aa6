"""The ToolCallingAgent: actions are tool calls, native or written as JSON."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from ..errors import AgentError
from ..events import ActionOutput, Event, Observation, StepErrored, ToolCallRequested
from ..images import describe_image, tool_images
from ..memory import ActionStep, StepError, ToolResult
from ..messages import ChatMessage, ToolCall
from ..models.base import json_schema_response_format
from ..parsing import parse_tool_calls_from_text
from ..tools import Tool
from ..tools.context import ToolCallContext
from .approval import gather
from .base import MultiStepAgent
from .durable import journaled
from .run import Run, short_repr

__all__ = ["ToolCallingAgent", "answer_parameters"]


class ToolCallingAgent(MultiStepAgent):
    """An agent whose actions are tool calls (native, or JSON in the text for models without
    native calling). Several calls in one step run concurrently; `final_answer` ends the run."""

    prompt_name = "tool_calling_agent"

    async def _act(self, run: Run, step: ActionStep) -> AsyncIterator[Event]:
        message = run.message
        assert message is not None
        step.native_tool_calls = bool(message.tool_calls)
        calls = list(message.tool_calls) or _structured_answer(run, message)
        calls = calls or parse_tool_calls_from_text(message.content)
        step.tool_calls = tuple(calls)
        for call in calls:
            yield ToolCallRequested(agent=self.name, step=step.step_number, call=call)
        if await gather(run, self._approvable(run, calls)):
            return  # some calls wait for a human: none runs, and the step waits (see approval)
        work = self._spawn(run, self._call_all(run, calls))
        async for event in self._while_running(run, work):
            yield event
        outcomes: list[tuple[ToolResult, Any]] = work.result()
        outcomes = self._show_images(step, outcomes)
        step.tool_results = tuple(r for r, _ in outcomes)
        for result, _ in outcomes:
            yield Observation(
                agent=self.name,
                step=step.step_number,
                text=result.content,
                call_id=result.call_id,
                is_error=result.is_error,
            )
            if result.is_error:
                error = StepError(type="ToolError", message=result.content)
                yield StepErrored(agent=self.name, step=step.step_number, error=error)
        async for event in self._final_answer_from(run, step, outcomes):
            yield event

    async def _final_answer_from(
        self, run: Run, step: ActionStep, outcomes: list[tuple[ToolResult, Any]]
    ) -> AsyncIterator[Event]:
        answers = [
            value for result, value in outcomes if result.name == "final_answer" and not result.is_error
        ]
        if not answers:
            return
        step.action_output = answers[0]  # what the model gave, if it is rejected
        step.action_output = await self._accept_final_answer(run, answers[0])
        step.is_final_answer = True
        yield ActionOutput(agent=self.name, step=step.step_number, output=step.action_output)

    def _show_images(
        self, step: ActionStep, outcomes: list[tuple[ToolResult, Any]]
    ) -> list[tuple[ToolResult, Any]]:
        """Images the tools returned go to `step.observations_images` (the model sees them with
        the step's observations); each result's text says which images are its own."""
        shown = list(step.observations_images or [])
        kept: list[tuple[ToolResult, Any]] = []
        for result, value in outcomes:
            tool = None if result.is_error else self._tool_named(result.name)
            found = None if tool is None else tool_images(value, tool.output_type)
            if found is None:
                kept.append((result, value))
                continue
            others, images = found
            lines = [_observation_text(v) for v in others]
            for image in images:
                shown.append(image)
                lines.append(
                    f"Image {len(shown)} returned by {result.name} ({describe_image(image)}): shown below."
                )
            kept.append((dataclasses.replace(result, content="\n".join(lines)), value))
        step.observations_images = shown or step.observations_images
        return kept

    def _approvable(self, run: Run, calls: list[ToolCall]) -> list[tuple[ToolCallContext, str, Any, Tool]]:
        """The step's calls of the agent's tools, each with its place (call id) and tool."""
        found = [(i, c, self._tool_named(c.name)) for i, c in enumerate(calls) if c.name != "final_answer"]
        return [
            (ToolCallContext(run.run_id, run.step_number, i), c.name, _arguments(c), t)
            for i, c, t in found
            if t is not None
        ]

    def _tool_named(self, name: str) -> Tool | None:
        """The tool the model called: by its name, or by its wire name (a schema tool such as
        `math.factorial` is `math_factorial` in code and keeps its real name in the schema)."""
        found = self.tools.get(name)
        return found or next((t for t in self.tools.values() if t.wire_name == name), None)

    async def _call_all(self, run: Run, calls: list[ToolCall]) -> list[tuple[ToolResult, Any]]:
        """The step's calls, at once. (Gathered inside the spawned task, so the calls' tasks are
        made in its context: managed sub-agents among them forward their events to this run.)"""
        return await asyncio.gather(*(self._call_tool(run, c, i) for i, c in enumerate(calls)))

    async def _call_tool(self, run: Run, call: ToolCall, index: int) -> tuple[ToolResult, Any]:
        """Run one call (after the tool guards); any failure is an error result for the model.
        A tool's call is journaled in a durable run (its key: the call's position `index` in the
        message), or answered from the journal when a resumed run acts on a stored reply."""
        chosen = self._final_answer_tool if call.name == "final_answer" else self._tool_named(call.name)
        if chosen is None:
            known = ", ".join([*self.tools, "final_answer"])
            return ToolResult(
                call_id=call.id,
                name=call.name,
                content=f"Unknown tool {call.name!r}; use one of: {known}.",
                is_error=True,
            ), None
        try:
            arguments = self._wrapped_answer(call)
            if chosen is self._final_answer_tool:
                value = await chosen.acall(arguments)
            else:
                await self.guardrails.check_tool(call.name, _arguments(call), self)
                context = ToolCallContext(run.run_id, run.step_number, index)
                value = await journaled(
                    run, context, call.name, _arguments(call), lambda: chosen.acall(arguments), chosen
                )
        except AgentError as exc:
            return ToolResult(call_id=call.id, name=call.name, content=f"Error: {exc}", is_error=True), None
        return ToolResult(call_id=call.id, name=call.name, content=_observation_text(value)), value

    def _tool_schemas(self) -> list[dict[str, Any]]:
        final = self._final_answer_tool.json_schema()
        if self.output_spec is not None:  # the provider sees the answer's schema natively
            final["parameters"] = answer_parameters(self.output_spec.json_schema)
        return [*(_provider_schema(t) for t in self.tools.values()), final]

    def _model_settings(self) -> dict[str, Any]:
        """With `output_type`, models that constrain text to a schema alongside tools
        (`Model.native_structured_output`) get it as `response_format`: a reply that is not a
        tool call is then the answer, in that shape."""
        if self.output_spec is None or not self.model.native_structured_output:
            return {}
        return {"response_format": json_schema_response_format(self.output_spec.json_schema)}

    def _wrapped_answer(self, call: ToolCall) -> Any:
        """A structured final answer sent as the bare object (no `answer` key) is taken as it."""
        arguments = call.arguments
        if call.name != "final_answer" or self.output_spec is None or not isinstance(arguments, dict):
            return arguments
        return arguments if set(arguments) == {"answer"} else {"answer": arguments}

    def _native_tool_calls(self) -> bool:
        return bool(getattr(getattr(self.model, "capabilities", None), "tool_calls", True))

    def _output_note(self) -> str | None:
        spec = self.output_spec
        return None if spec is None else spec.task_note(schema_shown_elsewhere=self._native_tool_calls())

    def _prompt_values(self) -> dict[str, Any]:
        """Adds `native_tool_calls`: whether the model is sent the tool schemas (its server then
        lists the tools itself) rather than told to write JSON calls in its text."""
        return {**super()._prompt_values(), "native_tool_calls": self._native_tool_calls()}


def answer_parameters(schema: dict[str, Any]) -> dict[str, Any]:
    """The `final_answer` parameters for an answer of JSON schema `schema` (its `$defs` moved
    to the top, where its `$ref`s point)."""
    answer = {k: v for k, v in schema.items() if k != "$defs"}
    parameters: dict[str, Any] = {"type": "object", "properties": {"answer": answer}, "required": ["answer"]}
    if "$defs" in schema:
        parameters["$defs"] = schema["$defs"]
    return parameters


def _structured_answer(run: Run, message: ChatMessage) -> list[ToolCall]:
    """A text reply to a request with a `response_format` is the final answer (validated
    like one): the provider held it to the output schema."""
    if "response_format" not in run.model_settings or not message.content.strip():
        return []
    try:
        answer = json.loads(message.content)
    except ValueError:
        return []  # cut short (max tokens): read as any text reply
    return [ToolCall(id=f"structured_{run.step_number}", name="final_answer", arguments={"answer": answer})]


def _arguments(call: ToolCall) -> dict[str, Any]:
    return dict(call.arguments) if isinstance(call.arguments, dict) else {"input": call.arguments}


def _observation_text(value: Any) -> str:
    return value if isinstance(value, str) else short_repr(value)


_PROVIDER_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what OpenAI's and Anthropic's APIs accept


def _provider_schema(tool: Tool) -> dict[str, Any]:
    """The tool's schema under a name providers accept: its wire name, or its Python name when
    the wire name has other characters (`math.factorial` goes out as `math_factorial`; both
    find the tool when the model calls it)."""
    schema = tool.json_schema()
    if not _PROVIDER_NAME.match(str(schema.get("name", ""))):
        schema["name"] = tool.name
    return schema
