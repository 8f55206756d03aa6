"""Attribute names and values for codeloop's spans (no OpenTelemetry import here).

The names follow the OpenTelemetry GenAI semantic conventions (`gen_ai.*`, `error.type`); what
the conventions do not cover (code actions, the run's outcome) is under `codeloop.*`. They are
spelled out here rather than taken from `opentelemetry-semantic-conventions`, whose GenAI names
are deprecated there (they moved to the separate GenAI conventions repository).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..agents import MultiStepAgent
    from ..messages import ChatMessage, Usage

__all__ = [
    "AGENT_DESCRIPTION",
    "AGENT_NAME",
    "CODE",
    "CONVERSATION_ID",
    "ERROR_TYPE",
    "EXECUTOR_LIMITS",
    "EXECUTOR_NAME",
    "FINISH_REASONS",
    "INPUT_MESSAGES",
    "MODEL_PURPOSE",
    "OPERATION_NAME",
    "OTHER_ERROR",
    "OUTPUT_MESSAGES",
    "PROVIDER_NAME",
    "REQUEST_MODEL",
    "RUN_ERROR",
    "RUN_ID",
    "RUN_STATE",
    "RUN_STEPS",
    "STEP",
    "TOOL_CALL_ARGUMENTS",
    "TOOL_CALL_ID",
    "TOOL_CALL_INDEX",
    "TOOL_CALL_RESULT",
    "TOOL_DESCRIPTION",
    "TOOL_NAME",
    "TOOL_TYPE",
    "agents_by_name",
    "error_type_of",
    "exception_type_name",
    "input_messages",
    "output_messages",
    "provider_name",
    "reply_messages",
    "scalar_items",
    "to_json",
    "usage_attributes",
]

# GenAI semantic conventions
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
AGENT_NAME = "gen_ai.agent.name"
AGENT_DESCRIPTION = "gen_ai.agent.description"
CONVERSATION_ID = "gen_ai.conversation.id"
REQUEST_MODEL = "gen_ai.request.model"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS = "gen_ai.usage.cache_read.input_tokens"
REASONING_TOKENS = "gen_ai.usage.reasoning.output_tokens"
TOOL_NAME = "gen_ai.tool.name"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_DESCRIPTION = "gen_ai.tool.description"
TOOL_CALL_ID = "gen_ai.tool.call.id"
# opt-in content (recorded only when content capture is on)
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
# general conventions
ERROR_TYPE = "error.type"
OTHER_ERROR = "_OTHER"
"""The conventions' `error.type` when no better name is known."""

# codeloop's own
RUN_ID = "codeloop.run.id"
RUN_STATE = "codeloop.run.state"
RUN_STEPS = "codeloop.run.steps"
RUN_ERROR = "codeloop.run.error"
STEP = "codeloop.step"
MODEL_PURPOSE = "codeloop.model_call.purpose"
TOOL_CALL_INDEX = "codeloop.tool.call_index"
EXECUTOR_NAME = "codeloop.executor.name"
EXECUTOR_LIMITS = "codeloop.executor.limits"
CODE = "codeloop.code"
"""The code of a code action: content, so recorded only when content capture is on."""

_PROVIDER_BY_CLASS = {
    "AnthropicModel": "anthropic",
    "AmazonBedrockModel": "aws.bedrock",
    "InferenceClientModel": "huggingface",
}
_PROVIDER_BY_OPENAI_HOST = {
    "openai": "openai",
    "openai-compatible": "openai",
    "azure": "azure.ai.openai",
    "xai": "x_ai",
    "groq": "groq",
    "deepseek": "deepseek",
}
_PROVIDER_BY_LITELLM_PREFIX = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "vertex_ai": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "huggingface": "huggingface",
}
_ERROR_NAME = re.compile(r"([A-Za-z_][\w.]*)(?=$|[:\s(])")


def provider_name(model: Any) -> str | None:
    """`gen_ai.provider.name` for a codeloop model, when its class says (None: a local or
    scripted model, or a wrapper around several)."""
    names = [cls.__name__ for cls in type(model).__mro__]
    for name in names:
        if name in _PROVIDER_BY_CLASS:
            return _PROVIDER_BY_CLASS[name]
    if "RetryingModel" in names and hasattr(model, "model"):
        return provider_name(model.model)
    if "LiteLLMModel" in names:
        prefix, slash, _ = str(getattr(model, "model_id", "")).partition("/")
        return _PROVIDER_BY_LITELLM_PREFIX.get(prefix) if slash else None
    if any(n.startswith("OpenAI") for n in names):
        host = str(getattr(model, "provider", "openai"))
        return _PROVIDER_BY_OPENAI_HOST.get(host, host)
    return None


def agents_by_name(agent: MultiStepAgent) -> dict[str, MultiStepAgent]:
    """The agent and its managed sub-agents (at any depth), by name: events name their agent."""
    found: dict[str, MultiStepAgent] = {}
    pending = [agent]
    while pending:
        current = pending.pop()
        if current.name not in found:
            found[current.name] = current
            pending.extend(getattr(current, "managed_agents", {}).values())
    return found


def exception_type_name(exc: BaseException) -> str:
    """An exception's class as `error.type` wants it: qualified, except for builtins."""
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def error_type_of(message: str) -> str:
    """The error class named at the start of an error text ("ValueError: ...",
    "SyntaxError (line 1...)"), else `_OTHER`."""
    found = _ERROR_NAME.match(message.strip())
    return found.group(1) if found else OTHER_ERROR


def usage_attributes(usage: Usage | None) -> dict[str, int]:
    """Token counts as `gen_ai.usage.*` (the cached and reasoning counts only when known)."""
    if usage is None:
        return {}
    found = {INPUT_TOKENS: usage.input_tokens, OUTPUT_TOKENS: usage.output_tokens}
    if usage.cached_tokens:
        found[CACHE_READ_TOKENS] = usage.cached_tokens
    if usage.reasoning_tokens:
        found[REASONING_TOKENS] = usage.reasoning_tokens
    return found


def scalar_items(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` as `prefix.key` attributes, keeping those an attribute can hold."""
    return {f"{prefix}.{k}": v for k, v in values.items() if isinstance(v, (str, bool, int, float))}


def input_messages(task: str) -> str:
    """The run's task as `gen_ai.input.messages` (JSON, the conventions' message shape)."""
    return to_json([{"role": "user", "parts": [{"type": "text", "content": task}]}])


def output_messages(output: Any) -> str:
    """A run's answer as `gen_ai.output.messages`."""
    text = output if isinstance(output, str) else to_json(output)
    message = {"role": "assistant", "parts": [{"type": "text", "content": text}], "finish_reason": "stop"}
    return to_json([message])


def reply_messages(message: ChatMessage) -> str:
    """A model's reply as `gen_ai.output.messages`: its reasoning, text and tool calls."""
    parts: list[dict[str, Any]] = []
    if message.reasoning:
        parts.append({"type": "reasoning", "content": message.reasoning})
    if message.content:
        parts.append({"type": "text", "content": message.content})
    for call in message.tool_calls:
        parts.append({"type": "tool_call", "id": call.id, "name": call.name, "arguments": call.arguments})
    finish = message.finish_reason or ("tool_call" if message.tool_calls else "stop")
    return to_json([{"role": "assistant", "parts": parts, "finish_reason": finish}])


def to_json(value: Any) -> str:
    """`value` as a JSON attribute (values JSON cannot hold as their `repr`)."""
    return json.dumps(value, ensure_ascii=False, default=repr)
