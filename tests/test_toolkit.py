"""The default toolkit, against local HTTP servers serving recorded-style pages (tests/data/pages)."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from codeloop.errors import AgentToolExecutionError, ConfigurationError
from codeloop.executors import ExecutorLimits, create_executor
from codeloop.toolkit import (
    DdgsBackend,
    PythonInterpreterTool,
    SearchResult,
    SearxngBackend,
    ToolkitError,
    UserInputTool,
    VisitWebpageTool,
    WebSearchTool,
    WikipediaSearchTool,
    base_tools,
    python_interpreter,
    user_input,
    visit_webpage,
    web_search,
    wikipedia_search,
)
from codeloop.tools import Tool

PAGES = Path(__file__).parent / "data" / "pages"
HUGE_BYTES = 3_000_000

# ---- a local server playing the web --------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    requests: list[tuple[str, dict[str, list[str]]]]  # set on the per-server subclass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str | None, **headers: str) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.requests.append((url.path, query))
        if url.path.endswith("/w/api.php"):
            return self._mediawiki(query)
        routes = {
            "/search": lambda: self._json("searxng.json"),
            "/article": lambda: self._file("article.html", "text/html; charset=UTF-8"),
            "/doc.pdf": lambda: self._file("document.pdf", "application/pdf"),
            "/notes.txt": lambda: self._send(200, b"plain notes\nline two\n", "text/plain"),
            "/untyped": lambda: self._send(200, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None),
            "/huge": self._huge,
            "/redirect": lambda: self._send(302, b"", None, Location="/article"),
            "/loop": lambda: self._send(302, b"", None, Location="/loop"),
            "/redirect-to-ip": lambda: self._send(
                302, b"", None, Location=f"http://127.0.0.1:{self.server.server_port}/article"
            ),
            "/slow": self._slow,
            "/trickle": self._trickle,
        }
        routes.get(url.path, lambda: self._send(404, b"<h1>Not Found</h1>", "text/html"))()

    def _file(self, name: str, content_type: str) -> None:
        self._send(200, (PAGES / name).read_bytes(), content_type)

    def _json(self, name: str) -> None:
        self._file(name, "application/json; charset=utf-8")

    def _mediawiki(self, query: dict[str, list[str]]) -> None:
        if query.get("list") == ["search"]:
            term = query.get("srsearch", [""])[0]
            if not term:
                return self._json("wikipedia_error.json")
            return self._json("wikipedia_search_empty.json" if term == "zzqx" else "wikipedia_search.json")
        return self._json("wikipedia_extract.json")

    def _huge(self) -> None:
        paragraph = b"<p>" + b"All work and no play makes Jack a dull boy. " * 20 + b"</p>\n"
        body = b"<html><body><h1>Huge</h1>" + paragraph * (HUGE_BYTES // len(paragraph)) + b"</body></html>"
        self._send(200, body, "text/html")

    def _slow(self) -> None:
        time.sleep(3)
        self._send(200, b"<p>finally</p>", "text/html")

    def _trickle(self) -> None:  # answers at once, then sends a byte every 0.2 s: no read timeout fires
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        for _ in range(30):
            self.wfile.write(b".")
            self.wfile.flush()
            time.sleep(0.2)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[tuple[str, dict[str, list[str]]]]]]:
    log: list[tuple[str, dict[str, list[str]]]] = []
    handler = type("Handler", (_Handler,), {"requests": log})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", log
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def base(server: tuple[str, list[Any]]) -> str:
    return server[0]


# ---- the package surface ---------------------------------------------------------------------------


def test_default_tools_are_tools_with_the_smolagents_names() -> None:
    tools = [web_search, visit_webpage, wikipedia_search, python_interpreter, user_input]
    assert all(isinstance(t, Tool) for t in tools)
    assert [t.name for t in tools] == [
        "web_search", "visit_webpage", "wikipedia_search", "python_interpreter", "user_input",
    ]  # fmt: skip
    for t in tools:
        schema = t.json_schema()
        assert schema["description"] and schema["parameters"]["required"]
        assert f"def {t.name}(" in t.to_code_prompt()


def test_base_tools_builds_fresh_instances() -> None:
    names = [t.name for t in base_tools()]
    assert names == ["web_search", "visit_webpage", "wikipedia_search", "python_interpreter", "user_input"]
    assert [t.name for t in base_tools(python=False, ask_user=False)] == names[:3]
    first, second = base_tools(), base_tools()
    assert all(a is not b for a, b in zip(first, second, strict=True))
    german = base_tools(wikipedia_language="de")[2]
    assert isinstance(german, WikipediaSearchTool) and german.api_url == "https://de.wikipedia.org/w/api.php"


# ---- web_search ------------------------------------------------------------------------------------


class FakeDdgs:
    """Stands in for `ddgs.DDGS`: records the call, answers with a recorded result list."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.error = error

    def text(self, query: str, **kwargs: Any) -> list[dict[str, Any]]:
        self.calls.append((query, kwargs))
        if self.error is not None:
            raise self.error
        rows: list[dict[str, Any]] = json.loads((PAGES / "ddgs_text.json").read_text())
        return rows


