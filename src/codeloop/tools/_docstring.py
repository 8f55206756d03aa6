"""Google-style docstrings: the summary, the `Args:` entries and the `Returns:` text.

As in smolagents, an `Args:` description may end with `(choices: ["a", "b"])` (the values as a
JSON list) to restrict the parameter to those values (`split_choices`), and a `Returns:` text
may start with its type (`float: The result.`), which is not part of the description.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Docstring", "parse_docstring", "split_choices"]

_ARG_SECTIONS = frozenset({"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"})
_RETURN_SECTIONS = frozenset({"returns", "return", "yields"})
_OTHER_SECTIONS = frozenset(
    {"raises", "examples", "example", "note", "notes", "warning", "warnings", "see also", "references",
     "todo", "attributes"}
)  # fmt: skip
_SECTION_RE = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
_ARG_RE = re.compile(r"^\*{0,2}(?P<name>\w+)\s*(?:\([^)]*\))?\s*:\s*(?P<desc>.*)$")
_CHOICES_RE = re.compile(r"\(choices:\s*(?P<values>.*?)\)\s*$", re.IGNORECASE | re.DOTALL)
# A leading type in a `Returns:` text: a (dotted) name, maybe subscripted, maybe `|`-joined, maybe
# in backticks. "A mapping: from keys to values" is not one (a space outside brackets).
_TYPE = r"[A-Za-z_][\w.]*(?:\[[\w\[\]., |]*\])?"
_RETURN_TYPE_RE = re.compile(rf"^`?{_TYPE}(?:\s*\|\s*{_TYPE})*`?\s*:\s+(?P<text>\S.*)$", re.DOTALL)
_CHOICE_TYPES = (str, int, float, bool, type(None))


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
    return Docstring("\n".join(sections[""]).strip(), args, _strip_return_type(returns) or None)


def _strip_return_type(text: str) -> str:
    """`float: The result.` -> `The result.` (the return type comes from the hint)."""
    match = _RETURN_TYPE_RE.match(text)
    return match.group("text") if match else text


def split_choices(description: str) -> tuple[str, tuple[Any, ...] | None]:
    """`"The color (choices: ['red', 'blue'])"` -> `("The color", ("red", "blue"))`.

    The values are a JSON list (a Python list literal is accepted too) of strings, numbers,
    booleans or null; strings are stripped. Raises `ValueError` when they cannot be read."""
    match = _CHOICES_RE.search(description)
    if match is None:
        return description, None
    values = _read_values(match.group("values"))
    stripped = [v.strip() if isinstance(v, str) else v for v in values]
    unique = {(type(v), v): v for v in stripped}  # by type too: True and 1 are different choices
    return description[: match.start()].strip(), tuple(unique.values())


def _read_values(raw: str) -> list[Any]:
    try:
        values = json.loads(raw)
    except json.JSONDecodeError:
        try:
            values = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            values = None
    if isinstance(values, (list, tuple)) and values and all(isinstance(v, _CHOICE_TYPES) for v in values):
        return list(values)
    raise ValueError(
        f"`(choices: {raw})` is not a list of values; write them as a JSON list, "
        'e.g. (choices: ["red", "green"])'
    )


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
