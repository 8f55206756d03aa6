"""Scorers: did an agent's output answer its task? Each gives a `Score` (a value, usually 0..1,
whether it passed, and why not).

* `ExactMatch` ("exact"): equal values, or equal text; with `normalize` (the default) the text
  is compared with whitespace runs collapsed and case folded.
* `NumericMatch` ("numeric"): the output's number is `math.isclose` to the expected one under
  `rel_tol` and `abs_tol`. A text output is read as a number ("$1,234.50", "42.") or, failing
  that, must hold exactly one number ("The answer is 42.") — two numbers are ambiguous, a fail.
* `Contains` ("contains"): the expected text (or every text of an expected list) is in the
  output's text (normalised as for exact).
* `FunctionScorer` ("module:function", or any callable): `(output, expected, task) -> bool |
  float` (sync or async). A number passes when it reaches `threshold` (default 1.0: only full
  credit passes); the value is kept as the score either way.
* `JudgeScorer` ("judge"): a `Model` is asked whether the output answers the task given the
  expected answer; its verdict is read by `parse_verdict` (a "VERDICT: CORRECT" line, JSON, or
  a plain yes/no), and a reply with no clear verdict fails, saying so.

A scorer is anything with `name` and `async score(output, expected, task) -> Score`; `as_scorer`
turns a name, a `{"name": ..., **options}` spec or a plain callable into one.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import math
import numbers
import os
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from ..errors import ConfigurationError
from ..messages import ChatMessage, Role, Usage

if TYPE_CHECKING:
    from ..models.base import Model
    from .tasks import EvalTask, ScorerField

__all__ = [
    "JUDGE_PROMPT",
    "SCORER_NAMES",
    "Contains",
    "ExactMatch",
    "FunctionScorer",
    "JudgeScorer",
    "NumericMatch",
    "Score",
    "ScoreFunction",
    "Scorer",
    "ScorerSpecError",
    "Verdict",
    "as_scorer",
    "import_named",
    "load_function",
    "parse_verdict",
]

SCORER_NAMES = ("exact", "numeric", "contains", "judge")
"""The built-in scorers' names; any other name must be "module:function"."""

ScoreFunction = Callable[[Any, Any, "EvalTask"], "bool | float | Awaitable[bool | float]"]


class ScorerSpecError(ConfigurationError):
    """A scorer name, spec or function that cannot be used; the message says why."""


@dataclass(frozen=True)
class Score:
    """A scorer's judgement: `value` (1.0 full credit, 0.0 none), `passed`, and `reason` (why
    it failed, or the judge's explanation). A scorer that called a model says what it spent:
    `usage`, and `model_id` to price it."""

    value: float
    passed: bool
    reason: str | None = None
    usage: Usage | None = None
    model_id: str | None = None

    @classmethod
    def of(cls, passed: bool, reason: str | None = None) -> Score:
        return cls(1.0 if passed else 0.0, passed, reason)


