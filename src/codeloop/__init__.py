"""codeloop: agents whose actions are code.

Names are imported lazily on first use, so `import codeloop` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # agents
    "AgentLoadError": "agents",
    "CodeAgent": "agents",
    "ManagedAgentTool": "agents",
    "MultiStepAgent": "agents",
    "ToolCallingAgent": "agents",
    "Budget": "agents.budget",
    "RunLeaseHeld": "agents.durable",
    "StoreWriteFailed": "agents.durable",
    "ApprovalDenied": "agents.approval",
    "ApprovalRequired": "agents.approval",
    "pending_approvals": "agents.approval",
    "BudgetExceeded": "agents.budget",
    "Price": "agents.budget",
    "CallbackRegistry": "agents.callbacks",
    "GuardAction": "agents",
    "GuardRejected": "agents",
    "GuardResult": "agents",
    "GuardrailTripped": "agents",
    "OutputGuardRejected": "agents",
    "OutputValidationError": "agents",
    "PromptTemplates": "prompts",
    "UntrustedCodeError": "agents",
    # tools
    "FinalAnswerTool": "tools",
    "MCPClient": "mcp",
    "ToolCollection": "mcp",
    "SchemaTool": "tools",
    "Tool": "tools",
    "code_names": "tools",
    "current_call": "tools",
    "tool": "tools",
    # models
    "AmazonBedrockModel": "models.bedrock",
    "AnthropicModel": "models.anthropic",
    "InferenceClientModel": "models.huggingface",
    "LiteLLMModel": "models.litellm",
    "LiteLLMRouterModel": "models.litellm",
    "LlamaCppModel": "models.llamacpp",
    "Model": "models.base",
    "OpenAIModel": "models.openai",
    "OpenAIServerModel": "models.openai",
    "OpenAIResponsesModel": "models.openai_responses",
    "ScriptedModel": "models.scripted",
    "FallbackModel": "models.retry",
    "RetryPolicy": "models.retry",
    "RetryingModel": "models.retry",
    "ModelCapabilities": "models.capabilities",
    "TransformersModel": "models.transformers",
    # messages
    "ChatMessage": "messages",
    "ImageContent": "messages",
    "as_image": "images",
    "MessageDelta": "messages",
    "Role": "messages",
    "ToolCall": "messages",
    "Usage": "messages",
    # memory and results
    "ActionStep": "memory",
    "FinalAnswerStep": "memory",
    "Memory": "memory",
    "MemoryStep": "memory",
    "PlanningStep": "memory",
    "SystemPromptStep": "memory",
    "TaskStep": "memory",
    "Timing": "memory",
    "RunResult": "result",
    "RunState": "result",
    # executors
    "CodeOutput": "executors.base",
    "Executor": "executors.base",
    "ExecutorLimits": "executors.base",
    "MontyExecutor": "executors.monty",
    "JailExecutor": "executors.jail",
    "LocalExecutor": "executors.local",
    "create_executor": "executors",
    # events and rendering
    "ConsoleRenderer": "render",
    "GradioUI": "gradio_ui",  # imports Gradio only when it is built
    # context policies
    "ContextPolicy": "context",
    "FullHistory": "context",
    "RecentWindow": "context",
    "events": "events",
    # errors
    "AgentError": "errors",
    "AgentExecutionError": "errors",
    "AgentParsingError": "errors",
    "AgentToolCallError": "errors",
    "AgentToolExecutionError": "errors",
    "ConfigurationError": "errors",
    "ExecutorError": "errors",
    "FinalAnswerRejected": "errors",
    "ManagedAgentError": "errors",
    "MaxStepsExceeded": "errors",
    "ModelError": "errors",
    "ModelHTTPError": "errors",
    "RetryBudgetExhausted": "errors",
    "FallbacksExhausted": "errors",
    "RunFailed": "errors",
    "RunCancelled": "errors",
    "RunInterrupted": "errors",
    "RunStuck": "errors",
    "ToolDefinitionError": "errors",
}

__all__ = [
    "ActionStep",
    "AgentError",
    "AgentExecutionError",
    "AgentLoadError",
    "AgentParsingError",
    "AgentToolCallError",
    "AgentToolExecutionError",
    "AmazonBedrockModel",
    "AnthropicModel",
    "ApprovalDenied",
    "ApprovalRequired",
    "Budget",
    "BudgetExceeded",
    "CallbackRegistry",
    "ChatMessage",
    "CodeAgent",
    "CodeOutput",
    "ConfigurationError",
    "ConsoleRenderer",
    "ContextPolicy",
    "Executor",
    "ExecutorError",
    "ExecutorLimits",
    "FallbackModel",
    "FallbacksExhausted",
    "FinalAnswerRejected",
    "FinalAnswerStep",
    "FinalAnswerTool",
    "FullHistory",
    "GradioUI",
    "GuardAction",
    "GuardRejected",
    "GuardResult",
    "GuardrailTripped",
    "ImageContent",
    "InferenceClientModel",
    "JailExecutor",
    "LiteLLMModel",
    "LiteLLMRouterModel",
    "LlamaCppModel",
    "LocalExecutor",
    "MCPClient",
    "ManagedAgentError",
    "ManagedAgentTool",
    "MaxStepsExceeded",
    "Memory",
    "MemoryStep",
    "MessageDelta",
    "Model",
    "ModelCapabilities",
    "ModelError",
    "ModelHTTPError",
    "MontyExecutor",
    "MultiStepAgent",
    "OpenAIModel",
    "OpenAIResponsesModel",
    "OpenAIServerModel",
    "OutputGuardRejected",
    "OutputValidationError",
    "PlanningStep",
    "Price",
    "PromptTemplates",
    "RecentWindow",
    "RetryBudgetExhausted",
    "RetryPolicy",
    "RetryingModel",
    "Role",
    "RunCancelled",
    "RunFailed",
    "RunInterrupted",
    "RunLeaseHeld",
    "RunResult",
    "RunState",
    "RunStuck",
    "SchemaTool",
    "ScriptedModel",
    "StoreWriteFailed",
    "SystemPromptStep",
    "TaskStep",
    "Timing",
    "Tool",
    "ToolCall",
    "ToolCallingAgent",
    "ToolCollection",
    "ToolDefinitionError",
    "TransformersModel",
    "UntrustedCodeError",
    "Usage",
    "__version__",
    "as_image",
    "code_names",
    "create_executor",
    "current_call",
    "events",
    "pending_approvals",
    "tool",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'codeloop' has no attribute {name!r}")
    if name == module:
        value = import_module(f"codeloop.{module}")
    else:
        value = getattr(import_module(f"codeloop.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from . import events
    from .agents import (
        AgentLoadError,
        CodeAgent,
        GuardAction,
        GuardrailTripped,
        GuardRejected,
        GuardResult,
        ManagedAgentTool,
        MultiStepAgent,
        OutputGuardRejected,
        OutputValidationError,
        ToolCallingAgent,
        UntrustedCodeError,
    )
    from .agents.approval import ApprovalDenied, ApprovalRequired, pending_approvals
    from .agents.budget import Budget, BudgetExceeded, Price
    from .agents.callbacks import CallbackRegistry
    from .agents.durable import RunLeaseHeld, StoreWriteFailed
    from .context import ContextPolicy, FullHistory, RecentWindow
    from .errors import (
        AgentError,
        AgentExecutionError,
        AgentParsingError,
        AgentToolCallError,
        AgentToolExecutionError,
        ConfigurationError,
        ExecutorError,
        FallbacksExhausted,
        FinalAnswerRejected,
        ManagedAgentError,
        MaxStepsExceeded,
        ModelError,
        ModelHTTPError,
        RetryBudgetExhausted,
        RunCancelled,
        RunFailed,
        RunInterrupted,
        RunStuck,
        ToolDefinitionError,
    )
    from .executors import create_executor
    from .executors.base import CodeOutput, Executor, ExecutorLimits
    from .executors.jail import JailExecutor
    from .executors.local import LocalExecutor
    from .executors.monty import MontyExecutor
    from .gradio_ui import GradioUI
    from .images import as_image
    from .mcp import MCPClient, ToolCollection
    from .memory import (
        ActionStep,
        FinalAnswerStep,
        Memory,
        MemoryStep,
        PlanningStep,
        SystemPromptStep,
        TaskStep,
        Timing,
    )
    from .messages import ChatMessage, ImageContent, MessageDelta, Role, ToolCall, Usage
    from .models.anthropic import AnthropicModel
    from .models.base import Model
    from .models.bedrock import AmazonBedrockModel
    from .models.capabilities import ModelCapabilities
    from .models.huggingface import InferenceClientModel
    from .models.litellm import LiteLLMModel, LiteLLMRouterModel
    from .models.llamacpp import LlamaCppModel
    from .models.openai import OpenAIModel, OpenAIServerModel
    from .models.openai_responses import OpenAIResponsesModel
    from .models.retry import FallbackModel, RetryingModel, RetryPolicy
    from .models.scripted import ScriptedModel
    from .models.transformers import TransformersModel
    from .prompts import PromptTemplates
    from .render import ConsoleRenderer
    from .result import RunResult, RunState
    from .tools import FinalAnswerTool, SchemaTool, Tool, code_names, current_call, tool
