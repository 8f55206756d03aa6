"""Typed exceptions. Two families steer the loop:

* `AgentError` and its subclasses are problems the model can fix. The loop records them on the
  step, shows the model a short message, and continues.
* `RunFailed` and its subclasses end a run. `agent.run()` raises them; with
  `return_full_result=True` they are reported in `RunResult.state` / `RunResult.error` instead.

Configuration mistakes (a tool that cannot be described, an unknown executor name) raise
`ConfigurationError` at once, when the object is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .result import RunResult

__all__ = [
    "AgentError",
    "AgentExecutionError",
    "AgentParsingError",
    "AgentToolCallError",
    "AgentToolExecutionError",
    "ConfigurationError",
    "ExecutorError",
    "FallbacksExhausted",
    "FinalAnswerRejected",
    "ManagedAgentError",
    "MaxStepsExceeded",
    "ModelError",
    "ModelHTTPError",
    "RetryBudgetExhausted",
    "RunCancelled",
    "RunFailed",
    "RunInterrupted",
    "RunStuck",
    "ToolDefinitionError",
]


class ConfigurationError(ValueError):
    """Something the user configured cannot work; the message says what to change."""


class ToolDefinitionError(ConfigurationError):
    """A tool cannot be described to a model (missing docstring entry, unsupported type...)."""


class AgentError(Exception):
    """A problem in one step that the model can correct. `str(err)` is shown to the model."""


class AgentParsingError(AgentError):
    """The model's output did not contain a usable action."""


class AgentExecutionError(AgentError):
    """The model's code raised, or hit a resource limit."""


class AgentToolCallError(AgentError):
    """A tool call named an unknown tool or had invalid arguments."""


class AgentToolExecutionError(AgentError):
    """A tool raised while running."""


class FinalAnswerRejected(AgentError):
    """A `final_answer_checks` function refused the proposed answer."""


class ManagedAgentError(AgentError):
    """A managed sub-agent did not produce an answer. The manager sees this as a failure,
    never as a result; `.result` holds the sub-agent's full `RunResult`."""

    def __init__(self, message: str, result: RunResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class ExecutorError(Exception):
    """The executor itself broke (not the model's code): it could not start, or crashed."""


class RunFailed(Exception):
    """The run ended without a final answer. `.result` holds everything that happened."""

    def __init__(self, message: str, result: RunResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class MaxStepsExceeded(RunFailed):
    """`max_steps` ran out before the model gave a final answer."""


class RunInterrupted(RunFailed):
    """`agent.interrupt()` stopped the run between two steps."""


class RunCancelled(RunFailed):
    """The run was cancelled (`agent.cancel()`, or the task running it was cancelled) while a
    step was under way; the model call, tool or code action in progress was stopped."""


class RunStuck(RunFailed):
    """The model repeated itself: the same code as an earlier step, or the same error as the step
    before, `max_repeats` steps in a row. The run's memory is intact."""


class ModelError(RunFailed):
    """The model could not be queried (after any retries); the run's memory is intact."""


class ModelHTTPError(ModelError):
    """A provider request failed. `status_code` is the HTTP status (None when the server never
    answered, or reported the error inside a 200 stream, where `code` holds its error code);
    `retryable` says whether trying again later may succeed (429, 408, 409, 5xx, network)."""

    def __init__(
        self,
        message: str,
        result: RunResult | None = None,
        *,
        status_code: int | None = None,
        code: str | None = None,
        retryable: bool = False,
        body: object = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, result)
        self.status_code = status_code
        self.code = code
        self.retryable = retryable
        self.body = body
        self.retry_after = retry_after
        """Seconds the provider asked us to wait (`Retry-After` / `retry-after-ms`), if it said."""


class RetryBudgetExhausted(ModelError):
    """A retryable failure persisted until the retry policy's budget (`max_attempts` or
    `total_timeout`) was spent. `__cause__` and `last_error` are the last failure; `attempts`
    counts the requests made and `elapsed` the seconds since the first one (on the policy's clock)."""

    def __init__(
        self,
        message: str,
        result: RunResult | None = None,
        *,
        attempts: int,
        elapsed: float,
        last_error: ModelError,
    ) -> None:
        super().__init__(message, result)
        self.attempts = attempts
        self.elapsed = elapsed
        self.last_error = last_error


class FallbacksExhausted(ModelError):
    """Every model of a fallback chain failed. `errors` holds one failure per model, in order;
    `__cause__` is the last."""

    def __init__(self, message: str, result: RunResult | None = None, *, errors: list[ModelError]) -> None:
        super().__init__(message, result)
        self.errors = errors
