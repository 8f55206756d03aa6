"""`visit_webpage`: fetch a page over HTTP(S) and return it as markdown.

Bounded on every side: a total time limit (`timeout`, which also covers slow trickling
servers), a redirect limit, a download size limit (`max_bytes`; the rest is not downloaded) and
an output size limit (`max_chars`; a note says how much was cut). HTML is cleaned (scripts,
styles, navigation, headers, footers and forms are dropped) and converted with `markdownify`;
other text types (plain text, JSON, XML, CSV) are returned as they are; binary types (PDF,
images, archives...) are refused with a message saying so.

Private networks are refused by default: before each request (the first and every redirect)
the host name is resolved and any address that is not globally routable (loopback, private,
link-local such as the cloud metadata service 169.254.169.254, carrier-grade NAT, multicast,
reserved) stops the fetch. The host of `base_url`, which the developer chose, is allowed;
`allow_private_networks=True` allows all. This is a check, not a network boundary: a DNS server
that answers differently between the check and the connection (rebinding) can get past it; put
the agent behind an egress proxy where that matters.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from ..tools import Tool
from ._common import DEFAULT_USER_AGENT, ToolkitError, httpx_module, require, truncate_text

if TYPE_CHECKING:
    import httpx

__all__ = ["VisitWebpageTool", "html_to_markdown", "visit_webpage"]

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "application/x-ndjson")
_DROPPED_TAGS = (
    "script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg", "iframe",
    "button", "template", "canvas", "input", "select",
)  # fmt: skip


@dataclass(frozen=True)
class _Page:
    url: str
    content_type: str
    text: str
    cut_bytes: bool


class VisitWebpageTool(Tool):
    """Reads a web page and returns its content as markdown."""

    name = "visit_webpage"
    description = (
        "Visits a web page at the given URL and returns its content as markdown "
        "(HTML and text pages only; long pages are truncated)."
    )

    def __init__(
        self,
        *,
        max_chars: int = 40_000,
        max_bytes: int = 5_000_000,
        timeout: float = 20.0,
        max_redirects: int = 5,
        base_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        allow_private_networks: bool = False,
    ) -> None:
        self.max_chars, self.max_bytes, self.timeout = max_chars, max_bytes, timeout
        self.allow_private_networks = allow_private_networks
        self.max_redirects, self.base_url = max_redirects, base_url
        self.headers = {"User-Agent": DEFAULT_USER_AGENT, **(headers or {})}
        super().__init__()

    async def forward(self, url: str) -> str:
        """Fetch the page.

        Args:
            url: The address of the page (http or https).
        """
        target = self._resolve(url)
        http: Any = httpx_module()
        try:
            page = await asyncio.wait_for(self._fetch(http, target), timeout=self.timeout)
        except (asyncio.TimeoutError, http.TimeoutException):
            raise ToolkitError(
                f"Timed out after {self.timeout:g} s fetching {target}; the site is slow or not "
                "answering. Try another source."
            ) from None
        except http.TooManyRedirects:
            raise ToolkitError(f"{target} redirected more than {self.max_redirects} times.") from None
        except http.HTTPError as exc:
            raise ToolkitError(f"Could not fetch {target}: {type(exc).__name__}: {exc}") from None
        return self._render(target, page)

    def _resolve(self, url: str) -> str:
        url = url.strip()
        if self.base_url and not urlsplit(url).scheme:
            url = urljoin(self.base_url, url)
        if urlsplit(url).scheme not in ("http", "https"):
            raise ToolkitError(f"Cannot visit {url!r}: only http:// and https:// URLs are supported.")
        return url

    async def _fetch(self, http: Any, url: str) -> _Page:
        client = http.AsyncClient(
            event_hooks={"request": [self._check_destination]},
            follow_redirects=True,
            max_redirects=self.max_redirects,
            headers=self.headers,
            timeout=self.timeout,
        )
        async with client, client.stream("GET", url) as response:
            if response.status_code >= 400:
                reason = response.reason_phrase or "error"
                raise ToolkitError(f"{url} answered HTTP {response.status_code} ({reason}).")
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not _is_text(content_type):
                raise ToolkitError(_binary_message(str(response.url), content_type, response.headers))
            body, cut = await _read_capped(response, self.max_bytes)
            if not content_type and b"\x00" in body[:4096]:
                raise ToolkitError(_binary_message(str(response.url), "unknown binary", response.headers))
            text = body.decode(response.encoding or "utf-8", errors="replace")
            return _Page(str(response.url), content_type, text, cut)

    async def _check_destination(self, request: httpx.Request) -> None:
        """Refuse a request (the first or a redirect) to a host that resolves to a private address."""
        host = request.url.host
        if self.allow_private_networks or (self.base_url and host == urlsplit(self.base_url).hostname):
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, request.url.port or 443)
        except OSError as exc:
            raise ToolkitError(f"Could not resolve {host!r}: {exc}. Check the address.") from None
        for info in infos:
            address = _unmapped(ipaddress.ip_address(info[4][0]))
            if not address.is_global or address.is_multicast:
                raise ToolkitError(
                    f"Refused to visit {request.url}: {host} is at {address}, a private or "
                    "local network address; visit_webpage reads public web pages only "
                    "(VisitWebpageTool(allow_private_networks=True) allows such addresses)."
                )

    def _render(self, requested: str, page: _Page) -> str:
        is_html = page.content_type in _HTML_TYPES or (
            not page.content_type and "<html" in page.text[:2048].lower()
        )
        title, body = html_to_markdown(page.text) if is_html else ("", page.text.strip())
        head = [f"# {title}"] if title else []
        head.append(f"URL: {page.url}" + (f" (redirected from {requested})" if page.url != requested else ""))
        if page.cut_bytes:
            head.append(f"[Only the first {self.max_bytes} bytes of the page were downloaded.]")
        return truncate_text("\n".join(head) + "\n\n" + body, self.max_chars, "page")


_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _unmapped(address: _Address) -> _Address:
    """The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`), else `address`."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_text(content_type: str) -> bool:
    if not content_type:
        return True  # sniffed after the first bytes arrive
    return (
        content_type.startswith("text/")
        or content_type in _HTML_TYPES
        or content_type in _TEXT_TYPES
        or content_type.endswith(("+json", "+xml"))
    )


def _binary_message(url: str, content_type: str, headers: httpx.Headers) -> str:
    size = headers.get("content-length")
    sized = f", {size} bytes" if size else ""
    return (
        f"{url} is not a text page ({content_type}{sized}); visit_webpage reads only HTML and text. "
        "Look for an HTML version of this document instead."
    )


async def _read_capped(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False


def html_to_markdown(html: str) -> tuple[str, str]:
    """`(title, markdown)` of an HTML document, without scripts, styles, navigation, headers,
    footers and forms."""
    bs4: Any = require("bs4", "beautifulsoup4")
    markdownify: Any = require("markdownify", "markdownify")
    soup = bs4.BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for node in soup.find_all([*_DROPPED_TAGS, "title"]):
        node.decompose()
    for node in soup.find_all(attrs={"role": ["navigation", "banner", "contentinfo"]}):
        node.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    text = markdownify.MarkdownConverter(heading_style="ATX", strip=["img"]).convert_soup(root)
    text = re.sub(r"[ \t]+\n", "\n", text)
    return title, re.sub(r"\n{3,}", "\n\n", text).strip()


visit_webpage = VisitWebpageTool()
"""The default `visit_webpage` tool (40 000 characters, 5 MB, 20 s, 5 redirects)."""
