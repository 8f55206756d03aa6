"""Rewrites that let Monty run constructs it would otherwise get wrong, keeping every line in place.

Monty 1.4 does not call some dunder methods of user classes, and it builds generator
expressions all at once. Before a snippet is fed, `SessionRewriter` rewrites, when it applies:

* `target op= value` (when a class of this session defines that in-place method, e.g.
  `__iadd__`) into `target = _codeloop_iadd(target, value)`. The helper calls `__iadd__` when
  the object has one, falls back to `target + value` if that returns NotImplemented, as CPython
  does, and otherwise runs the native `+=` on its argument, so a list still grows in place and
  every alias sees it. An attribute or subscript target is evaluated once, into temporaries
  (`_codeloop_o`, `_codeloop_k`), in CPython's order.
* `len(x)` and truth tests - `if`, `while`, `assert`, `a if t else b`, comprehension
  conditions, `not x`, `bool(x)` - into helpers that honour `__len__` and `__bool__` (when a
  class of this session defines one of them). `and`/`or` used as a value (`x = a or b`) still
  use Monty's own truthiness, where every object is true.
* `del container[key]` (Monty has no `del`) into a helper that calls `__delitem__` of a user
  class, pops from a list or dict (a slice deletes its items) and otherwise raises CPython's
  TypeError. `del name` and `del obj.attr` stay unsupported: the error says what to write.
* a generator expression whose laziness can be observed - assigned to names, passed to
  `next()`, `iter()`, `any()`, `all()` or `islice()`, or looped over by `for` - into a lazy
  iterator object, if it has one `for` clause over a name or a flat tuple of names (no `await`,
  no `:=`). Elsewhere (`sum(...)`, `sorted(...)`) a generator expression stays a list built at
  once, which gives the same result.

The helpers are sandbox code (`PRELUDE`, fed once into a session that needs them): nothing here
lets the snippet reach the host. The host's cost is one `ast.parse` of a snippet that could need
a rewrite; the rewritten text is parsed again as a check, and any doubt keeps the original.
"""

from __future__ import annotations

import ast
import bisect
import re
from dataclasses import dataclass, field

__all__ = ["GENERATOR_CLASS", "MAX_REWRITE_CHARS", "PRELUDE", "SessionRewriter"]

GENERATOR_CLASS = "_codeloop_genexpr"
"""The class of the lazy generator objects the rewritten snippets build."""

MAX_REWRITE_CHARS = 20_000
"""Longer snippets are fed as written: the host's parsing work (about 3 µs a character, on the
event loop) stays bounded."""

_INPLACE = {
    ast.Add: ("add", "+"), ast.Sub: ("sub", "-"), ast.Mult: ("mul", "*"), ast.MatMult: ("matmul", "@"),
    ast.Div: ("truediv", "/"), ast.FloorDiv: ("floordiv", "//"), ast.Mod: ("mod", "%"),
    ast.Pow: ("pow", "**"), ast.LShift: ("lshift", "<<"), ast.RShift: ("rshift", ">>"),
    ast.BitAnd: ("and", "&"), ast.BitOr: ("or", "|"), ast.BitXor: ("xor", "^"),
}  # fmt: skip
_TRUTH_DUNDERS = frozenset({"__len__", "__bool__"})
_BOOL_RESULT = frozenset({"isinstance", "issubclass", "hasattr", "callable", "any", "all"})
_LAZY_CALLS = frozenset({"next", "iter", "any", "all", "islice"})


def _inplace_helper(name: str, symbol: str) -> str:
    # Monty has no `@=` at all, and no built-in type supports it: the fallback is `target @ value`.
    native = "target = target @ value" if symbol == "@" else f"target {symbol}= value"
    return f"""
def _codeloop_i{name}(target, value):
    if hasattr(target, "__i{name}__"):
        result = target.__i{name}__(value)
        if result is not NotImplemented:
            return result
        return target {symbol} value
    {native}
    return target
"""


