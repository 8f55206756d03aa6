"""A model as data, for saving an agent: `{"class": ..., "data": {...}}` (smolagents' shape).

`data` is the model's constructor settings (`Model.constructor_arguments()`, by parameter
name) that are plain JSON and not secret: API keys, tokens, passwords, credentials, auth
headers, client objects and client options are never written; neither is a setting that is not
JSON (a `ModelCapabilities`, a torch dtype object). The retry layer agents wrap their model in
is unwrapped first.

Loading rebuilds the adapters of `codeloop.models` by class name (`KNOWN_MODELS`), each reading
its API key from the environment as it does by default. Any other model (a `ScriptedModel`, a
`FallbackModel`, your own class) cannot be rebuilt from data: pass `model=` when loading.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from ..models.base import Model
from ..models.retry import RetryingModel

__all__ = ["KNOWN_MODELS", "is_json", "model_from_dict", "model_to_dict", "unwrapped"]

KNOWN_MODELS: dict[str, str] = {
    "OpenAIModel": "codeloop.models.openai",
    "OpenAIServerModel": "codeloop.models.openai",
    "OpenAIResponsesModel": "codeloop.models.openai_responses",
    "AnthropicModel": "codeloop.models.anthropic",
    "LiteLLMModel": "codeloop.models.litellm",
    "LiteLLMRouterModel": "codeloop.models.litellm",
    "InferenceClientModel": "codeloop.models.huggingface",
    "AmazonBedrockModel": "codeloop.models.bedrock",
    "TransformersModel": "codeloop.models.transformers",
    "LlamaCppModel": "codeloop.models.llamacpp",
}
"""The adapters `model_from_dict` rebuilds: class name -> module."""

_SECRET_WORDS = frozenset(
    {"key", "apikey", "token", "secret", "password", "passwd", "credential", "credentials",
     "authorization", "auth", "cookie", "cookies", "headers", "client", "session"}
)  # fmt: skip


def unwrapped(model: Model) -> Model:
    """The model inside the agent's retry layer."""
    while isinstance(model, RetryingModel):
        model = model.model
    return model


def model_to_dict(model: Model) -> dict[str, Any]:
    """`{"class": <class name>, "data": <non-secret JSON settings>}`."""
    model = unwrapped(model)
    return {"class": type(model).__name__, "data": _settings(model)}


def model_from_dict(data: Mapping[str, Any], agent: str) -> Model:
    """The model `data` describes, for the agent named `agent` (named in errors)."""
    name = data.get("class")
    data_settings = data.get("data") or {}
    if not isinstance(name, str) or not isinstance(data_settings, dict):
        raise ConfigurationError(f"Agent {agent!r}: its model entry is not {{'class': str, 'data': dict}}.")
    if name not in KNOWN_MODELS:
        raise ConfigurationError(
            f"Agent {agent!r} was saved with a {name}, which cannot be rebuilt from its settings "
            f"(codeloop rebuilds {', '.join(sorted(KNOWN_MODELS))}). Pass the model to use: "
            "from_folder(..., model=your_model) or from_dict(..., model=your_model); for several "
            "agents, model={'agent_name': model, ...}."
        )
    cls = getattr(importlib.import_module(KNOWN_MODELS[name]), name)
    try:
        built: Model = cls(**data_settings)
    except ConfigurationError as exc:
        raise ConfigurationError(f"Agent {agent!r}: rebuilding its {name} failed: {exc}") from exc
    return built


def _settings(model: Model) -> dict[str, Any]:
    """The constructor arguments by parameter name (`**kwargs` spread out), minus secrets and
    what is not JSON."""
    args, kwargs = model.constructor_arguments()
    try:
        bound = inspect.signature(type(model).__init__).bind(None, *args, **kwargs).arguments
    except TypeError:
        return {}
    named: dict[str, Any] = {}
    for parameter, value in list(bound.items())[1:]:  # [0] is self
        kind = inspect.signature(type(model).__init__).parameters[parameter].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            named.update(value)
        elif kind is not inspect.Parameter.VAR_POSITIONAL:
            named[parameter] = value
    return {k: _public(v) for k, v in named.items() if not is_secret(k) and is_json(v)}


def is_secret(name: str) -> bool:
    """Whether a setting's name says it holds a secret (`api_key`, `token`, `aws_secret_...`)."""
    words = re.split(r"[_\-\s.]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower())
    return any(word in _SECRET_WORDS for word in words)


def _public(value: Any) -> Any:
    """`value` with every dict entry whose name says it is a secret left out, at any depth."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not is_secret(k)}
    if isinstance(value, list | tuple):
        return [_public(v) for v in value]
    return value


def is_json(value: Any) -> bool:
    """Whether `value` is plain JSON data (dicts with string keys, lists, str, numbers, bool, None)."""
    if value is None or isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, list | tuple):
        return all(is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_json(v) for k, v in value.items())
    return False
