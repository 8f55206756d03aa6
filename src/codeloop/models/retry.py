"""Retries with exponential backoff under a time and attempt budget, and fallback models: written
once, for every adapter.

    policy = RetryPolicy(max_attempts=5, total_timeout=60, fallbacks=[OpenAIModel("gpt-4o-mini")])
    agent = CodeAgent(tools, OpenAIModel("gpt-4o"), retry_policy=policy)
    model = RetryingModel(OpenAIModel("gpt-4o"))  # retries for direct calls, outside an agent

Every agent wraps its model with `with_retries(model, retry_policy)`: the agent's `retry_policy`,
else the model's own `retry_policy` attribute (`OpenAIModel(max_retries=N)` sets one), else
`RetryPolicy()`. A model that is already a `RetryingModel` or `FallbackModel` is used as given.
`RetryPolicy.none()` turns retries off.

What is retried: a `ModelHTTPError` whose `status_code` is in `retry_on` (408, 409, 429, 500,
502, 503, 504) or is any 5xx; without a status (the server never answered, or failed inside a
200 stream), whatever its `retryable` says: timeouts, connection errors and resets, malformed
response bodies, an error chunk inside a stream (unless its code names a request problem, a 4xx
other than 408/409/429). Never 400, 401, 403, 404 or 422; never any other exception type (a
bug, a configuration mistake, a `ScriptedModel`'s scripted `ConnectionError`).

The wait is the server's `Retry-After` / `retry-after-ms` when it sent one, else
`initial_delay * multiplier**n` capped at `max_delay`, less up to `jitter` of it at random.
When the next wait would pass `total_timeout` (counted from the first attempt), or `max_attempts`
requests were made, the call raises `RetryBudgetExhausted` at once, without waiting. The budget
is checked between attempts: one attempt in flight is bounded by the adapter's own timeout
(e.g. `OpenAIModel(timeout=...)`).

Streams: a failure before any delta was yielded is retried plainly. After deltas were yielded, the
retried stream starts with `MessageDelta(restart=True)`: the consumer discards what it received
(`assemble_message` does; the agent forwards it as a `ModelDelta` event, and renderers may ignore
it). The same applies when a `FallbackModel` moves on to the next model mid-stream.

Fallbacks: `FallbackModel([m1, m2, m3])` tries each model in turn while the failure is one a
different model could avoid (`should_fall_back`): a spent retry budget, authentication, permission,
payment or not-found errors (specific to one provider or model id), any other `ModelError`. Not a
400 or 422: the request itself is wrong, the next model would refuse it too, and a bug must show.
Each model in the chain gets the policy's full budget.

How an adapter plugs in (Anthropic, LiteLLM, Hugging Face, Bedrock...):
  1. make exactly one attempt per call: turn the SDK's own retries off (`max_retries=0`);
  2. raise `codeloop.errors.ModelHTTPError` for every provider failure, with `status_code` (None
     when there was no HTTP status), `retryable` (used when there is no status: would the same
     request succeed later?) and `retry_after` (`parse_retry_after(response.headers)`);
  3. optionally expose a `retry_policy` attribute, the policy agents use by default for it.
Nothing else: `RetryingModel`, `FallbackModel` and the agent do the rest.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timezone
from typing import Any

from ..errors import ConfigurationError, FallbacksExhausted, ModelError, ModelHTTPError, RetryBudgetExhausted
from ..messages import ChatMessage, MessageDelta
from .base import Model, ToolSchema

__all__ = [
    "DEFAULT_RETRY_STATUSES",
    "NEVER_RETRY_STATUSES",
    "FallbackModel",
    "RetryPolicy",
    "RetryingModel",
    "parse_retry_after",
    "should_fall_back",
    "with_retries",
]

DEFAULT_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
NEVER_RETRY_STATUSES = frozenset({400, 401, 403, 404, 422})
_REQUEST_ERRORS = frozenset({"400", "422"})
_RESTART = MessageDelta(restart=True)


@dataclass(frozen=True)
class RetryPolicy:
    """How to retry a failed model request; see the module docstring for what is retried.

    `sleep`, `clock` (monotonic seconds) and `rng` (uniform in [0, 1)) are injectable, so tests
    observe the waits without waiting."""

    max_attempts: int = 4
    initial_delay: float = 1.0
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2
    total_timeout: float | None = 120.0
    retry_on: Iterable[int] = DEFAULT_RETRY_STATUSES
    retry_any_5xx: bool = True
    fallbacks: Sequence[Model] = ()
    sleep: Callable[[float], Awaitable[Any]] = field(default=asyncio.sleep, compare=False, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)
    rng: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "retry_on", frozenset(self.retry_on))
        object.__setattr__(self, "fallbacks", tuple(self.fallbacks))
        problems = [
            "max_attempts must be at least 1" if self.max_attempts < 1 else "",
            "delays must not be negative" if min(self.initial_delay, self.max_delay) < 0 else "",
            "multiplier must be at least 1" if self.multiplier < 1 else "",
            "jitter must be between 0 and 1" if not 0 <= self.jitter <= 1 else "",
            "total_timeout must be positive" if (self.total_timeout or 1) <= 0 else "",
            _never_retried(frozenset(self.retry_on)),
        ]
        if any(problems):
            raise ConfigurationError(f"RetryPolicy: {'; '.join(p for p in problems if p)}.")

    @classmethod
    def none(cls) -> RetryPolicy:
        """One attempt, no retries."""
        return cls(max_attempts=1)

    def should_retry(self, error: BaseException) -> bool:
        """Whether trying the same request again may succeed."""
        if not isinstance(error, ModelHTTPError):
            return False
        status = error.status_code
        if status is None:
            return error.retryable
        if status in NEVER_RETRY_STATUSES:
            return False
        return status in frozenset(self.retry_on) or (self.retry_any_5xx and 500 <= status < 600)

    def backoff(self, retry: int) -> float:
        """The wait before retry number `retry` (1 for the first) when the server named none."""
        delay = min(self.max_delay, self.initial_delay * self.multiplier ** min(retry - 1, 64))
        return delay * (1 - self.jitter * self.rng())

    def wait_before(self, retry: int, error: ModelHTTPError) -> float:
        """The server's `retry_after` when it sent one, else `backoff(retry)`."""
        return max(error.retry_after, 0.0) if error.retry_after is not None else self.backoff(retry)


