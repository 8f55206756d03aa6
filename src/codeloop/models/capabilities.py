"""What a model accepts, as data: which request parameters, which role for the system prompt.

Adapters consult a `ModelCapabilities` instead of matching model names in code. It comes from a
small table (`CAPABILITY_TABLE`: provider glob + model-id glob → capabilities, first match wins);
unknown models on unknown servers get the defaults, where everything is allowed. A user can
always pass their own: `OpenAIModel("my-o3-proxy", capabilities=ModelCapabilities(stop=False))`.

    capabilities_for("o3-mini", provider="openai")  # no `stop`, developer role, ...
    provider_for_url("https://api.x.ai/v1")          # "xai"

Adding a model family is one row in the table. What an adapter does with each field:

* `stop=False`: stop sequences are not sent; the adapter cuts the text client-side, so the agent
  sees the same behaviour. `max_stop_sequences`: at most this many are sent, the rest are still
  enforced client-side.
* `system_role`: the role system messages are sent with ("system", "developer", or "user" for
  models that take no system prompt at all).
* `tool_calls=False`: tool schemas are not sent; the ToolCallingAgent's prompt lists the tools
  and its parser reads the JSON calls the model writes in its text.
* `max_tokens_field`: the name a `max_tokens=` setting is sent under.
* `structured_output`: a JSON-schema `response_format` sent together with tools is honoured
  (the reply is tool calls, or text matching the schema); the ToolCallingAgent then sends its
  `output_type` that way. Known for OpenAI's own API only; elsewhere off unless you say so
  (servers that turn the schema into a grammar, such as llama.cpp or vLLM, then cannot call tools).
* `response_format`, `reasoning_effort`, `sampling` (temperature, top_p, penalties...): a
  setting the model refuses is a `ConfigurationError` when the model is built, not a 400 mid-run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Literal
from urllib.parse import urlsplit

__all__ = [
    "CAPABILITY_TABLE",
    "PROVIDER_HOSTS",
    "SAMPLING_PARAMETERS",
    "CapabilityRule",
    "ModelCapabilities",
    "SystemRole",
    "capabilities_for",
    "provider_for_url",
]

SystemRole = Literal["system", "developer", "user"]

SAMPLING_PARAMETERS = frozenset(
    {"temperature", "top_p", "presence_penalty", "frequency_penalty"}
    | {"logprobs", "top_logprobs", "logit_bias"}
)
"""The settings `sampling=False` models (OpenAI's reasoning models) refuse."""


@dataclass(frozen=True)
class ModelCapabilities:
    """What one model accepts. The defaults allow everything (an unknown OpenAI-compatible
    server), except that at most 4 stop sequences are sent (the rest are enforced client-side)."""

    stop: bool = True
    max_stop_sequences: int | None = 4
    tool_calls: bool = True
    response_format: bool = True
    reasoning_effort: bool = True
    sampling: bool = True
    system_role: SystemRole = "system"
    structured_output: bool = False
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"


@dataclass(frozen=True)
class CapabilityRule:
    """One table row: `provider` and `model` are case-insensitive globs (`*` matches any)."""

    provider: str
    model: str
    capabilities: ModelCapabilities


_REASONING = ModelCapabilities(
    stop=False, sampling=False, system_role="developer", max_tokens_field="max_completion_tokens"
)
_FIRST_REASONING = replace(
    _REASONING, system_role="user", tool_calls=False, response_format=False, reasoning_effort=False
)
_NO_REASONING_EFFORT = ModelCapabilities(reasoning_effort=False)
_OPENAI_CHAT = ModelCapabilities(reasoning_effort=False, structured_output=True)

CAPABILITY_TABLE: tuple[CapabilityRule, ...] = (
    # OpenAI model ids: also matched on gateways and proxies (any provider), which forward them as is.
    CapabilityRule("*", "o1-mini*", _FIRST_REASONING),
    CapabilityRule("*", "o1-preview*", _FIRST_REASONING),
    CapabilityRule("*", "o1*", _REASONING),
    CapabilityRule("*", "o3*", _REASONING),
    CapabilityRule("*", "o4*", _REASONING),
    CapabilityRule("*", "gpt-5-chat*", _NO_REASONING_EFFORT),
    CapabilityRule("*", "gpt-5*", _REASONING),
    CapabilityRule("openai", "gpt-4o*", _OPENAI_CHAT),
    CapabilityRule("openai", "gpt-4.1*", _OPENAI_CHAT),
    CapabilityRule("openai", "gpt-4*", _NO_REASONING_EFFORT),
    CapabilityRule("openai", "gpt-3.5*", _NO_REASONING_EFFORT),
    CapabilityRule("openai", "chatgpt-*", _NO_REASONING_EFFORT),
    # xAI: the reasoning Grok models refuse `stop`.
    CapabilityRule("xai", "grok-3-mini*", ModelCapabilities(stop=False)),
    CapabilityRule("xai", "grok-4*", ModelCapabilities(stop=False, reasoning_effort=False)),
    CapabilityRule("xai", "grok-code*", ModelCapabilities(stop=False, reasoning_effort=False)),
)

PROVIDER_HOSTS: tuple[tuple[str, str], ...] = (
    ("api.openai.com", "openai"),
    ("openai.azure.com", "azure"),
    ("cognitiveservices.azure.com", "azure"),
    ("api.x.ai", "xai"),
    ("openrouter.ai", "openrouter"),
    ("api.groq.com", "groq"),
    ("api.deepseek.com", "deepseek"),
    ("router.huggingface.co", "huggingface"),
)
"""Host (or parent domain) → provider name, for `provider_for_url`."""


def capabilities_for(
    model_id: str, provider: str = "openai", table: tuple[CapabilityRule, ...] = CAPABILITY_TABLE
) -> ModelCapabilities:
    """The first rule matching `provider` and `model_id`, else the defaults (everything allowed)."""
    model, name = model_id.lower(), provider.lower()
    for rule in table:
        if fnmatchcase(name, rule.provider.lower()) and fnmatchcase(model, rule.model.lower()):
            return rule.capabilities
    return ModelCapabilities()


def provider_for_url(url: str | None) -> str:
    """The provider behind an OpenAI-compatible base URL: "openai" when there is none (the SDK's
    default), a name from `PROVIDER_HOSTS`, or "openai-compatible" for any other server."""
    if not url:
        return "openai"
    host = (urlsplit(url).hostname or "").lower()
    for suffix, provider in PROVIDER_HOSTS:
        if host == suffix or host.endswith("." + suffix):
            return provider
    return "openai-compatible"
