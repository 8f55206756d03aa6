"""Where spans go: the tracer provider, from the caller or built from the standard OTEL_* variables.

Only `tracer_provider()` and `build_tracer_provider()` import OpenTelemetry; the environment
checks are plain string tests, so deciding that tracing is off imports nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import TracerProvider

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "DEFAULT_SERVICE_NAME",
    "build_tracer_provider",
    "capture_content_from_env",
    "sdk_disabled",
    "tracer_provider",
    "tracing_requested",
]

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
DEFAULT_SERVICE_NAME = "codeloop"
_TRUE = frozenset({"true", "1", "yes", "on"})
_CONTENT_ON = _TRUE | {"span_only", "span_and_event"}
"""Values of the capture variable that turn content on (newer GenAI instrumentations also
accept the mode names; codeloop records content on spans only)."""


def _value(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip().lower()


def capture_content_from_env(env: Mapping[str, str]) -> bool:
    """Whether `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` asks for message content."""
    return _value(env, CAPTURE_CONTENT_ENV) in _CONTENT_ON


def sdk_disabled(env: Mapping[str, str]) -> bool:
    """`OTEL_SDK_DISABLED=true`: the standard switch that turns all OpenTelemetry output off."""
    return _value(env, "OTEL_SDK_DISABLED") == "true"


def tracing_requested(env: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces: an OTLP endpoint, or `OTEL_TRACES_EXPORTER`
    naming an exporter; never with `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`, or
    codeloop listed in `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`."""
    if sdk_disabled(env):
        return False
    disabled = {n.strip() for n in _value(env, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS").split(",")}
    if "codeloop" in disabled:
        return False
    exporters = _exporter_names(env)
    if exporters == ["none"]:
        return False
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return bool(endpoint) or bool(_value(env, "OTEL_TRACES_EXPORTER"))


def _exporter_names(env: Mapping[str, str]) -> list[str]:
    names = [n.strip() for n in _value(env, "OTEL_TRACES_EXPORTER").split(",") if n.strip()]
    return names or ["otlp"]


def tracer_provider(env: Mapping[str, str]) -> TracerProvider:
    """The global tracer provider; when none was set (the API's no-op proxy), one built from
    the environment (`build_tracer_provider`) is made the global one first."""
    from opentelemetry import trace

    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(build_tracer_provider(env))
    return trace.get_tracer_provider()


def build_tracer_provider(env: Mapping[str, str]) -> SDKTracerProvider:
    """An SDK tracer provider configured by the standard variables: the resource from
    `OTEL_SERVICE_NAME`/`OTEL_RESOURCE_ATTRIBUTES` (service.name "codeloop" by default), one
    batch span processor per exporter in `OTEL_TRACES_EXPORTER` (default otlp, over
    http/protobuf unless `OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL` says grpc); the exporters and
    processor read their own variables (endpoint, headers, timeouts, batch sizes)."""
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigurationError(
            "Tracing needs the OpenTelemetry SDK and OTLP exporter: pip install 'codeloop[telemetry]'."
        ) from exc
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    for name in _exporter_names(env):
        if name != "none":
            provider.add_span_processor(BatchSpanProcessor(_exporter(name, env)))
    return provider


def _exporter(name: str, env: Mapping[str, str]) -> SpanExporter:
    """The span exporter `OTEL_TRACES_EXPORTER` names (otlp or console)."""
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise ConfigurationError(f"OTEL_TRACES_EXPORTER={name!r}: codeloop can export to otlp or console.")
    protocol = _value(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _value(env, "OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol in ("", "http/protobuf"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "grpc":
        try:  # an optional package: imported by name, so type checks pass without it
            grpc = importlib.import_module("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
        except ImportError as exc:
            raise ConfigurationError(
                "OTLP over gRPC needs pip install opentelemetry-exporter-otlp-proto-grpc."
            ) from exc
        return cast("SpanExporter", grpc.OTLPSpanExporter())
    raise ConfigurationError(f"OTLP protocol {protocol!r}: use http/protobuf or grpc.")
