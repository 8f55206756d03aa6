"""JSON schemas of a tool's parameters (from the pydantic model, `$ref`s inlined) and their
smolagents-style summaries: the `inputs` entries and the `output_type`."""

from __future__ import annotations

import typing
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, TypeAdapter, WithJsonSchema
from pydantic.errors import PydanticUserError

from ..errors import ToolDefinitionError
from ._render import py_type

if TYPE_CHECKING:
    from ._spec import Param, Source

__all__ = [
    "AUTHORIZED_TYPES",
    "declared_annotation",
    "derive_inputs",
    "derive_output",
    "parameters_schema",
    "type_label",
    "unsupported_type",
]

AUTHORIZED_TYPES: tuple[str, ...] = (
    "string", "boolean", "integer", "number", "image", "audio", "array", "object", "any", "null",
)  # fmt: skip
"""Type names accepted in a `Tool` subclass's `inputs` and `output_type` (smolagents' names)."""

DECLARED_TYPES: dict[str, Any] = {
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": float,
    "array": list[Any],
    "object": dict[str, Any],
    "any": Any,
    "null": None,
    "image": Annotated[Any, WithJsonSchema({"type": "string"})],
    "audio": Annotated[Any, WithJsonSchema({"type": "string"})],
}
_SUPPORTED_HINT = (
    "Use str, int, float, bool, None, list/dict/tuple of those, Optional/Union, Literal, an Enum, "
    "a pydantic BaseModel, a dataclass or Any."
)


def declared_annotation(entry: Mapping[str, Any]) -> Any:
    """The Python type behind a smolagents-style `inputs` entry."""
    declared = entry["type"]
    options = [DECLARED_TYPES[t] for t in (declared if isinstance(declared, list) else [declared])]
    if entry.get("enum"):
        options = [Literal[tuple(entry["enum"])]]
    annotation: Any = options[0] if len(options) == 1 else typing.Union[tuple(options)]  # noqa: UP007
    return typing.Optional[annotation] if entry.get("nullable") else annotation  # noqa: UP045


def parameters_schema(tool_name: str, params: tuple[Param, ...], model: type[BaseModel]) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # defaults that are not JSON are left out of the schema
            raw = model.model_json_schema()
    except (PydanticUserError, TypeError) as exc:
        raise unsupported_type(tool_name, params, exc) from exc
    schema = _tidy_schema(raw)
    schema.setdefault("properties", {})
    schema.setdefault("required", [])
    schema["additionalProperties"] = False
    return schema


def unsupported_type(tool_name: str, params: tuple[Param, ...], exc: Exception) -> ToolDefinitionError:
    culprit = next((p for p in params if _type_schema(p.annotation) is None), None)
    reason = str(exc).split("\n")[0].split(". ")[0]
    if culprit is None:
        return ToolDefinitionError(
            f"Tool {tool_name!r}: its parameters cannot be described as JSON ({reason})."
        )
    return ToolDefinitionError(
        f"Tool {tool_name!r}: parameter {culprit.name!r} has type {type_label(culprit.annotation)}, which "
        f"cannot be described to a model as JSON ({reason}). {_SUPPORTED_HINT}"
    )


def _type_schema(annotation: Any) -> dict[str, Any] | None:
    """The tidied JSON schema of one type, or None when pydantic cannot describe it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _tidy_schema(TypeAdapter(annotation).json_schema())
    except (PydanticUserError, TypeError, ValueError):
        return None


def type_label(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else repr(annotation).replace("typing.", "")


_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs"})
_SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_SCHEMA_ONE = frozenset({"items", "additionalProperties", "not", "contains", "propertyNames"})


def _tidy_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline `$ref`s (kept only for recursive types) and drop pydantic's `title`s."""
    defs: dict[str, Any] = schema.get("$defs", {})
    kept: dict[str, Any] = {}
    tidy = _tidy({k: v for k, v in schema.items() if k != "$defs"}, defs, kept, ())
    if kept:
        tidy["$defs"] = kept
    return tidy


def _tidy(
    node: dict[str, Any], defs: dict[str, Any], kept: dict[str, Any], stack: tuple[str, ...]
) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name in stack:  # recursive: keep the reference and its definition
            if name not in kept:
                kept[name] = {}
                kept[name] = _tidy(defs[name], defs, kept, (*stack, name))
            return node
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {**_tidy(defs[name], defs, kept, (*stack, name)), **_tidy(rest, defs, kept, stack)}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            value = {n: _tidy(s, defs, kept, stack) for n, s in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            value = [_tidy(s, defs, kept, stack) for s in value]
        elif key in _SCHEMA_ONE and isinstance(value, dict):
            value = _tidy(value, defs, kept, stack)
        out[key] = value
    return out


# ---- smolagents-style inputs and outputs ---------------------------------------------------------

_JSON_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}


