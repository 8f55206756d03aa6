"""`SchemaTool`: a tool built from data (a name, a description and a JSON schema of its
arguments, as MCP servers and other frameworks describe tools) around a function that receives
the validated arguments as keyword arguments by their real (wire) names."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..errors import AgentToolCallError, ToolDefinitionError
from ._json_schema import check_schema, normalize_schema, schema_checker, tidy_schema
from ._names import code_name, code_names
from ._render import py_type
from ._schema import _summary
from ._spec import Param, Spec
from ._tool import Tool
from ._validation import as_mapping, validate

__all__ = ["UNSET", "SchemaTool"]

_EMPTY = inspect.Parameter.empty


class _Unset:
    """The value of an optional argument that has no default and was not given: it is left
    out of the call to the function."""

    def __repr__(self) -> str:
        return "..."

    def __copy__(self) -> _Unset:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Unset:
        return self


UNSET: Any = _Unset()


@dataclass(frozen=True)
class _Arguments:
    """The arguments' names both ways and their tidied schemas, keyed by wire name."""

    code_of: dict[str, str]
    wire_of: dict[str, str]
    schemas: dict[str, dict[str, Any]]
    raw: dict[str, dict[str, Any]]
    required: tuple[str, ...]


def _arguments(tool_name: str, wire_parameters: dict[str, Any], normalized: dict[str, Any]) -> _Arguments:
    properties: dict[str, Any] = wire_parameters.get("properties", {})
    required = tuple(n for n in wire_parameters.get("required", []) if n in properties)
    if len(required) != len(set(wire_parameters.get("required", []))):
        unknown = sorted(set(wire_parameters.get("required", [])) - set(properties))
        raise ToolDefinitionError(
            f"Tool {tool_name!r}: its input schema requires {', '.join(map(repr, unknown))}, "
            "which it does not list in `properties`."
        )
    code_of = code_names(properties)
    raw = {n: s if isinstance(s, dict) else {} for n, s in normalized.get("properties", {}).items()}
    return _Arguments(
        code_of=code_of, wire_of={c: w for w, c in code_of.items()}, schemas=properties, raw=raw,
        required=required,
    )  # fmt: skip


def _param(args: _Arguments, wire: str) -> Param:
    schema = args.schemas[wire]
    raw = args.raw.get(wire, {})
    description = schema.get("description") or raw.get("title") or ""
    if wire in args.required:
        default: Any = _EMPTY
    else:
        default = copy.deepcopy(schema["default"]) if "default" in schema else UNSET
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return Param(args.code_of[wire], py_type(schema), default, str(description), kind)


