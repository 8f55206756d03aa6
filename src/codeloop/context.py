"""Context policies: what the model is sent at each step, built from the run's memory.

Sending every step as it happened (smolagents' way, `FullHistory`) makes each request grow with
the run: a step costs its tokens again in every later request, so a run's input tokens grow
with the square of its length. `RecentWindow`, the default, keeps each request's size bounded:

* the system prompt and every task, verbatim;
* the last `recent_steps` action steps verbatim, as `FullHistory` sends them;
* the `short_steps` to `2 * short_steps - 1` action steps before those in short form: the code's
  first `code_lines` lines (the thought dropped), an error as its first line, the output whole if
  it has at most `output_chars` characters (a number, a short answer) else a marker saying how
  long it was, and the variables the code set. A ToolCallingAgent's steps keep their calls (name
  and arguments) and their results go the same way as outputs;
* the steps before those folded into one line that names the variables they set, `short_steps`
  at a time (so the start of the conversation changes once every `short_steps` steps, not at
  every step, which keeps providers' prompt caches useful);
* only the latest plan (older plans are left out); images only in the verbatim steps.

What was cut is not lost to the model: a CodeAgent's variables are still set in its executor,
and the model is told it can `print()` one to see it again; a tool can be called again.

A policy is a pure function of the memory (and its own settings): a resumed run, rebuilt from
its stored steps, sends what the first worker would have sent. Each step's verbatim and short
forms are rendered once and cached on the step (`codeloop.memory.rendered`).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .errors import ConfigurationError
from .memory import ActionStep, Memory, MemoryStep, PlanningStep, StepError, ToolResult, rendered
from .messages import ChatMessage, Role

__all__ = [
    "ContextPolicy",
    "FullHistory",
    "RecentWindow",
    "default_context_policy",
    "policy_from_dict",
    "policy_to_dict",
]

_LINE_CHARS = 100
"""The longest line of an older step's code that is kept whole."""
_FOLDED_NAMES = 40
"""How many variable names the line of folded steps lists (the most recently set)."""
_AGAIN = {
    True: "The variables they set still exist: print() one to see it again.",
    False: "Call a tool again to see its result.",
}
"""How the model sees again what was left out: a CodeAgent's variables, or a tool's call."""


@runtime_checkable
class ContextPolicy(Protocol):
    """Builds the messages of a model request from the run's memory. It must be a pure
    function of `memory` (and of the policy's own settings), so a resumed run sends the same."""

    def messages(self, memory: Memory, system_prompt: str) -> list[ChatMessage]:
        """The request's messages: the system prompt first, then the conversation."""
        ...


@dataclass(frozen=True)
class FullHistory:
    """Every step as it happened, each request (smolagents' behaviour): `Memory.to_messages`."""

    def messages(self, memory: Memory, system_prompt: str) -> list[ChatMessage]:
        return memory.to_messages(system_prompt)


