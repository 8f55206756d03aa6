"""Bounded measurement of values that crossed from the sandbox, before the host works on them.

Values from Monty keep their shared parts: `x = [1]` then `x = [x, x]` forty times is forty-one
small lists in the host, but a walk path by path (a recursive size check, `repr`, `json.dumps`,
pydantic validation) would visit 2**41 nodes. `measure` counts what such a walk would visit,
every shared part each time it is reached, in time linear in the number of distinct containers
(each container's count is kept by identity), and stops with `TooLarge` as soon as the count
passes the cap. A cycle counts as infinitely large. Leaves are counted in bulk (C loops); only
containers are visited one by one, and `measure_steps` yields every `CHUNK` of them so the host
can run it on its event loop (`drive`) without stalling other tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .helper_child import CHUNK, VISIT_CAP, TooLarge, run_steps

__all__ = ["CONTAINERS", "VISIT_CAP", "Shape", "TooLarge", "drive", "measure", "measure_steps", "within_cap"]

CONTAINERS = (list, tuple, set, frozenset, dict)
_CONTAINER_TYPES = frozenset(CONTAINERS)


@dataclass
class Shape:
    """What `measure` found: the visits a path-by-path walk would make (characters of str and
    bytes included when asked), the nesting depth, and the types of the leaves."""

    size: int = 0
    depth: int = 0
    kinds: set[type] = field(default_factory=set)


def _parts(value: Any) -> Sequence[Any]:
    if type(value) is list or type(value) is tuple:
        return value
    if isinstance(value, dict):
        return [x for item in value.items() for x in item]
    return value if isinstance(value, list | tuple) else list(value)


def _inner(parts: Sequence[Any], shape: Shape, text: bool) -> tuple[list[Any], int]:
    """The containers among `parts`, and the count of the others (plus their characters with
    `text`); notes the leaves' types in `shape`."""
    kinds = set(map(type, parts))
    nested = {k for k in kinds if issubclass(k, CONTAINERS)}
    if nested != kinds:
        shape.kinds |= kinds - nested
    if not nested:
        inner: list[Any] = []
    else:
        inner = list(parts) if nested == kinds else [p for p in parts if isinstance(p, CONTAINERS)]
    leaves = len(parts) - len(inner)
    if text and kinds & {str, bytes}:
        leaves += sum(len(v) for v in parts if isinstance(v, str | bytes))
    return inner, leaves


def measure_steps(
    roots: Sequence[Any], shape: Shape, cap: int = VISIT_CAP, *, text: bool = False
) -> Iterator[None]:
    """Fill `shape` for the values `roots`, yielding every CHUNK containers; TooLarge past `cap`."""
    top = list(roots)
    memo: dict[int, tuple[int, int]] = {}
    pending: dict[int, tuple[list[Any], int]] = {}  # the containers being measured: the path here
    stack: list[Any] = [top]
    visits = 0
    while stack:
        node = stack.pop()
        key = id(node)
        if key in pending:  # its parts are measured
            inner, leaves = pending.pop(key)
            sizes = [memo[id(p)] for p in inner]
            size = 1 + leaves + sum(s for s, _ in sizes)
            if size > cap + 1:
                raise TooLarge(cap)
            memo[key] = (size, 1 + max((d for _, d in sizes), default=0))
        elif key not in memo:
            visits += 1
            if visits % CHUNK == 0:
                yield
            inner, leaves = _inner(_parts(node), shape, text)
            if not inner:
                memo[key] = (1 + leaves, 1)
                continue
            pending[key] = (inner, leaves)
            if any(id(p) in pending for p in inner):
                raise TooLarge(cap)  # a cycle: a path-by-path walk would never end
            stack.append(node)
            stack.extend(p for p in inner if id(p) not in memo)
    size, depth = memo[id(top)]
    shape.size, shape.depth = size - 1, depth - 1


def measure(roots: Sequence[Any], cap: int = VISIT_CAP, *, text: bool = False) -> Shape:
    """`measure_steps` at once."""
    shape = Shape()
    run_steps(measure_steps(roots, shape, cap, text=text))
    return shape


async def drive(steps: Iterator[Any]) -> None:
    """Run a step generator on the event loop, letting other tasks run between its steps."""
    for _ in steps:
        await asyncio.sleep(0)


async def within_cap(roots: Sequence[Any], cap: int = VISIT_CAP, *, text: bool = False) -> Shape:
    """`measure` driven on the event loop (see `drive`)."""
    shape = Shape()
    await drive(measure_steps(roots, shape, cap, text=text))
    return shape