_HELPERS = """
def _codeloop_len(obj):
    if hasattr(obj, "__len__"):
        n = obj.__len__()
        if not isinstance(n, int):
            raise TypeError(f"'{type(n).__name__}' object cannot be interpreted as an integer")
        if n < 0:
            raise ValueError("__len__() should return >= 0")
        return n
    return len(obj)


def _codeloop_truth(obj):
    if hasattr(obj, "__bool__"):
        result = obj.__bool__()
        if result is not True and result is not False:
            raise TypeError(f"__bool__ should return bool, returned {type(result).__name__}")
        return result
    if hasattr(obj, "__len__"):
        return _codeloop_len(obj) != 0
    return True if obj else False


def _codeloop_delitem(container, key):
    if hasattr(container, "__delitem__"):
        container.__delitem__(key)
    elif isinstance(container, list) and isinstance(key, slice):
        for index in sorted(range(len(container))[key], reverse=True):
            container.pop(index)
    elif isinstance(container, list) and isinstance(key, int) and not -len(container) <= key < len(container):
        raise IndexError("list assignment index out of range")
    elif isinstance(container, (list, dict)):
        container.pop(key)
    else:
        raise TypeError(f"'{type(container).__name__}' object doesn't support item deletion")


class _codeloop_genexpr:
    def __init__(self, source, element, conditions, names):
        self._source = iter(source)
        self._element = element
        self._conditions = conditions
        self._names = names

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            args = self._unpack(next(self._source))
            keep = True
            for condition in self._conditions:
                if not condition(*args):
                    keep = False
                    break
            if keep:
                return self._element(*args)

    def _unpack(self, item):
        if self._names == 0:
            return (item,)
        values = tuple(item)
        if len(values) > self._names:
            raise ValueError(f"too many values to unpack (expected {self._names})")
        if len(values) < self._names:
            raise ValueError(f"not enough values to unpack (expected {self._names}, got {len(values)})")
        return values

    def __repr__(self):
        return "<generator object <genexpr>>"
"""

PRELUDE = "".join(_inplace_helper(name, symbol) for name, symbol in _INPLACE.values()) + _HELPERS
"""Sandbox code defining the helpers the rewritten snippets call."""


@dataclass
class SessionRewriter:
    """Rewrites the snippets of one session; remembers what the session's classes define."""

    dunders: set[str] = field(default_factory=set)  # dunder methods defined by the session's classes
    shadowed: set[str] = field(default_factory=set)  # builtins the session rebinds at module level

    def rewrite(self, code: str) -> str:
        """`code`, rewritten where Monty needs it; the same text if nothing applies or on any doubt."""
        if len(code) > MAX_REWRITE_CHARS or "\r" in code:
            return code
        if not (self._gated() or _CANDIDATE.search(code)):
            return code
        try:
            tree = ast.parse(code)
            self._observe(tree)
            edits = _Edits(code, self.dunders, self.shadowed)
            edits.visit(tree)
            return edits.result()
        except (SyntaxError, ValueError, RecursionError, MemoryError, _Doubt):
            return code  # Monty reports its own syntax error; a pathological tree runs unrewritten

    def _gated(self) -> bool:
        return bool(self.dunders & _TRUTH_DUNDERS) or any(d.startswith("__i") for d in self.dunders)

    def _observe(self, tree: ast.Module) -> None:
        """Record the dunder methods the snippet's classes define and the builtins it rebinds, in
        one walk. Both only grow: a rewrite that is not needed is still correct, only slower."""
        methods: set[int] = set()
        for node in ast.walk(tree):  # breadth first: a class comes before its methods
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        methods.add(id(item))
                        if _is_dunder(item.name):
                            self.dunders.add(item.name)
            name = _bound_name(node, methods)
            if name is not None and _WATCHED.fullmatch(name):
                self.shadowed.add(name)


_WATCHED = re.compile(r"\b(len|bool|next|iter|any|all|islice)\b")
_CANDIDATE = re.compile(r"__|\b(for|del|len|bool|next|iter|any|all|islice)\b")  # worth parsing


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _bound_name(node: ast.AST, methods: set[int]) -> str | None:
    """The name `node` binds in its scope, if any (class methods excepted)."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        return node.id
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return None if id(node) in methods else node.name
    if isinstance(node, ast.alias):
        return (node.asname or node.name).split(".")[0]
    if isinstance(node, ast.arg):
        return node.arg
    if isinstance(node, ast.ExceptHandler):
        return node.name
    return None


class _Doubt(Exception):
    """A node's position does not match its text: the snippet is fed as written."""


