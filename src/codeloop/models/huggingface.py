"""Hugging Face Inference: Inference Providers (`provider="together"`, `"auto"`...), Inference
Endpoints and any TGI / OpenAI-compatible server, through `huggingface_hub.AsyncInferenceClient`.

    model = InferenceClientModel("Qwen/Qwen2.5-Coder-32B-Instruct", provider="together", bill_to="my-org")
    tgi = InferenceClientModel("tgi", base_url="http://127.0.0.1:8080/v1")  # POSTs .../v1/chat/completions

`bill_to` becomes the `X-HF-Bill-To` header (bill an organization you belong to). Reasoning
arrives apart from the answer whether the server sends a `reasoning` field or a leading
`<think>...</think>` block. The client has no retries of its own; codeloop's retry policy
retries `ModelHTTPError`s that are `retryable`.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, ModelHTTPError
from ._clients import import_sdk, transport_errors
from ._common import http_status_error, is_retryable_stream_code, stream_error
from ._openai_format import ChatCompletionsModel, closing_after
from .capabilities import ModelCapabilities, capabilities_for

if TYPE_CHECKING:
    from huggingface_hub import AsyncInferenceClient

__all__ = ["InferenceClientModel"]


class InferenceClientModel(ChatCompletionsModel):
    """A model served by Hugging Face Inference (smolagents' `InferenceClientModel`).

    `provider`, `token` (or `api_key`), `bill_to`, `base_url` and `timeout` configure the
    client; `client_kwargs` adds others (headers, cookies). With `base_url`, requests go to
    `{base_url}/chat/completions` and `model_id` is sent as the payload's `model`; without it,
    `provider` routes `model_id` (which needs the Hub to be reachable). `completion_kwargs`
    (temperature, max_tokens, tool_choice...) go into every request; those
    `chat_completion` has no parameter for are sent in `extra_body`. `capabilities` (default:
    `codeloop.models.capabilities` by provider and model id) and `supports_stop` say what the
    model accepts; stop sequences are enforced client-side in any case.
    """

    def __init__(
        self,
        model_id: str,
        *,
        provider: str | None = None,
        token: str | None = None,
        bill_to: str | None = None,
        base_url: str | None = None,
        timeout: float | None = 120,
        api_key: str | None = None,
        client_kwargs: dict[str, Any] | None = None,
        custom_role_conversions: dict[str, str] | None = None,
        capabilities: ModelCapabilities | None = None,
        supports_stop: bool | None = None,
        **completion_kwargs: Any,
    ) -> None:
        if token is not None and api_key is not None:
            raise ConfigurationError("Pass token= or api_key= (the same thing), not both.")
        self._hub = import_sdk(
            "InferenceClientModel", "huggingface_hub", "huggingface", "huggingface_hub.errors"
        )[0]
        self.model_id = model_id
        self.provider = provider
        self.base_url = base_url
        self._set_capabilities(
            capabilities or capabilities_for(model_id, provider or "huggingface"), supports_stop
        )
        self.custom_role_conversions = dict(custom_role_conversions or {})
        self.completion_kwargs = completion_kwargs
        self.client_kwargs: dict[str, Any] = {
            "provider": provider,
            "token": token if token is not None else api_key,
            "bill_to": bill_to,
            "base_url": base_url,
            "timeout": timeout,
            **(client_kwargs or {}),
        }
        signature = inspect.signature(self._hub.AsyncInferenceClient.chat_completion)
        self._named_params = frozenset(signature.parameters) - {"self", "messages", "extra_body"}

    def __repr__(self) -> str:
        where = f"base_url={self.base_url!r}" if self.base_url else f"provider={self.provider!r}"
        return f"{type(self).__name__}(model_id={self.model_id!r}, {where})"

    def _client(self) -> AsyncInferenceClient:
        """A client per request: a streamed response stays open until its client closes."""
        client: AsyncInferenceClient = self._hub.AsyncInferenceClient(**self.client_kwargs)
        return client

    async def _complete(self, request: dict[str, Any]) -> Any:
        async with self._client() as client:
            return await client.chat_completion(**self._arguments(request))

    async def _open_stream(self, request: dict[str, Any]) -> AsyncIterator[Any]:
        client: Any = self._client()  # huggingface_hub's close() is untyped
        try:
            chunks = await client.chat_completion(**self._arguments(request))
        except BaseException:
            await client.close()
            raise
        return closing_after(chunks, client.close)

    def _arguments(self, request: dict[str, Any]) -> dict[str, Any]:
        """`chat_completion`'s keyword arguments: unknown parameters travel in `extra_body`."""
        named = {k: v for k, v in request.items() if k in self._named_params}
        extra = {k: v for k, v in request.items() if k not in self._named_params and k != "extra_body"}
        extra_body = {**extra, **request.get("extra_body", {})}
        return {
            **named,
            "messages": request["messages"],
            **({"extra_body": extra_body} if extra_body else {}),
        }

    def _translate_error(self, err: Exception) -> ModelHTTPError | None:
        errors = self._hub.errors
        if isinstance(err, errors.HfHubHTTPError):
            return _http_error(err, self.model_id)
        if isinstance(err, errors.InferenceTimeoutError):
            return ModelHTTPError(f"Model {self.model_id!r}: {err}", code="timeout", retryable=True)
        if isinstance(err, errors.TextGenerationError):  # an error object inside a 200 stream
            return _stream_error(err, errors, self.model_id)
        if isinstance(err, transport_errors()):
            return ModelHTTPError(
                f"Model {self.model_id!r}: could not reach the server: {err!r}", retryable=True
            )
        return None


def _http_error(err: Any, model_id: str) -> ModelHTTPError:
    response = err.response
    body = _body(response)
    detail = err.server_message or _message(body) or str(err)
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    code = None if code is None else str(code)
    return http_status_error(
        model_id, response.status_code, detail, code=code, body=body, headers=response.headers
    )


def _stream_error(err: Exception, errors: ModuleType, model_id: str) -> ModelHTTPError:
    """TGI's typed stream errors, or an OpenAI-style `{"error": {"code", "message"}}` chunk."""
    payload = err.args[0] if err.args else None
    code = payload.get("code") if isinstance(payload, dict) else None
    if isinstance(err, errors.OverloadedError):
        code = "overloaded"
    retryable = not isinstance(err, errors.ValidationError) and is_retryable_stream_code(code)
    return stream_error(model_id, code, _message(payload) or err, payload, retryable)


def _body(response: Any) -> Any:
    try:
        return response.json()
    except Exception:  # not JSON, or a streamed body that was never read
        try:
            return response.text
        except Exception:
            return None


def _message(body: Any) -> str:
    """The provider's own words: `error.message`, `message`, `error` (TGI) or the text."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(body.get("message") or error or "")
    return body.strip()[:500] if isinstance(body, str) else ""