def _never_retried(statuses: frozenset[int]) -> str:
    refused = sorted(statuses & NEVER_RETRY_STATUSES)
    return f"retry_on must not contain {refused}: those requests fail the same way again" if refused else ""


class _Attempts:
    """The budget of one call: counts attempts, waits between them, raises when spent."""

    def __init__(self, policy: RetryPolicy, model_id: str) -> None:
        self.policy = policy
        self.model_id = model_id
        self.count = 0
        self.started = policy.clock()

    async def failed(self, error: ModelHTTPError) -> None:
        """After a failed attempt: wait before the next one, or raise."""
        self.count += 1
        if not self.policy.should_retry(error):
            raise error
        wait = self.policy.wait_before(self.count, error)
        reason = self._reason_to_stop(wait, error)
        if reason:
            raise self._exhausted(error, reason) from error
        await self.policy.sleep(wait)

    def _reason_to_stop(self, wait: float, error: ModelHTTPError) -> str:
        if self.count >= self.policy.max_attempts:
            return f"max_attempts={self.policy.max_attempts} reached"
        total = self.policy.total_timeout
        left = math.inf if total is None else total - (self.policy.clock() - self.started)
        if wait <= left:
            return ""
        asked = "the server asked to wait" if error.retry_after is not None else "the next wait is"
        return f"{asked} {wait:.1f}s, but only {max(left, 0):.1f}s of total_timeout={total:g}s is left"

    def _exhausted(self, error: ModelHTTPError, reason: str) -> RetryBudgetExhausted:
        elapsed = self.policy.clock() - self.started
        return RetryBudgetExhausted(
            f"Model {self.model_id!r}: gave up after {self.count} attempt(s) in {elapsed:.1f}s "
            f"({reason}). Last error: {error}",
            attempts=self.count,
            elapsed=elapsed,
            last_error=error,
        )


class _Restarts:
    """Tells when a stream must be preceded by a restart delta: at the first delta of an attempt
    when the consumer already received deltas from an earlier one."""

    def __init__(self) -> None:
        self.seen = False
        self.fresh = True

    def new_attempt(self) -> None:
        self.fresh = True

    def due(self) -> bool:
        due = self.seen and self.fresh
        self.seen, self.fresh = True, False
        return due


@asynccontextmanager
async def _closing(stream: AsyncIterator[MessageDelta]) -> AsyncIterator[AsyncIterator[MessageDelta]]:
    """Close an abandoned or failed model stream at once (its HTTP connection with it)."""
    try:
        yield stream
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


class RetryingModel(Model):
    """`model`, with failed requests retried under `policy`. Attributes it does not have itself
    are read from the wrapped model (`agent.model.requests` still works on a `ScriptedModel`)."""

    def __init__(self, model: Model, policy: RetryPolicy | None = None) -> None:
        self.model = model
        self.policy = policy or RetryPolicy()
        self.model_id = model.model_id

    def __repr__(self) -> str:
        return f"RetryingModel({self.model!r}, {self.policy!r})"

    def __getattr__(self, name: str) -> Any:
        model = self.__dict__.get("model")
        if model is None:
            raise AttributeError(name)
        return getattr(model, name)

    @property
    def native_structured_output(self) -> bool:
        return self.model.native_structured_output

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
        **settings: Any,
    ) -> ChatMessage:
        attempts = _Attempts(self.policy, self.model_id)
        while True:
            try:
                return await self.model.agenerate(messages, stop=stop, tools=tools, **settings)
            except ModelHTTPError as error:
                await attempts.failed(error)

    async def astream(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
        **settings: Any,
    ) -> AsyncIterator[MessageDelta]:
        attempts, restarts = _Attempts(self.policy, self.model_id), _Restarts()
        while True:
            restarts.new_attempt()
            try:
                stream_of = self.model.astream(messages, stop=stop, tools=tools, **settings)
                async with _closing(stream_of) as stream:
                    async for delta in stream:
                        if restarts.due():
                            yield _RESTART
                        yield delta
                return
            except ModelHTTPError as error:
                await attempts.failed(error)