class _Edits:
    """Collects text replacements over AST node spans, innermost first, and applies them."""

    def __init__(self, code: str, dunders: set[str], bound: set[str]) -> None:
        self.code = code
        self.data = code.encode()
        self.starts = [0] + [match.end() for match in re.finditer(b"\n", self.data)]
        self.edits: list[tuple[int, int, str]] = []
        self.inplace = {op for op, (name, _) in _INPLACE.items() if f"__i{name}__" in dunders}
        self.truth = bool(dunders & _TRUTH_DUNDERS)
        self.length = "__len__" in dunders
        self.bound = bound

    # -- positions and text --------------------------------------------------------------------

    def span(self, node: ast.expr | ast.stmt) -> tuple[int, int]:
        assert node.end_lineno is not None and node.end_col_offset is not None
        start = self.starts[node.lineno - 1] + node.col_offset
        return start, self.starts[node.end_lineno - 1] + node.end_col_offset

    def inside(self, start: int, end: int) -> tuple[int, int]:
        """The index range of the edits within [start, end). Edits are disjoint and sorted: an
        edit is made after those inside it (children first), and replaces them."""
        low = high = bisect.bisect_left(self.edits, (start,))
        while high < len(self.edits) and self.edits[high][1] <= end:
            high += 1
        return low, high

    def text(self, node: ast.expr | ast.stmt) -> str:
        """The node's source with the edits already made inside it."""
        return self.spliced(*self.span(node))

    def spliced(self, start: int, end: int) -> str:
        low, high = self.inside(start, end)
        out, at = [], start
        for s, e, new in self.edits[low:high]:
            out += [self.data[at:s].decode(), new]
            at = e
        return "".join(out) + self.data[at:end].decode()

    def replace(self, node: ast.expr | ast.stmt, new: str) -> None:
        start, end = self.span(node)
        self.verify(node, self.data[start:end].decode())
        low, high = self.inside(start, end)
        self.edits[low:high] = [(start, end, new)]

    @staticmethod
    def verify(node: ast.expr | ast.stmt, original: str) -> None:
        """The text at the node's position must parse back to the node, or nothing is rewritten."""
        if isinstance(node, ast.Name):
            if original != node.id:
                raise _Doubt
            return
        try:
            if isinstance(node, ast.stmt):
                again: ast.AST = ast.parse(original).body[0]
            else:
                again = ast.parse(f"({original})", mode="eval").body
        except (SyntaxError, IndexError):
            raise _Doubt from None
        if ast.dump(again) != ast.dump(node):
            raise _Doubt

    def result(self) -> str:
        if not self.edits:
            return self.code
        new_code = self.spliced(0, len(self.data))
        try:
            ast.parse(new_code)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return self.code
        return new_code if new_code.count("\n") == self.code.count("\n") else self.code

    def padded(self, node: ast.stmt | ast.expr, new: str, closing: str) -> str:
        """`new + closing`, with newlines added before `closing` so it spans as many lines as `node`."""
        missing = self.text(node).count("\n") - new.count("\n")
        return new + "\n" * max(missing, 0) + closing

    # -- the walk --------------------------------------------------------------------------------

    def visit(self, node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            self.visit(child)
        if isinstance(node, ast.AugAssign) and type(node.op) in self.inplace:
            self.augassign(node)
        elif isinstance(node, ast.Delete):
            self.delete(node)
        elif isinstance(node, ast.If | ast.While | ast.IfExp | ast.Assert) and self.truth:
            self.truth_test(node.test)
        elif isinstance(node, ast.comprehension) and self.truth:
            for condition in node.ifs:
                self.truth_test(condition)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and self.truth:
            self.truth_test(node.operand)
        elif isinstance(node, ast.Call):
            self.call(node)
        elif isinstance(node, ast.Name) and node.id == "len" and isinstance(node.ctx, ast.Load):
            if self.length and "len" not in self.bound:
                self.replace(node, "_codeloop_len")
        if isinstance(node, ast.Assign | ast.For):
            value = node.value if isinstance(node, ast.Assign) else node.iter
            if isinstance(value, ast.GeneratorExp):
                self.lazy(value)

    def call(self, node: ast.Call) -> None:
        name = _called_name(node)
        if name in self.bound:
            return
        if name == "bool" and self.truth and len(node.args) == 1 and not node.keywords:
            if not isinstance(node.args[0], ast.Starred):
                self.replace(node.func, "_codeloop_truth")
        elif name in _LAZY_CALLS and node.args and isinstance(node.args[0], ast.GeneratorExp):
            self.lazy(node.args[0])

    # -- the rewrites ----------------------------------------------------------------------------

    def augassign(self, node: ast.AugAssign) -> None:
        helper = f"_codeloop_i{_INPLACE[type(node.op)][0]}"
        value, target = self.text(node.value), node.target
        if isinstance(target, ast.Name):
            head, current, store = "", target.id, target.id
        elif isinstance(target, ast.Attribute):
            head = f"_codeloop_o = ({self.text(target.value)}); "
            current = store = f"_codeloop_o.{target.attr}"
        elif isinstance(target, ast.Subscript) and _plain_key(target.slice):
            head = f"_codeloop_o = ({self.text(target.value)}); _codeloop_k = ({self.key(target.slice)}); "
            current = store = "_codeloop_o[_codeloop_k]"
        else:
            return
        self.replace(node, self.padded(node, f"{head}{store} = {helper}({current}, ({value}", "))"))

    def delete(self, node: ast.Delete) -> None:
        targets = node.targets
        if not all(isinstance(t, ast.Subscript) and _plain_key(t.slice) for t in targets):
            return  # `del name` / `del obj.attr`: Monty's error, with its hint
        calls = [f"_codeloop_delitem({self.text(t.value)}, ({self.key(t.slice)}))"
                 for t in targets if isinstance(t, ast.Subscript)]  # fmt: skip
        self.replace(node, self.padded(node, "; ".join(calls), ""))

    def key(self, node: ast.expr) -> str:
        if not isinstance(node, ast.Slice):
            return self.text(node)
        parts = [self.text(p) if p is not None else "None" for p in (node.lower, node.upper, node.step)]
        return f"slice({', '.join(f'({p})' for p in parts)})"

    def truth_test(self, node: ast.expr) -> None:
        if isinstance(node, ast.BoolOp):
            for operand in node.values:
                self.truth_test(operand)
            return
        if isinstance(node, ast.Compare | ast.Constant | ast.UnaryOp) or _called_name(node) in _BOOL_RESULT:
            return  # already a bool (`not x` has its operand rewritten)
        self.replace(node, f"_codeloop_truth({self.text(node)})")

    def lazy(self, node: ast.GeneratorExp) -> None:
        """A lazy iterator object for a generator expression, when its shape allows."""
        if len(node.generators) != 1 or any(
            isinstance(sub, ast.Await | ast.NamedExpr | ast.Yield | ast.YieldFrom) for sub in ast.walk(node)
        ):
            return
        loop = node.generators[0]
        names = _target_names(loop.target)
        if loop.is_async or names is None:
            return
        params = ", ".join(names)
        element = f"lambda {params}: ({self.text(node.elt)})"
        conditions = "".join(f"lambda {params}: ({self.text(c)}), " for c in loop.ifs)
        unpack = 0 if isinstance(loop.target, ast.Name) else len(names)
        call = f"({GENERATOR_CLASS}(({self.text(loop.iter)}), {element}, ({conditions}), {unpack}"
        self.replace(node, self.padded(node, call, "))"))


def _called_name(node: ast.expr) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _plain_key(node: ast.expr) -> bool:
    return not (isinstance(node, ast.Tuple) and any(isinstance(e, ast.Slice) for e in node.elts))


def _target_names(target: ast.expr) -> list[str] | None:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple) and target.elts and all(isinstance(e, ast.Name) for e in target.elts):
        names = [e.id for e in target.elts if isinstance(e, ast.Name)]
        return names if len(set(names)) == len(names) else None
    return None