def test_ddgs_backend_maps_results_to_a_markdown_list() -> None:
    client = FakeDdgs()
    search = WebSearchTool(DdgsBackend(client=client, region="de-de"), max_results=5)
    text = search("ada lovelace")
    assert client.calls == [
        (
            "ada lovelace",
            {"max_results": 5, "backend": "duckduckgo", "region": "de-de", "safesearch": "moderate"},
        )
    ]
    assert text.splitlines() == [
        "## Search results for 'ada lovelace'",
        "1. [Ada Lovelace - Wikipedia](https://en.wikipedia.org/wiki/Ada_Lovelace)",
        "   Augusta Ada King, Countess of Lovelace was an English mathematician and writer.",
        "2. [Ada Lovelace: The First Computer Programmer](https://www.example.org/ada)",
        "   A short biography.",
        "3. [https://www.example.net/untitled](https://www.example.net/untitled)",
    ]


def test_ddgs_backend_max_results_and_errors() -> None:
    assert web_search.max_results == 10
    search = WebSearchTool(DdgsBackend(client=FakeDdgs()), max_results=5)
    assert "2. [" not in search("ada", max_results=1)
    empty = WebSearchTool(DdgsBackend(client=FakeDdgs(RuntimeError("No results found."))))
    assert empty("zzqx") == "No results found for 'zzqx'. Try a shorter or more general query."
    broken = WebSearchTool(DdgsBackend(client=FakeDdgs(TimeoutError("timed out"))))
    with pytest.raises(ToolkitError, match="search engine failed: TimeoutError"):
        broken("ada")


def test_ddgs_backend_passes_arguments_the_real_ddgs_accepts() -> None:
    ddgs = pytest.importorskip("ddgs")
    accepted = inspect.signature(ddgs.DDGS._search_sync).parameters
    assert {"max_results", "backend", "region", "safesearch"} <= set(accepted)
    backend = DdgsBackend(timeout=3)
    assert backend._client is None  # built on first search, without touching the network here


async def test_searxng_backend_against_a_local_server(server: tuple[str, list[Any]]) -> None:
    base, log = server
    search = WebSearchTool(SearxngBackend(base + "/", language="en"), max_results=2)
    text = await search.acall({"query": "ada lovelace"})
    assert text.splitlines()[1:] == [
        "1. [Ada Lovelace - Wikipedia](https://en.wikipedia.org/wiki/Ada_Lovelace)",
        "   Augusta Ada King, Countess of Lovelace was an English mathematician and writer, chiefly known "
        "for her work on Charles Babbage's Analytical Engine.",
        "2. [Ada Lovelace | Biography & Facts | Britannica](https://www.britannica.com/biography/Ada-Lovelace)",
        "   Ada Lovelace, English mathematician, an associate of Charles Babbage, for whose prototype of a "
        "digital computer she created a program.",
    ]
    assert ("/search", {"q": ["ada lovelace"], "format": ["json"], "language": ["en"]}) in log