def should_fall_back(error: ModelError) -> bool:
    """Whether a different model could avoid `error`: anything but a request the provider
    called malformed (HTTP 400 or 422, or that code in a stream's error chunk)."""
    if isinstance(error, ModelHTTPError):
        return str(error.status_code) not in _REQUEST_ERRORS and (error.code or "") not in _REQUEST_ERRORS
    return True


class FallbackModel(Model):
    """Tries `models` in order: the next one is asked when the previous failed in a way
    `fall_back_on` accepts (default `should_fall_back`). When all fail, `FallbacksExhausted`."""

    def __init__(
        self, models: Sequence[Model], *, fall_back_on: Callable[[ModelError], bool] = should_fall_back
    ) -> None:
        if not models:
            raise ConfigurationError("FallbackModel needs at least one model.")
        self.models = tuple(models)
        self.fall_back_on = fall_back_on
        self.model_id = self.models[0].model_id

    def __repr__(self) -> str:
        return f"FallbackModel({list(self.models)!r})"

    @property
    def native_structured_output(self) -> bool:
        return all(model.native_structured_output for model in self.models)

    async def agenerate(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
        **settings: Any,
    ) -> ChatMessage:
        errors: list[ModelError] = []
        for model in self.models:
            try:
                return await model.agenerate(messages, stop=stop, tools=tools, **settings)
            except ModelError as error:
                self._record(error, errors)
        raise self._exhausted(errors) from errors[-1]

    async def astream(
        self,
        messages: Sequence[ChatMessage],
        *,
        stop: Sequence[str] | None = None,
        tools: Sequence[ToolSchema] | None = None,
        **settings: Any,
    ) -> AsyncIterator[MessageDelta]:
        errors: list[ModelError] = []
        restarts = _Restarts()
        for model in self.models:
            restarts.new_attempt()
            try:
                async with _closing(model.astream(messages, stop=stop, tools=tools, **settings)) as stream:
                    async for delta in stream:
                        if restarts.due():
                            yield _RESTART
                        yield delta
                return
            except ModelError as error:
                self._record(error, errors)
        raise self._exhausted(errors) from errors[-1]

    def _record(self, error: ModelError, errors: list[ModelError]) -> None:
        if not self.fall_back_on(error):
            raise error
        errors.append(error)

    def _exhausted(self, errors: list[ModelError]) -> FallbacksExhausted:
        lines = "".join(f"\n  {m.model_id}: {e}" for m, e in zip(self.models, errors, strict=True))
        message = f"All {len(errors)} models of the fallback chain failed:{lines}"
        return FallbacksExhausted(message, errors=errors)


def with_retries(model: Model, policy: RetryPolicy | None = None) -> Model:
    """`model` wrapped for retries under `policy` (see the module docstring for the default),
    with the policy's fallbacks after it. Never wraps twice: a `RetryingModel` given with a new
    policy is re-wrapped, one given without is returned as it is (as is a `FallbackModel`)."""
    if policy is None:
        if isinstance(model, (RetryingModel, FallbackModel)):
            return model
        own = getattr(model, "retry_policy", None)
        policy = own if isinstance(own, RetryPolicy) else RetryPolicy()
    single = replace(policy, fallbacks=())
    if isinstance(model, FallbackModel):
        chain = [with_retries(m, single) for m in (*model.models, *policy.fallbacks)]
        return FallbackModel(chain, fall_back_on=model.fall_back_on)
    inner = model.model if isinstance(model, RetryingModel) else model
    chain = [with_retries(m, single) for m in policy.fallbacks]
    wrapped = RetryingModel(inner, single)
    return FallbackModel([wrapped, *chain]) if chain else wrapped


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` (seconds or an HTTP date, relative
    to `now`, default the wall clock); None when neither is there or parses."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    millis = _finite(lowered.get("retry-after-ms"))
    if millis is not None:
        return max(millis, 0.0) / 1000
    value = lowered.get("retry-after")
    seconds = _finite(value)
    if seconds is not None or not value:
        return None if seconds is None else max(seconds, 0.0)
    try:
        date = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if date.tzinfo is None:
        date = date.replace(tzinfo=timezone.utc)
    return max(date.timestamp() - (time.time() if now is None else now), 0.0)


def _finite(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None
