"""What a tool is: its name, description, parameters and output, derived once from its
definition (a function's hints and docstring, or a `Tool` subclass's attributes) and checked."""

from __future__ import annotations

import inspect
import keyword
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ..errors import ToolDefinitionError
from ._docstring import Docstring, parse_docstring, split_choices
from ._schema import (
    AUTHORIZED_TYPES,
    declared_annotation,
    derive_inputs,
    derive_output,
    parameters_schema,
    type_label,
)
from ._validation import accepts, arguments_model

__all__ = ["Param", "Source", "Spec", "build_spec"]

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True)
class Source:
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
class Param:
    name: str
    annotation: Any
    default: Any
    description: str
    kind: inspect._ParameterKind
    choices: tuple[Any, ...] | None = None  # from the docstring's `(choices: [...])`

    @property
    def required(self) -> bool:
        return self.default is _EMPTY


@dataclass(frozen=True)
class Spec:
    """Everything derived from a tool's definition, built once and cached."""

    key: tuple[Any, ...]
    name: str
    description: str
    params: tuple[Param, ...]
    model: type[BaseModel]
    parameters: dict[str, Any]
    inputs: dict[str, dict[str, Any]]
    output_type: str
    output_schema: dict[str, Any] | None
    returns_py: str
    returns_doc: str | None
    is_async: bool
    signature: inspect.Signature
    check: Callable[[Mapping[str, Any]], list[str]] | None = None
    """Further checks of the validated values (a tool built from a JSON schema validates them
    against it): one line per problem, reported like the pydantic model's."""

    def split(self, values: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Positional-only values as args, the rest as kwargs."""
        positional = [p.name for p in self.params if p.kind is inspect.Parameter.POSITIONAL_ONLY]
        return [values[n] for n in positional], {k: v for k, v in values.items() if k not in positional}


def build_spec(src: Source) -> Spec:
    _check_name(src.name)
    doc = parse_docstring(src.func.__doc__)
    description = _description(src, doc)
    hints = _type_hints(src)
    params = tuple(_collect_params(src, hints, doc))
    model = arguments_model(src.name, params)
    parameters = parameters_schema(src.name, params, model)
    inputs = derive_inputs(src, params, parameters)
    output_type, output_schema, returns_py = derive_output(src, hints)
    return Spec(
        key=src.key(), name=src.name, description=description, params=params, model=model,
        parameters=parameters, inputs=inputs, output_type=output_type, output_schema=output_schema,
        returns_py=returns_py, returns_doc=doc.returns, is_async=inspect.iscoroutinefunction(src.func),
        signature=_signature(params, hints.get("return", _EMPTY)),
    )  # fmt: skip


def _description(src: Source, doc: Docstring) -> str:
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


def _type_hints(src: Source) -> dict[str, Any]:
    try:
        return typing.get_type_hints(src.func, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(
            f"Tool {src.name!r}: its type hints cannot be resolved ({type(exc).__name__}: {exc}). "
            "Define or import the types they name at module level."
        ) from exc


def _collect_params(src: Source, hints: Mapping[str, Any], doc: Docstring) -> list[Param]:
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


def _make_param(src: Source, p: inspect.Parameter, hints: Mapping[str, Any], doc: Docstring) -> Param:
    annotation = hints.get(p.name, _EMPTY)
    if src.inputs is not None:
        return _declared_param(src.name, p, annotation, src.inputs[p.name])
    if annotation is _EMPTY:
        raise ToolDefinitionError(
            f"Tool {src.name!r}: parameter {p.name!r} has no type hint. Add one, e.g. `{p.name}: str`."
        )
    described = _annotated_description(annotation)
    if described:
        return Param(p.name, annotation, p.default, described, p.kind)
    try:
        description, choices = split_choices(doc.args.get(p.name, ""))
    except ValueError as exc:
        raise ToolDefinitionError(f"Tool {src.name!r}: parameter {p.name!r}: {exc}.") from None
    if not description:
        raise ToolDefinitionError(
            f"Tool {src.name!r}: parameter {p.name!r} is not described. Add it to the docstring's "
            f"Args: section, e.g.\n    Args:\n        {p.name}: What {p.name} means."
        )
    _check_choices(src.name, p.name, annotation, choices)
    return Param(p.name, annotation, p.default, description, p.kind, choices)


def _declared_param(tool_name: str, p: inspect.Parameter, annotation: Any, entry: Any) -> Param:
    """A parameter described by a `Tool` subclass's `inputs` entry."""
    _check_entry(tool_name, p.name, entry, annotation is not _EMPTY)
    if annotation is _EMPTY:
        annotation = declared_annotation(entry)
    elif entry.get("nullable") and p.default is _EMPTY and not accepts(annotation, None):
        raise ToolDefinitionError(
            f"Tool {tool_name!r}: inputs[{p.name!r}] is nullable, but forward()'s {p.name!r} has no "
            f"default and its type {type_label(annotation)} does not accept None. Give it a default "
            f'(e.g. `{p.name}: {type_label(annotation)} | None = None`) or remove "nullable".'
        )
    return Param(p.name, annotation, p.default, str(entry["description"]), p.kind)


def _check_choices(tool_name: str, name: str, annotation: Any, choices: tuple[Any, ...] | None) -> None:
    for choice in choices or ():
        if not accepts(annotation, choice):
            raise ToolDefinitionError(
                f"Tool {tool_name!r}: parameter {name!r} lists {choice!r} in its docstring's "
                f"`(choices: ...)`, which is not a {type_label(annotation)}. List values of the "
                "parameter's type, or annotate it with a Literal or an Enum instead."
            )


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


def _annotated_description(annotation: Any) -> str | None:
    """A description given as `Annotated[T, Field(description=...)]` or `Annotated[T, "..."]`."""
    for meta in getattr(annotation, "__metadata__", ()) if typing.get_origin(annotation) is Annotated else ():
        if isinstance(meta, FieldInfo) and meta.description:
            return meta.description
        if isinstance(meta, str) and meta.strip():
            return meta
    return None


def _signature(params: tuple[Param, ...], returns: Any) -> inspect.Signature:
    return inspect.Signature(
        [inspect.Parameter(p.name, p.kind, default=p.default, annotation=p.annotation) for p in params],
        return_annotation=returns,
    )
