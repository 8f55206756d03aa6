"""Argument validation: the pydantic model built from a tool's parameters, and short,
readable messages (for the model or the caller) when arguments do not fit it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.errors import PydanticUserError
from pydantic_core import ErrorDetails

from ..errors import AgentToolCallError
from ._render import display_signature, py_type
from ._schema import unsupported_type

if TYPE_CHECKING:
    from ._spec import Param, Spec

__all__ = ["arguments_model", "as_mapping", "validate"]

_MODEL_CONFIG = ConfigDict(extra="forbid")


def arguments_model(tool_name: str, params: tuple[Param, ...]) -> type[BaseModel]:
    """A pydantic model with one field per parameter. Fields are named p0, p1... with the real
    names as aliases, so parameters like `json` or `model_id` cannot clash with BaseModel."""
    fields: dict[str, Any] = {
        f"p{i}": (
            p.annotation,
            Field(... if p.required else p.default, alias=p.name, description=p.description),
        )
        for i, p in enumerate(params)
    }
    try:
        return create_model(f"{tool_name}_arguments", __config__=_MODEL_CONFIG, **fields)
    except (PydanticUserError, TypeError) as exc:
        raise unsupported_type(tool_name, params, exc) from exc


# ---- argument errors -------------------------------------------------------------------------


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _loc_path(loc: tuple[int | str, ...]) -> str:
    path = str(loc[0]) if loc else ""
    for part in loc[1:]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe_error(err: ErrorDetails) -> str:
    loc, kind = err["loc"], err["type"]
    if kind == "missing":
        return f"missing required argument {loc[0]!r}" if len(loc) == 1 else f"{_loc_path(loc)!r} is required"
    if kind == "extra_forbidden":
        return f"unexpected argument {loc[0]!r}" if len(loc) == 1 else f"{_loc_path(loc)!r} is not allowed"
    return f"argument {_loc_path(loc)!r}: {err['msg']}, got {_short(err['input'])}"


def _is_union(schema: Mapping[str, Any]) -> bool:
    members = schema.get("anyOf", schema.get("oneOf", []))
    return len([m for m in members if m.get("type") != "null"]) > 1


def _problems(spec: Spec, errors: list[ErrorDetails], arguments: Mapping[str, Any]) -> list[str]:
    """One line per problem; the failed alternatives of a Union collapse into 'expected X | Y'."""
    props = spec.parameters["properties"]
    problems: list[str] = []
    unions_done: set[str] = set()
    for err in errors:
        top = str(err["loc"][0]) if err["loc"] else ""
        schema = props.get(top, {})
        if len(err["loc"]) < 2 or not _is_union(schema):
            problems.append(_describe_error(err))
        elif top not in unions_done:
            unions_done.add(top)
            problems.append(f"argument {top!r}: expected {py_type(schema)}, got {_short(arguments.get(top))}")
    return problems


def validate(spec: Spec, arguments: Mapping[str, Any], error: type[Exception]) -> dict[str, Any]:
    try:
        validated = spec.model.model_validate(dict(arguments))
    except ValidationError as exc:
        problems = _problems(spec, exc.errors(include_url=False), arguments)
        if len(problems) > 4:
            problems = [*problems[:4], f"and {len(problems) - 4} more"]
        expected = f"{spec.name}{display_signature(spec, with_return=False)}"
        raise error(
            f"Invalid arguments for tool {spec.name!r}: {'; '.join(problems)}. Expected: {expected}"
        ) from None
    return {p.name: getattr(validated, f"p{i}") for i, p in enumerate(spec.params)}


def as_mapping(spec: Spec, arguments: Mapping[str, Any] | str) -> Mapping[str, Any]:
    if isinstance(arguments, Mapping):
        return arguments
    if isinstance(arguments, str):
        if not arguments.strip():
            return {}
        try:
            parsed = json.loads(arguments)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    names = ", ".join(p.name for p in spec.params) or "none"
    raise AgentToolCallError(
        f"Invalid arguments for tool {spec.name!r}: expected a JSON object with keys ({names}), "
        f"got {_short(arguments)}"
    )
