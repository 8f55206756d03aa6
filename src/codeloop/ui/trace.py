"""The waterfall of a run: one span per step, and under it spans for its model call, its code
action and its tool calls (a sub-agent's steps under the call that ran it), each placed by the
times its events carry.

`spans(events)` reads wire events (live ones, or a stored run's as `codeloop.ui.stored` tells
them) and returns the spans in the order the waterfall draws them: each step, then what
happened inside it, by start time. A span whose start or end is unknown has None there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Span", "spans", "waterfall"]


@dataclass
class Span:
    """One bar: `kind` is "step", "plan", "model", "code" or "tool"."""

    id: int
    kind: str
    label: str
    agent: str
    depth: int
    step: int
    start: float | None = None
    end: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None
    parent: int | None = None
    children: list[Span] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The span as JSON data, with its `duration` (None when a time is unknown)."""
        data = asdict(self)
        del data["children"]
        data["duration"] = None if self.start is None or self.end is None else self.end - self.start
        return data


class _Builder:
    """Follows the events, keeping the open spans of each depth."""

    def __init__(self) -> None:
        self.roots: list[Span] = []
        self.steps: dict[int, Span] = {}  # the current step of each depth
        self.open: dict[tuple[int, str, int], Span] = {}  # (depth, kind, index) -> span
        self.subrun_parent: dict[int, Span | None] = {}  # depth -> the span a sub-agent's run sits under
        self.count = 0

    def new(self, kind: str, label: str, data: dict[str, Any], parent: Span | None) -> Span:
        """A new span for the event `data`, under `parent` (None: at the top)."""
        depth, step = int(data.get("depth", 0)), int(data.get("step", 0))
        span = Span(self.count, kind, label, str(data.get("agent", "")), depth, step)
        self.count += 1
        span.parent = None if parent is None else parent.id
        (self.roots if parent is None else parent.children).append(span)
        return span

    def step_span(self, data: dict[str, Any], kind: str | None = None) -> Span:
        """The span of the step (`kind`: "step" or "plan"; None: either) `data` belongs to;
        made at the step's first event."""
        depth, step = int(data.get("depth", 0)), int(data.get("step", 0))
        current = self.steps.get(depth)
        if current is not None and current.step == step and current.agent == data.get("agent"):
            if kind is None or current.kind == kind:
                return current
        return self.open_step(data, kind or "step")

    def open_step(self, data: dict[str, Any], kind: str) -> Span:
        """A new step (or plan) span: the current one of its depth from now on."""
        depth, step = int(data.get("depth", 0)), int(data.get("step", 0))
        label = f"{data.get('agent', '')} · {'plan' if kind == 'plan' else f'step {step}'}"
        span = self.new(kind, label, data, self.subrun_parent.get(depth))
        span.start = data.get("timestamp")
        self.steps[depth] = span
        return span

    def feed(self, data: dict[str, Any]) -> None:
        """Take the next event (its `on_<type>` method; other types change nothing)."""
        handler = getattr(self, f"on_{data.get('type')}", None)
        if handler is not None:
            handler(data)

    def on_RunStarted(self, data: dict[str, Any]) -> None:
        """A sub-agent's run sits under the tool call that runs it (or its manager's step)."""
        depth = int(data.get("depth", 0))
        if depth == 0:
            self.subrun_parent.pop(0, None)
            return
        outer = self.steps.get(depth - 1)
        tool = self.open.get((depth - 1, "tool", -1))
        self.subrun_parent[depth] = tool if tool is not None and tool.end is None else outer
        self.steps.pop(depth, None)

    def on_ModelCallStarted(self, data: dict[str, Any]) -> None:
        """A step (or plan) begins with its model call."""
        step = self.open_step(data, "plan" if data.get("purpose") == "plan" else "step")
        span = self.new("model", "model", data, step)
        span.start = data.get("timestamp")
        self.open[(span.depth, "model", 0)] = span

    def on_ModelCallFinished(self, data: dict[str, Any]) -> None:
        """The model call's end, and its tokens."""
        span = self.open.pop((int(data.get("depth", 0)), "model", 0), None)
        if span is None:
            return
        span.end = data.get("timestamp")
        usage = (data.get("message") or {}).get("usage") or {}
        span.input_tokens, span.output_tokens = usage.get("input_tokens"), usage.get("output_tokens")

    def on_CodeAction(self, data: dict[str, Any]) -> None:
        """The step's code starts running."""
        span = self.new("code", "code", data, self.step_span(data))
        span.start = data.get("timestamp")
        self.open[(span.depth, "code", 0)] = span

    def on_CodeActionFinished(self, data: dict[str, Any]) -> None:
        """The code's end (and its error)."""
        span = self.open.pop((int(data.get("depth", 0)), "code", 0), None)
        if span is None:
            return
        span.end, span.error = data.get("timestamp"), data.get("error")
        if span.error is not None and span.error.startswith("ApprovalRequired"):
            span.label, span.error = "code (paused: waits for approval)", None  # not a failure

    def on_ToolCallStarted(self, data: dict[str, Any]) -> None:
        """A tool call, under the code that makes it (or its step)."""
        depth = int(data.get("depth", 0))
        parent = self.open.get((depth, "code", 0)) or self.step_span(data)
        span = self.new("tool", f"tool {data.get('name', '')}", data, parent)
        span.start = data.get("timestamp")
        self.open[(depth, "tool", int(data.get("call_index", 0)))] = span
        self.open[(depth, "tool", -1)] = span  # the latest call: a sub-agent's run goes under it

    def on_ToolCallFinished(self, data: dict[str, Any]) -> None:
        """The tool call's end (and its error)."""
        key = (int(data.get("depth", 0)), "tool", int(data.get("call_index", 0)))
        span = self.open.pop(key, None)
        if span is not None:
            span.end, span.error = data.get("timestamp"), data.get("error")

    def on_StepFinished(self, data: dict[str, Any]) -> None:
        """The step's own timing and tokens, as its memory step records them."""
        memory_step = data.get("memory_step") or {}
        kind = "plan" if memory_step.get("kind") == "planning" else "step"
        span = self.step_span(data, kind)
        timing = memory_step.get("timing") or {}
        span.start = timing.get("start_time", span.start)
        span.end = timing.get("end_time") or data.get("timestamp")
        usage = memory_step.get("usage") or {}
        span.input_tokens, span.output_tokens = usage.get("input_tokens"), usage.get("output_tokens")
        error = memory_step.get("error")
        span.error = error.get("message") if isinstance(error, dict) else None


def spans(events: Iterable[dict[str, Any]]) -> list[Span]:
    """The run's spans, depth first: each step, then its children by start time."""
    builder = _Builder()
    for data in events:
        builder.feed(data)
    ordered: list[Span] = []

    def walk(level: list[Span]) -> None:
        for span in sorted(level, key=_start_key):
            ordered.append(span)
            walk(span.children)

    walk(builder.roots)
    return ordered


def waterfall(events: list[dict[str, Any]], now: float | None = None) -> dict[str, Any]:
    """The waterfall as the page draws it: the spans, and the time range they are drawn in
    (from the run's start to its end, or to `now` while it runs)."""
    found = spans(events)
    times = [t for s in found for t in (s.start, s.end) if t is not None]
    times += [
        e["timestamp"]
        for e in events
        if e.get("type") in ("RunStarted", "RunFinished") and e.get("timestamp")
    ]
    if now is not None:
        times.append(now)
    start, end = (min(times), max(times)) if times else (None, None)
    return {"start": start, "end": end, "spans": [s.as_dict() for s in found]}


def _start_key(span: Span) -> tuple[float, int]:
    return (span.start if span.start is not None else span.end or 0.0, span.id)
