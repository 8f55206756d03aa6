"""Google-style docstrings: the summary, the `Args:` entries and the `Returns:` text."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

__all__ = ["Docstring", "parse_docstring"]

_ARG_SECTIONS = frozenset({"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"})
_RETURN_SECTIONS = frozenset({"returns", "return", "yields"})
_OTHER_SECTIONS = frozenset(
    {"raises", "examples", "example", "note", "notes", "warning", "warnings", "see also", "references",
     "todo", "attributes"}
)  # fmt: skip
_SECTION_RE = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
_ARG_RE = re.compile(r"^\*{0,2}(?P<name>\w+)\s*(?:\([^)]*\))?\s*:\s*(?P<desc>.*)$")


@dataclass(frozen=True)
class Docstring:
    summary: str
    args: dict[str, str]
    returns: str | None


def parse_docstring(doc: str | None) -> Docstring:
    """Split a Google-style docstring into summary, `Args:` entries and `Returns:` text."""
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in inspect.cleandoc(doc or "").splitlines():
        header = _SECTION_RE.match(line)
        if header and header.group(1).lower() in _ARG_SECTIONS | _RETURN_SECTIONS | _OTHER_SECTIONS:
            current = header.group(1).lower()
            sections.setdefault(current, [])
        else:
            sections[current].append(line)
    args: dict[str, str] = {}
    for name in _ARG_SECTIONS & sections.keys():
        args.update(_parse_arg_lines(sections[name]))
    returns = " ".join(w for n in _RETURN_SECTIONS & sections.keys() for w in " ".join(sections[n]).split())
    return Docstring("\n".join(sections[""]).strip(), args, returns or None)


def _parse_arg_lines(lines: list[str]) -> dict[str, str]:
    """`name (type): text` entries; more-indented lines continue the previous entry."""
    filled = [line for line in lines if line.strip()]
    if not filled:
        return {}
    indent = min(len(line) - len(line.lstrip()) for line in filled)
    entries: dict[str, str] = {}
    current: str | None = None
    for line in filled:
        match = _ARG_RE.match(line.strip()) if len(line) - len(line.lstrip()) == indent else None
        if match:
            current = match.group("name")
            entries[current] = match.group("desc").strip()
        elif current is not None:
            entries[current] = f"{entries[current]} {line.strip()}".strip()
    return entries
