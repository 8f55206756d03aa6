"""A tool as the model reads it in a code agent's prompt: an entry with the call's signature,
what it does, its parameters and what it returns (`render_entry`), or smolagents' Python stub
(`render_stub`, `Tool.to_code_prompt()`); also JSON schemas written as Python types, for prompts
and error messages."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._spec import Spec
    from ._tool import Tool

__all__ = ["display_signature", "py_type", "render_entry", "render_stub", "tool_entry"]

_EMPTY = inspect.Parameter.empty
_TYPE_PY = {"string": "str", "boolean": "bool", "integer": "int", "number": "float", "array": "list",
            "object": "dict", "any": "Any", "null": "None", "image": "Any", "audio": "Any"}  # fmt: skip


def py_type(schema: Mapping[str, Any]) -> str:
    """A JSON schema as a short Python type annotation, for prompts and error messages."""
    if "enum" in schema or "const" in schema:
        return f"Literal[{', '.join(map(repr, schema.get('enum', [schema.get('const')])))}]"
    if "anyOf" in schema or "oneOf" in schema:
        members = schema.get("anyOf", schema.get("oneOf", []))
        return " | ".join(dict.fromkeys(py_type(m) for m in members))
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(py_type({**schema, "type": k}) for k in kind)
    if kind == "array":
        return _array_py(schema)
    if kind == "object":
        extra = schema.get("additionalProperties")
        return f"dict[str, {py_type(extra)}]" if isinstance(extra, dict) and extra else "dict"
    return _TYPE_PY.get(kind, "Any") if isinstance(kind, str) else "Any"


def _array_py(schema: Mapping[str, Any]) -> str:
    if "prefixItems" in schema:
        shown = ", ".join(py_type(s) for s in schema["prefixItems"])
        return f"tuple[{shown}{', ...' if schema.get('items') not in (None, False) else ''}]"
    items = schema.get("items")
    container = "set" if schema.get("uniqueItems") else "list"
    return f"{container}[{py_type(items)}]" if isinstance(items, dict) and items else container


def _keys_hint(schema: Mapping[str, Any]) -> str:
    """For a parameter that is an object with known keys: ' Keys: a: int, b: str = ''.'"""
    objects = [schema, *schema.get("anyOf", [])]
    found = next((o for o in objects if o.get("type") == "object" and "properties" in o), None)
    if found is None:
        return ""
    parts = [
        f"{key}: {py_type(sub)}" + ("" if key in found.get("required", []) else f" = {_default_text(sub)}")
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


def _param_py(spec: Spec, name: str) -> str:
    """A parameter's type for the stub; images and audio are Python objects in code, not strings."""
    declared = spec.inputs[name].get("type")
    return "Any" if declared in ("image", "audio") else py_type(spec.parameters["properties"][name])


def display_signature(spec: Spec, with_return: bool = True) -> str:
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


def render_stub(spec: Spec) -> str:
    indent = "    "
    lines = [f"def {spec.name}{display_signature(spec)}:"]
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


def render_entry(spec: Spec) -> str:
    """The tool as a code agent's prompt lists it: the call's signature with no `def` and no
    body (a `def` stub is what a small model copies and fills in with made-up data), then,
    indented, what it does, each parameter, and what it returns."""
    indent = "    "
    props = spec.parameters["properties"]
    lines = [f"{spec.name}{display_signature(spec)}"]
    lines += [f"{indent}{line.strip()}" for line in spec.description.strip().splitlines() if line.strip()]
    lines += [
        f"{indent}{p.name}: {' '.join(p.description.split())}{_keys_hint(props[p.name])}" for p in spec.params
    ]
    if spec.returns_doc:
        lines.append(f"{indent}Returns: {' '.join(spec.returns_doc.split())}")
    return "\n".join(lines)


def tool_entry(tool: Tool) -> str:
    """`render_entry` of a tool."""
    return render_entry(tool._tool_spec)
