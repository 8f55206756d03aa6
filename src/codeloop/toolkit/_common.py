"""Shared pieces of the toolkit: its error type, text truncation and the optional-import helper."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

__all__ = ["DEFAULT_USER_AGENT", "ToolkitError", "httpx_module", "require", "truncate_text"]

DEFAULT_USER_AGENT = "codeloop-toolkit/0.1 (+https://github.com/codeloop)"


class ToolkitError(Exception):
    """A toolkit tool could not do its job (page refused, timeout, API error). The message is
    written for the model: it says what happened and, where possible, what to try instead."""


def require(module: str, package: str) -> ModuleType:
    """Import `module`, or raise `ImportError` naming the extra that provides `package`."""
    try:
        return import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"This tool needs the {package!r} package: pip install 'codeloop[toolkit]'"
        ) from exc


def httpx_module() -> ModuleType:
    """`httpx`, imported when a network tool first runs (the toolkit imports without it)."""
    return require("httpx", "httpx")


def truncate_text(text: str, max_chars: int, what: str = "content") -> str:
    """`text` cut to `max_chars`, with a note saying how much was left out."""
    if len(text) <= max_chars:
        return text
    dropped = len(text) - max_chars
    return f"{text[:max_chars]}\n\n[{what} truncated: {dropped} more characters not shown]"