async def test_searxng_backend_reports_http_errors(base: str) -> None:
    search = WebSearchTool(SearxngBackend(base + "/missing"))
    with pytest.raises(AgentToolExecutionError, match="search service failed: HTTPStatusError"):
        await search.acall({"query": "x"})


async def test_any_callable_is_a_backend() -> None:
    def sync_backend(query: str, max_results: int) -> list[SearchResult]:
        return [SearchResult(f"{query} {i}", f"https://e.org/{i}", "s" * 400) for i in range(max_results)]

    async def async_backend(query: str, max_results: int) -> list[SearchResult]:
        return sync_backend(query, max_results)

    for backend in (sync_backend, async_backend):
        text = await WebSearchTool(backend, max_results=3).acall({"query": "q", "max_results": 50})
        assert text.count("](https://e.org/") == 3  # capped by the tool's max_results
        assert text.splitlines()[2] == "   " + "s" * 299 + "…"


# ---- visit_webpage ---------------------------------------------------------------------------------

local_pages = VisitWebpageTool(allow_private_networks=True)  # the test server is on 127.0.0.1


def test_visit_webpage_converts_an_article_without_page_chrome(base: str) -> None:
    text = local_pages(base + "/article")
    assert text.startswith(f"# Analytical engine - Wikipedia\nURL: {base}/article\n\n# Analytical engine\n")
    assert "proposed digital mechanical general-purpose computer" in text
    assert "[Charles Babbage](/wiki/Charles_Babbage" in text
    assert "## Design" in text
    assert "| Store | 1,000 numbers of 40 digits |" in text
    assert "* Conditional branching" in text or "- Conditional branching" in text
    for chrome in ("RLCONF", "mw.loader", "Random article", "Search Wikipedia", "Privacy policy", "margin:0"):
        assert chrome not in text


def test_visit_webpage_follows_a_redirect_and_resolves_relative_urls(base: str) -> None:
    redirected = VisitWebpageTool(base_url=base + "/")("/redirect")
    assert f"URL: {base}/article (redirected from {base}/redirect)" in redirected
    assert "Analytical engine" in redirected


def test_visit_webpage_limits_redirects(base: str) -> None:
    with pytest.raises(ToolkitError, match="redirected more than 3 times"):
        VisitWebpageTool(max_redirects=3, allow_private_networks=True)(base + "/loop")


def test_visit_webpage_refuses_binary_content(base: str) -> None:
    with pytest.raises(ToolkitError) as info:
        local_pages(base + "/doc.pdf")
    size = (PAGES / "document.pdf").stat().st_size
    assert str(info.value) == (
        f"{base}/doc.pdf is not a text page (application/pdf, {size} bytes); visit_webpage reads only "
        "HTML and text. Look for an HTML version of this document instead."
    )
    with pytest.raises(ToolkitError, match="not a text page \\(unknown binary"):
        local_pages(base + "/untyped")


def test_visit_webpage_returns_plain_text_as_is(base: str) -> None:
    assert local_pages(base + "/notes.txt") == f"URL: {base}/notes.txt\n\nplain notes\nline two"


def test_visit_webpage_truncates_a_huge_page(base: str) -> None:
    text = VisitWebpageTool(max_chars=5_000, max_bytes=200_000, allow_private_networks=True)(base + "/huge")
    assert text.startswith(
        f"URL: {base}/huge\n[Only the first 200000 bytes of the page were downloaded.]\n\n# Huge\n"
    )
    body, note = text.rsplit("\n\n", 1)
    assert len(body) == 5_000
    assert note.startswith("[page truncated: ") and note.endswith(" more characters not shown]")


def test_visit_webpage_time_limits(base: str) -> None:
    with pytest.raises(ToolkitError, match=r"Timed out after 0\.5 s fetching"):
        VisitWebpageTool(timeout=0.5, allow_private_networks=True)(base + "/slow")
    with pytest.raises(ToolkitError, match=r"Timed out after 1 s fetching .*/trickle"):
        VisitWebpageTool(timeout=1, allow_private_networks=True)(base + "/trickle")


