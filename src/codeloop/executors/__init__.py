"""Executors: where a CodeAgent's code runs. One module per implementation, chosen by name."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ..errors import ConfigurationError
from .base import CodeOutput, ExecutionFailure, Executor, ExecutorLimits, HostFunction

__all__ = [
    "EXECUTORS",
    "CodeOutput",
    "ExecutionFailure",
    "Executor",
    "ExecutorLimits",
    "HostFunction",
    "create_executor",
]

# name -> (module, class). Modules are imported only when their executor is asked for.
EXECUTORS: dict[str, tuple[str, str]] = {
    "monty": ("codeloop.executors.monty", "MontyExecutor"),
    "jail": ("codeloop.executors.jail", "JailExecutor"),
    "local": ("codeloop.executors.local", "LocalExecutor"),
    "e2b": ("codeloop.executors.e2b", "E2BExecutor"),
    "modal": ("codeloop.executors.modal", "ModalExecutor"),
    "docker": ("codeloop.executors.docker", "DockerExecutor"),
}


def create_executor(name: str, **kwargs: Any) -> Executor:
    """Build the executor registered under `name` with its options."""
    if name not in EXECUTORS:
        known = ", ".join(sorted(EXECUTORS))
        raise ConfigurationError(f"Unknown executor {name!r}. Available: {known}.")
    module, cls = EXECUTORS[name]
    executor: Executor = getattr(import_module(module), cls)(**kwargs)
    return executor
