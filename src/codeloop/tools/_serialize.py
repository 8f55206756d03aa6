"""Tools as plain dicts (`Tool.to_dict()`, `Tool.from_dict()`): name, description, input and
output schemas, and for a `@tool` function its source code."""

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


def tool_to_dict(tool: Tool) -> dict[str, Any]:
    from ._names import code_name
    from ._schema_tool import SchemaTool
    from ._tool import FunctionTool

    if isinstance(tool, SchemaTool):
        input_schema, output_schema = tool._serialized_schemas()
    else:
        input_schema, output_schema = tool.json_schema()["parameters"], tool.output_schema
    found = ToolDict(
        name=tool.wire_name, description=tool.description, input_schema=input_schema,
        output_type=tool.output_type, output_schema=output_schema,
        code=_source_code(tool.function) if isinstance(tool, FunctionTool) else None,
        code_name=tool.name if tool.name != code_name(tool.wire_name) else None,
    )  # fmt: skip
    return found.model_dump(exclude_none=True)


def _source_code(function: Callable[..., Any]) -> str | None:
    try:
        return textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):  # defined in a REPL or built dynamically: no source to keep
        return None


def tool_from_dict(
    data: Mapping[str, Any], function: Callable[..., Any] | None = None, trust_remote_code: bool = False
) -> Tool:
    from ._schema_tool import SchemaTool
    from ._tool import FunctionTool

    try:
        found = ToolDict.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ToolDefinitionError(f"Not a tool's dict ({problems}).") from None
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
    function = _function_from_code(found.name, found.code)
    return FunctionTool(function, name=found.code_name or found.name, description=found.description)


def _function_from_code(name: str, code: str) -> Callable[..., Any]:
    """Exec `code` (a function definition, its decorators removed) and return the function;
    the names of `typing` and `tool` are available to it."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise ToolDefinitionError(f"Tool {name!r}: its source code does not parse ({exc.msg}).") from None
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not defs:
        raise ToolDefinitionError(f"Tool {name!r}: its source code defines no function.")
    chosen = next((d for d in defs if d.decorator_list), defs[-1])
    chosen.decorator_list = []
    from ._tool import Tool, tool

    namespace: dict[str, Any] = {"tool": tool, "Tool": Tool}
    exec("from typing import *", namespace)  # the caller trusts this code
    exec(compile(tree, f"<tool {name}>", "exec"), namespace)
    function: Callable[..., Any] = namespace[chosen.name]
    return function
