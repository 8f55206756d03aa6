"""Agents: the loop (`base`), and one module per kind of action."""

from .base import MultiStepAgent
from .code import CodeAgent
from .managed import ManagedAgentTool
from .tool_calling import ToolCallingAgent

__all__ = ["CodeAgent", "ManagedAgentTool", "MultiStepAgent", "ToolCallingAgent"]
