"""The provider SDKs and their clients, for every adapter: importing an SDK lazily, credentials
and local servers, the SDK's own retries turned off, and one async client per event loop."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from .retry import RetryPolicy

__all__ = [
    "LOCAL_PLACEHOLDER_KEY",
    "PerLoopClients",
    "import_sdk",
    "is_local",
    "local_http_client",
    "resolve_api_key",
    "sdk_client_kwargs",
    "sdk_retry_policy",
    "transport_errors",
]

LOCAL_PLACEHOLDER_KEY = "codeloop-local"
"""Sent as the API key to local servers (llama.cpp, vLLM, proxies, test servers) when none is
configured (they ignore it)."""

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "host.docker.internal"})
_C = TypeVar("_C")


def import_sdk(who: str, package: str, extra: str, *also: str) -> list[ModuleType]:
    """`package`, then the modules `also` names, imported; a missing one is a
    `ConfigurationError` that names the extra to install."""
    try:
        return [importlib.import_module(name) for name in (package, *also)]
    except ImportError as err:
        message = f"{who} needs the {package} package: pip install 'codeloop[{extra}]'"
        raise ConfigurationError(message) from err


def is_local(url: str | None) -> bool:
    """Whether `url` names this machine (localhost, 127.x, ::1, host.docker.internal...)."""
    host = (urlsplit(url).hostname or "") if url else ""
    return host in _LOCAL_HOSTS or host.endswith(".localhost") or host.startswith("127.")


def resolve_api_key(
    api_key: str | None, api_base: str | None, env_keys: Sequence[str], env_base: str
) -> str | None:
    """`api_key`; but a placeholder when it is empty, none of the `env_keys` variables holds a
    credential, and the server (`api_base`, else the URL in `env_base`) is local."""
    in_env = any(os.environ.get(name) for name in env_keys)
    if not api_key and not in_env and is_local(api_base or os.environ.get(env_base)):
        return LOCAL_PLACEHOLDER_KEY
    return api_key


def sdk_retry_policy(max_retries: int | None, client_kwargs: Mapping[str, Any] | None) -> RetryPolicy | None:
    """`max_retries` (or the SDK's own, from `client_kwargs`) as this model's retry policy: N
    retries, N + 1 attempts. None: the agent's default policy applies."""
    retries = max_retries if max_retries is not None else (client_kwargs or {}).get("max_retries")
    return None if retries is None else RetryPolicy(max_attempts=int(retries) + 1)


def sdk_client_kwargs(
    client_kwargs: Mapping[str, Any] | None, timeout: float | None, **settings: Any
) -> dict[str, Any]:
    """The SDK client's keyword arguments: `settings`, `timeout` when given (None would mean
    "never"), `client_kwargs`, and no retries of the SDK's own: retries are codeloop's
    (`codeloop.models.retry`), never stacked on the SDK's."""
    extra = {key: value for key, value in (client_kwargs or {}).items() if key != "max_retries"}
    return {**settings, **({"timeout": timeout} if timeout is not None else {}), **extra, "max_retries": 0}


def transport_errors() -> tuple[type[BaseException], ...]:
    """The transport errors of the HTTP library an SDK uses (`httpx2`, or `httpx`), which some
    SDKs let through while a stream is read. Looked up among the modules already imported (the
    SDK's own), never imported here."""
    modules = [sys.modules.get(name) for name in ("httpx2", "httpx")]
    return tuple(m.TransportError for m in modules if m is not None and hasattr(m, "TransportError"))


def local_http_client(client_class: type[Any]) -> Any:
    """An SDK's default async HTTP client set up for a server on this machine: never routed
    through the user's HTTP(S)_PROXY, and no idle keep-alive (local servers, llama.cpp's among
    them, drop idle connections after a few seconds, and a request sent on one that was just
    dropped fails; on loopback a new connection per request costs next to nothing).

    `client_class` is the SDK's own default client class (e.g. `openai.DefaultAsyncHttpxClient`);
    its `Limits` come from whichever HTTP library that class is built on (`httpx2` for openai 3,
    `httpx` before), so codeloop depends on no HTTP library of its own."""
    roots = (cls.__module__.partition(".")[0] for cls in client_class.__mro__)
    library = next((sys.modules[r] for r in roots if r in ("httpx2", "httpx") and r in sys.modules), None)
    if library is None:
        raise ConfigurationError(f"{client_class.__qualname__} is not built on httpx or httpx2.")
    return client_class(trust_env=False, limits=library.Limits(max_keepalive_connections=0))


class PerLoopClients(Generic[_C]):
    """One SDK client per event loop: an async HTTP client's connections belong to the loop that
    opened them, and the sync wrappers run each call on a fresh loop. The first loop to ask gets
    the model's own client; later loops get new ones from `make`."""

    def __init__(self, make: Callable[[], _C]) -> None:
        self._make = make
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _C] = weakref.WeakKeyDictionary()
        self._first_taken = False

    def get(self, first: _C) -> _C:
        """The running loop's client; `first` (the model's own) for the first loop that asks."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._make() if self._first_taken else first
            self._first_taken = True
            self._clients[loop] = client
        return client