def _json_types(schema: Mapping[str, Any]) -> list[str]:
    """The smolagents type names a schema allows ("any" when it cannot say)."""
    if "anyOf" in schema or "oneOf" in schema:
        found = [t for member in schema.get("anyOf", schema.get("oneOf", [])) for t in _json_types(member)]
    elif "type" in schema:
        found = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    elif "enum" in schema or "const" in schema:
        values = schema.get("enum", [schema.get("const")])
        found = [_JSON_NAMES.get(type(v), "any") for v in values]
    else:
        found = ["object"] if "$ref" in schema else ["any"]
    unique = list(dict.fromkeys(found))
    return ["any"] if "any" in unique else unique


def _summary(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON schema in smolagents' terms: `type` (a name, or a sorted list of names), `nullable`
    instead of a null type, `enum` without None, and the `items`, `prefixItems` and
    `additionalProperties` of arrays and dicts, summarised likewise."""
    types_ = _json_types(schema)
    nullable = "null" in types_ and len(types_) > 1
    types_ = sorted(t for t in types_ if t != "null") if nullable else sorted(types_)
    out: dict[str, Any] = {"type": types_[0] if len(types_) == 1 else types_}
    if nullable:
        out["nullable"] = True
    members = [m for m in schema.get("anyOf", schema.get("oneOf", [])) if m.get("type") != "null"]
    body = members[0] if len(members) == 1 else schema
    if "enum" in body:
        out["enum"] = [v for v in body["enum"] if v is not None]
    if out["type"] == "array" and isinstance(body.get("items"), dict) and body["items"]:
        out["items"] = _summary(body["items"])
    if out["type"] == "array" and "prefixItems" in body:
        out["prefixItems"] = [_summary(s) for s in body["prefixItems"]]
    if out["type"] == "object" and isinstance(body.get("additionalProperties"), dict):
        out["additionalProperties"] = _summary(body["additionalProperties"])
    return out


def derive_inputs(
    src: Source, params: tuple[Param, ...], parameters: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    derived = {
        p.name: {
            **_summary(parameters["properties"][p.name]),
            **({} if p.required else {"nullable": True}),  # smolagents: a default makes it nullable
            "description": p.description,
        }
        for p in params
    }
    if src.inputs is None:
        return derived
    for name, entry in src.inputs.items():
        declared = entry.get("type")
        if declared is not None and not _compatible(declared, derived[name]["type"]):
            raise ToolDefinitionError(
                f"Tool {src.name!r}: inputs[{name!r}] says type {declared!r} but forward() annotates "
                f"{name!r} as {derived[name]['type']!r}. Make them agree."
            )
    return {name: dict(entry) for name, entry in src.inputs.items()}


def _compatible(declared: str | list[str], derived: str | list[str]) -> bool:
    allowed = set(declared if isinstance(declared, list) else [declared])
    if allowed & {"any", "image", "audio"}:
        return True
    if "number" in allowed:
        allowed.add("integer")
    got = derived if isinstance(derived, list) else [derived]
    return all(t in allowed or t == "any" for t in got)


def derive_output(src: Source, hints: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None, str]:
    """(output_type, output_schema, return type as Python text) from the declaration or the hint."""
    declared = src.output_type
    if declared is not None and declared not in AUTHORIZED_TYPES:
        raise ToolDefinitionError(
            f"Tool {src.name!r}: output_type {declared!r} is unknown; "
            f"use one of: {', '.join(AUTHORIZED_TYPES)}."
        )
    if "return" not in hints:
        return (
            declared or "any",
            src.output_schema,
            py_type(src.output_schema or {"type": declared or "any"}),
        )
    annotation = hints["return"]
    schema = _type_schema(annotation)
    if schema is None:  # a return type pydantic cannot describe (a DataFrame...): still show its name
        return declared or "any", src.output_schema, getattr(annotation, "__name__", "Any")
    derived = _summary(schema)["type"]
    structured = schema if schema.get("type") == "object" and "properties" in schema else None
    return (
        declared or (derived if isinstance(derived, str) else "any"),
        src.output_schema or structured,
        py_type(schema),
    )
