"""smolagents' `executor_type=` names, mapped to codeloop executors.

* `"local"`: smolagents' in-process AST interpreter, a restricted Python with an import
  allow-list. codeloop's equivalent is Monty (`executor="monty"`, the default): a restricted
  interpreter too, and a real sandbox. It is *not* codeloop's `executor="local"`, which is full
  CPython in a plain subprocess and no security boundary. The interpreter's options
  `timeout_seconds` and `max_print_outputs_length` become executor limits; imports Monty lacks
  (numpy, pandas, "*") raise `ConfigurationError` naming the executors that have them.
* `"e2b"`, `"modal"`, `"docker"`: the codeloop executors of the same names.
* `"wasm"` and `"blaxel"`: no codeloop equivalent; `ConfigurationError` says what to use.
* any other codeloop executor name (`"monty"`, `"jail"`) is taken as is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from ..executors import EXECUTORS
from ..executors.base import ExecutorLimits

__all__ = ["LOCAL_NOTE", "SMOLAGENTS_EXECUTOR_TYPES", "executor_from_type"]

SMOLAGENTS_EXECUTOR_TYPES: dict[str, str] = {
    "local": "monty",
    "e2b": "e2b",
    "modal": "modal",
    "docker": "docker",
}
"""smolagents' executor_type -> the codeloop executor that runs it."""

_NO_EQUIVALENT = {
    "wasm": (
        "executor_type='wasm' (smolagents' Pyodide/Deno sandbox, since removed from smolagents) "
        "has no codeloop equivalent. Use the default executor='monty' (a sandboxed interpreter) "
        "or executor='jail' (full CPython in an OS jail)."
    ),
    "blaxel": (
        "executor_type='blaxel' has no codeloop equivalent. codeloop's remote sandboxes are "
        "'e2b', 'modal' and 'docker'; or pass your own Executor as executor=."
    ),
}

LOCAL_NOTE = (
    "executor_type='local' (smolagents' restricted interpreter) runs in codeloop's Monty sandbox. "
    "For third-party packages use executor='jail' (full CPython in an OS jail), or, for trusted "
    "code only, executor='local' (full CPython with your privileges: no security boundary)."
)


def executor_from_type(
    executor_type: str, kwargs: Mapping[str, Any] | None, limits: ExecutorLimits
) -> tuple[str, dict[str, Any], ExecutorLimits]:
    """The codeloop executor name, its options and limits for a smolagents `executor_type`."""
    if executor_type in _NO_EQUIVALENT:
        raise ConfigurationError(_NO_EQUIVALENT[executor_type])
    options = dict(kwargs or {})
    if executor_type == "local":
        return "monty", *_interpreter_options(options, limits)
    name = SMOLAGENTS_EXECUTOR_TYPES.get(executor_type, executor_type)
    if name not in EXECUTORS:
        smolagents_names = ", ".join(repr(n) for n in SMOLAGENTS_EXECUTOR_TYPES)
        raise ConfigurationError(
            f"Unknown executor_type {executor_type!r}. smolagents' names: {smolagents_names}; "
            f"codeloop's executors: {', '.join(sorted(EXECUTORS))}."
        )
    return name, options, limits


def _interpreter_options(
    options: dict[str, Any], limits: ExecutorLimits
) -> tuple[dict[str, Any], ExecutorLimits]:
    """smolagents' local-interpreter options as Monty options and limits."""
    if "additional_functions" in options:
        raise ConfigurationError(
            "executor_kwargs['additional_functions'] is not supported: pass the functions as tools "
            "(tools=[...], plain functions with a docstring, or @tool)."
        )
    if "timeout_seconds" in options:
        limits = dataclasses.replace(limits, timeout_s=float(options.pop("timeout_seconds")))
    if "max_print_outputs_length" in options:
        limits = dataclasses.replace(limits, max_output_chars=int(options.pop("max_print_outputs_length")))
    return options, limits
