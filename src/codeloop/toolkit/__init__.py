"""The default toolkit: the tools agents add with `add_base_tools=True`.

Ready-made instances, importable by name - `web_search`, `visit_webpage`, `wikipedia_search`,
`python_interpreter`, `user_input` - and their classes for other settings (a search backend, a
Wikipedia language, an executor, an input function...). `base_tools()` builds a fresh set.
The network tools need the `toolkit` extra: `pip install 'codeloop[toolkit]'`.
"""

from __future__ import annotations

from ..executors import Executor, ExecutorLimits
from ..tools import Tool
from ._common import ToolkitError
from .ask import InputFunction, UserInputTool, user_input
from .interpreter import PythonInterpreterTool, format_code_output, python_interpreter
from .search import (
    DdgsBackend,
    SearchBackend,
    SearchResult,
    SearxngBackend,
    WebSearchTool,
    format_results,
    web_search,
)
from .webpage import VisitWebpageTool, html_to_markdown, visit_webpage
from .wikipedia import WIKIPEDIA_API, WikipediaSearchTool, wikipedia_search

__all__ = [
    "WIKIPEDIA_API",
    "DdgsBackend",
    "InputFunction",
    "PythonInterpreterTool",
    "SearchBackend",
    "SearchResult",
    "SearxngBackend",
    "ToolkitError",
    "UserInputTool",
    "VisitWebpageTool",
    "WebSearchTool",
    "WikipediaSearchTool",
    "base_tools",
    "format_code_output",
    "format_results",
    "html_to_markdown",
    "python_interpreter",
    "user_input",
    "visit_webpage",
    "web_search",
    "wikipedia_search",
]


def base_tools(
    *,
    python: bool = True,
    ask_user: bool = True,
    executor: str | Executor = "monty",
    limits: ExecutorLimits | None = None,
    search_backend: SearchBackend | None = None,
    wikipedia_language: str = "en",
    input_fn: InputFunction | None = None,
) -> list[Tool]:
    """Fresh instances of the default tools, in this order: `web_search`, `visit_webpage`,
    `wikipedia_search`, `python_interpreter` (when `python`; a code agent passes `python=False`,
    it already runs code) and `user_input` (when `ask_user`; pass `False` where nobody can answer).
    """
    tools: list[Tool] = [
        WebSearchTool(search_backend),
        VisitWebpageTool(),
        WikipediaSearchTool(language=wikipedia_language),
    ]
    if python:
        tools.append(PythonInterpreterTool(executor, limits=limits))
    if ask_user:
        tools.append(UserInputTool(input_fn))
    return tools
