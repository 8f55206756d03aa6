"""`python_interpreter`: run Python for a tool-calling agent, inside a sandbox.

Code runs in a codeloop executor - by default a fresh Monty session per call (no file system,
network or environment access; see `codeloop.executors.monty`) - never in this process. The
`local` executor, which runs code with the host's privileges, is refused. Each call starts from
empty state: variables do not carry over between calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from ..executors import CodeOutput, Executor, ExecutorLimits, create_executor
from ..tools import Tool

__all__ = ["PythonInterpreterTool", "format_code_output", "python_interpreter"]

_UNSAFE_EXECUTORS = frozenset({"local"})


class PythonInterpreterTool(Tool):
    """Evaluates Python code in a sandboxed executor and reports what it printed and returned."""

    name = "python_interpreter"
    description = (
        "Runs Python code in a sandbox and returns what it printed and the value of its last "
        "expression (or the error). State does not persist between calls; there is no file "
        "system or network access."
    )

    def __init__(
        self,
        executor: str | Executor = "monty",
        *,
        limits: ExecutorLimits | None = None,
        executor_options: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(executor, str):
            if executor in _UNSAFE_EXECUTORS:
                raise ConfigurationError(
                    f"python_interpreter refuses the {executor!r} executor: it runs code in the host. "
                    "Use 'monty' (default), 'jail', 'docker', 'e2b' or 'modal'."
                )
        elif type(executor).__name__ == "LocalExecutor":
            raise ConfigurationError("python_interpreter refuses a LocalExecutor: it runs code in the host.")
        self.executor = executor
        self.limits = limits or ExecutorLimits(timeout_s=10.0)
        self.executor_options = dict(executor_options or {})
        self._busy = False
        super().__init__()

    async def forward(self, code: str) -> str:
        """Run the code.

        Args:
            code: Python source to run. Use print() to show intermediate results; the value of the
                last expression is reported too.
        """
        if isinstance(self.executor, str):
            executor = create_executor(self.executor, limits=self.limits, **self.executor_options)
            return await _run_once(executor, code)
        if self._busy:
            raise RuntimeError("This python_interpreter's executor is already running code; try again.")
        self._busy = True
        try:
            return await _run_once(self.executor, code)
        finally:
            self._busy = False


async def _run_once(executor: Executor, code: str) -> str:
    try:
        await executor.start({})
        result = await executor.run(code)
    finally:
        await executor.close()
    return format_code_output(result)


def format_code_output(result: CodeOutput) -> str:
    """What the model sees: the printed output, then the error or the last value."""
    parts = [f"Stdout:\n{result.logs.rstrip()}" if result.logs.strip() else "Stdout: (nothing printed)"]
    if result.error is not None:
        parts.append(f"Error: {result.error.describe()}")
    else:
        parts.append(f"Last value: {result.output!r}")
    return "\n".join(parts)


python_interpreter = PythonInterpreterTool()
"""The default `python_interpreter` tool (a fresh Monty sandbox per call, 10 s time limit)."""
