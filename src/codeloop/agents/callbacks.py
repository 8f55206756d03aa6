"""Step callbacks, registered per step class as in smolagents.

`step_callbacks=[fn, ...]` registers each function for `ActionStep` only (smolagents' rule);
`step_callbacks={PlanningStep: fn, MemoryStep: [g, h]}` registers per class. A step runs the
callbacks of its class and of every base class, so `MemoryStep` callbacks see every step.
Action, planning and final-answer steps run callbacks when they are complete. A callback gets
the step, and `agent=` when it accepts it; it may be `async`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..memory import ActionStep, MemoryStep

if TYPE_CHECKING:
    from .base import MultiStepAgent

__all__ = ["CallbackRegistry", "StepCallback", "StepCallbacks", "call_flexibly", "maybe_await"]

StepCallback = Callable[..., Any]


class CallbackRegistry:
    """Callbacks by step class. `register(PlanningStep, fn)` adds one after construction."""

    def __init__(self) -> None:
        self._callbacks: dict[type[MemoryStep], list[StepCallback]] = {}

    @classmethod
    def of(cls, step_callbacks: StepCallbacks | None) -> CallbackRegistry:
        """The registry for an agent's `step_callbacks=` argument (see the module docstring)."""
        if isinstance(step_callbacks, CallbackRegistry):
            return step_callbacks
        registry = cls()
        if isinstance(step_callbacks, Mapping):
            for step_cls, callbacks in step_callbacks.items():
                for callback in [callbacks] if callable(callbacks) else callbacks:
                    registry.register(step_cls, callback)
        else:
            for callback in step_callbacks or ():
                registry.register(ActionStep, callback)
        return registry

    def register(self, step_cls: type[MemoryStep], callback: StepCallback) -> None:
        if not (isinstance(step_cls, type) and issubclass(step_cls, MemoryStep)):
            raise ConfigurationError(
                f"step_callbacks keys must be step classes (ActionStep, PlanningStep, "
                f"FinalAnswerStep, MemoryStep...), not {step_cls!r}."
            )
        if not callable(callback):
            raise ConfigurationError(f"A step callback must be callable, not {callback!r}.")
        self._callbacks.setdefault(step_cls, []).append(callback)

    def callbacks_for(self, step: MemoryStep) -> list[StepCallback]:
        """The callbacks a step runs: its own class's first, then its base classes'."""
        return [cb for cls in type(step).__mro__ for cb in self._callbacks.get(cls, [])]

    async def run(self, step: MemoryStep, agent: MultiStepAgent) -> None:
        for callback in self.callbacks_for(step):
            await maybe_await(call_flexibly(callback, step, agent=agent))

    def __len__(self) -> int:
        return sum(len(callbacks) for callbacks in self._callbacks.values())


StepCallbacks = (
    Iterable[StepCallback]
    | Mapping[type[MemoryStep], StepCallback | Iterable[StepCallback]]
    | CallbackRegistry
)
"""What `step_callbacks=` accepts: a list (ActionStep callbacks), a dict by step class, a registry."""


def call_flexibly(func: Callable[..., Any], *args: Any, agent: MultiStepAgent) -> Any:
    """Call a user callback with `agent=` only if it accepts it (smolagents' convention)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return func(*args)
    accepts = any(p.name == "agent" or p.kind is p.VAR_KEYWORD for p in params)
    return func(*args, agent=agent) if accepts else func(*args)


async def maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
