"""Tracing on OpenTelemetry, following the GenAI semantic conventions.

    import codeloop.telemetry
    codeloop.telemetry.instrument()            # every run from now on is traced
    codeloop.telemetry.instrument(provider, capture_content=True)

or, with no code: set `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
`OTEL_TRACES_EXPORTER`) and codeloop traces itself from its first run (`auto_instrument_from_env`).

Each top-level run becomes an `invoke_agent {agent}` span with `chat {model}`, `execute_code` and
`execute_tool {tool}` spans under it, and a managed sub-agent's run under the tool call that
called it (see `codeloop.telemetry._spans`). Prompts, replies, code, tool arguments and results
are recorded only when asked (`capture_content=True`, or
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`).

Importing this package imports no OpenTelemetry module; `instrument()` does. Not instrumented,
tracing costs nothing: no run observer is registered.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..events import add_run_observer
from ._setup import capture_content_from_env, sdk_disabled, tracing_requested
from ._setup import tracer_provider as _default_provider

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from ._spans import GenAITracer

__all__ = ["GenAITracer", "auto_instrument_from_env", "instrument", "is_instrumented", "uninstrument"]

_lock = threading.Lock()
_remove: Callable[[], None] | None = None
_env_checked = False


def instrument(tracer_provider: TracerProvider | None = None, *, capture_content: bool | None = None) -> None:
    """Trace every top-level run of every agent from now on (replacing an earlier `instrument()`).

    `tracer_provider`: where spans go; by default the global one, and if none was set, an SDK
    provider exporting over OTLP/HTTP as the OTEL_* variables say, made global.
    `capture_content`: also record message content (the task, replies, answers, code, tool
    arguments and results); None reads `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`.
    With `OTEL_SDK_DISABLED=true` and no `tracer_provider`, it does nothing."""
    global _remove
    env = os.environ
    if tracer_provider is None and sdk_disabled(env):
        return
    from .. import __version__
    from ._spans import GenAITracer

    provider = tracer_provider if tracer_provider is not None else _default_provider(env)
    content = capture_content_from_env(env) if capture_content is None else capture_content
    observer = GenAITracer(provider.get_tracer("codeloop", __version__), capture_content=content)
    with _lock:
        if _remove is not None:
            _remove()
        _remove = add_run_observer(observer)


def uninstrument() -> None:
    """Stop tracing new runs (the tracer provider is left as it is: flush or shut it down
    yourself if you want its spans sent now)."""
    global _remove
    with _lock:
        if _remove is not None:
            _remove()
            _remove = None


def is_instrumented() -> bool:
    """Whether runs are being traced (`instrument()` or the environment turned it on)."""
    return _remove is not None


def auto_instrument_from_env() -> None:
    """Instrument once per process if the OTEL_* variables ask for traces (see
    `tracing_requested`) and nothing instrumented yet. Called as each top-level run starts;
    after the first call it is one flag test. A configuration that cannot work is a warning,
    never a failed run."""
    global _env_checked
    if _env_checked:
        return
    _env_checked = True
    if is_instrumented() or not tracing_requested(os.environ):
        return
    try:
        instrument()
    except Exception as exc:  # tracing must not stop the agent
        warnings.warn(f"codeloop tracing from OTEL_* variables is off: {exc}", RuntimeWarning, stacklevel=2)


def __getattr__(name: str) -> Any:
    if name == "GenAITracer":  # imported on demand: it imports OpenTelemetry
        from ._spans import GenAITracer

        return GenAITracer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
