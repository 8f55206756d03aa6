"""`web_search`: a web search tool with a pluggable backend.

A backend is any callable `(query, max_results) -> Sequence[SearchResult]`, sync or async.
Two are provided: `DdgsBackend` (DuckDuckGo and other engines through the `ddgs` package; the
default) and `SearxngBackend` (the JSON API of a SearXNG instance, any base URL, over httpx).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from ..tools import Tool
from ._common import DEFAULT_USER_AGENT, ToolkitError, httpx_module, require

__all__ = [
    "DdgsBackend",
    "SearchBackend",
    "SearchResult",
    "SearxngBackend",
    "WebSearchTool",
    "format_results",
    "web_search",
]


@dataclass(frozen=True)
class SearchResult:
    """One hit: its title, URL and a short text snippet."""

    title: str
    url: str
    snippet: str = ""


class SearchBackend(Protocol):
    """Anything that searches: returns at most `max_results` hits, best first. May be async."""

    def __call__(
        self, query: str, max_results: int
    ) -> Sequence[SearchResult] | Awaitable[Sequence[SearchResult]]: ...


class DdgsClient(Protocol):
    """The part of `ddgs.DDGS` the backend uses (a fake one can be passed for tests)."""

    def text(self, query: str, **kwargs: Any) -> list[dict[str, Any]]: ...


class DdgsBackend:
    """Searches with the `ddgs` metasearch package (DuckDuckGo by default).

    `backend` is ddgs's engine list ("duckduckgo", "auto", "bing,brave"...); `client` replaces
    the `ddgs.DDGS` instance (built lazily, with `timeout` seconds per engine)."""

    def __init__(
        self,
        *,
        backend: str = "duckduckgo",
        region: str = "us-en",
        safesearch: str = "moderate",
        timeout: int = 10,
        client: DdgsClient | None = None,
    ) -> None:
        self.backend, self.region, self.safesearch, self.timeout = backend, region, safesearch, timeout
        self._client = client

    def __call__(self, query: str, max_results: int) -> list[SearchResult]:
        client = self._client
        if client is None:
            client = cast(DdgsClient, require("ddgs", "ddgs").DDGS(timeout=self.timeout))
            self._client = client
        try:
            rows = client.text(
                query,
                max_results=max_results,
                backend=self.backend,
                region=self.region,
                safesearch=self.safesearch,
            )
        except Exception as exc:
            if "no results" in str(exc).lower():
                return []
            raise ToolkitError(f"The search engine failed: {type(exc).__name__}: {exc}") from exc
        return [_from_ddgs(row) for row in rows[:max_results]]


def _from_ddgs(row: Mapping[str, Any]) -> SearchResult:
    return SearchResult(
        title=str(row.get("title") or "").strip(),
        url=str(row.get("href") or row.get("url") or "").strip(),
        snippet=str(row.get("body") or row.get("snippet") or "").strip(),
    )


class SearxngBackend:
    """Searches a SearXNG instance through its JSON API (`GET {base_url}/search?format=json`;
    the instance must have the json format enabled)."""

    def __init__(
        self,
        base_url: str,
        *,
        language: str = "all",
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.language, self.timeout = language, timeout
        self.headers = {"User-Agent": DEFAULT_USER_AGENT, **(headers or {})}

    async def __call__(self, query: str, max_results: int) -> list[SearchResult]:
        params = {"q": query, "format": "json", "language": self.language}
        http: Any = httpx_module()
        async with http.AsyncClient(timeout=self.timeout, headers=self.headers) as client:
            try:
                response = await client.get(f"{self.base_url}/search", params=params)
                response.raise_for_status()
                payload = response.json()
            except (http.HTTPError, ValueError) as exc:
                raise ToolkitError(f"The search service failed: {type(exc).__name__}: {exc}") from exc
        rows = payload.get("results", []) if isinstance(payload, dict) else []
        hits = [
            SearchResult(str(r.get("title", "")).strip(), str(r.get("url", "")), str(r.get("content", "")))
            for r in rows
            if isinstance(r, dict) and r.get("url")
        ]
        return hits[:max_results]


def format_results(query: str, results: Sequence[SearchResult], max_snippet_chars: int = 300) -> str:
    """The hits as a short markdown list: `1. [title](url)` then the snippet, indented."""
    if not results:
        return f"No results found for {query!r}. Try a shorter or more general query."
    lines = [f"## Search results for {query!r}"]
    for number, hit in enumerate(results, start=1):
        lines.append(f"{number}. [{hit.title or hit.url}]({hit.url})")
        snippet = " ".join(hit.snippet.split())
        if len(snippet) > max_snippet_chars:
            snippet = snippet[: max_snippet_chars - 1].rstrip() + "…"
        if snippet:
            lines.append(f"   {snippet}")
    return "\n".join(lines)


class WebSearchTool(Tool):
    """Searches the web and returns the top hits as a markdown list."""

    name = "web_search"
    description = (
        "Searches the web for a query and returns the top results as a markdown list of titles, "
        "URLs and snippets. Use visit_webpage to read a result."
    )

    def __init__(self, backend: SearchBackend | None = None, *, max_results: int = 10) -> None:
        if max_results < 1:
            raise ValueError("max_results must be at least 1.")
        self.backend: SearchBackend = backend if backend is not None else DdgsBackend()
        self.max_results = max_results
        super().__init__()

    async def forward(self, query: str, max_results: int | None = None) -> str:
        """Search the web.

        Args:
            query: What to search for.
            max_results: How many results to return (default and upper bound set by the tool).
        """
        limit = self.max_results if max_results is None else max(1, min(max_results, self.max_results))
        call: Callable[..., Any] = self.backend
        if _is_async(call):
            found = await call(query, limit)
        else:  # a sync backend blocks on the network: keep it off the event loop
            found = await asyncio.to_thread(call, query, limit)
            if inspect.isawaitable(found):
                found = await found
        return format_results(query, list(found)[:limit])


def _is_async(backend: object) -> bool:
    method = vars(type(backend)).get("__call__")  # an object whose __call__ is async
    return inspect.iscoroutinefunction(backend) or inspect.iscoroutinefunction(method)


web_search = WebSearchTool()
"""The default `web_search` tool (DuckDuckGo through ddgs, 10 results)."""
