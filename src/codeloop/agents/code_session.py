"""A CodeAgent's executor session and what it knows of the code run in it.

A `CodeSession` is used by one run at a time (`session.run`): a run gets a fresh one, or with
`reset=False` the one its agent retained from the previous run, so its variables carry over.
The host functions the executor calls (the tools) are built for the session, and update its state
and its run's: the tool calls counted, the last calls shown when an action fails, the images held
out of the sandbox, and a tool guard's stop (`Run.tripped`). Two runs of one agent at once have
two sessions and share none of this.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..executors.base import Executor, HostFunction
from ..images import as_image, is_image
from ..messages import ImageContent
from ..tools import Tool
from ..tools.context import ToolCallContext
from .durable import journaled
from .guardrails import GuardrailTripped
from .guards import RESULTS_SHOWN, Definition

if TYPE_CHECKING:
    from .base import MultiStepAgent
    from .run import Run

__all__ = ["Call", "CodeSession"]

Call = tuple[str, tuple[Any, ...], dict[str, Any], Any]
"""A tool call made by the code: name, positional and keyword arguments, result."""


@dataclass(eq=False)
class CodeSession:
    """One executor session, its code's state, and the run using it now."""

    executor: Executor
    definitions: dict[str, Definition] = field(default_factory=dict)
    """The functions and classes defined in the session, by name."""
    imports: dict[str, str] = field(default_factory=dict)
    """The session's import statements, by bound name."""
    held_images: dict[str, Any] = field(default_factory=dict)
    """Placeholder -> the tool's own image object, for the session's lifetime."""
    tool_calls: int = 0
    """Calls of tools (managed agents included) by the session's code, ever."""
    step_calls: deque[Call] = field(default_factory=lambda: deque(maxlen=RESULTS_SHOWN + 1))
    """The current code action's last tool calls, shown if it fails."""
    step_images: list[tuple[str, ImageContent]] = field(default_factory=list)
    """(placeholder, image) of the current code action."""
    run: Run | None = None
    """The run whose code runs in the session now (None between runs)."""
    action_step: int = 0
    """The action step whose code runs now; its tool calls are counted from 0 in `call_index`."""
    call_index: int = 0

    @classmethod
    async def start(cls, executor: Executor, agent: MultiStepAgent) -> CodeSession:
        """Start `executor` with host functions for `agent`'s tools, bound to the new session."""
        session = cls(executor)
        functions = {n: session._host_function(t, agent) for n, t in agent.tools.items()}
        await executor.start(functions)
        return session

    def begin_action(self, step_number: int = 0) -> None:
        """A code action of step `step_number` starts: forget the previous one's calls and
        images, and count this one's tool calls from 0."""
        self.step_calls.clear()
        self.step_images = []
        self.action_step, self.call_index = step_number, 0

    def _next_call(self) -> ToolCallContext:
        """The next tool call's place: run, step, index (its idempotency key)."""
        run_id = "" if self.run is None else self.run.run_id
        context = ToolCallContext(run_id, self.action_step, self.call_index)
        self.call_index += 1
        return context

    async def close(self) -> None:
        self.run = None
        await self.executor.close()

    def _host_function(self, tool: Tool, agent: MultiStepAgent) -> HostFunction:
        """The host function the code calls: tool guards first (a rejection raises
        `GuardRejected` in the snippet; a stop is recorded on the run), then the tool, counted,
        journaled in a durable run (or answered from the journal when it replays) and remembered."""
        function = _off_the_loop(tool.as_host_function())
        name = getattr(function, "__name__", "tool")

        async def call(*args: Any, **kwargs: Any) -> Any:
            args, kwargs = self._images_back(tool, args, kwargs)
            named = _named(tool, args, kwargs)
            try:
                await agent.guardrails.check_tool(name, named, agent)
            except GuardrailTripped as tripped:
                if self.run is not None:
                    self.run.tripped = self.run.tripped or tripped
                raise
            self.tool_calls += 1

            async def invoke() -> Any:
                value = function(*args, **kwargs)
                return await value if inspect.isawaitable(value) else value

            value = await journaled(self.run, self._next_call(), name, named, invoke, tool)
            self.step_calls.append((name, args, kwargs, value))  # formatted only on an error
            return self._images_out(name, tool, value)

        call.__name__ = name
        return call

    def _images_out(self, name: str, tool: Tool, value: Any) -> Any:
        """An image result stays out of the sandbox: it is shown to the model after the step,
        and the code gets a placeholder string instead (in a list, each image is replaced)."""
        items = value if isinstance(value, (list, tuple)) else [value]
        if not any(is_image(item, tool.output_type) for item in items):
            return value
        shown = [self._hold(name, item) if is_image(item, tool.output_type) else item for item in items]
        return shown if isinstance(value, (list, tuple)) else shown[0]

    def _hold(self, name: str, original: Any) -> str:
        image = as_image(original)
        placeholder = f"<image {len(self.held_images) + 1} from {name}: shown to you after this step>"
        self.held_images[placeholder] = original
        self.step_images.append((placeholder, image))
        return placeholder

    def _images_back(
        self, tool: Tool, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """A placeholder passed to a tool's "image" input becomes the image it stands for."""
        held = self.held_images
        if not held or not any(spec.get("type") == "image" for spec in tool.inputs.values()):
            return args, kwargs
        back = [held.get(a, a) if isinstance(a, str) else a for a in args]
        return tuple(back), {k: held.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}


def _off_the_loop(function: Callable[..., Any]) -> HostFunction:
    """Sync tools called from code run in a worker thread, so they never block other runs."""
    if inspect.iscoroutinefunction(function):
        return function

    async def call(*args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(function, *args, **kwargs)

    call.__name__ = function.__name__
    return call


def _named(tool: Tool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments by parameter name, as a tool guard sees them."""
    names = list(tool.inputs)
    named = {names[i] if i < len(names) else f"arg{i}": value for i, value in enumerate(args)}
    return {**named, **kwargs}
