"""Agents: the loop (`base`), and one module per kind of action."""

from .base import MultiStepAgent
from .code import CodeAgent
from .guardrails import GuardAction, GuardrailTripped, GuardRejected, GuardResult, OutputGuardRejected
from .managed import ManagedAgentTool
from .output import OutputSpec, OutputValidationError
from .persist import AgentLoadError, UntrustedCodeError
from .tool_calling import ToolCallingAgent

__all__ = [
    "AgentLoadError",
    "CodeAgent",
    "GuardAction",
    "GuardRejected",
    "GuardResult",
    "GuardrailTripped",
    "ManagedAgentTool",
    "MultiStepAgent",
    "OutputGuardRejected",
    "OutputSpec",
    "OutputValidationError",
    "ToolCallingAgent",
    "UntrustedCodeError",
]
