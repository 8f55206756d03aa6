"""Client-side text handling shared by model adapters: a leading `<think>...</think>` block moved
to reasoning, and stop sequences enforced on whole messages and on streams."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import replace

from ..messages import MessageDelta

__all__ = ["StopScanner", "TextFilter", "ThinkSplitter", "filter_deltas", "partial_suffix"]

_OPEN, _CLOSE = "<think>", "</think>"


def partial_suffix(text: str, tokens: Sequence[str]) -> int:
    """Length of the longest end of `text` that could be the start of one of `tokens`."""
    longest = max((len(t) for t in tokens), default=0)
    for size in range(min(len(text), longest - 1), 0, -1):
        if any(t.startswith(text[-size:]) for t in tokens):
            return size
    return 0


class ThinkSplitter:
    """Moves a leading `<think>...</think>` block of (streamed) content to reasoning.

    States: "start" (undecided), "open" and "close" (skipping whitespace after a tag), "think",
    "content" (pass-through). Text that might still be a partial tag is held back."""

    def __init__(self) -> None:
        self.state = "start"
        self.buffer = ""

    def feed(self, text: str) -> tuple[str, str]:
        """Returns (content, reasoning) that can be released now."""
        if self.state == "content":
            return text, ""
        self.buffer += text
        content, reasoning = "", ""
        while True:
            state = self.state
            c, r = self._step()
            content, reasoning = content + c, reasoning + r
            if self.state == state:
                return content, reasoning

    def flush(self) -> tuple[str, str]:
        held, self.buffer = self.buffer, ""
        if self.state in ("open", "think"):  # unterminated thinking
            return "", held.rstrip()
        return ("", "") if self.state == "close" else (held, "")

    def _step(self) -> tuple[str, str]:
        if self.state == "start":
            stripped = self.buffer.lstrip()
            if stripped.startswith(_OPEN):
                self.state, self.buffer = "open", stripped[len(_OPEN) :]
            elif not _OPEN.startswith(stripped):
                self.state = "content"
        elif self.state in ("open", "close"):
            self.buffer = self.buffer.lstrip()
            if self.buffer:
                self.state = "think" if self.state == "open" else "content"
        elif self.state == "think":
            return "", self._think()
        if self.state == "content":
            released, self.buffer = self.buffer, ""
            return released, ""
        return "", ""

    def _think(self) -> str:
        end = self.buffer.find(_CLOSE)
        if end >= 0:
            reasoning, self.buffer = self.buffer[:end].rstrip(), self.buffer[end + len(_CLOSE) :]
            self.state = "close"
            return reasoning
        safe = self.buffer[: len(self.buffer) - partial_suffix(self.buffer, [_CLOSE])].rstrip()
        self.buffer = self.buffer[len(safe) :]  # hold a partial tag and trailing whitespace
        return safe


class StopScanner:
    """Cuts (streamed) text at the first stop sequence, holding back possible partial matches."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = list(stops)
        self.buffer = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped or not self.stops:
            return "" if self.stopped else text
        self.buffer += text
        hits = [i for i in (self.buffer.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            released, self.buffer = self.buffer[: min(hits)], ""
            return released
        keep = partial_suffix(self.buffer, self.stops)
        released, self.buffer = self.buffer[: len(self.buffer) - keep], self.buffer[len(self.buffer) - keep :]
        return released

    def flush(self) -> str:
        held, self.buffer = self.buffer, ""
        return "" if self.stopped else held


class TextFilter:
    """Content → (`<think>` split) → (stop truncation), for whole messages and for streams."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._think = ThinkSplitter()
        self._stop = StopScanner(stops)

    @property
    def stopped(self) -> bool:
        return self._stop.stopped

    def feed(self, text: str) -> tuple[str, str]:
        if self.stopped:
            return "", ""
        content, reasoning = self._think.feed(text)
        return self._stop.feed(content), reasoning

    def flush(self) -> tuple[str, str]:
        if self.stopped:
            return "", ""
        content, reasoning = self._think.flush()
        return self._stop.feed(content) + self._stop.flush(), reasoning

    def apply(self, delta: MessageDelta) -> MessageDelta | None:
        """Filter one streamed delta; None when nothing is left to report."""
        content, reasoning = self.feed(delta.content) if delta.content else ("", "")
        finish = "stop" if self.stopped else delta.finish_reason
        filtered = replace(
            delta, content=content, reasoning=delta.reasoning + reasoning, finish_reason=finish
        )
        return filtered if filtered != MessageDelta() else None

    def finish(self) -> MessageDelta | None:
        """Whatever was held back, once the stream has ended."""
        content, reasoning = self.flush()
        return MessageDelta(content=content, reasoning=reasoning) if content or reasoning else None


async def filter_deltas(
    deltas: AsyncIterator[MessageDelta], stops: Sequence[str]
) -> AsyncGenerator[MessageDelta, None]:
    """Apply `<think>` splitting and client-side stop truncation to a stream of deltas; the stream
    ends at the first stop match (the caller closes the source)."""
    text = TextFilter(stops)
    async for delta in deltas:
        kept = text.apply(delta)
        if kept is not None:
            yield kept
        if text.stopped:
            return
    tail = text.finish()
    if tail is not None:
        yield tail
