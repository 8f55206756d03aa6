"""Small helpers every model adapter shares: stop sequences, and provider failures as
`ModelHTTPError`s for `codeloop.models.retry`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..errors import ModelHTTPError
from .retry import parse_retry_after

__all__ = [
    "clean_stops",
    "http_status_error",
    "is_retryable_status",
    "is_retryable_stream_code",
    "rejects_stop",
    "stream_error",
    "translating",
]

_RETRYABLE_STATUS = frozenset({408, 409, 429})
_STOP_PARAM = re.compile(r"'stop'|\bstop(_sequences|Sequences)?\b", re.IGNORECASE)


def clean_stops(stop: Sequence[str] | None) -> list[str]:
    """The stop sequences, without empty ones."""
    return [s for s in (stop or ()) if s]


def rejects_stop(err: ModelHTTPError) -> bool:
    """A 400 about the stop parameter (`param: "stop"`, "'stop' is not supported", `stopSequences`)."""
    if err.status_code != 400:
        return False
    body = err.body if isinstance(err.body, dict) else {}
    error = body.get("error")
    param = (error if isinstance(error, dict) else body).get("param")
    return param == "stop" or bool(_STOP_PARAM.search(str(err)))


def is_retryable_status(status: int | None) -> bool:
    """408, 409, 429 and 5xx may succeed later; other statuses will not."""
    return status is not None and (status in _RETRYABLE_STATUS or status >= 500)


def is_retryable_stream_code(code: object) -> bool:
    """An error reported inside a 200 stream may succeed on a new request unless its code is a
    4xx other than 408, 409 and 429 (the request itself is wrong). Non-HTTP codes are retryable."""
    status = code if isinstance(code, int) else int(code) if isinstance(code, str) and code.isdigit() else 0
    return not (400 <= status < 500 and not is_retryable_status(status))


def http_status_error(
    model_id: str,
    status: int,
    detail: object,
    *,
    code: str | None,
    body: Any,
    headers: Mapping[str, str] | None,
) -> ModelHTTPError:
    """The server answered with an error status: retryable as `is_retryable_status` says, with
    the wait its `Retry-After` headers ask for."""
    return ModelHTTPError(
        f"Model {model_id!r}: the server answered HTTP {status}: {detail}",
        status_code=status,
        code=code,
        retryable=is_retryable_status(status),
        body=body,
        retry_after=parse_retry_after(headers),
    )


def stream_error(
    model_id: str, code: object, detail: object, body: Any, retryable: bool | None = None
) -> ModelHTTPError:
    """An error object inside a 200 stream; retryable as `is_retryable_stream_code` says of its
    code unless `retryable` is given."""
    return ModelHTTPError(
        f"Model {model_id!r}: the server reported an error in the stream"
        + (f" (code {code})" if code is not None else "")
        + f": {detail}",
        code=None if code is None else str(code),
        retryable=is_retryable_stream_code(code) if retryable is None else retryable,
        body=body,
    )


@contextmanager
def translating(translate: Callable[[Exception], ModelHTTPError | None]) -> Iterator[None]:
    """Raise an exception of the block as the `ModelHTTPError` `translate` makes of it; one it
    returns None for (not the SDK's), and a `ModelHTTPError`, passes unchanged."""
    try:
        yield
    except ModelHTTPError:
        raise
    except Exception as err:
        translated = translate(err)
        if translated is None:
            raise
        raise translated from err
