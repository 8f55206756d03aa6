"""Tools as plain dicts (`Tool.to_dict()`, `Tool.from_dict()`): name, description, input and
output schemas, and the source code: a `@tool` function's, or a `Tool` subclass's class (rebuilt
by calling the class without arguments)."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ToolDefinitionError

if TYPE_CHECKING:
    from ._tool import Tool

__all__ = ["tool_from_dict", "tool_to_dict"]


class ToolDict(BaseModel):
    """What `Tool.to_dict()` returns and `Tool.from_dict()` reads."""

    model_config = ConfigDict(extra="ignore")

    name: str
    description: str | None = None
    input_schema: dict[str, Any]
    output_type: str | None = None
    output_schema: dict[str, Any] | None = None
    code: str | None = None
    code_name: str | None = None
    requires_approval: bool | None = None  # written only when True


def tool_to_dict(tool: Tool) -> dict[str, Any]:
    from ._names import code_name
    from ._schema_tool import SchemaTool
    from ._tool import FunctionTool

    code: str | None = None
    if isinstance(tool, SchemaTool):  # data around a function: no source of its own
        input_schema, output_schema = tool._serialized_schemas()
    else:
        input_schema, output_schema = tool.json_schema()["parameters"], tool.output_schema
        code = _source_code(tool.function if isinstance(tool, FunctionTool) else type(tool))
    found = ToolDict(
        name=tool.wire_name, description=tool.description, input_schema=input_schema,
        output_type=tool.output_type, output_schema=output_schema, code=code,
        code_name=tool.name if tool.name != code_name(tool.wire_name) else None,
        requires_approval=True if tool.requires_approval else None,
    )  # fmt: skip
    return found.model_dump(exclude_none=True)


def _source_code(target: Callable[..., Any] | type) -> str | None:
    """The source of a function or of a class defined at a module's top level (None otherwise)."""
    kept = getattr(target, "__dict__", {}).get("_codeloop_source")
    if isinstance(kept, str):  # rebuilt by from_dict: the source it was rebuilt from
        return kept
    if isinstance(target, type) and "<locals>" in target.__qualname__:
        return None  # a class defined in a function: its source may use the function's names
    try:
        return textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):  # defined in a REPL or built dynamically: no source to keep
        return None


def tool_from_dict(
    data: Mapping[str, Any], function: Callable[..., Any] | None = None, trust_remote_code: bool = False
) -> Tool:
    try:
        found = ToolDict.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ToolDefinitionError(f"Not a tool's dict ({problems}).") from None
    built = _tool_from(found, function, trust_remote_code)
    if found.requires_approval:
        built.requires_approval = True
    return built


def _tool_from(found: ToolDict, function: Callable[..., Any] | None, trust_remote_code: bool) -> Tool:
    from ._schema_tool import SchemaTool
    from ._tool import FunctionTool

    if function is not None:
        return SchemaTool(
            found.name, found.description, found.input_schema, function, found.output_schema,
            code_name=found.code_name,
        )  # fmt: skip
    if found.code is None:
        raise ToolDefinitionError(
            f"Tool {found.name!r}: its dict has no source code, so from_dict needs the function "
            "to call: Tool.from_dict(d, function=...)."
        )
    if not trust_remote_code:
        raise ToolDefinitionError(
            f"Tool {found.name!r}: its dict holds Python source code, which from_dict would have to "
            "run (exec) to rebuild the function, and that code can do anything your process can. "
            "Pass trust_remote_code=True only if you trust where the dict came from, or pass "
            "function=... to use your own implementation."
        )
    tree = _parsed(found.name, found.code)
    if any(isinstance(n, ast.ClassDef) for n in tree.body):
        built = _tool_from_class_code(found.name, tree)
        type(built)._codeloop_source = found.code  # type: ignore[attr-defined]  # to_dict gives it again
        return built
    function = _function_from_code(found.name, tree)
    function._codeloop_source = found.code  # type: ignore[attr-defined]
    return FunctionTool(function, name=found.code_name or found.name, description=found.description)


def _parsed(name: str, code: str) -> ast.Module:
    try:
        return ast.parse(code)
    except SyntaxError as exc:
        raise ToolDefinitionError(f"Tool {name!r}: its source code does not parse ({exc.msg}).") from None


def _executed(name: str, tree: ast.Module) -> dict[str, Any]:
    """The namespace after running `tree`; the names of `typing`, `Tool` and `tool` are available."""
    from ._tool import Tool, tool

    namespace: dict[str, Any] = {"tool": tool, "Tool": Tool, "__name__": f"codeloop_tool_{name}"}
    exec("from typing import *", namespace)  # the caller trusts this code
    exec(compile(tree, f"<tool {name}>", "exec"), namespace)
    return namespace


def _function_from_code(name: str, tree: ast.Module) -> Callable[..., Any]:
    """Exec `tree` (a function definition, its decorators removed) and return the function."""
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not defs:
        raise ToolDefinitionError(f"Tool {name!r}: its source code defines no function.")
    chosen = next((d for d in defs if d.decorator_list), defs[-1])
    chosen.decorator_list = []
    function: Callable[..., Any] = _executed(name, tree)[chosen.name]
    return function


def _tool_from_class_code(name: str, tree: ast.Module) -> Tool:
    """Exec `tree` (a `Tool` subclass) and return an instance, made without arguments."""
    from ._tool import Tool

    class_names = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    namespace = _executed(name, tree)
    classes = [namespace[n] for n in class_names if isinstance(namespace[n], type)]
    found = [c for c in classes if issubclass(c, Tool) and c is not Tool]
    if not found:
        raise ToolDefinitionError(f"Tool {name!r}: its source code defines no Tool subclass.")
    try:
        built: Tool = found[-1]()
    except TypeError as exc:
        raise ToolDefinitionError(
            f"Tool {name!r}: its class cannot be made without arguments ({exc}); rebuild it "
            "yourself and pass it in place of the saved one."
        ) from None
    return built
