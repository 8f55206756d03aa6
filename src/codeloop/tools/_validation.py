"""Argument validation: the pydantic model built from a tool's parameters, and short,
readable messages (for the model or the caller) when arguments do not fit it.

Validation is pydantic's lax mode (a JSON string "3" is accepted for an int, a dict for a model,
a string for an Enum) except that booleans and numbers are never mixed up: `True` is not an
`int`, a `float` or a `Literal[1]`, and `1` is not a `bool`. So `str | int` rejects `True`, as
smolagents' `validate_tool_arguments` does. This holds for the parameters' own types, through
`Optional`/`Union`, `Literal`, `Annotated` and the standard containers (`list[int]`,
`dict[str, float]`...); fields of a pydantic model or dataclass follow that class's own rules.
"""

from __future__ import annotations

import collections.abc
import json
import reprlib
import types
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic.errors import PydanticUserError
from pydantic_core import ErrorDetails, PydanticCustomError

from ..errors import AgentToolCallError
from ._render import display_signature, py_type
from ._schema import unsupported_type

if TYPE_CHECKING:
    from ._spec import Param, Spec

__all__ = ["accepts", "arguments_model", "as_mapping", "strict_annotation", "validate"]

_MODEL_CONFIG = ConfigDict(extra="forbid")
_CONTAINERS = frozenset(
    {list, set, frozenset, tuple, dict, collections.abc.Sequence, collections.abc.Mapping,
     collections.abc.Set, collections.abc.MutableSequence, collections.abc.MutableMapping}
)  # fmt: skip


def _not_a_bool(kind: str, expected: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise PydanticCustomError(kind, f"Input should be a valid {expected}")
        return value

    return check


def _not_a_number(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise PydanticCustomError("bool_type", "Input should be a valid boolean")
    return value


def _matches(value: Any, values: tuple[Any, ...]) -> bool:
    """`value in values`, except that `True` does not match `1` (nor `1` match `True`)."""
    return any(v == value and isinstance(v, bool) == isinstance(value, bool) for v in values)


def _literal_error(values: tuple[Any, ...]) -> PydanticCustomError:
    shown = [repr(v) for v in values]
    expected = f"{', '.join(shown[:-1])} or {shown[-1]}" if len(shown) > 1 else shown[0]
    return PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})


def _same_kind(values: tuple[Any, ...]) -> Callable[[Any], Any]:
    """For a Literal, whose own check (lax) lets `True` match `1`."""

    def check(value: Any) -> Any:
        if isinstance(value, (bool, int, float)) and value in values and not _matches(value, values):
            raise _literal_error(values)
        return value

    return check


def _one_of(choices: tuple[Any, ...]) -> Callable[[Any], Any]:
    """For a docstring's `(choices: ...)`: checked after the annotation's own validation."""

    def check(value: Any) -> Any:
        if value is not None and not _matches(value, choices):
            raise _literal_error(choices)
        return value

    return check


def _enum_schema(choices: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    """Adds `"enum": choices` to a field's JSON schema (to its non-null member when optional)."""

    def add(schema: dict[str, Any]) -> None:
        members = [m for m in schema.get("anyOf", []) if m.get("type") != "null"]
        (members[0] if len(members) == 1 else schema)["enum"] = list(choices)

    return add


_STRICT_SCALARS: dict[Any, Any] = {
    bool: Annotated[bool, BeforeValidator(_not_a_number)],
    int: Annotated[int, BeforeValidator(_not_a_bool("int_type", "integer"))],
    float: Annotated[float, BeforeValidator(_not_a_bool("float_type", "number"))],
}


def strict_annotation(annotation: Any) -> Any:
    """`annotation` with booleans and numbers kept apart (see the module docstring), and
    `Literal[..., None]` as `Optional[Literal[...]]` (so its schema is an enum or null)."""
    if isinstance(annotation, type) and annotation in _STRICT_SCALARS:
        return _STRICT_SCALARS[annotation]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        values = tuple(v for v in args if v is not None)
        if not values:
            return annotation
        literal: Any = Literal.__getitem__(values)
        literal = Annotated[literal, BeforeValidator(_same_kind(values))]
        return typing.Optional[literal] if len(values) < len(args) else literal  # noqa: UP045
    if origin is Annotated:
        params = (strict_annotation(args[0]), *annotation.__metadata__)
        return Annotated[params]
    if origin is typing.Union or origin is types.UnionType:
        return typing.Union[tuple(strict_annotation(a) for a in args)]  # noqa: UP007
    if origin in _CONTAINERS and args:
        return origin[tuple(a if a is Ellipsis else strict_annotation(a) for a in args)]
    return annotation


def accepts(annotation: Any, value: Any) -> bool:
    """Whether `value` is, as it is, a valid `annotation` (validating it gives it back)."""
    try:
        validated = TypeAdapter(strict_annotation(annotation)).validate_python(value)
    except (ValidationError, PydanticUserError, TypeError):
        return False
    return bool(validated == value) and isinstance(validated, bool) == isinstance(value, bool)


def _field(p: Param) -> tuple[Any, Any]:
    """The pydantic field of a parameter: its type (strict, see the module docstring; limited to
    the docstring's `(choices: ...)` if any) and its default, alias and description."""
    default = ... if p.required else p.default
    if p.choices is None:
        return strict_annotation(p.annotation), Field(default, alias=p.name, description=p.description)
    return (
        Annotated[strict_annotation(p.annotation), AfterValidator(_one_of(p.choices))],
        Field(default, alias=p.name, description=p.description, json_schema_extra=_enum_schema(p.choices)),
    )


def arguments_model(tool_name: str, params: tuple[Param, ...]) -> type[BaseModel]:
    """A pydantic model with one field per parameter. Fields are named p0, p1... with the real
    names as aliases, so parameters like `json` or `model_id` cannot clash with BaseModel."""
    fields: dict[str, Any] = {f"p{i}": _field(p) for i, p in enumerate(params)}
    try:
        return create_model(f"{tool_name}_arguments", __config__=_MODEL_CONFIG, **fields)
    except (PydanticUserError, TypeError) as exc:
        raise unsupported_type(tool_name, params, exc) from exc


# ---- argument errors -------------------------------------------------------------------------


def _bounded_repr() -> reprlib.Repr:
    """reprlib's per-level limits bound the work however big (or shared) the value is."""
    shown = reprlib.Repr()
    shown.maxlevel, shown.maxlist, shown.maxtuple, shown.maxdict, shown.maxset = 3, 8, 8, 6, 6
    shown.maxstring, shown.maxother, shown.maxlong = 70, 70, 70
    return shown


_SHOWN = _bounded_repr()


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if isinstance(value, bool | float | type(None)) else _SHOWN.repr(value)
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
        raise _invalid(spec, _problems(spec, exc.errors(include_url=False), arguments), error) from None
    values = {p.name: getattr(validated, f"p{i}") for i, p in enumerate(spec.params)}
    problems = spec.check(values) if spec.check is not None else []
    if problems:
        raise _invalid(spec, problems, error)
    return values


def _invalid(spec: Spec, problems: list[str], error: type[Exception]) -> Exception:
    if len(problems) > 4:
        problems = [*problems[:4], f"and {len(problems) - 4} more"]
    expected = f"{spec.name}{display_signature(spec, with_return=False)}"
    return error(f"Invalid arguments for tool {spec.name!r}: {'; '.join(problems)}. Expected: {expected}")


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