def _model(tool_code_name: str, params: tuple[Param, ...]) -> type[BaseModel]:
    """Pydantic checks presence (required, unexpected, defaults); the schema checks values."""
    fields: dict[str, Any] = {}
    for i, p in enumerate(params):
        if p.required:
            fields[f"p{i}"] = (Any, Field(..., alias=p.name, description=p.description))
        else:
            fields[f"p{i}"] = (
                Any,
                Field(
                    default_factory=lambda d=p.default: copy.deepcopy(d),
                    alias=p.name,
                    description=p.description,
                ),
            )
    return create_model(f"{tool_code_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)


def _wire_parameters(tool_name: str, normalized: dict[str, Any]) -> dict[str, Any]:
    tidied = tidy_schema(tool_name, normalized)
    tidied.pop("description", None)
    tidied["type"] = "object"
    tidied.setdefault("properties", {})
    tidied.setdefault("required", [])
    tidied["additionalProperties"] = False
    return tidied


def _output(
    tool_name: str, output_schema: Mapping[str, Any] | None
) -> tuple[str, dict[str, Any] | None, str]:
    if output_schema is None:
        return "any", None, "Any"
    normalized = normalize_schema(output_schema) if isinstance(output_schema, Mapping) else output_schema
    check_schema(tool_name, normalized, "output schema")
    tidied = tidy_schema(tool_name, normalized)
    kind = _summary(tidied)["type"]
    return (kind if isinstance(kind, str) else "any"), tidied, py_type(tidied)


def _is_async(function: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004  # an object with an async __call__
    )


def _description(tool_name: str, description: Any, schema: Mapping[str, Any]) -> str:
    if description is not None and not isinstance(description, str):
        raise ToolDefinitionError(f"Tool {tool_name!r}: description must be a string, got {description!r}.")
    text = (description or "").strip() or str(schema.get("description") or "").strip()
    return text or f"Calls the tool {tool_name}."


def _build(
    name: str, description: Any, input_schema: Any, function: Callable[..., Any], output_schema: Any,
    code: str | None,
) -> tuple[Spec, _Arguments, dict[str, Any]]:  # fmt: skip
    normalized = normalize_schema(input_schema) if isinstance(input_schema, Mapping) else input_schema
    check_schema(name, normalized)
    wire_parameters = _wire_parameters(name, normalized)
    args = _arguments(name, wire_parameters, normalized)
    code = code or code_name(name)
    params = tuple(
        _param(args, w) for w in sorted(args.schemas, key=lambda w: w not in args.required)
    )  # required ones first, as Python wants them
    output_type, output_tidied, returns_py = _output(name, output_schema)
    checker = schema_checker(wire_parameters, args.code_of)
    spec = Spec(
        key=("schema", name), name=code, description=_description(name, description, normalized),
        params=params, model=_model(code, params), parameters=_code_parameters(wire_parameters, args),
        inputs=_inputs(params, args), output_type=output_type, output_schema=output_tidied,
        returns_py=returns_py, returns_doc=None, is_async=_is_async(function),
        signature=inspect.Signature(
            [inspect.Parameter(p.name, p.kind, default=p.default, annotation=p.annotation) for p in params],
            return_annotation=returns_py,
        ),
        check=lambda values: checker({args.wire_of[k]: v for k, v in values.items() if v is not UNSET}),
    )  # fmt: skip
    return spec, args, wire_parameters


def _code_parameters(wire_parameters: dict[str, Any], args: _Arguments) -> dict[str, Any]:
    """The parameters schema keyed by Python names, which the code stub is rendered from."""
    return {
        **wire_parameters,
        "properties": {args.code_of[w]: s for w, s in wire_parameters["properties"].items()},
        "required": [args.code_of[w] for w in args.required],
    }


def _inputs(params: tuple[Param, ...], args: _Arguments) -> dict[str, dict[str, Any]]:
    return {
        p.name: {
            **_summary(args.schemas[args.wire_of[p.name]]),
            **({} if p.required else {"nullable": True}),
            "description": p.description,
        }
        for p in params
    }


class SchemaTool(Tool):
    """A tool made from a name, a description and a JSON schema (see `Tool.from_schema`).

    `name` is the Python name code calls it by (`math_factorial` for `math.factorial`);
    `wire_name` is the real one, which `json_schema()` shows and `to_dict()` keeps. Arguments
    likewise: Python names in the code stub and in `tool(...)` calls, real names in
    `json_schema()` and for the function, which receives the validated values as keyword
    arguments by their real names. Optional arguments without a default that were not given are
    left out of the call; missing ones with a default get it."""

    def __init__(
        self,
        name: str,
        description: str | None,
        input_schema: Mapping[str, Any],
        function: Callable[..., Any],
        output_schema: Mapping[str, Any] | None = None,
        *,
        code_name: str | None = None,
        requires_approval: bool = False,
    ) -> None:
        self.requires_approval = requires_approval
        if not isinstance(name, str) or not name:
            raise ToolDefinitionError(f"A tool's name must be a non-empty string, got {name!r}.")
        if not callable(function):
            raise ToolDefinitionError(f"Tool {name!r}: function must be callable, got {function!r}.")
        if code_name is not None and not (code_name.isidentifier() and code_name == _code(code_name)):
            raise ToolDefinitionError(f"Tool {name!r}: code_name {code_name!r} is not a Python identifier.")
        spec, self._arguments, self._wire_parameters = _build(
            name, description, input_schema, function, output_schema, code_name
        )
        self._wire_name, self._function = name, function
        self._input_schema = copy.deepcopy(dict(input_schema))
        self._output_schema_given = copy.deepcopy(dict(output_schema)) if output_schema is not None else None
        self.name, self.description, self.inputs = spec.name, spec.description, spec.inputs
        self.output_type, self.output_schema = spec.output_type, spec.output_schema
        self.__dict__["_codeloop_spec"] = spec
        super().__init__()

    @property
    def _tool_spec(self) -> Spec:
        spec: Spec = self.__dict__["_codeloop_spec"]
        return spec

    @property
    def wire_name(self) -> str:
        return self._wire_name

    @property
    def function(self) -> Callable[..., Any]:
        """The function the validated arguments are passed to."""
        return self._function

    @property
    def input_schema(self) -> dict[str, Any]:
        """The input schema as it was given."""
        return copy.deepcopy(self._input_schema)

    def json_schema(self) -> dict[str, Any]:
        return {
            "name": self._wire_name,
            "description": self.description,
            "parameters": copy.deepcopy(self._wire_parameters),
        }

    def validate_arguments(self, arguments: Mapping[str, Any] | str) -> dict[str, Any]:
        """As `Tool.validate_arguments`; arguments may be named by their real or Python names."""
        spec = self._tool_spec
        given = as_mapping(spec, arguments)
        renamed = {self._arguments.code_of.get(k, k): v for k, v in given.items()}
        return validate(spec, renamed, AgentToolCallError)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        named = dict(zip((p.name for p in self._tool_spec.params), args, strict=False)) | kwargs
        wire = {self._arguments.wire_of.get(k, k): v for k, v in named.items() if v is not UNSET}
        return self._function(**wire)

    def _serialized_schemas(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        return self.input_schema, copy.deepcopy(self._output_schema_given)


def _code(name: str) -> str:
    return code_name(name)
