"""`module:attr` agent specs for the commands that take an agent (`mcp serve`, `resume`).

`module:attr` names an agent object, or a function taking no arguments that returns one, in a
module importable from the current directory (or the Python path). Whatever the module prints
while it is imported goes to stderr (stdout may be a protocol's wire).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..agents import MultiStepAgent

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "AgentSpecError", "load_agent"]

EXIT_FAILED, EXIT_USAGE = 1, 2
_WHAT = "an agent object (a CodeAgent or ToolCallingAgent) or a function taking no arguments returning one"
_SPEC_EXAMPLE = "e.g. my_agents:agent (my_agents.py in the current directory)"


class AgentSpecError(Exception):
    """The spec names no usable agent; `code` is the command's exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def load_agent(spec: str) -> MultiStepAgent:
    """The agent `spec` ("module:attr") names; the current directory is searched first."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise AgentSpecError(f"{spec!r} is not module:attribute; {_SPEC_EXAMPLE}", EXIT_USAGE)
    with contextlib.redirect_stdout(sys.stderr):  # stdout may be the MCP wire
        module = _import(module_name)
        if not hasattr(module, attr):
            raise AgentSpecError(_missing(module, module_name, attr), EXIT_USAGE)
        return _agent_from(getattr(module, attr), spec)


def _import(module_name: str) -> Any:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise AgentSpecError(
                f"no module named {module_name!r} in {cwd} or on the Python path: run the command "
                "from the directory that holds it, or add that directory to PYTHONPATH",
                EXIT_USAGE,
            ) from None
        raise AgentSpecError(f"importing {module_name} failed: {exc}", EXIT_FAILED) from None
    except Exception as exc:
        raise AgentSpecError(
            f"importing {module_name} failed: {type(exc).__name__}: {exc}", EXIT_FAILED
        ) from None


def _missing(module: Any, module_name: str, attr: str) -> str:
    from ..agents import MultiStepAgent

    agents = sorted(n for n, v in vars(module).items() if isinstance(v, MultiStepAgent))
    hint = f"; its agents: {', '.join(agents)}" if agents else "; it defines no agent object"
    return f"module {module_name} has no attribute {attr!r}{hint}"


def _agent_from(value: Any, spec: str) -> MultiStepAgent:
    from ..agents import MultiStepAgent

    if isinstance(value, MultiStepAgent):
        return value
    what = _WHAT
    if isinstance(value, type) or not callable(value):
        raise AgentSpecError(f"{spec} is {_kind(value)}, not an agent: name {what}", EXIT_USAGE)
    if not _takes_no_arguments(value):
        raise AgentSpecError(f"{spec} needs arguments: name {what}", EXIT_USAGE)
    try:
        built = value()
    except ConfigurationError as exc:
        raise AgentSpecError(f"{spec}() could not build the agent: {exc}", EXIT_USAGE) from None
    except Exception as exc:
        raise AgentSpecError(f"{spec}() failed: {type(exc).__name__}: {exc}", EXIT_FAILED) from None
    if not isinstance(built, MultiStepAgent):
        raise AgentSpecError(f"{spec}() returned {_kind(built)}, not an agent: name {what}", EXIT_USAGE)
    return built


def _takes_no_arguments(function: Any) -> bool:
    try:
        inspect.signature(function).bind()
    except TypeError:
        return False
    except ValueError:  # no signature to read (some builtins): let the call decide
        return True
    return True


def _kind(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__}"
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return f"{shown} (of type {type(value).__name__})"
