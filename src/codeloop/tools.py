"""Tools: Python callables an agent may use, described to the model from their type hints.

Two ways to make one, both with smolagents' names:

* the `@tool` decorator on a function (or a method) with type hints and a Google-style
  docstring: the summary becomes the description, the `Args:` section describes each parameter;
* a `Tool` subclass declaring `name`, `description`, `inputs` (smolagents style:
  `{"city": {"type": "string", "description": "...", "nullable": True}}`), `output_type` and
  implementing `forward` (sync or `async def`). `forward`'s parameters may carry type hints; they
  then drive validation (a pydantic model, an Enum...) and `inputs` may be omitted, in which case
  `forward`'s docstring describes the parameters as for `@tool`.

A tool that cannot be described raises `ToolDefinitionError` when it is defined, saying what to
fix. Arguments are validated by a pydantic model built from the signature; one tool renders
itself as an OpenAI function schema (`json_schema()`, no `$ref`s) or as a Python stub for a code
agent's prompt (`to_code_prompt()`).

Calling:

* `tool(*args, **kwargs)` validates (raising `TypeError` with a readable message) and runs
  `forward`. An async `forward` is driven to completion: directly when no event loop is running,
  otherwise on a private loop in a helper thread (the calling loop is blocked meanwhile, so in
  async code use `acall`);
* `await tool.acall(arguments)` is the JSON tool-call path: invalid arguments raise
  `AgentToolCallError`; a failure inside `forward` becomes `AgentToolExecutionError` (an
  `AgentError` raised by `forward` passes through unchanged);
* `tool.as_host_function()` is what a sandbox calls: positional and keyword arguments as in
  Python, async when `forward` is.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import inspect
import json
import keyword
import re
import types
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, overload

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, WithJsonSchema, create_model
from pydantic.errors import PydanticUserError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from ._sync import run_sync
from .errors import AgentError, AgentToolCallError, AgentToolExecutionError, ToolDefinitionError

__all__ = ["AUTHORIZED_TYPES", "FinalAnswerTool", "FunctionTool", "Tool", "tool"]

AUTHORIZED_TYPES: tuple[str, ...] = (
    "string", "boolean", "integer", "number", "image", "audio", "array", "object", "any", "null",
)  # fmt: skip
"""Type names accepted in a `Tool` subclass's `inputs` and `output_type` (smolagents' names)."""

_DECLARED_TYPES: dict[str, Any] = {
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
_TYPE_PY = {"string": "str", "boolean": "bool", "integer": "int", "number": "float", "array": "list",
            "object": "dict", "any": "Any", "null": "None", "image": "Any", "audio": "Any"}  # fmt: skip
_SUPPORTED_HINT = (
    "Use str, int, float, bool, None, list/dict/tuple of those, Optional/Union, Literal, an Enum, "
    "a pydantic BaseModel, a dataclass or Any."
)
_MODEL_CONFIG = ConfigDict(extra="forbid")
_EMPTY = inspect.Parameter.empty


# ---- docstrings -----------------------------------------------------------------------------

_ARG_SECTIONS = frozenset({"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"})
_RETURN_SECTIONS = frozenset({"returns", "return", "yields"})
_OTHER_SECTIONS = frozenset(
    {"raises", "examples", "example", "note", "notes", "warning", "warnings", "see also", "references",
     "todo", "attributes"}
)  # fmt: skip
_SECTION_RE = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
_ARG_RE = re.compile(r"^\*{0,2}(?P<name>\w+)\s*(?:\([^)]*\))?\s*:\s*(?P<desc>.*)$")


@dataclass(frozen=True)
class _Docstring:
    summary: str
    args: dict[str, str]
    returns: str | None


def _parse_docstring(doc: str | None) -> _Docstring:
    """Split a Google-style docstring into summary, `Args:` entries and `Returns:` text."""
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in inspect.cleandoc(doc or "").splitlines():
        header = _SECTION_RE.match(line)
        if header and header.group(1).lower() in _ARG_SECTIONS | _RETURN_SECTIONS | _OTHER_SECTIONS:
            current = header.group(1).lower()
            sections.setdefault(current, [])
        else:
            sections[current].append(line)
    args: dict[str, str] = {}
    for name in _ARG_SECTIONS & sections.keys():
        args.update(_parse_arg_lines(sections[name]))
    returns = " ".join(w for n in _RETURN_SECTIONS & sections.keys() for w in " ".join(sections[n]).split())
    return _Docstring("\n".join(sections[""]).strip(), args, returns or None)


def _parse_arg_lines(lines: list[str]) -> dict[str, str]:
    """`name (type): text` entries; more-indented lines continue the previous entry."""
    filled = [line for line in lines if line.strip()]
    if not filled:
        return {}
    indent = min(len(line) - len(line.lstrip()) for line in filled)
    entries: dict[str, str] = {}
    current: str | None = None
    for line in filled:
        match = _ARG_RE.match(line.strip()) if len(line) - len(line.lstrip()) == indent else None
        if match:
            current = match.group("name")
            entries[current] = match.group("desc").strip()
        elif current is not None:
            entries[current] = f"{entries[current]} {line.strip()}".strip()
    return entries


# ---- the description of a tool ----------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """What a tool's description is built from: a callable and the attributes set on the tool
    (None where the callable's hints and docstring should provide them)."""

    func: Callable[..., Any]
    skip_first: bool
    name: str
    description: str | None
    inputs: Mapping[str, Mapping[str, Any]] | None
    output_type: str | None
    output_schema: dict[str, Any] | None

    def key(self) -> tuple[Any, ...]:
        return (self.func, self.name, self.description, self.inputs, self.output_type, self.output_schema)


@dataclass(frozen=True)
class _Param:
    name: str
    annotation: Any
    default: Any
    description: str
    kind: inspect._ParameterKind

    @property
    def required(self) -> bool:
        return self.default is _EMPTY


@dataclass(frozen=True)
class _Spec:
    """Everything derived from a tool's definition, built once and cached."""

    key: tuple[Any, ...]
    name: str
    description: str
    params: tuple[_Param, ...]
    model: type[BaseModel]
    parameters: dict[str, Any]
    inputs: dict[str, dict[str, Any]]
    output_type: str
    output_schema: dict[str, Any] | None
    returns_py: str
    returns_doc: str | None
    is_async: bool
    signature: inspect.Signature

    def split(self, values: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Positional-only values as args, the rest as kwargs."""
        positional = [p.name for p in self.params if p.kind is inspect.Parameter.POSITIONAL_ONLY]
        return [values[n] for n in positional], {k: v for k, v in values.items() if k not in positional}


def _build_spec(src: _Source) -> _Spec:
    _check_name(src.name)
    doc = _parse_docstring(src.func.__doc__)
    description = _description(src, doc)
    hints = _type_hints(src)
    params = tuple(_collect_params(src, hints, doc))
    model = _arguments_model(src.name, params)
    parameters = _parameters_schema(src.name, params, model)
    inputs = _inputs(src, params, parameters)
    output_type, output_schema, returns_py = _output(src, hints)
    return _Spec(
        key=src.key(), name=src.name, description=description, params=params, model=model,
        parameters=parameters, inputs=inputs, output_type=output_type, output_schema=output_schema,
        returns_py=returns_py, returns_doc=doc.returns, is_async=inspect.iscoroutinefunction(src.func),
        signature=_signature(params, hints.get("return", _EMPTY)),
    )  # fmt: skip


def _description(src: _Source, doc: _Docstring) -> str:
    description: Any = src.description if src.description is not None else doc.summary
    if not isinstance(description, str):
        raise ToolDefinitionError(f"Tool {src.name!r}: description must be a string, got {description!r}.")
    if not description.strip():
        raise ToolDefinitionError(
            f"Tool {src.name!r} has no description. Give the function a docstring: a summary line, "
            "then an `Args:` section describing each parameter."
        )
    return description


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ToolDefinitionError(
            f"Tool name {name!r} is not a valid Python identifier; the model calls tools like "
            "functions, so use letters, digits and underscores, e.g. 'get_weather'."
        )


def _type_hints(src: _Source) -> dict[str, Any]:
    try:
        return typing.get_type_hints(src.func, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(
            f"Tool {src.name!r}: its type hints cannot be resolved ({type(exc).__name__}: {exc}). "
            "Define or import the types they name at module level."
        ) from exc


def _collect_params(src: _Source, hints: Mapping[str, Any], doc: _Docstring) -> list[_Param]:
    found = list(inspect.signature(src.func).parameters.values())[1 if src.skip_first else 0 :]
    for p in found:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"Tool {src.name!r}: parameter {p.name!r} is *args/**kwargs, which cannot be described "
                "to a model. Name each parameter explicitly."
            )
    names = [p.name for p in found]
    if src.inputs is not None and not isinstance(src.inputs, Mapping):
        raise ToolDefinitionError(f"Tool {src.name!r}: `inputs` must be a dict of parameter name -> spec.")
    _check_names(src.name, names, src.inputs if src.inputs is not None else doc.args, src.inputs is None)
    return [_make_param(src, p, hints, doc) for p in found]


def _check_names(tool_name: str, names: list[str], described: Mapping[str, Any], from_doc: bool) -> None:
    extra = [n for n in described if n not in names]
    missing = [n for n in names if n not in described]
    where = "its docstring's Args: section" if from_doc else "`inputs`"
    if extra:
        raise ToolDefinitionError(
            f"Tool {tool_name!r}: {where} describes {', '.join(map(repr, extra))}, which "
            f"{'is not a parameter' if len(extra) == 1 else 'are not parameters'} of the function "
            f"(parameters: {', '.join(names) or 'none'}). Rename or remove the entry."
        )
    if missing and not from_doc:
        raise ToolDefinitionError(
            f"Tool {tool_name!r}: forward() takes {', '.join(map(repr, missing))}, missing from `inputs`. "
            f"`inputs` must have one entry per forward() parameter, e.g. "
            f'{{"{missing[0]}": {{"type": "string", "description": "..."}}}}.'
        )


def _make_param(src: _Source, p: inspect.Parameter, hints: Mapping[str, Any], doc: _Docstring) -> _Param:
    annotation = hints.get(p.name, _EMPTY)
    if src.inputs is not None:
        entry = src.inputs[p.name]
        _check_entry(src.name, p.name, entry, annotation is not _EMPTY)
        if annotation is _EMPTY:
            annotation = _declared_annotation(entry)
        return _Param(p.name, annotation, p.default, str(entry["description"]), p.kind)
    if annotation is _EMPTY:
        raise ToolDefinitionError(
            f"Tool {src.name!r}: parameter {p.name!r} has no type hint. Add one, e.g. `{p.name}: str`."
        )
    description = _annotated_description(annotation) or doc.args.get(p.name, "")
    if not description:
        raise ToolDefinitionError(
            f"Tool {src.name!r}: parameter {p.name!r} is not described. Add it to the docstring's "
            f"Args: section, e.g.\n    Args:\n        {p.name}: What {p.name} means."
        )
    return _Param(p.name, annotation, p.default, description, p.kind)


def _check_entry(tool_name: str, name: str, entry: Any, has_hint: bool) -> None:
    where = f"Tool {tool_name!r}: inputs[{name!r}]"
    if not isinstance(entry, Mapping) or not isinstance(entry.get("description"), str):
        raise ToolDefinitionError(
            f'{where} needs a "description" string, e.g. {{"type": "string", "description": "..."}}.'
        )
    declared = entry.get("type")
    if declared is None and has_hint:
        return
    for type_name in declared if isinstance(declared, list) else [declared]:
        if type_name not in AUTHORIZED_TYPES:
            raise ToolDefinitionError(
                f"{where} has type {type_name!r}; use one of: {', '.join(AUTHORIZED_TYPES)} "
                "(or annotate the forward() parameter with a Python type)."
            )


def _declared_annotation(entry: Mapping[str, Any]) -> Any:
    """The Python type behind a smolagents-style `inputs` entry."""
    declared = entry["type"]
    options = [_DECLARED_TYPES[t] for t in (declared if isinstance(declared, list) else [declared])]
    if entry.get("enum"):
        options = [Literal[tuple(entry["enum"])]]
    annotation: Any = options[0] if len(options) == 1 else typing.Union[tuple(options)]  # noqa: UP007
    return typing.Optional[annotation] if entry.get("nullable") else annotation  # noqa: UP045


def _annotated_description(annotation: Any) -> str | None:
    """A description given as `Annotated[T, Field(description=...)]` or `Annotated[T, "..."]`."""
    for meta in getattr(annotation, "__metadata__", ()) if typing.get_origin(annotation) is Annotated else ():
        if isinstance(meta, FieldInfo) and meta.description:
            return meta.description
        if isinstance(meta, str) and meta.strip():
            return meta
    return None


def _signature(params: tuple[_Param, ...], returns: Any) -> inspect.Signature:
    return inspect.Signature(
        [inspect.Parameter(p.name, p.kind, default=p.default, annotation=p.annotation) for p in params],
        return_annotation=returns,
    )


# ---- pydantic: validation model and JSON schema -------------------------------------------------


def _arguments_model(tool_name: str, params: tuple[_Param, ...]) -> type[BaseModel]:
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
        raise _unsupported_type(tool_name, params, exc) from exc


def _parameters_schema(tool_name: str, params: tuple[_Param, ...], model: type[BaseModel]) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # defaults that are not JSON are left out of the schema
            raw = model.model_json_schema()
    except (PydanticUserError, TypeError) as exc:
        raise _unsupported_type(tool_name, params, exc) from exc
    schema = _tidy_schema(raw)
    schema.setdefault("properties", {})
    schema.setdefault("required", [])
    schema["additionalProperties"] = False
    return schema


def _unsupported_type(tool_name: str, params: tuple[_Param, ...], exc: Exception) -> ToolDefinitionError:
    culprit = next((p for p in params if _type_schema(p.annotation) is None), None)
    reason = str(exc).split("\n")[0].split(". ")[0]
    if culprit is None:
        return ToolDefinitionError(
            f"Tool {tool_name!r}: its parameters cannot be described as JSON ({reason})."
        )
    return ToolDefinitionError(
        f"Tool {tool_name!r}: parameter {culprit.name!r} has type {_type_label(culprit.annotation)}, which "
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


def _type_label(annotation: Any) -> str:
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


def _input_entry(schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    types_ = _json_types(schema)
    nullable = "null" in types_ and len(types_) > 1
    types_ = [t for t in types_ if t != "null"] if nullable else types_
    entry: dict[str, Any] = {"type": types_[0] if len(types_) == 1 else types_, "description": description}
    if nullable:
        entry["nullable"] = True
    if "enum" in schema:
        entry["enum"] = list(schema["enum"])
    return entry


def _inputs(
    src: _Source, params: tuple[_Param, ...], parameters: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    derived = {p.name: _input_entry(parameters["properties"][p.name], p.description) for p in params}
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


def _output(src: _Source, hints: Mapping[str, Any]) -> tuple[str, dict[str, Any] | None, str]:
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
            _py_type(src.output_schema or {"type": declared or "any"}),
        )
    annotation = hints["return"]
    schema = _type_schema(annotation)
    if schema is None:  # a return type pydantic cannot describe (a DataFrame...): still show its name
        return declared or "any", src.output_schema, getattr(annotation, "__name__", "Any")
    derived = _json_types(schema)
    return (
        declared or (derived[0] if len(derived) == 1 else "any"),
        src.output_schema or schema,
        _py_type(schema),
    )


# ---- rendering for prompts ---------------------------------------------------------------------

_PY_NAMES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}


def _py_type(schema: Mapping[str, Any]) -> str:
    """A JSON schema as a short Python type annotation, for prompts and error messages."""
    if "enum" in schema or "const" in schema:
        return f"Literal[{', '.join(map(repr, schema.get('enum', [schema.get('const')])))}]"
    if "anyOf" in schema or "oneOf" in schema:
        members = schema.get("anyOf", schema.get("oneOf", []))
        return " | ".join(dict.fromkeys(_py_type(m) for m in members))
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(_py_type({**schema, "type": k}) for k in kind)
    if kind == "array":
        return _array_py(schema)
    if kind == "object":
        extra = schema.get("additionalProperties")
        return f"dict[str, {_py_type(extra)}]" if isinstance(extra, dict) and extra else "dict"
    return _TYPE_PY.get(kind, "Any") if isinstance(kind, str) else "Any"


def _array_py(schema: Mapping[str, Any]) -> str:
    if "prefixItems" in schema:
        shown = ", ".join(_py_type(s) for s in schema["prefixItems"])
        return f"tuple[{shown}{', ...' if schema.get('items') not in (None, False) else ''}]"
    items = schema.get("items")
    container = "set" if schema.get("uniqueItems") else "list"
    return f"{container}[{_py_type(items)}]" if isinstance(items, dict) and items else container


def _keys_hint(schema: Mapping[str, Any]) -> str:
    """For a parameter that is an object with known keys: ' Keys: a: int, b: str = ''.'"""
    objects = [schema, *schema.get("anyOf", [])]
    found = next((o for o in objects if o.get("type") == "object" and "properties" in o), None)
    if found is None:
        return ""
    parts = [
        f"{key}: {_py_type(sub)}" + ("" if key in found.get("required", []) else f" = {_default_text(sub)}")
        for key, sub in found["properties"].items()
    ]
    return f" Keys: {', '.join(parts)}."


class _Text:
    """Shown verbatim by `inspect.Signature.__str__` (annotations and defaults of stubs)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _default_text(schema: Mapping[str, Any]) -> str:
    return repr(schema["default"]) if "default" in schema else "..."


def _param_py(spec: _Spec, name: str) -> str:
    """A parameter's type for the stub; images and audio are Python objects in code, not strings."""
    declared = spec.inputs[name].get("type")
    return "Any" if declared in ("image", "audio") else _py_type(spec.parameters["properties"][name])


def _display_signature(spec: _Spec, with_return: bool = True) -> str:
    props = spec.parameters["properties"]
    shown = [
        inspect.Parameter(
            p.name, p.kind, annotation=_Text(_param_py(spec, p.name)),
            default=_EMPTY if p.required else _Text(_default_text(props[p.name])),
        )
        for p in spec.params
    ]  # fmt: skip
    returns = _Text(spec.returns_py) if with_return else _EMPTY
    return str(inspect.Signature(shown, return_annotation=returns))


def _render_stub(spec: _Spec) -> str:
    indent = "    "
    lines = [f"def {spec.name}{_display_signature(spec)}:"]
    summary = spec.description.strip().replace('"""', r"\"\"\"").splitlines()
    lines += [f'{indent}"""{summary[0]}', *(f"{indent}{s}".rstrip() for s in summary[1:])]
    if spec.params:
        props = spec.parameters["properties"]
        lines += ["", f"{indent}Args:"]
        lines += [
            f"{indent * 2}{p.name}: {' '.join(p.description.split())}{_keys_hint(props[p.name])}"
            for p in spec.params
        ]
    if spec.returns_doc:
        lines += ["", f"{indent}Returns:", f"{indent * 2}{spec.returns_doc}"]
    lines.append(f'{indent}"""')
    return "\n".join(lines)


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


def _problems(spec: _Spec, errors: list[ErrorDetails], arguments: Mapping[str, Any]) -> list[str]:
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
            problems.append(
                f"argument {top!r}: expected {_py_type(schema)}, got {_short(arguments.get(top))}"
            )
    return problems


def _validate(spec: _Spec, arguments: Mapping[str, Any], error: type[Exception]) -> dict[str, Any]:
    try:
        validated = spec.model.model_validate(dict(arguments))
    except ValidationError as exc:
        problems = _problems(spec, exc.errors(include_url=False), arguments)
        if len(problems) > 4:
            problems = [*problems[:4], f"and {len(problems) - 4} more"]
        expected = f"{spec.name}{_display_signature(spec, with_return=False)}"
        raise error(
            f"Invalid arguments for tool {spec.name!r}: {'; '.join(problems)}. Expected: {expected}"
        ) from None
    return {p.name: getattr(validated, f"p{i}") for i, p in enumerate(spec.params)}


def _as_mapping(spec: _Spec, arguments: Mapping[str, Any] | str) -> Mapping[str, Any]:
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


# ---- Tool ----------------------------------------------------------------------------------------


def _declared(target: Any, attr: str) -> Any:
    """`attr` as the user set it on `target` (an instance or a class): None when unset, or when
    the value was filled in by codeloop from a class's `forward` (so subclasses re-derive it)."""
    if not isinstance(target, type) and attr in vars(target):
        return vars(target)[attr]
    for klass in (target if isinstance(target, type) else type(target)).__mro__:
        if attr in vars(klass):
            return None if attr in vars(klass).get("_codeloop_derived", ()) else vars(klass)[attr]
    return None


class Tool:
    """A capability the agent can call. Subclass it and declare:

    * `name`: a Python identifier; `description`: what the tool does, for the model;
    * `inputs`: `{param: {"type": <smolagents type name>, "description": ..., "nullable": bool}}`,
      one entry per `forward` parameter (optional when `forward` has type hints and a docstring
      describing its parameters); `output_type`: a smolagents type name (optional when
      `forward` has a return hint);
    * `forward(self, ...)`: the implementation, sync or `async def`.

    The definition is checked when the class is created (or, for attributes set in `__init__`,
    when the instance is first used) and `ToolDefinitionError` says what to fix.
    """

    name: str
    description: str
    inputs: dict[str, dict[str, Any]]
    output_type: str
    output_schema: dict[str, Any] | None
    is_initialized: bool = False
    _codeloop_derived: ClassVar[frozenset[str]]
    _codeloop_class_spec: ClassVar[_Spec]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        defines_forward = any("forward" in vars(k) for k in cls.__mro__ if k is not Tool)
        if not (
            defines_forward
            and isinstance(getattr(cls, "name", None), str)
            and isinstance(getattr(cls, "description", None), str)
        ):
            return  # completed in __init__ (or abstract): checked on first use
        spec = _build_spec(_source_of(cls))
        derived = {a for a in ("inputs", "output_type", "output_schema") if _declared(cls, a) is None}
        for attr in derived:
            setattr(cls, attr, getattr(spec, attr))
        cls._codeloop_derived = frozenset(derived)
        cls._codeloop_class_spec = dataclasses.replace(spec, key=_source_of(cls).key())

    def __init__(self) -> None:
        if isinstance(getattr(self, "name", None), str) and isinstance(
            getattr(self, "description", None), str
        ):
            _ = self._tool_spec  # check definitions completed in a subclass's __init__ now

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The implementation. Override it (sync or `async def`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward().")

    def setup(self) -> None:
        """Expensive one-time initialisation (load a model...); runs before the first call."""

    @property
    def _tool_spec(self) -> _Spec:
        source = self._source()
        key = source.key()
        cached: _Spec | None = vars(self).get("_codeloop_spec") or vars(type(self)).get(
            "_codeloop_class_spec"
        )
        if cached is None or cached.key != key:
            cached = _build_spec(source)
            self.__dict__["_codeloop_spec"] = cached
        return cached

    def _source(self) -> _Source:
        return _source_of(self)

    # -- descriptions --

    def json_schema(self) -> dict[str, Any]:
        """`{"name", "description", "parameters"}` for native function calling (no `$ref`s
        unless a type is recursive)."""
        spec = self._tool_spec
        return {
            "name": spec.name,
            "description": spec.description,
            "parameters": copy.deepcopy(spec.parameters),
        }

    def to_code_prompt(self) -> str:
        """A Python stub (signature and short docstring) for a code agent's system prompt."""
        return _render_stub(self._tool_spec)

    # -- calling --

    def validate_arguments(self, arguments: Mapping[str, Any] | str) -> dict[str, Any]:
        """Check a JSON tool call's arguments (a dict or a JSON object string) and convert them
        (dict -> pydantic model, str -> Enum...). Defaults are filled in. Raises
        `AgentToolCallError` with a short message for the model."""
        spec = self._tool_spec
        return _validate(spec, _as_mapping(spec, arguments), AgentToolCallError)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call like the function: positional arguments map to the inputs in order. Invalid
        arguments raise `TypeError`. An async `forward` is run to completion (see module doc)."""
        spec = self._tool_spec
        args_, kwargs_ = spec.split(self._bind(spec, args, kwargs))
        self._ensure_setup()
        if spec.is_async:
            return run_sync(self.forward(*args_, **kwargs_))
        return self.forward(*args_, **kwargs_)

    async def acall(self, arguments: Mapping[str, Any] | str) -> Any:
        """Validate `arguments` (`AgentToolCallError`), then run `forward`: natively if async,
        in a worker thread if sync. Its exceptions become `AgentToolExecutionError`."""
        spec = self._tool_spec
        args, kwargs = spec.split(self.validate_arguments(arguments))
        try:
            if not self.is_initialized:
                await asyncio.to_thread(self._ensure_setup)
            if spec.is_async:
                return await self.forward(*args, **kwargs)
            return await asyncio.to_thread(self.forward, *args, **kwargs)
        except AgentError:
            raise
        except Exception as exc:
            raise AgentToolExecutionError(f"Tool {spec.name} failed: {type(exc).__name__}: {exc}") from exc

    def as_host_function(self) -> Callable[..., Any]:
        """A plain function for a sandbox: called with Python arguments, validated (`TypeError`
        on bad ones), exceptions from `forward` propagate unchanged. Async iff `forward` is."""
        spec = self._tool_spec

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            args_, kwargs_ = spec.split(self._bind(spec, args, kwargs))
            self._ensure_setup()
            return await self.forward(*args_, **kwargs_)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self(*args, **kwargs)

        host: Callable[..., Any] = call_async if spec.is_async else call
        host.__name__ = host.__qualname__ = spec.name
        host.__doc__ = spec.description
        host.__signature__ = spec.signature  # type: ignore[attr-defined]
        return host

    def _bind(self, spec: _Spec, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        try:
            bound = spec.signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(
                f"{spec.name}(): {exc}. Expected: {spec.name}{_display_signature(spec, with_return=False)}"
            ) from None
        return _validate(spec, bound.arguments, TypeError)

    def _ensure_setup(self) -> None:
        if not self.is_initialized:
            self.setup()
            self.is_initialized = True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={getattr(self, 'name', None)!r})"


def _source_of(target: Tool | type[Tool]) -> _Source:
    cls = target if isinstance(target, type) else type(target)
    return _Source(
        func=cls.forward,
        skip_first=True,
        name=getattr(target, "name", None),  # type: ignore[arg-type]  # checked by _check_name
        description=getattr(target, "description", None),
        inputs=_declared(target, "inputs"),
        output_type=_declared(target, "output_type"),
        output_schema=_declared(target, "output_schema"),
    )


# ---- @tool ---------------------------------------------------------------------------------------


class FunctionTool(Tool):
    """A tool made by `@tool` from a function. On a method, it is a descriptor: `obj.method`
    is a tool bound to `obj` whose schema leaves out `self`."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> None:
        if isinstance(fn, staticmethod):
            fn = fn.__func__
        if isinstance(fn, classmethod) or not callable(fn):
            raise ToolDefinitionError(
                f"@tool needs a function or a method, got {fn!r}; "
                "for a classmethod, decorate a plain function instead."
            )
        params = list(inspect.signature(fn).parameters)
        self._fn = fn
        self._is_method = bool(params) and params[0] == "self"
        self._attr_name: str | None = None
        self.name = name if name is not None else getattr(fn, "__name__", "")
        spec = _build_spec(
            dataclasses.replace(self._source(), description=description, inputs=None, output_type=None)
        )
        self.description, self.inputs, self.output_type = spec.description, spec.inputs, spec.output_type
        self.output_schema = spec.output_schema
        self.__dict__["_codeloop_spec"] = dataclasses.replace(spec, key=self._source().key())
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__signature__ = spec.signature

    @property
    def function(self) -> Callable[..., Any]:
        """The decorated function (bound to its instance for a bound method tool)."""
        return self._fn

    def _source(self) -> _Source:
        return _Source(
            func=self._fn,
            skip_first=self._is_method,
            name=self.name,
            description=getattr(self, "description", None),
            inputs=getattr(self, "inputs", None),
            output_type=getattr(self, "output_type", None),
            output_schema=getattr(self, "output_schema", None),
        )

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._is_method:
            raise TypeError(
                f"{self.name} is a method tool: call it through an instance, e.g. obj.{self.name}(...)."
            )
        return self._fn(*args, **kwargs)

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr_name = name

    def __get__(self, instance: Any, owner: type | None = None) -> FunctionTool:
        if instance is None or not self._is_method:
            return self
        bound = copy.copy(self)
        bound._fn = types.MethodType(self._fn, instance)
        bound._is_method = False
        bound.__dict__["_codeloop_spec"] = dataclasses.replace(self._tool_spec, key=bound._source().key())
        if self._attr_name is not None and isinstance(getattr(instance, "__dict__", None), dict):
            instance.__dict__[self._attr_name] = bound  # later lookups find the bound tool directly
        return bound


@overload
def tool(fn: Callable[..., Any], /) -> FunctionTool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], FunctionTool]: ...
def tool(
    fn: Callable[..., Any] | None = None, /, *, name: str | None = None, description: str | None = None
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Make a tool from a function with type hints and a Google-style docstring.

    Works bare (`@tool`) or with options (`@tool(name="search", description="...")`). The
    docstring summary is the description; its `Args:` section must describe every parameter
    (or use `Annotated[T, Field(description=...)]`). Parameters with defaults are optional.
    Problems raise `ToolDefinitionError` here, at definition time.
    """
    if fn is not None:
        return FunctionTool(fn, name=name, description=description)

    def decorate(func: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(func, name=name, description=description)

    return decorate


class FinalAnswerTool(Tool):
    """Ends the run with an answer; the JSON tool-calling agent offers it to the model."""

    name = "final_answer"
    description = "Give the final answer to the task."
    inputs = {"answer": {"type": "any", "description": "The final answer to the task."}}  # noqa: RUF012
    output_type = "any"

    def forward(self, answer: Any) -> Any:
        return answer