def test_visit_webpage_reports_http_errors_and_bad_urls(base: str) -> None:
    with pytest.raises(ToolkitError, match="answered HTTP 404 \\(Not Found\\)"):
        local_pages(base + "/nope")
    with pytest.raises(ToolkitError, match="only http:// and https:// URLs"):
        local_pages("file:///etc/passwd")
    with pytest.raises(ToolkitError, match=re.escape("Could not fetch http://127.0.0.1:9/: ConnectError")):
        local_pages("http://127.0.0.1:9/")


async def test_visit_webpage_errors_reach_the_model_through_acall(base: str) -> None:
    with pytest.raises(
        AgentToolExecutionError, match=r"Tool visit_webpage failed: ToolkitError: .*application/pdf"
    ):
        await local_pages.acall({"url": base + "/doc.pdf"})


def test_visit_webpage_refuses_private_addresses_by_default(base: str) -> None:
    port = base.rsplit(":", 1)[1]
    for url in (base + "/article", f"http://[::ffff:127.0.0.1]:{port}/article", "http://169.254.169.254/"):
        with pytest.raises(ToolkitError, match=r"Refused to visit .*a private or local network address"):
            visit_webpage(url)
    with pytest.raises(ToolkitError, match=r"Could not resolve 'no-such-host\.invalid'"):
        visit_webpage("http://no-such-host.invalid/")


def test_visit_webpage_allows_the_base_url_host_and_checks_every_redirect(base: str) -> None:
    port = base.rsplit(":", 1)[1]
    tool = VisitWebpageTool(base_url=f"http://localhost:{port}/")
    assert "Analytical engine" in tool("/article")  # the developer chose this host
    with pytest.raises(ToolkitError, match=rf"Refused to visit http://127\.0\.0\.1:{port}/article"):
        tool("/redirect-to-ip")  # a redirect to another private host is checked too


# ---- wikipedia_search ------------------------------------------------------------------------------


def test_wikipedia_search_returns_the_best_article(server: tuple[str, list[Any]]) -> None:
    base, log = server
    log.clear()
    tool = WikipediaSearchTool(language="fr", base_url=base + "/{language}/w/api.php", max_chars=10_000)
    text = tool("first computer programmer")
    assert text.startswith(
        "# Ada Lovelace\nURL: https://en.wikipedia.org/wiki/Ada_Lovelace\n\nAugusta Ada King"
    )
    assert "=== Childhood ===" in text and "first algorithm" in text
    assert text.endswith("\n\nOther matching articles: Ada Lovelace Day; Analytical engine")
    (search_path, search), (extract_path, extract) = log
    assert search_path == extract_path == "/fr/w/api.php"
    assert search["srsearch"] == ["first computer programmer"] and search["list"] == ["search"]
    assert search["format"] == ["json"] and search["formatversion"] == ["2"]
    assert extract["titles"] == ["Ada Lovelace"] and extract["prop"] == ["extracts|info"]
    assert "exintro" not in extract


def test_wikipedia_search_intro_only_truncation_and_no_match(server: tuple[str, list[Any]]) -> None:
    base, log = server
    log.clear()
    tool = WikipediaSearchTool(base_url=base + "/{language}/w/api.php", intro_only=True, max_chars=40)
    text = tool("ada")
    assert log[1][1]["exintro"] == ["1"] and log[1][0] == "/en/w/api.php"
    assert "\n\nAugusta Ada King, Countess of Lovelace (\n\n[article truncated: " in text
    assert tool("zzqx") == "No Wikipedia article found for 'zzqx'. Try other keywords."


