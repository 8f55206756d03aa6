"""Protecting tool names from the model's own code, in every executor.

Small models copy a tool's signature from the prompt and "implement" it with made-up data
(`def get_price(item): return {...}[item]`), then call their fake. Before a snippet goes to any
executor, `shield` renames every binding of a protected name (the tools, the managed agents,
`final_answer`) to an inert name, keeping every other character and every line where it was, so
calls in the snippet still reach the real function and errors keep their line numbers. It also
says so, in a note for the model.

Renamed: `def` / `class` names (a method or class attribute keeps its name: it binds nothing
global), assignment, augmented-assignment, `for`, `with`, walrus and comprehension targets,
`import x as name` and `from m import name`, `except ... as name`, match captures, names in
`global` / `nonlocal` statements, and `globals()["name"] = ...`. Function parameters are left
alone: they bind a value the caller passes, inside that function only.

What this cannot see (`globals().update(...)`, `exec`, a snippet too long to parse on the host,
over `guards.MAX_ANALYZED_CHARS`) lasts until the end of that snippet: every executor binds the
real functions again before each snippet runs.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from ..errors import AgentExecutionError

__all__ = ["INERT_PREFIX", "Shielded", "shield"]

INERT_PREFIX = "_ignored_"
"""A protected binding is renamed to this prefix plus its name."""

_LINE_BREAK = re.compile(rb"\r\n?|\n")


@dataclass(frozen=True)
class Shielded:
    """A snippet with its protected bindings renamed: `code` is what the executor runs, `notes`
    tell the model what was ignored (empty when nothing was)."""

    code: str
    notes: tuple[str, ...] = ()


def shield(code: str, tree: ast.Module | None, protected: Collection[str]) -> Shielded:
    """`code` with every binding of a `protected` name renamed, line for line (`tree` is its
    parse, or None when it does not parse: the executor then reports the syntax error).

    Raises `AgentExecutionError` (the model is told not to bind the name) in the rare case where
    a binding's text is not where its node says, so the rename cannot be made safely."""
    if tree is None or not protected or not any(name in code for name in protected):
        return Shielded(code)
    finder = _Bindings(code.encode(), frozenset(protected))
    try:
        finder.visit(tree)
        renamed = _checked(code, finder) if finder.edits else code
    except _Doubt as doubt:
        names = " and ".join(f"`{n}`" for n in sorted({*finder.lines, *doubt.args}))
        raise AgentExecutionError(
            f"{names} names a function you are given: do not define or assign it, call it. Nothing ran."
        ) from None
    notes = tuple(_note(name, lines) for name, lines in sorted(finder.lines.items()))
    return Shielded(renamed, notes)


def _checked(code: str, finder: _Bindings) -> str:
    """The renamed code, if it parses, keeps every line and binds no protected name any more."""
    renamed = finder.apply()
    again = _Bindings(renamed.encode(), finder.protected)
    try:
        again.visit(ast.parse(renamed))
    except (SyntaxError, ValueError):
        raise _Doubt from None
    if again.edits or _line_count(renamed) != _line_count(code):
        raise _Doubt
    return renamed


def _note(name: str, lines: list[int]) -> str:
    numbers = sorted(set(lines))
    where = f"line{'s' if len(numbers) > 1 else ''} {', '.join(str(n) for n in numbers)}"
    what = "the final_answer function" if name == "final_answer" else "a tool"
    return (
        f"`{name}` is {what}: your definition of it ({where}) was ignored; "
        f"calls to {name}() go to the real one."
    )


def _line_count(code: str) -> int:
    return len(_LINE_BREAK.findall(code.encode()))


class _Doubt(Exception):
    """A binding cannot be renamed safely (its text is not where its node says...); the args
    are the names concerned, when known."""


