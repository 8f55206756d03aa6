"""Eval tasks: a JSON Lines dataset, one task per line, checked before anything runs.

    {"id": "pencils", "task": "27 pencils at 3 for $1.20 cost how much?", "expected": 10.8,
     "tags": ["arithmetic"], "scorer": "numeric", "additional_args": {"currency": "USD"}}

Only `task` is required. `id` (a string or an integer) defaults to the line number (the first
line is "1"); ids must be unique, since a results file is resumed by id. `expected` is any JSON
value the scorer compares the output with. `scorer` overrides the eval's scorer for this task:
a name ("exact", "numeric", "contains", "judge", "module:function") or an object with a "name"
and the scorer's options, e.g. `{"name": "numeric", "abs_tol": 0.01}` (see
`codeloop.evals.scorers`). `additional_args` are given to the agent's run. An unknown field is
an error rather than a silently ignored typo. Blank lines are skipped (they still count for line
numbers). A bad line raises `TaskFileError`, naming the line and what is wrong with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigurationError

__all__ = ["EvalTask", "ScorerField", "TaskFileError", "load_tasks", "parse_tasks", "tasks_from"]

_UNKNOWN = "unknown field (the fields are id, task, expected, tags, scorer, additional_args)"
ScorerField = str | dict[str, Any]
"""A task's `scorer`: a scorer name, or `{"name": ..., **options}`."""


class TaskFileError(ConfigurationError):
    """The dataset cannot be used. `line` is the 1-based line at fault (None: the whole file)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class EvalTask(BaseModel):
    """One task of an eval; `line` is where it was read (0 for a task built in code)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    task: str
    expected: Any = None
    tags: tuple[str, ...] = ()
    scorer: ScorerField | None = None
    additional_args: dict[str, Any] = Field(default_factory=dict)
    line: int = Field(default=0, exclude=True)

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        """An integer id is kept as its text: ids are compared as strings when resuming."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("id", "task")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("scorer")
    @classmethod
    def _named(cls, value: ScorerField | None) -> ScorerField | None:
        if isinstance(value, dict) and not isinstance(value.get("name"), str):
            raise ValueError('an object scorer needs a "name", e.g. {"name": "numeric", "abs_tol": 0.01}')
        return value


def load_tasks(path: str | Path) -> list[EvalTask]:
    """The tasks of the JSON Lines file at `path` (`TaskFileError` if it is missing or bad)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaskFileError(f"no task file {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskFileError(f"cannot read the task file {path}: {exc}") from None
    try:
        return parse_tasks(text.splitlines())
    except TaskFileError as exc:
        raise TaskFileError(f"{path}: {exc}", exc.line) from None


def parse_tasks(lines: Iterable[str]) -> list[EvalTask]:
    """The tasks of JSON Lines `lines` (see the module docstring); `TaskFileError` names the line."""
    tasks: list[EvalTask] = []
    seen: dict[str, int] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        task = _parse_line(text, number)
        if task.id in seen:
            message = f"line {number}: id {task.id!r} was already used on line {seen[task.id]}"
            raise TaskFileError(message, number)
        seen[task.id] = number
        tasks.append(task)
    if not tasks:
        raise TaskFileError("there are no tasks in it")
    return tasks


def tasks_from(items: Iterable[EvalTask | Mapping[str, Any] | str]) -> list[EvalTask]:
    """Tasks built in code: `EvalTask`s, dicts as in a file (the id defaults to the position,
    from 1) or plain task texts. Ids must be unique (`TaskFileError` names the position)."""
    tasks: list[EvalTask] = []
    seen: set[str] = set()
    for number, item in enumerate(items, start=1):
        try:
            task = item if isinstance(item, EvalTask) else _validated(item, number)
        except ValidationError as exc:
            raise TaskFileError(f"task {number}: {_problems(exc)}", number) from None
        if task.id in seen:
            raise TaskFileError(f"task {number}: id {task.id!r} is used twice", number)
        seen.add(task.id)
        tasks.append(task)
    return tasks


def _validated(item: Mapping[str, Any] | str, number: int) -> EvalTask:
    data = {"task": item} if isinstance(item, str) else item
    return EvalTask.model_validate({"id": str(number), **data})


def _parse_line(text: str, number: int) -> EvalTask:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})"
        raise TaskFileError(message, number) from None
    if not isinstance(data, dict):
        raise TaskFileError(f"line {number}: a task is a JSON object, got {type(data).__name__}", number)
    data.setdefault("id", str(number))
    if "line" in data:  # set by the loader, not by the file
        raise TaskFileError(f"line {number}: 'line': {_UNKNOWN}", number)
    try:
        return EvalTask.model_validate({**data, "line": number})
    except ValidationError as exc:
        raise TaskFileError(f"line {number}: {_problems(exc)}", number) from None


def _problems(error: ValidationError) -> str:
    """Pydantic's errors as one readable phrase: `"tags": Input should be a valid list; ...`."""
    parts = []
    for problem in error.errors():
        field = ".".join(str(p) for p in problem["loc"] if p not in ("function-before", "function-after"))
        message = _UNKNOWN
        if problem["type"] != "extra_forbidden":
            message = str(problem["msg"]).removeprefix("Value error, ")
        parts.append(f"{field!r}: {message}" if field else message)
    return "; ".join(parts)
