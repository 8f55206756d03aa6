"""The model seam: messages in, an assistant message (or a stream of deltas) out.

Every provider is one module in `codeloop.models` that subclasses `Model` and implements
`agenerate` (and, when it can stream, `astream`). The sync methods are thin wrappers over the
async ones, so there is exactly one code path per provider.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._sync import iterate_sync, run_sync
from ..messages import ChatMessage, MessageDelta, Role, ToolCall, ToolCallDelta, Usage

__all__ = [
    "Model",
    "ToolSchema",
    "assemble_message",
    "json_schema_response_format",
    "message_to_delta",
    "parse_arguments",
]

ToolSchema = dict[str, Any]
"""A function schema: `{"name": ..., "description": ..., "parameters": <JSON schema>}`."""


class Model:
    """Base class of model adapters.

    Subclasses implement `agenerate`; streaming adapters also override `astream`.
    `stop` sequences are honoured by every adapter (truncated client-side when the provider
    refuses them), so the agent can rely on them.
    """

    model_id: str = "model"

    def __new__(cls, *args: Any, **kwargs: Any) -> Model:
        model = super().__new__(cls)
        model.__dict__["_constructor_arguments"] = (args, dict(kwargs))  # see `constructor_arguments`
        return model

    def constructor_arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments this model was built with (`agent.save()` keeps its non-secret settings)."""
        found: tuple[tuple[Any, ...], dict[str, Any]] = self.__dict__.get("_constructor_arguments", ((), {}))
        return found

    @property
    def native_structured_output(self) -> bool:
        """Whether `agenerate`/`astream` take `response_format=` (an OpenAI-style
        `{"type": "json_schema", ...}` dict, see `json_schema_response_format`) in a request that
        also carries tools, and the provider then constrains a text reply to the schema while
        tool calls stay possible. The ToolCallingAgent sends its `output_type` that way only to
        models that say True (see `ModelCapabilities.structured_output`)."""
        return False

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> ChatMessage:
        raise NotImplementedError

    async def astream(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> AsyncIterator[MessageDelta]:
        """Stream deltas. The default yields the whole answer as one delta."""
        message = await self.agenerate(messages, stop=stop, tools=tools)
        yield message_to_delta(message)

    def generate(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> ChatMessage:
        return run_sync(self.agenerate(messages, stop=stop, tools=tools))

    def generate_stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
    ) -> Iterator[MessageDelta]:
        return iterate_sync(self.astream(messages, stop=stop, tools=tools))

    __call__ = generate


def json_schema_response_format(schema: dict[str, Any], name: str = "final_answer") -> dict[str, Any]:
    """The `response_format` asking for text that is JSON matching `schema` (OpenAI's shape,
    also read by llama.cpp's server, vLLM, LiteLLM and Hugging Face's router)."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}


def message_to_delta(message: ChatMessage) -> MessageDelta:
    """A whole message as a single delta (for models that do not stream)."""
    calls = tuple(
        ToolCallDelta(
            index=i,
            id=call.id,
            name=call.name,
            arguments=call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments),
        )
        for i, call in enumerate(message.tool_calls)
    )
    return MessageDelta(
        content=message.content,
        reasoning=message.reasoning or "",
        tool_calls=calls,
        usage=message.usage,
        finish_reason=message.finish_reason,
    )


@dataclass
class _CallBuffer:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


def assemble_message(deltas: Sequence[MessageDelta]) -> ChatMessage:
    """Fold streamed deltas into one assistant message (tool-call fragments joined by index).
    A `restart` delta discards everything before it (the stream was retried)."""
    restarts = [i for i, delta in enumerate(deltas) if delta.restart]
    deltas = deltas[restarts[-1] + 1 :] if restarts else deltas
    calls: dict[int, _CallBuffer] = {}
    usage: Usage | None = None
    finish: str | None = None
    for delta in deltas:
        for part in delta.tool_calls:
            buf = calls.setdefault(part.index, _CallBuffer())
            buf.id = part.id or buf.id
            buf.name = part.name or buf.name
            buf.arguments.append(part.arguments)
        usage = delta.usage or usage
        finish = delta.finish_reason or finish
    reasoning = "".join(d.reasoning for d in deltas)
    return ChatMessage(
        role=Role.ASSISTANT,
        content="".join(d.content for d in deltas),
        tool_calls=tuple(
            ToolCall(id=b.id or f"call_{i}", name=b.name, arguments=parse_arguments("".join(b.arguments)))
            for i, b in sorted(calls.items())
        ),
        reasoning=reasoning or None,
        usage=usage,
        finish_reason=finish,
    )


def parse_arguments(text: str) -> dict[str, Any] | str:
    """Parse a tool call's JSON arguments; keep the raw text when it is not a JSON object."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, dict) else text
