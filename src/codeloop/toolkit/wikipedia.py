"""`wikipedia_search`: find the best Wikipedia article for a query and return its text.

Two calls to the MediaWiki Action API (`api.php`, JSON, `formatversion=2`): `list=search` to
rank pages, then `prop=extracts|info` (the TextExtracts extension, plain text) for the best one.
`base_url` may contain `{language}`; the default is `https://{language}.wikipedia.org/w/api.php`,
so any MediaWiki with TextExtracts works too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..tools import Tool
from ._common import DEFAULT_USER_AGENT, ToolkitError, httpx_module, truncate_text

if TYPE_CHECKING:
    import httpx

__all__ = ["WIKIPEDIA_API", "WikipediaSearchTool", "wikipedia_search"]

WIKIPEDIA_API = "https://{language}.wikipedia.org/w/api.php"


class WikipediaSearchTool(Tool):
    """Searches Wikipedia and returns the text of the best-matching article."""

    name = "wikipedia_search"
    description = (
        "Searches Wikipedia for a topic and returns the title, URL and text of the best-matching "
        "article, plus the titles of other matches."
    )

    def __init__(
        self,
        *,
        language: str = "en",
        base_url: str = WIKIPEDIA_API,
        intro_only: bool = False,
        max_chars: int = 20_000,
        candidates: int = 5,
        timeout: float = 15.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not language.replace("-", "").isalnum():
            raise ValueError(f"Invalid Wikipedia language code {language!r} (e.g. 'en', 'de', 'zh-yue').")
        self.language, self.api_url = language, base_url.format(language=language)
        self.intro_only, self.max_chars, self.candidates, self.timeout = (
            intro_only, max_chars, candidates, timeout,
        )  # fmt: skip
        # Wikimedia's policy asks API clients for a descriptive User-Agent.
        self.headers = {"User-Agent": DEFAULT_USER_AGENT, **(headers or {})}
        super().__init__()

    async def forward(self, query: str) -> str:
        """Look up a topic.

        Args:
            query: The topic or question to look up, e.g. "Python (programming language)".
        """
        http: Any = httpx_module()
        async with http.AsyncClient(timeout=self.timeout, headers=self.headers) as client:
            hits = await self._search(client, query)
            if not hits:
                return f"No Wikipedia article found for {query!r}. Try other keywords."
            page = await self._extract(client, hits[0])
        return self._render(page, hits[1:])

    async def _search(self, client: httpx.AsyncClient, query: str) -> list[str]:
        params = {"list": "search", "srsearch": query, "srlimit": str(self.candidates), "srprop": ""}
        data = await self._get(client, params)
        return [str(hit["title"]) for hit in data.get("query", {}).get("search", []) if "title" in hit]

    async def _extract(self, client: httpx.AsyncClient, title: str) -> dict[str, Any]:
        params = {"prop": "extracts|info", "inprop": "url", "explaintext": "1", "redirects": "1"}
        params["titles"] = title
        if self.intro_only:
            params["exintro"] = "1"
        data = await self._get(client, params)
        pages = [p for p in data.get("query", {}).get("pages", []) if not p.get("missing")]
        if not pages:
            raise ToolkitError(f"Wikipedia listed {title!r} but returned no text for it.")
        page: dict[str, Any] = pages[0]
        return page

    async def _get(self, client: httpx.AsyncClient, params: dict[str, str]) -> dict[str, Any]:
        full = {"action": "query", "format": "json", "formatversion": "2", **params}
        http: Any = httpx_module()
        try:
            response = await client.get(self.api_url, params=full)
            response.raise_for_status()
            data = response.json()
        except http.TimeoutException:
            raise ToolkitError(f"Wikipedia did not answer within {self.timeout:g} s.") from None
        except (http.HTTPError, ValueError) as exc:
            raise ToolkitError(f"The Wikipedia API failed: {type(exc).__name__}: {exc}") from None
        if not isinstance(data, dict):
            raise ToolkitError("The Wikipedia API returned an unexpected answer.")
        if "error" in data:
            error = data["error"]
            raise ToolkitError(f"The Wikipedia API refused the request: {error.get('info', error)}")
        return data

    def _render(self, page: Mapping[str, Any], others: list[str]) -> str:
        title = str(page.get("title", ""))
        url = page.get("fullurl") or self.api_url.replace("/w/api.php", "/wiki/") + title.replace(" ", "_")
        text = str(page.get("extract") or "").strip() or "(This article has no text extract.)"
        body = f"# {title}\nURL: {url}\n\n{truncate_text(text, self.max_chars, 'article')}"
        if others:
            body += "\n\nOther matching articles: " + "; ".join(others)
        return body


wikipedia_search = WikipediaSearchTool()
"""The default `wikipedia_search` tool (English Wikipedia, whole articles up to 20 000 characters)."""
