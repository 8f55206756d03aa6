"""Compiling a snippet REPL-style and describing what it raised (runs inside the worker).

Standard library only: this module runs inside the worker (see `worker.py`).
"""

from __future__ import annotations

import ast
import sys
import types

from .capture import OutputLimitExceeded

__all__ = ["FILE_PREFIX", "compile_snippet", "frames_in_snippets", "limit_of", "stack_depth"]

FILE_PREFIX = "<code-"


def compile_snippet(code: str, filename: str) -> tuple[types.CodeType, types.CodeType | None]:
    """The snippet as a body and, when it ends with an expression, that expression (REPL-style)."""
    tree = ast.parse(code, filename, "exec")
    _explain_asserts(tree)
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    last = None
    tail = tree.body[-1] if tree.body else None
    if isinstance(tail, ast.Expr):
        tree.body.pop()
        expr = ast.Expression(tail.value)
        last = compile(expr, filename, "eval", flags=flags, dont_inherit=True)
    return compile(tree, filename, "exec", flags=flags, dont_inherit=True), last


_COMPARISONS = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not",
}  # fmt: skip


def _explain_asserts(tree: ast.Module) -> None:
    """Give `assert a == b` (one comparison, no message) the message `assert 2 == 3`, with the
    values compared, as Monty does: CPython's AssertionError says nothing. Each side is still
    evaluated once, in order; the line numbers stay."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert) or node.msg is not None:
            continue
        test = node.test
        if not isinstance(test, ast.Compare) or len(test.ops) != 1 or type(test.ops[0]) not in _COMPARISONS:
            continue
        left, right = test.left, test.comparators[0]
        test.left = ast.copy_location(ast.NamedExpr(ast.Name("_codeloop_left", ast.Store()), left), left)
        named = ast.NamedExpr(ast.Name("_codeloop_right", ast.Store()), right)
        test.comparators = [ast.copy_location(named, right)]
        symbol = _COMPARISONS[type(test.ops[0])]
        message = f'f"assert {{_codeloop_left!r:.300}} {symbol} {{_codeloop_right!r:.300}}"'
        node.msg = ast.parse(message, mode="eval").body
        for part in ast.walk(node.msg):
            ast.copy_location(part, node)
    ast.fix_missing_locations(tree)


def frames_in_snippets(exc: BaseException) -> list[tuple[str, str, int]]:
    """(filename, function, line) of each traceback frame in snippet code, outermost first."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename.startswith(FILE_PREFIX):
            frames.append((code.co_filename, code.co_name, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def limit_of(exc: BaseException) -> str | None:
    if isinstance(exc, RecursionError) and "maximum recursion depth" in str(exc):
        return "max_recursion_depth"
    if isinstance(exc, MemoryError):
        return "memory_bytes"
    if isinstance(exc, OutputLimitExceeded):
        return "max_output_chars"
    return None


def stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1  # type: ignore[assignment]
    return depth
