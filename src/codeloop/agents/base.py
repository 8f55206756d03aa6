"""`MultiStepAgent`: an agent's configuration and its public entry points.

One async engine, `astream`, drives every entry point: `arun` consumes it, `run` and `stream`
drive it from sync code; the loop itself is in `codeloop.agents.loop`. `step()` runs one action
step by hand, outside any run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar, cast

from .._sync import iterate_sync, run_sync
from ..context import ContextPolicy, default_context_policy
from ..errors import ConfigurationError
from ..events import Event, EventHandler, RunFinished
from ..memory import ActionStep, Memory, SystemPromptStep
from ..messages import ChatMessage, ImageContent
from ..models.base import Model
from ..models.retry import RetryPolicy, with_retries
from ..prompts import default_prompt_templates, merge_prompt_templates
from ..result import RunResult
from ..tools import FinalAnswerTool, Tool
from .approval import Answer, ApprovalPolicy, check_setup, take_answers
from .budget import Budget
from .callbacks import CallbackRegistry, StepCallbacks
from .durable import StoreSpec
from .guardrails import Guard, Guardrails
from .loop import AgentLoop
from .output import OutputSpec
from .persist import agent_from_dict, agent_from_folder, agent_to_dict, save_agent
from .replay import replay
from .resume import resume_run
from .run import Run, answer_or_raise, latest_task
from .setup import check_arguments, checked_model, collect_tools, renderers, with_base_tools

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["MultiStepAgent"]

FinalAnswerCheck = Callable[..., Any]


class MultiStepAgent(AgentLoop):
    """Configuration shared by `CodeAgent` and `ToolCallingAgent`, and the loop itself.

    smolagents' arguments keep their meaning: `step_callbacks` (a list, for action steps, or a
    dict by step class), `prompt_templates` (see `codeloop.prompts`), `add_base_tools` (adds
    `codeloop.toolkit.base_tools()`: web search, visit_webpage, Wikipedia, user input, and the
    Python interpreter tool except for a CodeAgent; needs the `toolkit` extra).

    `output_type` (a pydantic model class, a plain type such as `int` or `list[str]`, or a JSON
    schema dict) asks for a structured answer: the model is told its schema, a final answer that
    does not fit is sent back with what was wrong, and `RunResult.output` is the validated value
    (see `codeloop.agents.output`). `input_guards`, `output_guards` and `tool_guards` check the
    task, the final answer and each tool call (see `codeloop.agents.guardrails`);
    `final_answer_checks` run as the first output guards. `budget` (a `Budget`: tokens, cost,
    duration) ends a run that reaches one of its limits (see `codeloop.agents.budget`).

    `store` (a `RunStore`, a path or URL for `codeloop.store.open_store`, or True for the default
    SQLite file) makes runs durable: every step and tool result is stored as it happens, and
    `resume(run_id)` continues a run in any process after its worker died (see
    `codeloop.agents.durable`). A worker holds a run for `lease_ttl_s` seconds at a time, renewed
    while it runs; a dead worker's run can be resumed elsewhere once that time has passed.
    `agent.run_metadata` (a JSON-compatible dict, empty by default) is kept with each stored run,
    as `RunRecord.metadata["run_metadata"]`.

    `approval_policy` (`(tool_name, arguments) -> "allow" | "deny" | "ask"`, or a `(decision,
    reason)` pair; sync or async) decides each tool call; without it, the calls of tools with
    `requires_approval` are "ask". A call asked about pauses the run until a human answers it
    with `resume(run_id, approvals=...)` (see `codeloop.agents.approval`); approvals need `store=`.

    `context_policy` decides what each model request sends of the memory (see `codeloop.context`):
    by default `RecentWindow()`, the last steps verbatim and older ones shortened, so a request's
    size stays bounded as the run grows; `FullHistory()` sends every step each time, as smolagents.

    An agent is a definition: each `run()`/`arun()`/`stream()` is its own run (`Run`, with its
    `run_id`), so one agent can run many tasks at once. `agent.memory` is the memory of the latest
    run started; `reset=False` continues it (and a CodeAgent's variables)."""

    prompt_name: ClassVar[str]
    base_tools_include_python: ClassVar[bool] = True  # add_base_tools adds python_interpreter

    def __init__(
        self,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        model: Model | None = None,
        *,
        max_steps: int = 20,
        instructions: str | None = None,
        planning_interval: int | None = None,
        managed_agents: Sequence[MultiStepAgent] = (),
        name: str | None = None,
        description: str | None = None,
        step_callbacks: StepCallbacks | None = None,
        final_answer_checks: Sequence[FinalAnswerCheck] = (),
        return_full_result: bool = False,
        stream_outputs: bool = True,
        event_handlers: Sequence[EventHandler] = (),
        verbosity_level: int = 0,
        retry_policy: RetryPolicy | None = None,
        prompt_templates: Mapping[str, Any] | None = None,
        add_base_tools: bool = False,
        output_type: Any = None,
        input_guards: Sequence[Guard] = (),
        output_guards: Sequence[Guard] = (),
        tool_guards: Sequence[Guard] = (),
        budget: Budget | None = None,
        store: StoreSpec = None,
        lease_ttl_s: float = 30.0,
        approval_policy: ApprovalPolicy | None = None,
        context_policy: ContextPolicy | None = None,
    ) -> None:
        model = checked_model(type(self).__name__, model)
        check_arguments(max_steps, planning_interval)
        self.model = with_retries(model, retry_policy)  # see codeloop.models.retry for the default
        self.max_steps = max_steps
        self.instructions = instructions
        self.planning_interval = planning_interval
        self.name = name or type(self).__name__
        self.description = description
        self.step_callbacks = CallbackRegistry.of(step_callbacks)
        self.output_spec = OutputSpec.of(output_type)
        self.guardrails = Guardrails(
            input=tuple(input_guards),
            output=tuple(output_guards),
            tool=tuple(tool_guards),
            final_answer_checks=list(final_answer_checks),
        )
        self.budget = budget
        if budget is not None:
            budget.check_model(model.model_id)
        self.return_full_result = return_full_result
        self.stream_outputs = stream_outputs
        prices = None if budget is None else budget.prices
        self.event_handlers = list(event_handlers) + renderers(verbosity_level, prices)
        self.prompt_templates = merge_prompt_templates(
            default_prompt_templates(self.prompt_name), prompt_templates
        )
        self.managed_agents = {a.name: a for a in managed_agents}
        if add_base_tools:
            tools = with_base_tools(tools, python=self.base_tools_include_python)
        self.tools = collect_tools(tools, managed_agents)
        self._final_answer_tool = FinalAnswerTool()
        self._active_runs: dict[str, Run] = {}
        self.store: StoreSpec = None if store is False else store
        self.lease_ttl_s = lease_ttl_s
        self.run_metadata: dict[str, Any] = {}
        check_setup(self.tools, approval_policy, self.store)
        self.approval_policy = approval_policy
        self.context_policy = _checked_policy(context_policy)
        self.memory = Memory(system_prompt=SystemPromptStep(system_prompt=self.system_prompt))

    # ---- public API -------------------------------------------------------------------------

    def run(
        self,
        task: str,
        *,
        stream: bool = False,
        reset: bool = True,
        images: Sequence[ImageContent] | None = None,
        additional_args: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
        return_full_result: bool | None = None,
    ) -> Any:
        """Run the task to its end and return the answer (or a `RunResult`, see below).

        Without `return_full_result`, a run that ends without an answer raises `RunFailed`
        (`MaxStepsExceeded`, `ModelError`...), whose `.result` holds the full `RunResult`.
        With `stream=True`, returns the event iterator of `stream()` instead.
        """
        if stream:
            return self.stream(
                task, reset=reset, images=images, additional_args=additional_args, max_steps=max_steps
            )
        coro = self.arun(
            task,
            reset=reset,
            images=images,
            additional_args=additional_args,
            max_steps=max_steps,
            return_full_result=return_full_result,
        )
        return run_sync(coro)

    async def arun(
        self,
        task: str,
        *,
        reset: bool = True,
        images: Sequence[ImageContent] | None = None,
        additional_args: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
        return_full_result: bool | None = None,
    ) -> Any:
        """The async form of `run`."""
        result: RunResult | None = None
        stream = self.astream(
            task, reset=reset, images=images, additional_args=additional_args, max_steps=max_steps
        )
        async for event in stream:
            if isinstance(event, RunFinished) and event.depth == 0:
                result = event.result
        assert result is not None  # astream always ends with RunFinished
        full = self.return_full_result if return_full_result is None else return_full_result
        return result if full else answer_or_raise(result)

    def stream(
        self,
        task: str,
        *,
        reset: bool = True,
        images: Sequence[ImageContent] | None = None,
        additional_args: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
    ) -> Iterator[Event]:
        """Iterate the run's events from sync code."""
        return iterate_sync(
            self.astream(
                task, reset=reset, images=images, additional_args=additional_args, max_steps=max_steps
            )
        )

    async def astream(
        self,
        task: str,
        *,
        reset: bool = True,
        images: Sequence[ImageContent] | None = None,
        additional_args: Mapping[str, Any] | None = None,
        max_steps: int | None = None,
    ) -> AsyncIterator[Event]:
        """The engine: run the task, yielding every event; the last one is `RunFinished`.
        Each call is its own run (`Run`): one agent can run many tasks at once."""
        run = await self._start_run(task, reset, images, additional_args, max_steps)
        observers = self._observers()
        try:
            async for event in self._events(run, task):
                await self._dispatch(event, observers)
                yield event
        finally:
            await self._end_run(run)

    def resume(
        self,
        run_id: str,
        *,
        max_steps: int | None = None,
        return_full_result: bool | None = None,
        approvals: Mapping[str, Answer] | None = None,
    ) -> Any:
        """Continue the stored run `run_id` (needs `store=`) to its end; returns as `run()`.

        Memory comes from the stored steps; a CodeAgent's variables from running its stored code
        again with every tool call answered from the journal; a step whose reply was stored but
        which never ended runs again from that reply without repeating journaled tool calls.
        A run that already succeeded returns its stored answer. Raises `RunLeaseHeld` when
        another worker holds the run. `max_steps`: the run's total (default: the stored one).
        `approvals` answers the tool calls a paused run waits for, by call id (see
        `codeloop.agents.approval`): True approves, False or a reason denies."""
        full = return_full_result
        coro = self.aresume(run_id, max_steps=max_steps, return_full_result=full, approvals=approvals)
        return run_sync(coro)

    async def aresume(
        self,
        run_id: str,
        *,
        max_steps: int | None = None,
        return_full_result: bool | None = None,
        approvals: Mapping[str, Answer] | None = None,
    ) -> Any:
        """The async form of `resume`."""
        result: RunResult | None = None
        async for event in self.astream_resume(run_id, max_steps=max_steps, approvals=approvals):
            if isinstance(event, RunFinished) and event.depth == 0:
                result = event.result
        assert result is not None  # astream_resume always ends with RunFinished
        full = self.return_full_result if return_full_result is None else return_full_result
        return result if full else answer_or_raise(result)

    async def astream_resume(
        self,
        run_id: str,
        *,
        max_steps: int | None = None,
        approvals: Mapping[str, Answer] | None = None,
    ) -> AsyncIterator[Event]:
        """`resume` as `astream`: the continued run's events, ending with `RunFinished`."""
        resumed = await resume_run(self, run_id, max_steps)
        if isinstance(resumed, RunResult):  # it had already succeeded
            yield RunFinished(agent=self.name, result=resumed)
            return
        observers = self._observers()
        try:
            await take_answers(resumed, approvals)
            async for event in self._events(resumed, latest_task(resumed.memory)):
                await self._dispatch(event, observers)
                yield event
        finally:
            await self._end_run(resumed)

    async def _replay_actions(self, run: Run) -> str | None:
        """Rebuild the executor's state of a resumed run; a note for the model if it could not
        be rebuilt whole (a CodeAgent replays its code; other agents have nothing to rebuild)."""
        return None

    def step(self, memory_step: ActionStep) -> Any:
        """Run one action step by hand, on the current memory (smolagents' manual stepping).

        The model sees `self.memory` (append a `TaskStep` first); `memory_step` is filled in
        (output, code or tool calls, observations, error) but not added to memory: append it
        yourself. Returns the final answer if this step gave one, else None; an error the model
        can fix is recorded on `memory_step.error`, as in a run. Step callbacks do not run."""
        return run_sync(self.astep(memory_step))

    async def astep(self, memory_step: ActionStep) -> Any:
        """The async form of `step`."""
        run = self._new_run(self.max_steps, memory_step.step_number)
        await self._open_executor(run, fresh=False)
        try:
            async for event in self._query(run, memory_step):
                await self._dispatch(event)
            async for event in self._act_and_observe(run, memory_step):
                await self._dispatch(event)
        finally:
            await self._end_run(run)
        return memory_step.action_output if memory_step.is_final_answer else None

    def interrupt(self) -> None:
        """Stop every run of this agent in progress once its step in progress is over. Each
        ends with `RunState.INTERRUPTED` (`run()` raises `RunInterrupted`). Callable from a step
        callback, an event handler or another thread."""
        for run in list(self._active_runs.values()):
            run.interrupt_requested = True

    def cancel(self, run_id: str | None = None, reason: str = "cancelled by agent.cancel()") -> None:
        """Stop a run of this agent now (every run in progress when `run_id` is None): the model
        stream, tool call or code action under way is stopped and the run ends with
        `RunState.CANCELLED` (`run()` raises `RunCancelled`). Callable from any thread."""
        for run in list(self._active_runs.values()):
            if run_id not in (None, run.run_id) or run.task is None or run.loop is None:
                continue
            run.cancel_reason = reason
            run.loop.call_soon_threadsafe(run.task.cancel)

    def replay(self, detailed: bool = False, *, file: IO[str] | None = None) -> None:
        """Print the run held in memory as it was shown live (to `file`, default stdout).
        `detailed=True` also prints the messages the model was given before each step."""
        prompt = self.memory.system_prompt.system_prompt or self.system_prompt
        policy = self.context_policy
        replay(self.memory, self.name, prompt, detailed=detailed, file=file, context_policy=policy)

    def write_memory_to_messages(self) -> list[ChatMessage]:
        """The messages the model would see next for the current memory (as `context_policy`
        builds them; `agent.memory.to_messages(agent.system_prompt)` is the full history)."""
        return self.context_policy.messages(self.memory, self.system_prompt)

    # ---- saving and loading (see codeloop.agents.persist) -------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The agent as JSON-compatible data: settings, tools (with their source), managed
        agents, the model's non-secret settings. See `codeloop.agents.persist`."""
        return agent_to_dict(self)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        model: Model | Mapping[str, Model] | None = None,
        trust_remote_code: bool = False,
        **overrides: Any,
    ) -> Self:
        """The agent `to_dict()` described. `MultiStepAgent.from_dict` builds the class the data
        names; `CodeAgent.from_dict` refuses another class's data (`AgentLoadError`). Tools with
        source code need `trust_remote_code=True`; `overrides` go to the constructor."""
        trust = trust_remote_code
        built = agent_from_dict(cls, data, model=model, trust_remote_code=trust, overrides=overrides)
        return cast("Self", built)

    def save(self, folder: str | Path) -> Path:
        """Write the agent into `folder`: agent.json, tools/<name>.py, managed_agents/<name>/,
        requirements.txt. Returns the folder's path."""
        return save_agent(self, folder)

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        *,
        model: Model | Mapping[str, Model] | None = None,
        trust_remote_code: bool = False,
        **overrides: Any,
    ) -> Self:
        """The agent `save(folder)` wrote; as `from_dict` (the folder's tool files are Python
        code: read them before passing `trust_remote_code=True`)."""
        trust = trust_remote_code
        built = agent_from_folder(cls, folder, model=model, trust_remote_code=trust, overrides=overrides)
        return cast("Self", built)

    async def aclose(self) -> None:
        """Release the agent's resources (the executor session it retains for `reset=False`)."""

    def close(self) -> None:
        run_sync(self.aclose())

    def __enter__(self) -> MultiStepAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MultiStepAgent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def final_answer_checks(self) -> list[FinalAnswerCheck]:
        """smolagents' checks of the final answer: the first output guards."""
        return self.guardrails.final_answer_checks

    @final_answer_checks.setter
    def final_answer_checks(self, checks: Sequence[FinalAnswerCheck]) -> None:
        self.guardrails.final_answer_checks = list(checks)


def _checked_policy(policy: ContextPolicy | None) -> ContextPolicy:
    if policy is None:
        return default_context_policy()
    if not isinstance(policy, ContextPolicy):
        raise ConfigurationError(
            f"context_policy must have a messages(memory, system_prompt) method (a ContextPolicy, such "
            f"as codeloop.context.RecentWindow() or FullHistory()), not {type(policy).__name__}."
        )
    return policy
