"""Python names for tools and arguments whose real (wire) names are not identifiers:
`math.factorial` -> `math_factorial`, `get-weather` -> `get_weather`, `2fa` -> `_2fa`,
`class` -> `class_`. Collisions get `_2`, `_3`... deterministically: names that are already
valid keep them, then the others are assigned in the order given."""

from __future__ import annotations

import keyword
from collections.abc import Iterable

__all__ = ["code_name", "code_names"]


def _base(name: str) -> str:
    text = "".join(c if f"a{c}".isidentifier() else "_" for c in name)
    while "__" in text.strip("_"):
        text = text.replace("__", "_")
    if not text.strip("_"):
        text = "_"
    if text[0].isdigit():
        text = f"_{text}"
    return f"{text}_" if keyword.iskeyword(text) else text


def _is_code_name(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def code_name(name: str, taken: Iterable[str] = ()) -> str:
    """`name` if it is a usable Python identifier, else a sanitised form; `_2`, `_3`... are
    appended while the result is in `taken`."""
    used = set(taken)
    base = name if _is_code_name(name) else _base(name)
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def code_names(names: Iterable[str]) -> dict[str, str]:
    """Wire name -> Python name for several names at once, with no two Python names equal.
    Valid identifiers are kept as they are; the others are sanitised in order."""
    wire = list(dict.fromkeys(names))
    result = {n: n for n in wire if _is_code_name(n)}
    taken = set(result)
    for n in wire:
        if n not in result:
            result[n] = code_name(n, taken)
            taken.add(result[n])
    return {n: result[n] for n in wire}
