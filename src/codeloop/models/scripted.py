"""A model that replays scripted replies: for tests, demos and testing your own agents offline."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, Union

from ..errors import ConfigurationError
from ..messages import ChatMessage, MessageDelta, Role, ToolCall, Usage
from .base import Model, ToolSchema, message_to_delta

__all__ = ["Reply", "ScriptExhausted", "ScriptedModel"]

Reply = Union[str, ChatMessage, Sequence[ToolCall], Exception, Callable[[Sequence[ChatMessage]], "Reply"]]  # noqa: UP007
"""A scripted reply: assistant text, a full message, tool calls, an exception to raise, or a
function of the messages returning one of those."""


_CALL_IDS = itertools.count(1)


class ScriptExhausted(Exception):
    """The model was asked for more replies than were scripted."""


class ScriptedModel(Model):
    """Returns the scripted replies in order, one per call.

    Stop sequences are honoured like a real server (the text is cut before the first one).
    Usage is an estimate (4 characters per token) so token accounting can be exercised.
    Every request's messages are kept in `requests` for assertions. With
    `native_structured_output=True` it takes `response_format=` like a provider that honours it
    (the replies are still the scripted ones); each request's is kept in `response_formats`.
    """

    def __init__(
        self,
        replies: Iterable[Reply],
        *,
        model_id: str = "scripted",
        chunk_size: int = 16,
        latency_s: float = 0.0,
        native_structured_output: bool = False,
    ) -> None:
        if chunk_size < 1:
            raise ConfigurationError("chunk_size must be at least 1.")
        self.model_id = model_id
        self._replies = iter(list(replies))
        self.chunk_size = chunk_size
        self.latency_s = latency_s
        self.requests: list[list[ChatMessage]] = []
        self.response_formats: list[Any] = []
        self._native_structured_output = native_structured_output

    @property
    def native_structured_output(self) -> bool:
        return self._native_structured_output

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
        response_format: Any = None,
    ) -> ChatMessage:
        if response_format is not None and not self._native_structured_output:
            raise ConfigurationError("This ScriptedModel was not made with native_structured_output=True.")
        self.requests.append(list(messages))
        self.response_formats.append(response_format)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        reply = next(self._replies, None)
        if reply is None:
            raise ScriptExhausted(f"ScriptedModel has no reply left for call {len(self.requests)}.")
        return self._as_message(reply, messages, stop)

    async def astream(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
        response_format: Any = None,
    ) -> AsyncIterator[MessageDelta]:
        message = await self.agenerate(messages, stop=stop, tools=tools, response_format=response_format)
        text, size = message.content, self.chunk_size
        for start in range(0, len(text), size):
            yield MessageDelta(content=text[start : start + size])
        yield message_to_delta(
            ChatMessage(role=Role.ASSISTANT, tool_calls=message.tool_calls, usage=message.usage)
        )

    def _as_message(
        self, reply: Reply, messages: Sequence[ChatMessage], stop: Sequence[str] | None
    ) -> ChatMessage:
        if callable(reply) and not isinstance(reply, Exception):
            return self._as_message(reply(messages), messages, stop)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, str):
            reply = ChatMessage(role=Role.ASSISTANT, content=_cut(reply, stop))
        elif not isinstance(reply, ChatMessage):
            reply = ChatMessage(role=Role.ASSISTANT, tool_calls=tuple(reply))
        prompt_chars = sum(len(m.content) for m in messages)
        usage = Usage(input_tokens=prompt_chars // 4 + 1, output_tokens=len(reply.content) // 4 + 1)
        return ChatMessage(
            role=Role.ASSISTANT,
            content=reply.content,
            tool_calls=reply.tool_calls,
            reasoning=reply.reasoning,
            usage=reply.usage or usage,
            finish_reason=reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop"),
        )

    @staticmethod
    def call(name: str, call_id: str | None = None, **arguments: object) -> ToolCall:
        """A tool call for a script: `ScriptedModel.call("add", a=1, b=2)`."""
        return ToolCall(id=call_id or f"call_{next(_CALL_IDS)}", name=name, arguments=dict(arguments))


def _cut(text: str, stop: Sequence[str] | None) -> str:
    cut = min((i for s in stop or () if (i := text.find(s)) != -1), default=len(text))
    return text[:cut]
