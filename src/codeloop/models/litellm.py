"""LiteLLM: any provider LiteLLM knows (`"anthropic/claude-sonnet-4-5"`, `"openai/gpt-4o"`,
`"bedrock/..."`, `"ollama_chat/qwen2.5"`...) through `litellm.acompletion`, and a
`litellm.Router` over several deployments with fallbacks.

    model = LiteLLMModel("anthropic/claude-sonnet-4-5", temperature=0)
    local = LiteLLMModel("openai/qwen2.5-coder", api_base="http://127.0.0.1:8080/v1", api_key="none")

LiteLLM's own retries are off (`num_retries=0`, and the OpenAI client's `max_retries=0`):
codeloop's retry policy retries `ModelHTTPError`s that are `retryable`. A router's fallbacks are
kept: they are a choice of deployment, not a retry of the same one.

LiteLLM fetches its model cost map from the internet when imported unless
`LITELLM_LOCAL_MODEL_COST_MAP=True` (or `LITELLM_OFFLINE_MODE=true`) is set; set it in offline
environments. Importing litellm takes a few seconds; it happens when a model is first built.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from types import ModuleType
from typing import Any

from ..errors import ConfigurationError, ModelHTTPError
from ._clients import import_sdk
from ._common import http_status_error, stream_error
from ._openai_format import ChatCompletionsModel
from .capabilities import ModelCapabilities, capabilities_for
from .retry import parse_retry_after

__all__ = ["LiteLLMModel", "LiteLLMRouterModel"]

_NO_RETRIES = {"num_retries": 0, "max_retries": 0}


class LiteLLMModel(ChatCompletionsModel):
    """A model called through `litellm.acompletion`.

    `completion_kwargs` (temperature, max_tokens, reasoning_effort, thinking, tool_choice,
    extra_headers...) go into every request. What the model accepts comes from
    `codeloop.models.capabilities` (by LiteLLM's provider name and the bare model id) unless
    `capabilities` is given; `stop` is also dropped when LiteLLM's own parameter table says the
    provider refuses it, and `supports_stop` overrides both. A provider that still answers 400 to
    `stop` is remembered; stop sequences are always enforced client-side as well.
    `custom_role_conversions` renames roles, e.g. `{"system": "user"}`.
    """

    def __init__(
        self,
        model_id: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        capabilities: ModelCapabilities | None = None,
        supports_stop: bool | None = None,
        **completion_kwargs: Any,
    ) -> None:
        self._litellm, self._openai = import_sdk("LiteLLMModel", "litellm", "litellm", "openai")
        self.model_id = model_id
        self.api_base = api_base
        self.custom_role_conversions = dict(custom_role_conversions or {})
        connection = {"api_base": api_base, "api_key": api_key}
        self.completion_kwargs = {
            **_NO_RETRIES,
            **{k: v for k, v in connection.items() if v},
            **completion_kwargs,
        }
        self._set_capabilities(capabilities or self._capabilities(), supports_stop)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, api_base={self.api_base!r})"

    async def _complete(self, request: dict[str, Any]) -> Any:
        return await self._litellm.acompletion(**request)

    async def _open_stream(self, request: dict[str, Any]) -> AsyncIterator[Any]:
        stream: AsyncIterator[Any] = await self._litellm.acompletion(**request)
        return stream

    def _capabilities(self) -> ModelCapabilities:
        """codeloop's table, by LiteLLM's provider and bare model id; `stop` off as well when
        LiteLLM's parameter table says so. Models LiteLLM does not know get the defaults."""
        try:
            bare, provider, _, _ = self._litellm.get_llm_provider(self.model_id, api_base=self.api_base)
            params = self._litellm.get_supported_openai_params(model=bare, custom_llm_provider=provider)
        except Exception:  # an unmapped model or provider: let the server decide
            return ModelCapabilities()
        caps = capabilities_for(bare, provider)
        return caps if params is None or "stop" in params else replace(caps, stop=False)

    def _translate_error(self, err: Exception) -> ModelHTTPError | None:
        if not isinstance(err, self._openai.OpenAIError):  # litellm's exceptions subclass openai's
            return None
        return translate_litellm_error(err, self._litellm, self._openai, self.model_id)


class LiteLLMRouterModel(LiteLLMModel):
    """A `litellm.Router` over `model_list`; `model_id` names a model group of the list.

        model = LiteLLMRouterModel(
            "main",
            [
                {"model_name": "main", "litellm_params": {"model": "openai/gpt-4o-mini"}},
                {"model_name": "backup", "litellm_params": {"model": "anthropic/claude-haiku-4-5"}},
            ],
            client_kwargs={"fallbacks": [{"main": ["backup"]}]},
        )

    `client_kwargs` go to `litellm.Router` (routing_strategy, fallbacks, timeout...);
    `num_retries` defaults to 0 there (pass it to let the router retry, on top of codeloop).
    """

    def __init__(
        self,
        model_id: str,
        model_list: list[dict[str, Any]],
        client_kwargs: dict[str, Any] | None = None,
        *,
        custom_role_conversions: dict[str, str] | None = None,
        capabilities: ModelCapabilities | None = None,
        **completion_kwargs: Any,
    ) -> None:
        super().__init__(
            model_id,
            custom_role_conversions=custom_role_conversions,
            capabilities=capabilities or ModelCapabilities(),  # a group alias names no model
            **completion_kwargs,
        )
        self.completion_kwargs.pop("num_retries", None)  # the router's setting applies
        self.model_list = model_list
        self.client_kwargs = {"num_retries": 0, **(client_kwargs or {})}
        try:
            self.router = self._litellm.Router(model_list=model_list, **self.client_kwargs)
        except (TypeError, ValueError) as err:
            raise ConfigurationError(f"{self!r}: invalid router configuration: {err}") from err

    async def _complete(self, request: dict[str, Any]) -> Any:
        return await self.router.acompletion(**request)

    async def _open_stream(self, request: dict[str, Any]) -> AsyncIterator[Any]:
        stream: AsyncIterator[Any] = await self.router.acompletion(**request)
        return stream


def translate_litellm_error(
    err: Exception, litellm: ModuleType, openai: ModuleType, model_id: str
) -> ModelHTTPError:
    """A LiteLLM exception as a `ModelHTTPError`. LiteLLM reports a refused connection as a 500
    and an error object inside a 200 stream as a connection error (or a mid-stream 500); the
    OpenAI SDK's exception underneath, when there is one, says what happened."""
    cause = _sdk_cause(err, tuple(getattr(litellm.exceptions, "LITELLM_EXCEPTION_TYPES", ())), openai)
    if isinstance(cause, openai.APIError) and not isinstance(
        cause, (openai.APIStatusError, openai.APIConnectionError)
    ):
        return _stream_error(cause, model_id)
    if isinstance(err, getattr(litellm.exceptions, "MidStreamFallbackError", ())) and cause is None:
        return ModelHTTPError(  # litellm's 500 for a stream that broke off, e.g. without a finish_reason
            f"Model {model_id!r}: the stream broke off: {_detail(err)}",
            code="stream_interrupted",
            retryable=True,
        )
    failure = cause if isinstance(cause, openai.APIConnectionError) else err
    if isinstance(failure, openai.APIConnectionError):  # includes timeouts
        timed_out = isinstance(failure, openai.APITimeoutError)
        what = "timed out" if timed_out else "could not reach the server"
        return ModelHTTPError(
            f"Model {model_id!r}: {what}: {_detail(err)}",
            code="timeout" if timed_out else None,
            retryable=True,
        )
    return _status_error(err, model_id)


def _sdk_cause(err: BaseException, litellm_types: tuple[type[Exception], ...], openai: ModuleType) -> Any:
    """The first exception of the OpenAI SDK itself in `err`'s chain, if any (litellm raises its
    own exceptions while handling the SDK's, so the link is `__context__` as often as `__cause__`)."""
    current = err.__cause__ or err.__context__
    for _ in range(12):
        if current is None or (
            isinstance(current, openai.OpenAIError) and not isinstance(current, litellm_types)
        ):
            return current
        current = current.__cause__ or current.__context__
    return None


def _status_error(err: Exception, model_id: str) -> ModelHTTPError:
    status = getattr(err, "status_code", None)
    status = status if isinstance(status, int) else None
    code = getattr(err, "code", None)
    code = None if code is None else str(code)
    body = getattr(err, "body", None)
    headers = getattr(err, "litellm_response_headers", None) or getattr(
        getattr(err, "response", None), "headers", None
    )
    if status:
        return http_status_error(model_id, status, _detail(err), code=code, body=body, headers=headers)
    return ModelHTTPError(
        f"Model {model_id!r}: {_detail(err)}",
        status_code=status,
        code=code,
        retryable=False,  # no HTTP status: litellm failed before or without a response
        body=body,
        retry_after=parse_retry_after(headers),
    )


def _stream_error(err: Any, model_id: str) -> ModelHTTPError:
    body = err.body
    return stream_error(model_id, body.get("code") if isinstance(body, dict) else None, _detail(err), body)


def _detail(err: Exception) -> str:
    return str(getattr(err, "message", None) or err)
