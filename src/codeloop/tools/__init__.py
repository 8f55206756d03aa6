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

Two descriptions of the parameters, as in smolagents:

* `inputs` and `output_type` are smolagents' representation, equal to what smolagents derives
  from the same function: a parameter with a default is `nullable`, `Literal[1, None]` is
  `{"type": "integer", "enum": [1], "nullable": True}`, a union of types is a sorted list of
  names, arrays and dicts carry their `items` / `prefixItems` / `additionalProperties`, an
  `Args:` line ending in `(choices: ["a", "b"])` adds an `enum` (which validation enforces), and
  `T | None` returns `output_type` T;
* `json_schema()` is standard JSON Schema, what the model is sent: optional means left out of
  `required` (with its `default`), null-able means `anyOf` with `{"type": "null"}`, `Any` is `{}`.

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

Tools as data: `Tool.from_schema(name, description, input_schema, function, output_schema)`
builds a `SchemaTool` from a JSON schema (an MCP server's tool list, another framework's
function definitions); `tool.to_dict()` / `Tool.from_dict(d, function=...)` turn any tool into a
dict and back (a `@tool` function's dict holds its source, run again only with
`trust_remote_code=True`). A real name that is not a Python identifier (`math.factorial`) stays
the `wire_name` and `json_schema()`'s name; `name` is the Python name code uses
(`math_factorial`; `code_names()` picks distinct ones for several tools).
"""

from ._names import code_names
from ._schema import AUTHORIZED_TYPES
from ._schema_tool import SchemaTool
from ._tool import FinalAnswerTool, FunctionTool, Tool, tool
from .context import ToolCallContext, current_call

__all__ = [
    "AUTHORIZED_TYPES",
    "FinalAnswerTool",
    "FunctionTool",
    "SchemaTool",
    "Tool",
    "ToolCallContext",
    "code_names",
    "current_call",
    "tool",
]
