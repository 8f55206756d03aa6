"""What an MCP tool call returns, as the value the agent's tool gives back.

- `isError=True`: `MCPToolError` with the result's text (the agent shows it as an error).
- `structuredContent` (when the client keeps structured output): that dict.
- Otherwise the content items: text -> `str`; image -> `codeloop.messages.ImageContent` with the
  decoded bytes and MIME type; an embedded text resource -> its text; anything else (audio,
  binary resources, resource links) -> the item as a JSON-like dict.
  Only text items: one `str` (joined with newlines). A single item: that item (an image alone is
  one `ImageContent`). Several items with an image or dict among them: a list, in order.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ..errors import AgentToolExecutionError
from ..messages import ImageContent

__all__ = ["MCPServerError", "MCPToolError", "field", "result_value"]


class MCPServerError(AgentToolExecutionError):
    """The MCP server could not be reached, crashed, or did not answer in time."""

    def __init__(self, server: str, message: str) -> None:
        super().__init__(f"MCP server {server!r}: {message}")
        self.server = server


class MCPToolError(AgentToolExecutionError):
    """The MCP server ran the tool and reported an error (`isError=True`)."""

    def __init__(self, server: str, tool: str, message: str) -> None:
        super().__init__(f"MCP tool {tool!r} on server {server!r} failed: {message}")
        self.server, self.tool = server, tool


def field(obj: Any, snake: str, camel: str) -> Any:
    """An attribute under its mcp 2.x (snake_case) or 1.x (camelCase) name."""
    return getattr(obj, snake, getattr(obj, camel, None))


def _image(item: Any, server: str, tool: str) -> ImageContent:
    mime = field(item, "mime_type", "mimeType") or "application/octet-stream"
    try:
        data = base64.b64decode(item.data, validate=True)
    except (binascii.Error, ValueError, TypeError) as error:
        message = f"tool {tool!r} returned an image that is not valid base64: {error}"
        raise MCPServerError(server, message) from error
    return ImageContent(data=data, mime_type=str(mime))


def _content_item(item: Any, server: str, tool: str) -> Any:
    kind = getattr(item, "type", None)
    if kind == "text":
        return item.text
    if kind == "image":
        return _image(item, server, tool)
    resource = getattr(item, "resource", None) if kind == "resource" else None
    if resource is not None and isinstance(getattr(resource, "text", None), str):
        return resource.text
    if hasattr(item, "model_dump"):
        return item.model_dump(mode="json", by_alias=True, exclude_none=True)
    return item


def result_value(result: Any, server: str, tool: str, structured: bool) -> Any:
    """The value of a `CallToolResult` (see the module doc), or `MCPToolError`."""
    content = list(getattr(result, "content", None) or [])
    if field(result, "is_error", "isError"):
        text = "\n".join(c.text for c in content if getattr(c, "type", None) == "text")
        raise MCPToolError(server, tool, text or "the server reported an error without a message")
    structured_content = field(result, "structured_content", "structuredContent")
    if structured and structured_content is not None:
        return structured_content
    items = [_content_item(c, server, tool) for c in content]
    if all(isinstance(i, str) for i in items):
        return "\n".join(items)
    return items[0] if len(items) == 1 else items