def test_wikipedia_search_reports_api_errors(base: str) -> None:
    tool = WikipediaSearchTool(base_url=base + "/w/api.php")
    with pytest.raises(
        ToolkitError, match=re.escape('refused the request: The "srsearch" parameter must be set.')
    ):
        tool("")
    with pytest.raises(ToolkitError, match="Wikipedia API failed: HTTPStatusError"):
        WikipediaSearchTool(base_url=base + "/nothing/here")("ada")
    with pytest.raises(ValueError, match="Invalid Wikipedia language code"):
        WikipediaSearchTool(language="en.evil.com/")


# ---- python_interpreter (real Monty) -------------------------------------------------------------


async def test_python_interpreter_prints_and_last_value() -> None:
    text = await python_interpreter.acall(
        {"code": "total = 0\nfor i in range(4):\n    print(i)\n    total += i\ntotal * 7"}
    )
    assert text == "Stdout:\n0\n1\n2\n3\nLast value: 42"
    assert await python_interpreter.acall({"code": "x = 1"}) == "Stdout: (nothing printed)\nLast value: None"


def test_python_interpreter_reports_errors_and_keeps_no_state() -> None:
    text = python_interpreter("print('before')\n1 / 0")
    assert text == "Stdout:\nbefore\nError: ZeroDivisionError (line 2: 1 / 0): division by zero"
    python_interpreter("secret = 5")
    assert python_interpreter("secret").startswith("Stdout: (nothing printed)\nError: NameError")


def test_python_interpreter_time_limit() -> None:
    text = PythonInterpreterTool(limits=ExecutorLimits(timeout_s=0.5))("while True:\n    pass")
    assert "Error: TimeoutError" in text and "0.5 s time limit" in text


def test_python_interpreter_cannot_reach_the_host(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    text = python_interpreter(f"open({str(secret)!r}).read()")
    assert "Error: PermissionError" in text and "host secret" not in text
    assert "Error: PermissionError" in python_interpreter("import os\nos.listdir('/')")
    assert "Error: PermissionError" in python_interpreter(
        f"from pathlib import Path\nPath({str(secret)!r}).read_text()"
    )


async def test_python_interpreter_with_a_given_executor_instance() -> None:
    executor = create_executor("monty", limits=ExecutorLimits(timeout_s=2))
    tool = PythonInterpreterTool(executor)
    assert await tool.acall({"code": "print('a')\n2 + 2"}) == "Stdout:\na\nLast value: 4"
    assert await tool.acall({"code": "'again'"}) == "Stdout: (nothing printed)\nLast value: 'again'"


def test_python_interpreter_refuses_host_executors() -> None:
    with pytest.raises(ConfigurationError, match="refuses the 'local' executor"):
        PythonInterpreterTool("local")
    with pytest.raises(ConfigurationError, match="refuses a LocalExecutor"):
        PythonInterpreterTool(create_executor("local"))
    with pytest.raises(ConfigurationError, match="Unknown executor 'nope'"):
        PythonInterpreterTool("nope")("1")


# ---- user_input ------------------------------------------------------------------------------------


async def test_user_input_uses_the_given_input_function() -> None:
    asked: list[str] = []

    def fake_input(prompt: str) -> str:
        asked.append(prompt)
        return "blue"

    tool = UserInputTool(fake_input)
    assert tool("Favourite colour?") == "blue"
    assert await tool.acall({"question": "And now? "}) == "blue"
    assert asked == ["Favourite colour? => ", "And now? => "]
    assert user_input.input_fn is input


def test_user_input_closed_input() -> None:
    def closed(prompt: str) -> str:
        raise EOFError

    assert UserInputTool(closed)("Hello?") == "(The user gave no answer: input is closed.)"


def test_the_toolkit_imports_without_httpx_and_names_the_extra_when_a_network_tool_runs() -> None:
    script = (
        "import sys; sys.modules['httpx'] = None\n"  # as if the toolkit extra were not installed
        "from codeloop.toolkit import python_interpreter, visit_webpage\n"
        "print(python_interpreter('print(6 * 7)'))\n"
        "try:\n    visit_webpage('https://example.org/')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert "Stdout:\n42" in out
    assert "needs the 'httpx' package: pip install 'codeloop[toolkit]'" in out
