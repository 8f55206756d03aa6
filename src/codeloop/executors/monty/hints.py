"""What to write instead: hints added to the errors Monty raises for what it does not support.

Each hint names the construct and the rewrite, because the reader is a model that will retry.
The parenthesised note about `executor="jail"` is for the developer reading the run: the model
cannot change executors, so the first sentence always says what to do inside this sandbox.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass

from .modules import is_stdlib

__all__ = ["HintContext", "limit_hint", "syntax_hint", "with_hint"]

_JAIL_STDLIB = "(executor='jail' runs full CPython with the whole standard library.)"
_JAIL_PACKAGES = (
    "(This agent runs its code in Monty; create it with executor='jail' to use numpy, pandas or "
    "other installed packages.)"
)

_UNSUPPORTED_HINTS = {
    "'del' statement": "`del` is not supported here: rebind the name instead (x = None), and use "
    "d.pop(key) / lst.pop(i) to remove items from a dict or list.",
    "yield": "generators (`yield`) are not supported here: build and return a list instead.",
    "class inheritance": "class inheritance is not supported here, so custom exception classes are "
    "not either: write standalone classes (or functions and dicts) and raise built-in exceptions "
    "such as ValueError('...').",
    "method decorators": "@property, @staticmethod and @classmethod are not supported here: use plain "
    "methods (call obj.x()) or module-level functions.",
    "complex class variable targets": "a class body here holds only methods and `name = value` class "
    "variables: set attributes or items of a class variable after the class statement, e.g. "
    "`MyClass.data.attr = value`.",
    "class bodies containing anything other than": "a class body here holds only methods and "
    "`name = value` class variables: move other statements after the class statement.",
}

_BUILTIN_HINTS = {
    "callable": "call it inside try/except TypeError instead.",
    "super": "class inheritance is not supported here: write standalone classes.",
    "issubclass": "class inheritance is not supported here: compare classes with `is`.",
    "input": "there is no user to ask: use the values in the task, or the tools.",
    "exit": "end the code with final_answer(...) instead.",
    "quit": "end the code with final_answer(...) instead.",
    "dir": "there is no introspection here: keep track of your own names and attributes.",
    "vars": "there is no introspection here: keep track of your own names and attributes.",
    "globals": "there is no introspection here: keep track of your own names and attributes.",
    "delattr": "set the attribute to None instead.",
    "bytearray": "build a list of ints and convert it with bytes(...) at the end.",
}

_MODULE_HINTS = {
    "heapq": "Instead, keep a list and use sorted() / list.sort(), or bisect.insort() to keep it "
    "ordered; min(items) and items.pop(0) take the smallest.",
    "fractions": "Instead, use decimal.Decimal, floats, or integer numerator/denominator with math.gcd.",
    "calendar": "Instead, use datetime: datetime.date(y, m, d).weekday(); subtract dates for month lengths.",
    "queue": "Instead, use collections.deque: append() to put, popleft() to get, len() to count.",
    "enum": "Instead, use plain constants or a dict (COLORS = {'RED': 1, 'GREEN': 2}).",
    "operator": "Instead, use a lambda (key=lambda item: item[1], lambda a, b: a * b).",
    "types": "Instead, use a dict or a small class; test kinds with isinstance(x, (list, dict)).",
    "stat": "There is no file system here, so file modes do not apply: use the tools to work with files.",
}
_NO_SYSTEM = "subprocess shutil glob tempfile socket urllib http requests httpx io sqlite3 pickle"
for _name in _NO_SYSTEM.split():
    _MODULE_HINTS[_name] = (
        "The sandbox has no file system, network or processes: use the tools for files and the web."
    )

# A dunder method Monty does not call, the error that reveals it, and what to write instead.
_IGNORED_DUNDERS = [
    (
        ("__lt__", "__le__", "__gt__", "__ge__"),
        re.compile(r"^'(<|<=|>|>=)' not supported between instances of"),
        "This sandbox does not call __lt__/__le__/__gt__/__ge__ of your own classes (so <, sorted(), "
        "min() and max() cannot use them): compare a key instead, e.g. sorted(items, key=lambda c: "
        "c.value) or a.value < b.value.",
    ),
    (
        ("__getattr__", "__getattribute__"),
        re.compile(r"object has no attribute"),
        "This sandbox does not call __getattr__/__getattribute__ of your own classes: keep the values "
        "in a dict attribute and read them with a method, e.g. obj.get('name').",
    ),
    (
        ("__format__",),
        re.compile(r"^Unknown format code .* for object of type"),
        "This sandbox does not call __format__ of your own classes: format a field or str(obj), "
        "e.g. f'{obj.value:.2f}'.",
    ),
    (
        ("__reversed__",),
        re.compile(r"object is not reversible$"),
        "This sandbox does not call __reversed__ of your own classes: use reversed(list(obj)).",
    ),
]

_EAGER = re.compile(r"\S.*\bfor\b.+\bin\b|\b(map|filter)\(")
_EAGER_NOTE = (
    "Note: generator expressions, map() and filter() are computed all at once in this sandbox "
    "(only a generator expression assigned to a name, looped over by `for` or passed to next(), "
    "iter(), any(), all() or islice() is lazy), so an endless source such as itertools.count() never "
    "finishes: loop over it with `for` and `break`, or take a bounded part with itertools.islice(source, n)."
)


@dataclass(frozen=True)
class HintContext:
    """What the hints may mention: the importable modules, and the dunder methods the session's
    own classes define (a hint about an ignored dunder is given only if one defines it)."""

    importable: str
    dunders: frozenset[str] = frozenset()


def with_hint(kind: str, message: str, context: HintContext) -> str:
    """`message` plus what to write instead, for what Monty refuses or does not support."""
    if kind == "NotImplementedError" and "does not yet support" in message:
        hint = next((h for key, h in _UNSUPPORTED_HINTS.items() if key in message), None)
        return hint or f"{message}. Rewrite this with simpler Python."
    if kind == "ModuleNotFoundError":
        return _module_hint(message, context.importable)
    if "not supported in this environment" in message or "Permission denied" in message:
        return f"{message}. The sandbox has no file system, environment or network access: use the tools."
    if kind == "TypeError" and ("can't be awaited" in message or "awaitable is required" in message):
        return (
            f"{message}. Tools return their result directly: call them without await, or to run them "
            "concurrently wrap each call in an `async def` that does `return await tool(...)`."
        )
    if kind == "NameError":
        return _builtin_hint(message)
    if kind == "TypeError" and message.startswith("isinstance() arg 2 must be a type"):
        return f"{message}. Classes are not instances of `type` here: isinstance(x, type) fails."
    for names, pattern, advice in _IGNORED_DUNDERS:
        if context.dunders.intersection(names) and pattern.search(message):
            return f"{message}. {advice}"
    return message


def _builtin_hint(message: str) -> str:
    """A Python builtin Monty lacks is "not defined": say it is a builtin, and what instead."""
    name = message.partition("'")[2].partition("'")[0]
    if not name or name.startswith("_") or not hasattr(builtins, name):
        return message
    advice = _BUILTIN_HINTS.get(name, "write this without it.")
    return f"{message}: `{name}` is a Python builtin that this sandbox does not provide; {advice}"


def _module_hint(message: str, importable: str) -> str:
    name = message.partition("'")[2].partition("'")[0]
    top = name.split(".")[0]
    available = f"Importable modules: {importable}."
    advice = _MODULE_HINTS.get(top)
    instead = f" {advice}" if advice else ""
    if not is_stdlib(top):
        return (
            f"{message}: third-party packages are not available in this sandbox and cannot be installed "
            f"here.{instead} Use plain Python and the standard library. {available} {_JAIL_PACKAGES}"
        )
    partial = "this sandbox provides only part of the standard library"
    return f"{message}: {partial}.{instead} {available} {_JAIL_STDLIB}"


_SHELL = re.compile(r"^([!%]|(pip3?|conda|apt(-get)?|python3? -m pip)\s+install\b)")


def syntax_hint(message: str, line: str | None, importable: str) -> str:
    """A syntax error on a shell line (`!pip install x`, `%pip ...`, `pip install x`) says why."""
    text = (line or "").strip()
    if not _SHELL.match(text):
        return message
    return (
        f"`{text[:60]}` is a shell command, not Python: packages cannot be installed here and "
        f"shell commands cannot run; use the standard library. Importable modules: {importable}. "
        f"{_JAIL_PACKAGES}"
    )


def limit_hint(line: str | None) -> str:
    """For a time or memory limit hit on a line that builds a sequence eagerly: why, and what instead."""
    if line and _EAGER.search(line.strip()) and not line.strip().startswith(("for ", "async for ")):
        return " " + _EAGER_NOTE
    return ""