@runtime_checkable
class Scorer(Protocol):
    """Scores one output. `name` is shown in results and errors."""

    @property
    def name(self) -> str: ...

    async def score(self, output: Any, expected: Any, task: EvalTask) -> Score: ...


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _normalized(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class ExactMatch:
    """Equal values, or equal text (see the module docstring)."""

    normalize: bool = True
    name: ClassVar[str] = "exact"

    async def score(self, output: Any, expected: Any, task: EvalTask) -> Score:
        if output == expected:
            return Score.of(True)
        mine, theirs = _text(output), _text(expected)
        if self.normalize:
            mine, theirs = _normalized(mine), _normalized(theirs)
        return Score.of(mine == theirs, None if mine == theirs else f"expected {_clip(_text(expected))}")


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class NumericMatch:
    """The output's number is close to the expected one (see the module docstring)."""

    rel_tol: float = 1e-6
    abs_tol: float = 1e-9
    name: ClassVar[str] = "numeric"

    def __post_init__(self) -> None:
        if self.rel_tol < 0 or self.abs_tol < 0:
            raise ScorerSpecError(f"numeric tolerances must not be negative: {self.rel_tol}, {self.abs_tol}")

    async def score(self, output: Any, expected: Any, task: EvalTask) -> Score:
        want, why_not = read_number(expected)
        if want is None:
            return Score.of(False, f"the expected answer is not a number: {why_not}")
        got, why_not = read_number(output)
        if got is None:
            return Score.of(False, why_not)
        close = math.isclose(got, want, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        return Score.of(close, None if close else f"{got:g} is not {want:g}")


def read_number(value: Any) -> tuple[float | None, str]:
    """`value` as a number, or None and why not (see `NumericMatch`)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value), ""
    if not isinstance(value, str):
        return None, f"{_clip(_text(value))} is not a number"
    text = value.strip().replace(",", "")
    try:
        return float(text.removeprefix("$").removesuffix("%").rstrip(".").strip()), ""
    except ValueError:
        pass
    found = _NUMBER.findall(text)
    if len(found) == 1:
        return float(found[0]), ""
    if not found:
        return None, f"no number in {_clip(value)}"
    return None, f"{len(found)} numbers ({', '.join(found[:5])}) in the output, not one"


@dataclass(frozen=True)
class Contains:
    """The expected text (every one of an expected list) is in the output's text."""

    normalize: bool = True
    name: ClassVar[str] = "contains"

    async def score(self, output: Any, expected: Any, task: EvalTask) -> Score:
        wanted = [_text(e) for e in expected] if isinstance(expected, (list, tuple)) else [_text(expected)]
        text = _text(output)
        if self.normalize:
            text, wanted = _normalized(text), [_normalized(w) for w in wanted]
        missing = [w for w in wanted if w not in text]
        return Score.of(not missing, f"missing: {', '.join(map(repr, missing))}" if missing else None)


@dataclass(frozen=True)
class FunctionScorer:
    """A function `(output, expected, task) -> bool | float` (sync or async) as a scorer."""

    function: ScoreFunction
    threshold: float = 1.0
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or str(getattr(self.function, "__qualname__", None) or repr(self.function))

    async def score(self, output: Any, expected: Any, task: EvalTask) -> Score:
        value = self.function(output, expected, task)
        if inspect.isawaitable(value):
            value = await value
        if isinstance(value, Score):
            return value
        if isinstance(value, bool):
            return Score.of(value)
        if isinstance(value, numbers.Real):
            number = float(value)
            passed = number >= self.threshold
            return Score(number, passed, None if passed else f"score {number:g} < {self.threshold:g}")
        raise TypeError(f"the scorer {self.name} returned {_clip(repr(value))}: return a bool or a number")


JUDGE_PROMPT = """You are grading an AI agent's answer to a task.

Task:
{task}

Expected answer:
{expected}

The agent's answer:
{output}

Does the agent's answer answer the task correctly, in agreement with the expected answer? \
Differences of wording, formatting or precision that do not change the meaning do not matter.
Give a one-sentence reason, then end with a line that is exactly VERDICT: CORRECT or VERDICT: INCORRECT."""


@dataclass(frozen=True)
class JudgeScorer:
    """A model as judge (see the module docstring). `prompt` has {task}, {expected}, {output}."""

    model: Model
    prompt: str = JUDGE_PROMPT
    name: ClassVar[str] = "judge"

    async def score(self, output: Any, expected: Any, task: EvalTask) -> Score:
        text = self.prompt.format(task=task.task, expected=_text(expected), output=_text(output))
        reply = await self.model.agenerate([ChatMessage(role=Role.USER, content=text)])
        verdict = parse_verdict(reply.content)
        if verdict.passed is None:
            score = Score.of(False, f"the judge gave no clear verdict: {_clip(reply.content)}")
        else:
            score = Score.of(verdict.passed, verdict.reason or None)
        return dataclasses.replace(score, usage=reply.usage, model_id=self.model.model_id)


@dataclass(frozen=True)
class Verdict:
    """A judge's reply read: `passed` (None when it gave no clear verdict) and its reason."""

    passed: bool | None
    reason: str


_YES = {"correct", "yes", "pass", "passed", "true", "right", "accept", "accepted"}
_NO = {"incorrect", "no", "not", "fail", "failed", "false", "wrong", "reject", "rejected"}
_VERDICT_LINE = re.compile(
    r"^\W*(?:final\s+)?(?:verdict|answer|grade|judgement|judgment)\W*(\w+)", re.IGNORECASE | re.MULTILINE
)
_LONE_WORD = re.compile(r"^\W*(\w+)\W*?(?:[.,:;!\u2013\u2014-]|$)")
"""A line that starts with a word standing alone: "Correct.", "**No**", "Yes, it matches"."""
_THINKING = re.compile(r"<think(?:ing)?>.*?(?:</think(?:ing)?>|\Z)", re.I | re.S)


def parse_verdict(reply: str) -> Verdict:
    """Read a judge's reply: a "VERDICT: CORRECT"-like line (the last one wins; markdown and
    "final" allowed), else a JSON object's "verdict" / "correct" / "passed", else a reply whose
    first or last line starts with a lone yes/no word ("Correct. ..."). Thinking
    (`<think>...</think>`) is ignored."""
    text = _THINKING.sub("", reply).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    for word in reversed(_VERDICT_LINE.findall(text)):
        if (passed := _word(word)) is not None:
            kept = [line for line in lines if not _VERDICT_LINE.match(line)]
            return Verdict(passed, "\n".join(kept).strip())
    if (passed := _json_verdict(text)) is not None:
        return Verdict(passed, text)
    for line in (lines[0], lines[-1]) if lines else ():
        lone = _LONE_WORD.match(line)
        if lone and (passed := _word(lone.group(1))) is not None:
            rest = line[lone.end() :].strip()
            return Verdict(passed, "\n".join([rest] * bool(rest) + [o for o in lines if o is not line]))
    return Verdict(None, text)


def _word(word: str) -> bool | None:
    word = word.casefold()
    return True if word in _YES else False if word in _NO else None


def _json_verdict(text: str) -> bool | None:
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end <= start:
        return None
    try:
        data = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    for key in ("verdict", "correct", "passed", "pass"):
        value = data.get(key)
        if isinstance(value, bool):
            return value
        words = re.findall(r"\w+", value) if isinstance(value, str) else []
        if words and (passed := _word(words[0])) is not None:
            return passed
    return None


def as_scorer(
    value: Scorer | ScoreFunction | ScorerField,
    *,
    judge: Model | None = None,
    defaults: Mapping[str, Mapping[str, Any]] | None = None,
) -> Scorer:
    """A scorer from a `Scorer`, a callable, a name or a `{"name": ..., **options}` spec.
    `judge` is the model of "judge"; `defaults` are options by scorer name, under the spec's own
    (e.g. `{"numeric": {"abs_tol": 0.01}}`: the eval's tolerance, also for a task's "numeric")."""
    if isinstance(value, Scorer):
        return value
    if isinstance(value, (str, Mapping)):
        return _from_spec(value, judge, defaults or {})
    if callable(value):
        return FunctionScorer(value)
    raise ScorerSpecError(f"{_clip(repr(value))} is not a scorer, a scorer name or a function")


_KINDS: dict[str, Callable[..., Scorer]] = {
    "exact": ExactMatch, "numeric": NumericMatch, "contains": Contains, "judge": JudgeScorer,
}  # fmt: skip


def _from_spec(
    spec: str | Mapping[str, Any], judge: Model | None, defaults: Mapping[str, Mapping[str, Any]]
) -> Scorer:
    options: dict[str, Any] = dict(spec) if isinstance(spec, Mapping) else {"name": spec}
    name = str(options.pop("name", ""))
    options = {**defaults.get(name, {}), **options}
    if name not in _KINDS and ":" not in name:
        raise ScorerSpecError(f"unknown scorer {name!r}: use {', '.join(SCORER_NAMES)} or module:function")
    if name == "judge":
        if judge is None:
            raise ScorerSpecError("the judge scorer needs a judge model (--judge-model, or judge=Model)")
        options["model"] = judge
    try:
        if name in _KINDS:
            return _KINDS[name](**options)
        return FunctionScorer(load_function(name), label=name, **options)
    except TypeError as exc:
        raise ScorerSpecError(f"scorer {name!r}: bad options {sorted(options)} ({exc})") from None


def load_function(spec: str) -> Callable[..., Any]:
    """The function "module:function" names (the current directory is searched first)."""
    function = import_named(spec, "the scorer", ScorerSpecError, "my_scorers:same_city")
    if not callable(function):
        raise ScorerSpecError(f"{spec} is not a function in {spec.partition(':')[0]}")
    return function  # type: ignore[no-any-return]


def import_named(spec: str, what: str, error: type[Exception], example: str) -> Any:
    """The attribute "module:attr" names, the current directory searched first (as a command's
    `--agent` does); `error` says what is wrong with the spec, for `what`."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise error(f"{spec!r} is not module:attribute, e.g. {example}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise error(f"cannot import {module_name} for {what} {spec}: {exc}") from None
    return getattr(module, attr, None)


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
