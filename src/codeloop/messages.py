"""Typed chat messages exchanged with models: the one vocabulary every model adapter speaks."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = [
    "ChatMessage",
    "ImageContent",
    "MessageDelta",
    "Role",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
]


class Role(str, Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


@dataclass(frozen=True)
class ImageContent:
    """An image attached to a message: raw bytes plus their MIME type, or a URL.

    `codeloop.as_image` makes one from a PIL image, bytes, a file or a URL."""

    data: bytes = b""
    mime_type: str = "image/png"
    url: str | None = None

    def as_data_url(self) -> str:
        if self.url:
            return self.url
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode()}"

    def __repr__(self) -> str:  # never the bytes: an image in a log or error stays one line
        where = f"url={self.url[:60]!r}" if self.url else f"{len(self.data)} bytes"
        return f"ImageContent({self.mime_type!r}, {where})"


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for. `arguments` is already parsed (a dict, or a raw string
    when the model sent JSON that does not parse: validation reports that back to the model)."""

    id: str
    name: str
    arguments: dict[str, Any] | str


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class ChatMessage:
    """A message in the conversation. Assistant messages may carry tool calls, reasoning
    (kept apart from `content`, never executed) and usage; tool messages carry `tool_call_id`."""

    role: Role
    content: str = ""
    images: tuple[ImageContent, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    reasoning: str | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ToolCallDelta:
    """A fragment of a streamed tool call; fragments with the same `index` concatenate."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class MessageDelta:
    """One streamed fragment of an assistant message.

    `restart=True` (a delta with nothing else in it) says the stream failed part-way and is
    being tried again: discard everything received before it. `assemble_message` does."""

    content: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    usage: Usage | None = None
    finish_reason: str | None = None
    restart: bool = False
