"""What the CodeAgent knows about the code it runs, so it can keep a small model on track.

* `Snippet`: one code action, parsed once on the host: its fingerprint (to spot the same code
  again), the functions and classes it defines (to hand their source back), and the literal data
  tables it writes (to spot made-up facts).
* `RunGuard`: one run's repetition watch. A step that repeats an earlier step's code, or the
  previous step's error, gets a note asking for a different approach; `max_repeats` repeats in a
  row and the run is stuck (it ends with `RunState.STUCK`).

Code handed back as the answer (`final_answer(my_function)`) is `handback`'s concern.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from ..tools import Tool

__all__ = [
    "MAX_ANALYZED_CHARS",
    "RESULTS_SHOWN",
    "SILENT_STEP",
    "Definition",
    "RunGuard",
    "Snippet",
    "gave_up",
    "gave_up_note",
    "invented_data_note",
    "missing_key_note",
    "no_tool_answer_hint",
    "tool_results_note",
    "unknown_name_note",
    "with_earlier_line",
]

MAX_ANALYZED_CHARS = 20_000
"""Longer snippets are not parsed on the host, so the guards' work on the event loop stays
under about 60 ms (the analysis costs about 3 µs a character); they run unguarded."""

SILENT_STEP = "(no output: the code ran without errors but printed nothing. Print what you need to see.)"
"""The observation of a code action that printed nothing, returned nothing and raised nothing."""

_CHANGE = "Try a different approach."
_LINE_NUMBER = re.compile(r"\blines? \d+(?:, \d+)*")
_TABLE_MIN = 3  # a literal of this many constant values or more is a data table


class Definition(NamedTuple):
    """A function or class a code action defined: the line of the snippet it starts on (its
    first decorator's), and its source text."""

    first_line: int
    source: str


_EARLIER = re.compile(r"\(raised in (?P<name>\w+)\(\) from an earlier step, line (?P<line>\d+)\)")


def with_earlier_line(message: str, definitions: Mapping[str, Definition]) -> str:
    """An error raised in a function an earlier step defined names its line by number only
    (the executor no longer has that step's text): add the line itself."""
    match = _EARLIER.search(message)
    known = definitions.get(match["name"]) if match else None
    if match is None or known is None:
        return message
    lines = known.source.splitlines()
    index = int(match["line"]) - known.first_line
    if not 0 <= index < len(lines):
        return message
    return message[: match.end() - 1] + f": {lines[index].strip()})" + message[match.end() :]


@dataclass(frozen=True)
class Snippet:
    """One code action and its parse (`tree` is None when it does not parse, or is too long)."""

    code: str
    tree: ast.Module | None

    @classmethod
    def parse(cls, code: str) -> Snippet:
        if len(code) > MAX_ANALYZED_CHARS:
            return cls(code, None)
        try:
            return cls(code, ast.parse(code))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return cls(code, None)

    def fingerprint(self) -> str:
        """The same for the same code, whatever its whitespace, comments or formatting."""
        if self.tree is not None:
            text = ast.dump(self.tree)
        else:
            lines = (line.strip() for line in self.code.splitlines())
            text = "\n".join(line for line in lines if line and not line.startswith("#"))
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def definitions(self, ran_through: int | None = None) -> dict[str, Definition]:
        """The functions and classes defined at top level, by name; with `ran_through`, only
        those ending on or before that line (the snippet failed there)."""
        found: dict[str, Definition] = {}
        lines = self.code.splitlines()
        for node in self.tree.body if self.tree is not None else ():
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            end = node.end_lineno or node.lineno
            if ran_through is None or end <= ran_through:
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                found[node.name] = Definition(first, "\n".join(lines[first - 1 : end]))
        return found

    def imports(self, ran_through: int | None = None) -> dict[str, str]:
        """The top-level import statements, by each name they bind (`import re` -> {"re": ...});
        with `ran_through`, only those on or before that line."""
        found: dict[str, str] = {}
        lines = self.code.splitlines()
        for node in self.tree.body if self.tree is not None else ():
            ran = ran_through is None or node.lineno <= ran_through
            if isinstance(node, ast.Import | ast.ImportFrom) and ran:
                text = "\n".join(lines[node.lineno - 1 : node.end_lineno or node.lineno])
                for alias in node.names:
                    found[(alias.asname or alias.name).split(".")[0]] = text
        return found

    def called_names(self) -> set[str]:
        """Names the code calls (`f(...)`), except a function's calls of itself in its own body."""
        found: set[str] = set()
        for node in self.tree.body if self.tree is not None else ():
            inside = node.name if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else None
            found |= {
                call.func.id
                for call in ast.walk(node)
                if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id != inside
            }
        return found

    def defined_functions(self) -> list[str]:
        """Names of the functions defined at top level, in order."""
        body = self.tree.body if self.tree is not None else []
        return [n.name for n in body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]

    def data_tables(self, task: str) -> list[int]:
        """Lines assigning or returning a literal of several constants that mostly do not appear
        in `task`: data the code wrote itself (a price list, a table of facts)."""
        found = []
        for node in ast.walk(self.tree) if self.tree is not None else ():
            if not isinstance(node, ast.Assign | ast.AnnAssign | ast.Return) or node.value is None:
                continue
            values = _constants(node.value)
            if values is not None and len(values) >= _TABLE_MIN:
                unseen = [v for v in values if str(v) not in task]
                if 2 * len(unseen) > len(values):
                    found.append(node.lineno)
        return sorted(set(found))


def _constants(node: ast.expr) -> list[Any] | None:
    """The constant values of a literal dict (its values), list, tuple or set, nested ones
    included; None when anything in it is computed."""
    if isinstance(node, ast.Constant) and not isinstance(node.value, bool) and node.value is not None:
        return [node.value]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _constants(node.operand)
        return [-v for v in inner] if inner and isinstance(inner[0], int | float) else None
    items = node.values if isinstance(node, ast.Dict) else getattr(node, "elts", None)
    if not isinstance(node, ast.Dict | ast.List | ast.Tuple | ast.Set) or items is None:
        return None
    found: list[Any] = []
    for item in items:
        inner = _constants(item)
        if inner is None:
            return None
        found += inner
    return found


def invented_data_note(tables: list[tuple[int, int]], tools: Collection[str]) -> str:
    """The rejection of a final answer whose facts the code wrote itself (`tables`: step, line)."""
    where = "; ".join(f"step {step}, line {line}" for step, line in tables[:3])
    named = ", ".join(f"{name}()" for name in list(tools)[:3])
    return (
        f"Not accepted yet: no tool was called in this run, and your code wrote its own data "
        f"({where}). Facts must come from the tools ({named}): call them and use what they "
        "return. If the task itself gave those values, call final_answer again."
    )


_RESULT_CHARS = 300  # of each tool result shown after an error
RESULTS_SHOWN = 4
"""Tool calls shown after a failed action (the last ones); more are summed up as skipped."""
_NOT_DEFINED = re.compile(r"name '(?P<name>\w+)' is not defined")


def tool_results_note(calls: list[tuple[str, str]]) -> str | None:
    """What the tools returned in a step that then failed, [(call, repr of result)]: the model
    sees the real shape of the data it guessed wrong (a missing key, a list taken for a dict)."""
    if not calls:
        return None
    shown = [f"{call} returned {_cut(result)}" for call, result in calls[-RESULTS_SHOWN:]]
    skipped = len(calls) - len(shown)
    head = "Before the error, the tools returned" + (f" (last {len(shown)} calls)" if skipped else "")
    return head + ":\n" + "\n".join(shown)


def _cut(text: str) -> str:
    return text if len(text) <= _RESULT_CHARS else text[:_RESULT_CHARS] + "..."


def unknown_name_note(message: str, code: str, tools: Collection[str]) -> str | None:
    """For `name 'x' is not defined` where the code calls x: the functions it can call instead."""
    match = _NOT_DEFINED.search(message)
    if match is None or not tools or not re.search(rf"\b{match['name']}\s*\(", code):
        return None
    named = ", ".join(f"{name}()" for name in tools)
    return f"{match['name']}() is not one of your tools. You can call: {named}."


_MISSING_KEY = re.compile(r"^'(?P<key>\w+)'$")


def missing_key_note(
    error_type: str, message: str, tools: Mapping[str, Tool], used: Collection[str]
) -> str | None:
    """For `KeyError: 'weight_kg'` on data from the tools: the tools (not among `used`, those the
    failed action called) whose prompt entry names that key, with their signatures. A small
    model tends to answer "no weight_kg found" instead."""
    match = _MISSING_KEY.match(message.strip()) if error_type == "KeyError" else None
    if match is None:
        return None
    from ..tools._render import tool_entry

    key = re.compile(rf"\b{re.escape(match['key'])}\b")
    entries = (tool_entry(tool) for name, tool in tools.items() if name not in used)
    found = [entry.splitlines()[0] for entry in entries if key.search(entry)]
    if not found:
        return None
    return f"'{match['key']}' is in what these tools return: {'; '.join(found[:3])}. Call one to get it."


_GIVE_UP = re.compile(
    r"\b(not (?:found|available|known|present|exist\w*)|no \w+(?: \w+)? (?:found|available|information)|"
    r"does(?: not|n't) (?:have|exist|contain)|can(?:not|'t)|could(?: not|n't)|unable|unknown|no such)\b",
    re.IGNORECASE,
)


def gave_up(answer: object) -> bool:
    """Whether a final answer is text saying the facts could not be found ("No item with
    weight_kg found", "The order does not have a 'price_usd' key")."""
    return isinstance(answer, str) and len(answer) < 300 and _GIVE_UP.search(answer) is not None


def gave_up_note(answer: str, unused: Collection[str]) -> str:
    """The rejection of a give-up answer while some tools were never called."""
    named = ", ".join(f"{name}()" for name in list(unused)[:4])
    return (
        f"Not accepted yet: {json.dumps(answer, ensure_ascii=False)} says what is missing, but you "
        f"have not called {named} yet. Read their descriptions: one of them may give it."
    )


def no_tool_answer_hint(answer: str, tools: Collection[str]) -> str:
    """For a plain-text answer given before any tool was called."""
    named, quoted = ", ".join(f"{name}()" for name in list(tools)[:4]), json.dumps(answer, ensure_ascii=False)
    return (
        f"Your reply had no code block, and no tool has been called yet, so {quoted} does "
        f"not come from the tools. Write code that calls them ({named}) to get the facts, in a "
        "```python block."
    )


@dataclass
class RunGuard:
    """One run's watch for a model that repeats itself."""

    max_repeats: int | None = 3
    seen: dict[str, int] = field(default_factory=dict)
    """Fingerprint of each code action of the run -> the step that first ran it."""
    repeated_step: int | None = None
    """The earlier step whose code the current step repeats."""
    last_error: str | None = None
    repeats: int = 0
    """Steps in a row that repeated an earlier step's code or the previous step's error."""
    stuck: str | None = None
    """Why the run must end, once `max_repeats` is reached."""
    tables: list[tuple[int, int]] = field(default_factory=list)
    """(step, line) of each data table the run's code wrote (with `check_invented_data`)."""
    data_checked: bool = False
    """Whether a final answer was already held back for made-up data (it is, once a run)."""
    tool_calls_at_start: int = 0
    asked_for_tools: bool = False
    """Whether a plain-text answer before any tool call was already answered with a request to
    call the tools (it is, once a run)."""
    called: set[str] = field(default_factory=set)
    """Names the run's code called (so a function handed back can be known to have been tried)."""
    untried_asked: bool = False
    """Whether a function handed back untried was already held back (it is, once a run)."""
    gave_up_asked: bool = False
    """Whether a give-up answer was already held back (it is, once a run)."""
    examples_rejected: int = 0
    """Hand-backs held back so far because their docstring examples failed."""

    def see_code(self, snippet: Snippet, step_number: int) -> None:
        self.called |= snippet.called_names()
        earlier = self.seen.setdefault(snippet.fingerprint(), step_number)
        self.repeated_step = earlier if earlier != step_number else None

    def after_success(self) -> str | None:
        """Count the step; the note for the model if it repeated earlier code."""
        return self._count(None)

    def after_error(self, message: str) -> str | None:
        """Count the step; the note for the model if it repeated earlier code or the previous
        error (the same message, wherever it happened: line numbers are not compared)."""
        return self._count(_LINE_NUMBER.sub("line", message))

    def _count(self, error: str | None) -> str | None:
        same_error = error is not None and error == self.last_error
        earlier, self.repeated_step, self.last_error = self.repeated_step, None, error
        self.repeats = self.repeats + 1 if (earlier is not None or same_error) else 0
        if self.max_repeats is not None and self.repeats >= self.max_repeats:
            self.stuck = (
                f"The model repeated itself {self.repeats} times in a row (the same code or the same "
                "error), so the run was stopped."
            )
        if earlier is not None:
            return (
                f"You already ran this exact code (step {earlier}): running it again will not help. {_CHANGE}"
            )
        return f"This is the same error as in the previous step. {_CHANGE}" if same_error else None
