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

from ._schema import AUTHORIZED_TYPES
from ._tool import FinalAnswerTool, FunctionTool, Tool, tool

__all__ = ["AUTHORIZED_TYPES", "FinalAnswerTool", "FunctionTool", "Tool", "tool"]
