"""The UI's wire format: each event as `codeloop.events.event_to_dict` gives it, plus what the
page shows and cannot compute itself.

A `CodeAction` gets `code_html` (its code highlighted by pygments, every character escaped); a
model's reply (`ModelOutput`, `ModelCallFinished`) gets `thought` (its text before the code);
a finished step's images are replaced by their count. Stored runs are told with the same
dicts (see `codeloop.ui.stored`), so one renderer in the page shows both.
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING, Any

from ..events import event_to_dict

if TYPE_CHECKING:
    from ..events import Event

__all__ = ["enrich", "highlight", "thought_of", "wire"]

_CODE_START = re.compile(r"```|<code>", re.IGNORECASE)


def wire(event: Event) -> dict[str, Any]:
    """The event as the page receives it."""
    return enrich(event_to_dict(event))


def enrich(data: dict[str, Any]) -> dict[str, Any]:
    """Add the fields the page shows to an event's dict (changed in place, and returned)."""
    kind = data.get("type")
    if kind == "CodeAction":
        data["code_html"] = highlight(str(data.get("code", "")))
    elif kind in ("ModelOutput", "ModelCallFinished"):
        message = data.get("message") or {}
        data["thought"] = thought_of(str(message.get("content") or ""))
    elif kind == "StepFinished":
        step = data.get("memory_step")
        if isinstance(step, dict) and step.get("observations_images"):
            step["observations_images"] = f"{len(step['observations_images'])} image(s)"
    return data


def thought_of(content: str) -> str:
    """A reply's text before its first code block (all of it when it has none)."""
    found = _CODE_START.search(content)
    return (content if found is None else content[: found.start()]).strip()


def highlight(code: str) -> str:
    """Python code as HTML: pygments' token spans (classes such as `k`, `s1`, `nb`), escaped."""
    from pygments import highlight as render  # type: ignore[import-untyped]

    return str(render(code, _lexer(), _formatter())).rstrip("\n")


@cache
def _lexer() -> Any:
    from pygments.lexers import PythonLexer  # type: ignore[import-untyped]

    return PythonLexer(stripnl=False, ensurenl=False)


@cache
def _formatter() -> Any:
    from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped]

    return HtmlFormatter(nowrap=True)