@dataclass(frozen=True, kw_only=True)
class RecentWindow:
    """The recent steps verbatim, older ones short, the oldest folded (see the module's text).

    `recent_steps`: action steps sent verbatim (at least 1). `short_steps`: how many older
    steps are kept in short form before they are folded, that many at a time. `code_lines`:
    lines of an older step's code kept. `output_chars`: an older step's output (printed text, a
    tool's result) longer than this is left out, a shorter one kept; a reply without code is cut
    to this length."""

    recent_steps: int = 3
    short_steps: int = 10
    code_lines: int = 3
    output_chars: int = 100

    def __post_init__(self) -> None:
        for name, least in (("recent_steps", 1), ("short_steps", 1), ("code_lines", 0), ("output_chars", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ConfigurationError(f"RecentWindow: {name} must be an integer ≥ {least}, got {value!r}.")

    def messages(self, memory: Memory, system_prompt: str) -> list[ChatMessage]:
        layout = _Layout.of(memory.steps, self)
        messages = [ChatMessage(role=Role.SYSTEM, content=system_prompt)]
        for index, step in enumerate(memory.steps):
            if index == layout.first_old:
                messages.append(self._preamble(memory.steps, layout))
            messages.extend(self._step_messages(index, step, layout))
        return messages

    def _step_messages(self, index: int, step: MemoryStep, layout: _Layout) -> list[ChatMessage]:
        if isinstance(step, PlanningStep) and index != layout.latest_plan:
            return []  # an older plan: the latest one replaces it
        if not isinstance(step, ActionStep) or index >= layout.first_recent:
            return rendered(step, "full", _full)
        if index < layout.first_short:
            return []  # folded: the preamble names what it set
        return rendered(step, self, self.short_messages)

    def short_messages(self, step: ActionStep) -> list[ChatMessage]:
        """An older action step in short form (rendered once per step, then cached)."""
        native = step.tool_calls if step.native_tool_calls else ()
        messages = [ChatMessage(role=Role.ASSISTANT, content=self._short_reply(step), tool_calls=native)]
        if native:
            messages += [self._tool_message(r) for r in step.tool_results]
        elif step.tool_results:
            text = "\n".join(f"{r.name}: {self._short_result(r)}" for r in step.tool_results)
            messages.append(ChatMessage(role=Role.USER, content=f"Observation:\n{text}"))
        feedback = "\n".join(self._short_feedback(step))
        if feedback:
            messages.append(ChatMessage(role=Role.USER, content=feedback))
        return messages

    def _short_reply(self, step: ActionStep) -> str:
        """The code's first lines, the calls written as JSON, or the reply's text cut short."""
        if step.code_action is not None:
            return f"```python\n{_first_lines(step.code_action, self.code_lines)}\n```"
        if step.native_tool_calls:
            return ""
        if step.tool_calls:
            return "\n".join(json.dumps({"name": c.name, "arguments": c.arguments}) for c in step.tool_calls)
        return _truncated(step.model_output, self.output_chars)

    def _tool_message(self, result: ToolResult) -> ChatMessage:
        content = self._short_result(result)
        return ChatMessage(role=Role.TOOL, content=content, tool_call_id=result.call_id, name=result.name)

    def _short_result(self, result: ToolResult) -> str:
        if result.is_error:  # what went wrong stays: its first line
            return _truncated(_first_line(result.content), _LINE_CHARS * 2)
        return _kept_if_short(result.content, self.output_chars)

    def _short_feedback(self, step: ActionStep) -> Iterator[str]:
        if step.observations and not step.tool_results:
            yield f"Observation: {_kept_if_short(step.observations.rstrip(), self.output_chars)}"
        if step.error is not None:
            yield f"Error: {_short_error(step.error)}"
        names = rendered(step, "names", _set_names)
        if names:
            yield f"Variables set: {', '.join(names)}."
        if step.observations_images:
            yield f"[{len(step.observations_images)} image(s) left out]"

    def _preamble(self, steps: Sequence[MemoryStep], layout: _Layout) -> ChatMessage:
        """The note before the older steps: how they are shortened, how to see what was cut,
        and the folded steps in one line."""
        older = steps[layout.first_old : layout.first_recent]
        code = any(isinstance(s, ActionStep) and s.code_action is not None for s in older)
        lines = [f"[Earlier steps are shortened to keep this conversation short. {_AGAIN[code]}]"]
        folded = [s for s in steps[layout.first_old : layout.first_short] if isinstance(s, ActionStep)]
        if folded:
            lines.append(_folded_line(folded))
        return ChatMessage(role=Role.USER, content="\n".join(lines))


def default_context_policy() -> ContextPolicy:
    """The policy an agent uses when given none: `RecentWindow()` with its defaults."""
    return RecentWindow()


@dataclass(frozen=True)
class _Layout:
    """Where the parts of the conversation start, as indices into `memory.steps`."""

    first_old: int
    """The first older (short or folded) action step; -1: none."""
    first_short: int
    """The first action step in short form (those before it, from `first_old`, are folded)."""
    first_recent: int
    """The first action step sent verbatim."""
    latest_plan: int

    @classmethod
    def of(cls, steps: Sequence[MemoryStep], policy: RecentWindow) -> _Layout:
        actions = [i for i, s in enumerate(steps) if isinstance(s, ActionStep)]
        plans = [i for i, s in enumerate(steps) if isinstance(s, PlanningStep)]
        latest_plan = plans[-1] if plans else -1
        old = actions[: max(0, len(actions) - policy.recent_steps)]
        if not old:
            return cls(first_old=-1, first_short=0, first_recent=0, latest_plan=latest_plan)
        short = policy.short_steps
        folded = max(0, (len(old) - short) // short * short)  # whole blocks, at least `short` left
        return cls(
            first_old=old[0], first_short=old[folded], first_recent=actions[len(old)], latest_plan=latest_plan
        )


def _full(step: MemoryStep) -> list[ChatMessage]:
    return step.to_messages()


def _folded_line(folded: list[ActionStep]) -> str:
    """The folded steps in one line: their numbers and the variables they set."""
    first, last = folded[0].step_number, folded[-1].step_number
    order: dict[str, None] = {}
    for step in folded:
        for name in rendered(step, "names", _set_names):
            order.pop(name, None)
            order[name] = None  # most recently set last
    names = list(order)
    shown = names[-_FOLDED_NAMES:]
    more = f" and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
    listed = f" Variables they set: {', '.join(shown)}{more}." if names else ""
    return f"Steps {first} to {last} are left out.{listed}"


def _set_names(step: ActionStep) -> list[str]:
    """The names a CodeAgent step's code set at module level (variables, functions, classes,
    imports), in order; none for a step that failed (what it set is uncertain)."""
    if step.code_action is None or step.error is not None:
        return []
    try:
        tree = ast.parse(step.code_action)
    except (SyntaxError, ValueError):
        return []
    return list(dict.fromkeys(name for statement in tree.body for name in _bound(statement)))


_OWN_SCOPE = (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _bound(node: ast.AST) -> Iterator[str]:
    """The module-level names `node` binds: a function's or class's name (not what is inside
    it); nothing from a comprehension or lambda (their names are their own)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
        return
    if isinstance(node, _OWN_SCOPE):
        return
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        yield node.id
    elif isinstance(node, ast.Import):
        yield from ((a.asname or a.name).split(".")[0] for a in node.names)
    elif isinstance(node, ast.ImportFrom):
        yield from (a.asname or a.name for a in node.names if a.name != "*")
    for child in ast.iter_child_nodes(node):
        yield from _bound(child)


def _first_lines(code: str, count: int) -> str:
    """The code's first `count` lines (each cut to `_LINE_CHARS`), and how many were left out."""
    lines = code.strip("\n").splitlines()
    kept = [line if len(line) <= _LINE_CHARS else f"{line[:_LINE_CHARS]}…" for line in lines[:count]]
    if len(lines) > count:
        kept.append(f"# … {len(lines) - count} more line(s) left out")
    return "\n".join(kept)


def _kept_if_short(text: str, budget: int) -> str:
    """An output: whole if it fits `budget` (a number, a short answer), else a marker saying
    how long it was (its start is seldom what matters; the preamble says how to see it again)."""
    return text if len(text) <= budget else f"[{len(text):,} characters left out]"


def _truncated(text: str, budget: int) -> str:
    """Text that cannot be asked for again (the model's words, an error): its start, and a
    marker saying how much was left out."""
    if len(text) <= budget:
        return text
    return f"{text[:budget]}… [{len(text) - budget:,} more characters left out]"


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def _short_error(error: StepError) -> str:
    """The error's type and the first line of its message. A code error's message starts
    with the code's own error type ("ValueError (line 3: ...)"), the useful one: it is kept
    as it is; other messages get the step error's type in front."""
    line = _truncated(_first_line(error.message), _LINE_CHARS * 2)
    more = " […]" if line != error.message.strip() else ""
    return (line if _NAMES_ITS_TYPE.match(line) else f"{error.type}: {line}") + more


_NAMES_ITS_TYPE = re.compile(r"^\w*(Error|Exception|Exit|Interrupt|Warning)\b")


# ---- saving (codeloop.agents.persist) ------------------------------------------------------------

_CLASSES: dict[str, type[FullHistory] | type[RecentWindow]] = {
    "FullHistory": FullHistory,
    "RecentWindow": RecentWindow,
}


def policy_to_dict(policy: ContextPolicy, *, where: str = "this agent") -> dict[str, Any] | None:
    """A built-in policy as JSON data (its class and settings); None, with a warning, for any
    other policy (pass it again when loading)."""
    if not isinstance(policy, (FullHistory, RecentWindow)) or type(policy) not in _CLASSES.values():
        name = type(policy).__name__
        message = f"{where}: its context_policy ({name}) is not a built-in one and is not saved."
        warnings.warn(message, stacklevel=3)
        return None
    return {"class": type(policy).__name__, **dataclasses.asdict(policy)}


def policy_from_dict(data: Mapping[str, Any]) -> ContextPolicy:
    """The policy `policy_to_dict` described; `ConfigurationError` for data that does not fit."""
    if not isinstance(data, Mapping) or data.get("class") not in _CLASSES:
        known = " or ".join(_CLASSES)
        raise ConfigurationError(f"A saved context_policy must be a dict whose class is {known}: {data!r}.")
    settings = {key: value for key, value in data.items() if key != "class"}
    try:
        return _CLASSES[data["class"]](**settings)
    except TypeError as exc:
        raise ConfigurationError(f"The saved context_policy does not fit {data['class']}: {exc}.") from exc
