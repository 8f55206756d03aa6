"""Real-world JSON schemas brought to one form before a tool is built from them, and their
validation (jsonschema) reported in the words of `@tool`'s argument errors."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ToolDefinitionError
from ._render import py_type
from ._schema import _SCHEMA_LISTS, _SCHEMA_MAPS, _SCHEMA_ONE, _tidy_schema
from ._validation import _loc_path, _short

if TYPE_CHECKING:  # jsonschema itself is imported when a schema tool is built: `import codeloop` stays light
    from jsonschema.exceptions import ValidationError as SchemaViolation  # type: ignore[import-untyped]

__all__ = ["check_schema", "normalize_schema", "schema_checker", "tidy_schema"]

_TYPE_ALIASES = {"dict": "object", "float": "number", "double": "number", "tuple": "array",
                 "list": "array", "int": "integer", "str": "string", "bool": "boolean"}  # fmt: skip
_VALID_NAMES = {"integer": "a valid integer", "number": "a valid number", "string": "a valid string",
                "boolean": "a valid boolean", "array": "a valid list", "object": "a valid dictionary",
                "null": "None"}  # fmt: skip


def normalize_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `schema` in standard JSON Schema: `definitions` become `$defs`, OpenAPI's
    `nullable: true` a `"null"` type (an enum then also allows None, as it does when the
    type lists "null"), and the Python type names some datasets use (`dict`,
    `float`, `tuple`, `any`...) JSON Schema's."""
    normalized: dict[str, Any] = _normalize(copy.deepcopy(dict(schema)))
    return normalized


def _normalize(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        key = "$defs" if key == "definitions" else key
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            value = {name: _normalize(sub) for name, sub in value.items()}
        elif (key in _SCHEMA_LISTS or key == "items") and isinstance(value, list):
            value = [_normalize(sub) for sub in value]
        elif key in _SCHEMA_ONE and isinstance(value, dict):
            value = _normalize(value)
        elif key == "$ref" and isinstance(value, str):
            value = value.replace("#/definitions/", "#/$defs/", 1)
        elif key == "type":
            value = _type_names(value)
            if value is None:
                continue
        out[key] = value
    if out.pop("nullable", False) is True or _has_null_type(out):
        return _with_null(out)
    return out


def _has_null_type(schema: dict[str, Any]) -> bool:
    """`{"type": ["string", "null"], "enum": ["a", "b"]}` (as OpenAI's docs write an optional
    enum) means the enum or null."""
    kind = schema.get("type")
    return "enum" in schema and isinstance(kind, list) and "null" in kind and None not in schema["enum"]


def _type_names(value: Any) -> Any:
    names = value if isinstance(value, list) else [value]
    if "any" in names:
        return None
    mapped = [_TYPE_ALIASES.get(n, n) if isinstance(n, str) else n for n in names]
    return mapped if isinstance(value, list) else mapped[0]


def _with_null(schema: dict[str, Any]) -> dict[str, Any]:
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    kind = schema.get("type")
    if isinstance(kind, str) and kind != "null":
        schema["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        schema["type"] = [*kind, "null"]
    elif kind is None and "enum" not in schema:
        meta: dict[str, Any] = {k: schema.pop(k) for k in ("description", "default", "title") if k in schema}
        schema = {"anyOf": [schema, {"type": "null"}], **meta}
    return schema


def check_schema(tool_name: str, schema: Any, what: str = "input schema") -> None:
    """Raise `ToolDefinitionError` unless `schema` is a valid JSON schema (of an object, for
    the input schema)."""
    if not isinstance(schema, Mapping):
        raise ToolDefinitionError(f"Tool {tool_name!r}: its {what} must be a JSON object, got {schema!r}.")
    import jsonschema  # type: ignore[import-untyped]
    from jsonschema.exceptions import SchemaError

    try:
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(
            schema
        )
    except SchemaError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "the top level"
        raise ToolDefinitionError(
            f"Tool {tool_name!r}: its {what} is not a valid JSON schema ({exc.message}, at {where})."
        ) from None
    if what == "input schema" and schema.get("type", "object") != "object":
        raise ToolDefinitionError(
            f"Tool {tool_name!r}: its input schema must describe an object (the arguments by name), "
            f"got type {schema.get('type')!r}."
        )


def tidy_schema(tool_name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """`$ref`s into `$defs` inlined (kept only where recursive) and `title`s dropped."""
    try:
        return _tidy_schema(schema)
    except KeyError as exc:
        raise ToolDefinitionError(
            f"Tool {tool_name!r}: its schema refers to #/$defs/{exc.args[0]}, which it does not define."
        ) from None


def schema_checker(
    schema: dict[str, Any], code_of: Mapping[str, str]
) -> Callable[[Mapping[str, Any]], list[str]]:
    """A check of wire-named argument values against the whole `schema`, returning one line
    per problem; arguments are named by their Python names (`code_of`: wire -> Python)."""
    import jsonschema

    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = validator_class(schema)

    def check(instance: Mapping[str, Any]) -> list[str]:
        errors = sorted(
            validator.iter_errors(dict(instance)), key=lambda e: [str(p) for p in e.absolute_path]
        )
        return [_describe(e, code_of) for e in errors]

    return check


def _describe(err: SchemaViolation, code_of: Mapping[str, str]) -> str:
    path = list(err.absolute_path)
    if path:
        path[0] = code_of.get(str(path[0]), path[0])
    where = _loc_path(tuple(path))
    if err.validator == "required":
        missing = str(err.message).split("'")[1] if "'" in err.message else "?"
        return (
            f"{_loc_path((*path, missing))!r} is required"
            if path
            else f"missing required argument {missing!r}"
        )
    if not path:
        return str(err.message)
    return f"argument {where!r}: {_expectation(err)}, got {_short(err.instance)}"


def _expectation(err: SchemaViolation) -> str:
    if err.validator == "type":
        kinds = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        return "Input should be " + " or ".join(_VALID_NAMES.get(k, str(k)) for k in kinds)
    if err.validator in ("enum", "const"):
        values = err.validator_value if err.validator == "enum" else [err.validator_value]
        shown = [repr(v) for v in values]
        return "Input should be " + (
            f"{', '.join(shown[:-1])} or {shown[-1]}" if len(shown) > 1 else shown[0]
        )
    if err.validator in ("anyOf", "oneOf") and isinstance(err.schema, Mapping):
        return f"expected {py_type(err.schema)}"
    text, given = str(err.message), repr(err.instance)
    return f"Input{text[len(given) :]}" if text.startswith(given) else text