@dataclass
class _Bindings(ast.NodeVisitor):
    """Finds the bindings of protected names in a parsed snippet, as byte-span renames."""

    data: bytes
    protected: frozenset[str]
    edits: dict[int, tuple[int, str]] = field(default_factory=dict)  # start -> (end, new text)
    lines: dict[str, list[int]] = field(default_factory=dict)  # name -> lines where it was bound
    in_class_body: bool = False

    def __post_init__(self) -> None:
        self.starts = [0] + [m.end() for m in _LINE_BREAK.finditer(self.data)]

    def apply(self) -> str:
        out, at = [], 0
        for start in sorted(self.edits):
            end, new = self.edits[start]
            if start < at:
                raise _Doubt
            out += [self.data[at:start], new.encode()]
            at = end
        return b"".join([*out, self.data[at:]]).decode()

    # -- recording a rename --

    def rename(self, name: str, line: int, start: int, end: int, new: str | None = None) -> None:
        if self.data[start:end].decode(errors="replace").split()[-1:] != [name]:
            raise _Doubt(name)
        prefix = self.data[start:end][: -len(name.encode())].decode()
        self.edits[start] = (end, new or prefix + INERT_PREFIX + name)
        self.lines.setdefault(name, []).append(line)

    def offset(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col

    def span(self, node: ast.expr | ast.stmt | ast.alias | ast.pattern) -> tuple[int, int]:
        if node.end_lineno is None or node.end_col_offset is None:
            raise _Doubt
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)

    def search(self, pattern: bytes, start: int, end: int) -> Iterator[re.Match[bytes]]:
        return re.compile(pattern).finditer(self.data, start, end)

    # -- the walk --

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store) and node.id in self.protected and not self.in_class_body:
            self.rename(node.id, node.lineno, *self.span(node))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.definition(node, rb"(?:async\s+)?def\s+")

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.definition(node, rb"class\s+")

    def definition(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, keyword: bytes) -> None:
        if node.name in self.protected and not self.in_class_body:
            start = self.offset(node.lineno, node.col_offset)
            match = re.compile(keyword + re.escape(node.name.encode()) + rb"\b").match(self.data, start)
            if match is None:
                raise _Doubt(node.name)
            self.rename(node.name, node.lineno, start, match.end())
        outer, self.in_class_body = self.in_class_body, False
        for child in (*node.decorator_list, *_signature(node)):
            self.visit(child)
        self.in_class_body = isinstance(node, ast.ClassDef)
        for statement in node.body:
            self.visit(statement)
        self.in_class_body = outer

    def visit_Lambda(self, node: ast.Lambda) -> None:
        outer, self.in_class_body = self.in_class_body, False
        self.generic_visit(node)
        self.in_class_body = outer

    def visit_alias(self, node: ast.alias) -> None:
        bound = node.asname or node.name.split(".")[0]
        if bound in self.protected and not self.in_class_body:
            start, end = self.span(node)
            self.rename(bound, node.lineno, start, end, f"{node.name} as {INERT_PREFIX}{bound}")

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name in self.protected and not self.in_class_body:
            start = self.offset(node.lineno, node.col_offset)
            end = self.span(node.body[0])[0]
            found = list(self.search(rb"\bas\s+" + re.escape(node.name.encode()) + rb"\b", start, end))
            if not found:
                raise _Doubt(node.name)
            self.rename(node.name, node.lineno, found[-1].start(), found[-1].end())
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global | ast.Nonlocal) -> None:
        start, end = self.span(node)
        for name in (n for n in node.names if n in self.protected):
            for match in self.search(rb"\b" + re.escape(name.encode()) + rb"\b", start, end):
                self.edits[match.start()] = (match.end(), INERT_PREFIX + name)
            self.lines.setdefault(name, []).append(node.lineno)

    visit_Nonlocal = visit_Global

    def visit_MatchAs(self, node: ast.MatchAs | ast.MatchStar) -> None:
        if node.name in self.protected and not self.in_class_body:
            end = self.span(node)[1]
            self.rename(node.name, node.lineno, end - len(node.name.encode()), end)
        self.generic_visit(node)

    visit_MatchStar = visit_MatchAs

    def visit_Subscript(self, node: ast.Subscript) -> None:
        """`globals()["name"] = value`."""
        key = node.slice
        if (
            isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "globals"
            and isinstance(key, ast.Constant)
            and key.value in self.protected
        ):
            name = str(key.value)
            start, end = self.span(key)
            self.edits[start] = (end, repr(INERT_PREFIX + name))
            self.lines.setdefault(name, []).append(node.lineno)
        self.generic_visit(node)


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> list[ast.AST]:
    if isinstance(node, ast.ClassDef):
        return [*node.bases, *node.keywords]
    return [node.args, *([node.returns] if node.returns else [])]
