"""Structured outputs: the shape a final answer must have, told to the model and checked.

`output_type=` on an agent is one of

* a pydantic model class: the answer (a dict, JSON text or an instance) is validated into an
  instance of it;
* a plain type or typing form (`int`, `list[str]`, `dict[str, float]`, a `TypedDict`...):
  validated with a pydantic `TypeAdapter` (lax mode: `"3"` becomes `3` for `int`);
* a JSON schema dict: the answer (or the JSON text it holds) is checked against it with the
  `jsonschema` package and kept as it is.

`OutputSpec.of(output_type)` builds the spec once; `spec.validate(answer)` returns the typed value
or raises `OutputValidationError` (an `AgentError`: the model sees what was wrong and tries
again). `spec.task_note(...)` is the short sentence added to the task; `spec.json_schema` is the
compact schema (titles dropped) the ToolCallingAgent also puts in the `final_answer` tool.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from typing import Any

import pydantic

from ..errors import ConfigurationError, FinalAnswerRejected

__all__ = ["OutputSpec", "OutputValidationError", "compact_schema"]

_MAX_ERRORS = 5  # validation errors listed in one observation
_SHOWN_CHARS = 80  # of each offending value


class OutputValidationError(FinalAnswerRejected):
    """The final answer did not have the shape `output_type` asks for. `problems` lists each
    problem as "where: what"; `str(err)` is what the model is shown."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


@dataclass(frozen=True)
class OutputSpec:
    """What a final answer must look like, and how to check it."""

    output_type: Any
    json_schema: dict[str, Any]
    adapter: pydantic.TypeAdapter[Any] | None = None
    """None for a JSON schema dict (checked by `jsonschema` instead)."""

    @classmethod
    def of(cls, output_type: Any) -> OutputSpec | None:
        """The spec for `output_type` (None for None); an unusable one is a `ConfigurationError`."""
        if output_type is None:
            return None
        if isinstance(output_type, dict):
            _check_json_schema(output_type)
            return cls(output_type=output_type, json_schema=compact_schema(output_type))
        try:
            adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(output_type)
            schema = adapter.json_schema()
        except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as exc:
            raise ConfigurationError(f"output_type {output_type!r} cannot be described: {exc}") from exc
        return cls(output_type=output_type, json_schema=compact_schema(schema), adapter=adapter)

    @property
    def schema_text(self) -> str:
        return json.dumps(self.json_schema, separators=(",", ":"), ensure_ascii=False)

    def task_note(self, *, schema_shown_elsewhere: bool = False, as_python: bool = False) -> str:
        """The sentence that tells the model the answer's shape (kept short: it is in every prompt)."""
        what = "a Python value (a dict for an object)" if as_python else "a JSON value"
        if schema_shown_elsewhere:
            return f"Give final_answer {what} matching the schema of its `answer`."
        return f"Give final_answer {what} matching this JSON schema: {self.schema_text}"

    def validate(self, answer: Any) -> Any:
        """The typed answer; `OutputValidationError` listing what was wrong otherwise. Text that
        holds JSON is read as JSON when the answer itself does not fit."""
        try:
            return self._validate(answer)
        except OutputValidationError:
            decoded = _json_or_none(answer)
            if decoded is None:
                raise
            return self._validate(decoded)

    def _validate(self, answer: Any) -> Any:
        if self.adapter is None:
            problems = _json_schema_problems(self.output_type, answer)
            if problems:
                raise _rejection(answer, problems)
            return answer
        try:
            return self.adapter.validate_python(answer)
        except pydantic.ValidationError as exc:
            problems = [_pydantic_problem(error) for error in exc.errors()]
            raise _rejection(answer, problems) from None


def compact_schema(schema: Any) -> Any:
    """`schema` without its `title` entries (pydantic adds one to every field): fewer tokens."""
    if isinstance(schema, dict):
        return {
            k: compact_schema(v) if k != "properties" else {n: compact_schema(p) for n, p in v.items()}
            for k, v in schema.items()
            if k != "title"
        }
    if isinstance(schema, list):
        return [compact_schema(item) for item in schema]
    return schema


def _rejection(answer: Any, problems: list[str]) -> OutputValidationError:
    shown = problems[:_MAX_ERRORS]
    more = len(problems) - len(shown)
    lines = "\n".join(f"- {p}" for p in shown) + (f"\n- ... and {more} more" if more > 0 else "")
    message = (
        f"The final answer {_short(answer)} does not have the required shape:\n{lines}\n"
        "Fix it and call final_answer again."
    )
    return OutputValidationError(message, tuple(problems))


def _pydantic_problem(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "answer"
    return f"{where}: {error.get('msg', 'invalid')} (got {_short(error.get('input'))})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _json_or_none(answer: Any) -> Any:
    if not isinstance(answer, str):
        return None
    try:
        return json.loads(answer)
    except ValueError:
        return None


def _check_json_schema(schema: dict[str, Any]) -> None:
    validator = _validator_class(schema)
    try:
        validator.check_schema(schema)
    except Exception as exc:  # jsonschema.SchemaError
        raise ConfigurationError(f"output_type is not a valid JSON schema: {exc}") from exc


def _json_schema_problems(schema: dict[str, Any], answer: Any) -> list[str]:
    validator = _validator_class(schema)(schema)
    errors = sorted(validator.iter_errors(answer), key=lambda e: list(e.absolute_path))
    return [f"{'.'.join(str(p) for p in e.absolute_path) or 'answer'}: {e.message}" for e in errors]


def _validator_class(schema: dict[str, Any]) -> Any:
    try:  # optional: only JSON schema output types need it
        jsonschema = importlib.import_module("jsonschema")
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "A JSON schema output_type needs the jsonschema package (pip install jsonschema); "
            "or pass a pydantic model class instead."
        ) from None
    return jsonschema.validators.validator_for(schema)
