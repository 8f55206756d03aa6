"""Code handed back as the answer: `final_answer(my_function)` gives the function's source, and
the source is checked before it is accepted.

A function cannot leave any sandbox as data: Monty and the CPython worker both hand back its repr
(`<function 'f' at 0x..>`, `<function f at 0x..>`, `<class '__main__.C'>`), which names it; the
run's own record of the code it ran has the source.

Checks, before the run's last step (there the answer is taken as it is, rather than lost):

* the examples in the function's docstring (`>>> f(2)` then `4`) are run in the run's executor
  and compared with what the docstring says; the failures are the observation;
* a function no code of the run ever called is held back once, with a request to run it on
  examples first (a small model tends to hand back untried code).
"""

from __future__ import annotations

import ast
import doctest
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..executors.base import CodeOutput
from .guards import Definition

__all__ = ["MAX_EXAMPLES", "Example", "HandedBack", "examples_note", "handed_back", "untried_note"]

MAX_EXAMPLES = 8
"""Docstring examples run at most, per hand-back."""
_REPR = re.compile(
    r"<(?:function '?(?P<function>\w+)'? at 0x[0-9a-f]+|class '(?:__main__\.)?(?P<class>\w+)')>"
)
_SHOWN_CHARS = 200


@dataclass(frozen=True)
class Example:
    """One docstring example: the code, what it should print, and whether it is an expression
    (its value is compared) or a statement (it must only run). `error` names an expected
    exception type."""

    source: str
    want: str
    is_expression: bool
    error: str | None = None

    def code(self) -> str:
        """What the executor runs: an expression's repr is its last value."""
        return f"repr({self.source})" if self.is_expression else self.source

    def failure(self, out: CodeOutput) -> str | None:
        """What went wrong when the example ran, in the model's terms; None when it passed.
        As in doctest, what it printed counts, then an expression's repr unless it is None."""
        if self.error is not None:
            if out.error is not None and out.error.type == self.error:
                return None
            got = f"raised {out.error.type}" if out.error else "raised nothing"
            return f"{self.source} {got}, the docstring expects {self.error}"
        if out.error is not None:
            return f"{self.source} raised {out.error.type}: {_cut(out.error.message)}"
        value = str(out.output) if self.is_expression and out.output not in (None, "None") else ""
        got = _lines(out.logs + value)
        if got != _lines(self.want):
            shown = "returned" if value and not out.logs else "printed"
            return f"{self.source} {shown} {_cut(got) or 'nothing'}, the docstring expects {_cut(self.want)}"
        return None


@dataclass(frozen=True)
class HandedBack:
    """A function or class the answer stands for: its name, its source with the imports it
    uses, and its docstring's examples."""

    name: str
    source: str
    examples: tuple[Example, ...]


def handed_back(
    answer: object, definitions: Mapping[str, Definition], imports: Mapping[str, str] | None = None
) -> HandedBack | None:
    """What `answer` stands for if it is the repr of a function or class the run's code defined
    (`definitions`: by name), with the run's import statements it uses (`imports`: by
    bound name) put first, so the source runs on its own."""
    match = _REPR.fullmatch(answer) if isinstance(answer, str) else None
    name = (match["function"] or match["class"]) if match else None
    known = definitions.get(name) if name else None
    if name is None or known is None:
        return None
    source = known.source
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return HandedBack(name, source, ())
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    needed = list(dict.fromkeys(imports[n] for n in sorted(used) if n in imports)) if imports else []
    full = "\n".join([*needed, "", source]) if needed else source
    return HandedBack(name, full, _examples(tree))


def _examples(tree: ast.Module) -> tuple[Example, ...]:
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return ()
    docstring = ast.get_docstring(node) or ""
    try:
        parsed = doctest.DocTestParser().get_examples(docstring)
    except ValueError:  # a malformed example: nothing to run
        return ()
    return tuple(_example(e) for e in parsed[:MAX_EXAMPLES])


def _example(example: doctest.Example) -> Example:
    source = example.source.strip()
    try:
        is_expression = isinstance(ast.parse(source).body[0], ast.Expr) and "\n" not in source
    except (SyntaxError, IndexError):
        is_expression = False
    error = None
    if example.exc_msg is not None:
        error = example.exc_msg.split(":", 1)[0].strip().rsplit(".", 1)[-1] or None
    return Example(source, example.want.strip(), is_expression, error)


def examples_note(name: str, failures: list[str], count: int) -> str:
    """The rejection of a hand-back whose docstring examples failed."""
    shown = "\n".join(f"- {failure}" for failure in failures)
    return (
        f"Not accepted yet: {len(failures)} of the {count} examples in {name}'s docstring failed:\n"
        f"{shown}\nFix {name}, run it on these examples, then call final_answer({name}) again."
    )


def untried_note(name: str) -> str:
    """The rejection of a function handed back that no code of the run ever called."""
    return (
        f"Not accepted yet: {name}() has never been run. Call it on the task's examples and on "
        f"edge cases, print what it returns, fix what is wrong, then call final_answer({name})."
    )


def _lines(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _cut(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."
