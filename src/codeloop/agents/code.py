"""The CodeAgent: actions are Python snippets run in a sandboxed executor."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import inspect
import reprlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, ClassVar

from ..errors import (
    AgentError,
    AgentExecutionError,
    AgentParsingError,
    ConfigurationError,
    FinalAnswerRejected,
)
from ..events import ActionOutput, CodeAction, Event, Observation
from ..executors import create_executor
from ..executors.base import CodeOutput, ExecutionFailure, Executor, ExecutorLimits, HostFunction
from ..images import as_image, describe_image, is_image
from ..memory import ActionStep
from ..messages import ImageContent, ToolCall
from ..models.base import Model
from ..parsing import answer_literal, code_end, extract_code, plain_answer
from ..tools import Tool
from .base import MultiStepAgent
from .executor_types import LOCAL_NOTE, executor_from_type
from .guards import (
    RESULTS_SHOWN,
    SILENT_STEP,
    Definition,
    RunGuard,
    Snippet,
    gave_up,
    gave_up_note,
    invented_data_note,
    missing_key_note,
    no_tool_answer_hint,
    tool_results_note,
    unknown_name_note,
    with_earlier_line,
)
from .handback import HandedBack, examples_note, handed_back, untried_note
from .run import Run, latest_task, short_repr
from .shield import shield

__all__ = ["CodeAgent"]

_NEWLINE = "\n"


class CodeAgent(MultiStepAgent):
    """An agent whose actions are Python snippets, run in a sandboxed executor.

    `executor` is a name (`"monty"`, the default, a secure sandbox), an `Executor` instance, or
    a zero-argument factory returning one. `executor_type` takes smolagents' names instead
    (see `codeloop.agents.executor_types`: its `"local"` runs in Monty). Variables persist
    across the steps of a run, and across runs with `reset=False`.

    Guards for models that lose their way (see `codeloop.agents.guards`): the code cannot
    redefine a tool or `final_answer` (the definition is ignored, and the model told so); a step
    that shows nothing is told so; `final_answer(my_function)` gives the function's source, and
    with `check_handed_back_code` (the default) the source is checked first, before the run's last
    step: the examples in its docstring are run, and a function never called is held back once
    (see `codeloop.agents.handback`).
    `max_repeats` steps in a row that repeat earlier code or the previous error end the run with
    `RunState.STUCK` (None: never). `plain_answer_at_last_step` accepts a reply of plain answer
    text ("Lyon") as the final answer on the run's last step, where it would otherwise end the
    run without one. `check_invented_data` holds back the first final answer of a run whose code
    wrote its own data tables while no tool was called, and asks for the tools' facts.
    """

    prompt_name = "code_agent"
    base_tools_include_python = False  # its actions are code already
    stop_sequences: ClassVar[list[str] | None] = ["Observation:"]

    def __init__(
        self,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        model: Model | None = None,
        *,
        executor: str | Executor | Callable[[], Executor] | None = None,
        executor_type: str | None = None,
        executor_kwargs: Mapping[str, Any] | None = None,
        additional_authorized_imports: Sequence[str] = (),
        max_print_outputs_length: int | None = None,
        executor_limits: ExecutorLimits | None = None,
        max_repeats: int | None = 3,
        plain_answer_at_last_step: bool = False,
        check_invented_data: bool = False,
        check_handed_back_code: bool = True,
        **kwargs: Any,
    ) -> None:
        if max_repeats is not None and max_repeats < 1:
            raise ConfigurationError(f"max_repeats must be at least 1 (or None), got {max_repeats}.")
        self.max_repeats = max_repeats
        self.plain_answer_at_last_step = plain_answer_at_last_step
        self.check_invented_data = check_invented_data
        self.check_handed_back_code = check_handed_back_code
        self.additional_authorized_imports = list(additional_authorized_imports)
        limits = executor_limits or ExecutorLimits()
        if max_print_outputs_length is not None:
            limits = dataclasses.replace(limits, max_output_chars=max_print_outputs_length)
        if executor_type is not None:
            if executor is not None:
                raise ConfigurationError("Pass executor= or executor_type= (smolagents' name), not both.")
            executor, executor_kwargs, limits = executor_from_type(executor_type, executor_kwargs, limits)
        executor = "monty" if executor is None else executor
        self.executor_kwargs, self.executor_limits = dict(executor_kwargs or {}), limits  # for save()
        self.executor_type: str | None = executor if isinstance(executor, str) else None
        """The name of the codeloop executor that runs the code (None for an instance or factory)."""
        self._make_executor = _executor_factory(
            executor, executor_kwargs, limits, self.additional_authorized_imports
        )
        probe = _probe(self._make_executor, executor_type)  # fail now on a bad name or option
        self.importable_modules: list[str] = list(
            getattr(probe, "importable_modules", None) or self.additional_authorized_imports
        )
        self._session: Executor | None = None
        self._definitions: dict[str, Definition] = {}  # the session's functions and classes
        self._imports: dict[str, str] = {}  # the session's import statements, by bound name
        self._tool_calls = 0  # calls of tools (managed agents included) by the code, ever
        # the current code action's last tool calls (name, args, kwargs, result), shown if it fails
        self._step_calls: deque[_Call] = deque(maxlen=RESULTS_SHOWN + 1)
        self._step_images: list[tuple[str, ImageContent]] = []  # (placeholder, image) of this action
        self._held_images: dict[str, Any] = {}  # placeholder -> the tool's own image object, this session
        super().__init__(tools, model, **kwargs)

    def _new_run(self, max_steps: int, step_number: int) -> Run:
        run = super()._new_run(max_steps, step_number)
        run.guard = RunGuard(max_repeats=self.max_repeats, tool_calls_at_start=self._tool_calls)
        return run

    async def _open_executor(
        self, run: Run, *, fresh: bool, variables: Mapping[str, Any] | None = None
    ) -> None:
        if fresh or self._session is None:
            await self.aclose()
            self._session = self._make_executor()
            self._definitions, self._imports, self._held_images = {}, {}, {}
            await self._session.start(self._host_functions())
        if variables:
            await self._session.send_variables(dict(variables))
        run.executor = self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _act(self, run: Run, step: ActionStep) -> AsyncIterator[Event]:
        """Run the reply's code and observe it; a step that repeats an earlier one is told so."""
        try:
            async for event in self._act_on_reply(run, step):
                yield event
        except AgentError as exc:
            note = run.guard.after_error(str(exc))
            if note is not None:
                exc.args = (f"{exc}\n{note}",)
            raise
        note = run.guard.after_success()
        if note is not None and not step.is_final_answer:
            async for event in self._observe(step, note):
                yield event

    async def _act_on_reply(self, run: Run, step: ActionStep) -> AsyncIterator[Event]:
        code = self._code_of(run, step)
        if code is None:  # plain answer text on the last step
            await self._accept(run, step, _as_value(plain_answer(step.model_output) or ""))
            return
        step.code_action = code
        # smolagents records a code action as a call of its python_interpreter tool
        step.tool_calls = (ToolCall(f"call_{step.step_number}", "python_interpreter", code),)
        yield CodeAction(agent=self.name, step=step.step_number, code=code)
        snippet = Snippet.parse(code)
        shielded = shield(code, snippet.tree, {*self.tools, "final_answer"})
        run.guard.see_code(snippet, step.step_number)
        if self.check_invented_data:
            run.guard.tables += [(step.step_number, n) for n in snippet.data_tables(latest_task(run.memory))]
        assert run.executor is not None
        self._step_calls.clear()
        self._step_images = []
        execution = self._spawn(run, run.executor.run(shielded.code))
        async for event in self._while_running(run, execution):
            yield event
        out = self._located(execution.result())
        self._definitions.update(snippet.definitions(_ran_through(out.error)))
        self._imports.update(snippet.imports(_ran_through(out.error)))
        async for event in self._outcome(run, step, out, snippet, shielded.code, shielded.notes):
            yield event

    async def _outcome(
        self, run: Run, step: ActionStep, out: CodeOutput, snippet: Snippet, fed: str, notes: tuple[str, ...]
    ) -> AsyncIterator[Event]:
        """What the model sees of a finished code action (or the final answer it gave)."""
        step.observations = out.logs
        if out.logs:
            yield Observation(agent=self.name, step=step.step_number, text=out.logs)
        if self._step_images:
            step.observations_images = [*(step.observations_images or []), *(i for _, i in self._step_images)]
            async for event in self._observe(step, _images_note(self._step_images)):
                yield event
        if out.error is not None:
            raise AgentExecutionError("\n".join([_described(out.error, fed, snippet.code), *notes,
                                                  *self._error_notes(out.error, snippet)]))  # fmt: skip
        if out.is_final_answer:  # an image's placeholder given as the answer gives the image
            held = self._held_images.get(out.output) if isinstance(out.output, str) else None
            await self._accept(run, step, out.output if held is None else held)
            return
        step.action_output = out.output
        if out.output is not None:
            step.observations += f"{_NEWLINE if out.logs else ''}Last output: {short_repr(out.output)}"
            yield ActionOutput(agent=self.name, step=step.step_number, output=out.output)
        elif not out.logs and not self._step_images:
            notes = (_silent_note(snippet), *notes)
        for note in notes:
            async for event in self._observe(step, note):
                yield event

    async def _observe(self, step: ActionStep, note: str) -> AsyncIterator[Event]:
        """Add `note` to what the model sees of this step."""
        before = step.observations
        step.observations = (
            f"{before}{'' if before.endswith(_NEWLINE) else _NEWLINE}{note}" if before else note
        )
        yield Observation(agent=self.name, step=step.step_number, text=note)

    def _located(self, out: CodeOutput) -> CodeOutput:
        """An error raised in a function of an earlier step shows that function's line."""
        if out.error is None:
            return out
        message = with_earlier_line(out.error.message, self._definitions)
        return dataclasses.replace(out, error=dataclasses.replace(out.error, message=message))

    def _error_notes(self, error: ExecutionFailure, snippet: Snippet) -> list[str]:
        """What helps fix a failed action: the tools the model can call instead of a missing
        name, and what the tools returned before the error."""
        unknown = unknown_name_note(error.message, snippet.code, self.tools)
        calls = [
            (_call_text(name, args, kwargs), _SHORT.repr(value))
            for name, args, kwargs, value in self._step_calls
        ]
        used = {name for name, *_ in self._step_calls}
        missing = missing_key_note(error.type, error.message, self.tools, used) if used else None
        notes = (unknown, tool_results_note(calls), missing)
        return [note for note in notes if note is not None]

    def _reply_end(self, text: str) -> int | None:
        """A reply ends with its first code block: what a model writes after it (often a copy of
        the prompt) is neither run, shown nor kept in memory."""
        return code_end(text)

    def _code_of(self, run: Run, step: ActionStep) -> str | None:
        """The reply's code; None for plain answer text accepted on the run's last step."""
        try:
            return extract_code(step.model_output)
        except AgentParsingError:
            answer = plain_answer(step.model_output)
            if self.plain_answer_at_last_step and run.on_last_step and answer is not None:
                return None
            if answer is not None and self.tools and not run.guard.asked_for_tools:
                if self._tool_calls == run.guard.tool_calls_at_start:  # nothing came from a tool
                    run.guard.asked_for_tools = True
                    raise AgentParsingError(no_tool_answer_hint(answer, self.tools)) from None
            raise

    async def _accept(self, run: Run, step: ActionStep, answer: Any) -> None:
        """End the step with `answer` if every check accepts it (a function stands for its source)."""
        code = handed_back(answer, self._definitions, self._imports)
        step.action_output = answer = answer if code is None else code.source
        if code is not None and self.check_handed_back_code and not run.on_last_step:
            await self._check_code(run, code)
        self._check_invented_data(run)
        self._check_gave_up(run, answer)
        step.action_output = await self._accept_final_answer(run, answer)
        step.is_final_answer = True

    async def _check_code(self, run: Run, code: HandedBack) -> None:
        """Hold back code whose docstring examples fail (twice a run at most), or that was
        never run (once a run)."""
        guard, executor = run.guard, run.executor
        if code.examples and guard.examples_rejected < 2 and executor is not None:
            outcomes = [(e, self._located(await executor.run(e.code()))) for e in code.examples]
            failures = [f for e, out in outcomes if (f := e.failure(out)) is not None]
            if failures:
                guard.examples_rejected += 1
                raise FinalAnswerRejected(examples_note(code.name, failures, len(code.examples)))
        elif not code.examples and code.name not in guard.called and not guard.untried_asked:
            guard.untried_asked = True
            raise FinalAnswerRejected(untried_note(code.name))

    def _check_invented_data(self, run: Run) -> None:
        guard = run.guard
        if not self.check_invented_data or guard.data_checked or not guard.tables:
            return
        if not self.tools or self._tool_calls > guard.tool_calls_at_start:
            return
        guard.data_checked = True
        raise FinalAnswerRejected(invented_data_note(guard.tables, self.tools))

    def _check_gave_up(self, run: Run, answer: Any) -> None:
        """Hold back, once a run, an answer that says the facts were not found while some tools
        were never called (not on the run's last step)."""
        if run.guard.gave_up_asked or run.on_last_step or not gave_up(answer):
            return
        unused = [name for name in self.tools if name not in run.guard.called]
        if unused:
            run.guard.gave_up_asked = True
            raise FinalAnswerRejected(gave_up_note(answer, unused))

    def _host_functions(self) -> dict[str, HostFunction]:
        return {name: self._counted(_off_the_loop(t.as_host_function()), t) for name, t in self.tools.items()}

    def _counted(self, function: HostFunction, tool: Tool) -> HostFunction:
        """The host function the code calls: tool guards first (a rejection raises
        `GuardRejected` in the snippet), then the tool, counted and remembered."""

        async def call(*args: Any, **kwargs: Any) -> Any:
            args, kwargs = self._images_back(tool, args, kwargs)
            await self.guardrails.check_tool(call.__name__, _named(tool, args, kwargs), self)
            self._tool_calls += 1
            value = function(*args, **kwargs)
            value = await value if inspect.isawaitable(value) else value
            self._step_calls.append((call.__name__, args, kwargs, value))  # formatted only on an error
            return self._images_out(call.__name__, tool, value)

        call.__name__ = getattr(function, "__name__", "tool")
        return call

    def _images_out(self, name: str, tool: Tool, value: Any) -> Any:
        """An image result stays out of the sandbox: it is shown to the model after the step,
        and the code gets a placeholder string instead (in a list, each image is replaced)."""
        items = value if isinstance(value, (list, tuple)) else [value]
        if not any(is_image(item, tool.output_type) for item in items):
            return value
        shown = [self._hold(name, item) if is_image(item, tool.output_type) else item for item in items]
        return shown if isinstance(value, (list, tuple)) else shown[0]

    def _hold(self, name: str, original: Any) -> str:
        image = as_image(original)
        placeholder = f"<image {len(self._held_images) + 1} from {name}: shown to you after this step>"
        self._held_images[placeholder] = original
        self._step_images.append((placeholder, image))
        return placeholder

    def _images_back(
        self, tool: Tool, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """A placeholder passed to a tool's "image" input becomes the image it stands for."""
        held = self._held_images
        if not held or not any(spec.get("type") == "image" for spec in tool.inputs.values()):
            return args, kwargs
        back = [held.get(a, a) if isinstance(a, str) else a for a in args]
        return tuple(back), {k: held.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}

    def _output_note(self) -> str | None:
        spec = self.output_spec
        return None if spec is None else spec.task_note(as_python=True)

    def _prompt_values(self) -> dict[str, Any]:
        return {
            **super()._prompt_values(),
            "stubs": [t.to_code_prompt() for t in self.tools.values()],
            "imports": ", ".join(self.additional_authorized_imports),  # the standard library goes unsaid
            "authorized_imports": str(sorted(self.importable_modules)),
            "code_block_opening_tag": "```python",
            "code_block_closing_tag": "```",
        }


def _executor_factory(
    executor: str | Executor | Callable[[], Executor],
    kwargs: Mapping[str, Any] | None,
    limits: ExecutorLimits,
    imports: Sequence[str],
) -> Callable[[], Executor]:
    if isinstance(executor, str):
        options = {"limits": limits, "additional_authorized_imports": imports, **(kwargs or {})}
        return lambda: create_executor(executor, **options)
    if isinstance(executor, Executor):
        return lambda: executor
    if callable(executor):
        return executor
    raise ConfigurationError(
        f"executor must be a name, an Executor or a factory, not {type(executor).__name__}."
    )


def _probe(make: Callable[[], Executor], executor_type: str | None) -> Executor:
    try:
        return make()
    except ConfigurationError as exc:
        if executor_type != "local":
            raise
        raise ConfigurationError(f"{exc} {LOCAL_NOTE}") from exc


def _off_the_loop(function: Callable[..., Any]) -> HostFunction:
    """Sync tools called from code run in a worker thread, so they never block other runs."""
    if inspect.iscoroutinefunction(function):
        return function

    async def call(*args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(function, *args, **kwargs)

    call.__name__ = function.__name__
    return call


def _named(tool: Tool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments by parameter name, as a tool guard sees them."""
    names = list(tool.inputs)
    named = {names[i] if i < len(names) else f"arg{i}": value for i, value in enumerate(args)}
    return {**named, **kwargs}


def _described(failure: ExecutionFailure, fed: str, code: str) -> str:
    """The failure in the model's words, showing the line as the model wrote it (the executor
    saw the shielded text, whose renamed lines are at the same numbers)."""
    line, lines = failure.line, code.splitlines()
    if fed != code and line and failure.source_line is not None and 0 < line <= len(lines):
        if fed.splitlines()[line - 1].strip() == failure.source_line.strip():
            failure = dataclasses.replace(failure, source_line=lines[line - 1])
    return failure.describe()


def _ran_through(error: ExecutionFailure | None) -> int | None:
    """The last line of the snippet known to have run: all of it (None), or the lines before
    the one that failed (0 when unknown, or when nothing ran)."""
    if error is None:
        return None
    return 0 if error.type == "SyntaxError" or not error.line else error.line - 1


class _ShortRepr(reprlib.Repr):
    """Bounded reprs of tool results for observations: work and size stay small however big or
    deep the value is. Dicts keep their keys' order (reprlib sorts them)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxdict, self.maxlist, self.maxtuple, self.maxset = 4, 16, 8, 8, 8
        self.maxstring, self.maxother = 80, 80

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        items = [
            f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}"
            for k, v in list(x.items())[: self.maxdict]
        ]
        return "{" + ", ".join(items) + (", ..." if len(x) > self.maxdict else "") + "}"


_SHORT = _ShortRepr()
_Call = tuple[str, tuple[Any, ...], dict[str, Any], Any]


def _call_text(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    shown = [_SHORT.repr(a) for a in args] + [f"{k}={_SHORT.repr(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(shown)})"


def _images_note(images: list[tuple[str, ImageContent]]) -> str:
    shown = "; ".join(f"{placeholder} ({describe_image(image)})" for placeholder, image in images)
    return f"Images from tools, shown to you below: {shown}"


def _silent_note(snippet: Snippet) -> str:
    functions = snippet.defined_functions()
    if not functions:
        return SILENT_STEP
    named = ", ".join(f"{name}()" for name in functions)
    return f"{SILENT_STEP} You defined {named}: call it and print what it returns to check it."


def _as_value(answer: str) -> Any:
    """Plain answer text as the value the model would have passed: a number or a string."""
    return ast.literal_eval(answer_literal(answer))
