"""The CodeAgent: actions are Python snippets run in a sandboxed executor."""

from __future__ import annotations

import ast
import dataclasses
import functools
import reprlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, ClassVar

from ..errors import (
    AgentError,
    AgentExecutionError,
    AgentParsingError,
    ConfigurationError,
    FinalAnswerRejected,
)
from ..events import ActionOutput, CodeAction, CodeActionFinished, Event, Observation
from ..executors import create_executor
from ..executors.base import CodeOutput, ExecutionFailure, Executor, ExecutorLimits
from ..images import describe_image
from ..memory import ActionStep, Memory
from ..messages import ImageContent, ToolCall
from ..models.base import Model
from ..parsing import answer_literal, code_end, extract_code, plain_answer
from ..tools import Tool
from .base import MultiStepAgent
from .code_session import CodeSession
from .executor_types import LOCAL_NOTE, executor_from_type
from .guards import (
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
from .resume import variables_note
from .run import Run, latest_task, short_repr
from .shield import shield

__all__ = ["CodeAgent"]

_NEWLINE = "\n"


class CodeAgent(MultiStepAgent):
    """An agent whose actions are Python snippets, run in a sandboxed executor.

    `executor` is a name (`"monty"`, the default, a secure sandbox), an `Executor` instance, or
    a zero-argument factory returning one. `executor_type` takes smolagents' names instead
    (see `codeloop.agents.executor_types`: its `"local"` runs in Monty). Variables persist
    across the steps of a run, and across runs with `reset=False`. Each run has its own executor
    session (`codeloop.agents.code_session`), so runs at the same time never see each other's
    variables; an `Executor` instance is one session, so it serves one run at a time.

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
        self._retained: CodeSession | None = None
        """The session of the run whose memory is `agent.memory`, kept for `reset=False`."""
        super().__init__(tools, model, **kwargs)

    def _new_run(self, max_steps: int, step_number: int, memory: Memory | None = None) -> Run:
        run = super()._new_run(max_steps, step_number, memory)
        run.guard = RunGuard(max_repeats=self.max_repeats)
        return run

    async def _open_executor(
        self, run: Run, *, fresh: bool, variables: Mapping[str, Any] | None = None
    ) -> None:
        """The run's session: the retained one (`reset=False`, a manual step), else a new one.
        A `reset=True` run closes the retained session: its variables go with the memory the
        run replaces. Runs in progress at the same time each have their own session."""
        session, self._retained = self._retained, None
        if fresh and session is not None:
            await session.close()
            session = None
        session = session or await self._new_session()
        session.run, run.session, run.executor = run, session, session.executor
        run.guard.tool_calls_at_start = session.tool_calls
        if variables:
            await session.executor.send_variables(dict(variables))

    async def _new_session(self) -> CodeSession:
        executor = self._make_executor()
        if any(r.session is not None and r.session.executor is executor for r in self._active_runs.values()):
            raise ConfigurationError(
                "This CodeAgent was given one Executor instance, which runs one session at a time, "
                "and a run of it is in progress. For runs at the same time, pass executor= a name "
                "or a factory returning a new Executor."
            )
        return await CodeSession.start(executor, self)

    async def _end_run(self, run: Run) -> None:
        """The run's session is retained if its memory is still `agent.memory` (a `reset=False`
        run continues both), else closed."""
        await super()._end_run(run)
        session = run.session
        if session is None or session.run is not run:
            return
        session.run = None
        if run.memory is not self.memory:  # a later run replaced agent.memory
            await session.close()
            return
        previous, self._retained = self._retained, session
        if previous is not None and previous.executor is not session.executor:
            await previous.close()

    async def aclose(self) -> None:
        session, self._retained = self._retained, None
        if session is not None:
            await session.close()

    async def _replay_actions(self, run: Run) -> str | None:
        """A resumed run's variables: its stored code actions run again, in order, in the fresh
        session, every tool call answered from the journal (see `codeloop.agents.durable`). A
        call the journal cannot answer stops the replay: the note returned says what may be gone."""
        durable, session = run.durable, _session_of(run)
        assert durable is not None
        codes = [s for s in run.memory.action_steps() if s.code_action is not None and not _stopped(s)]
        for position, step in enumerate(codes):
            code = step.code_action or ""
            durable.journal_step, durable.strict = step.step_number, True
            session.begin_action(step.step_number)
            snippet = Snippet.parse(code)
            out = await session.executor.run(shield(code, snippet.tree, {*self.tools, "final_answer"}).code)
            session.definitions.update(snippet.definitions(_ran_through(out.error)))
            session.imports.update(snippet.imports(_ran_through(out.error)))
            if durable.diverged is not None:
                return variables_note(durable.diverged, [s.code_action or "" for s in codes[position:]])
        durable.journal_step, durable.strict = None, False
        return None

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
        session = _session_of(run)
        yield CodeAction(agent=self.name, step=step.step_number, code=code, **_described_executor(session))
        snippet = Snippet.parse(code)
        shielded = shield(code, snippet.tree, {*self.tools, "final_answer"})
        run.guard.see_code(snippet, step.step_number)
        if self.check_invented_data:
            run.guard.tables += [(step.step_number, n) for n in snippet.data_tables(latest_task(run.memory))]
        session.begin_action(step.step_number)
        execution = self._spawn(run, session.executor.run(shielded.code))
        async for event in self._while_running(run, execution):
            yield event
        out = _located(execution.result(), session.definitions)
        failure = None if out.error is None else out.error.describe()
        yield CodeActionFinished(agent=self.name, step=step.step_number, error=failure)
        session.definitions.update(snippet.definitions(_ran_through(out.error)))
        session.imports.update(snippet.imports(_ran_through(out.error)))
        async for event in self._outcome(run, step, out, snippet, shielded.code, shielded.notes):
            yield event

    async def _outcome(
        self, run: Run, step: ActionStep, out: CodeOutput, snippet: Snippet, fed: str, notes: tuple[str, ...]
    ) -> AsyncIterator[Event]:
        """What the model sees of a finished code action (or the final answer it gave)."""
        session = _session_of(run)
        step.observations = out.logs
        if out.logs:
            yield Observation(agent=self.name, step=step.step_number, text=out.logs)
        if images := session.step_images:
            step.observations_images = [*(step.observations_images or []), *(i for _, i in images)]
            async for event in self._observe(step, _images_note(images)):
                yield event
        if out.error is not None:
            helps = self._error_notes(out.error, snippet, session)
            raise AgentExecutionError("\n".join([_described(out.error, fed, snippet.code), *notes, *helps]))
        if out.is_final_answer:  # an image's placeholder given as the answer gives the image
            held = session.held_images.get(out.output) if isinstance(out.output, str) else None
            await self._accept(run, step, out.output if held is None else held)
            return
        step.action_output = out.output
        if out.output is not None:
            step.observations += f"{_NEWLINE if out.logs else ''}Last output: {short_repr(out.output)}"
            yield ActionOutput(agent=self.name, step=step.step_number, output=out.output)
        elif not out.logs and not session.step_images:
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

    def _error_notes(self, error: ExecutionFailure, snippet: Snippet, session: CodeSession) -> list[str]:
        """What helps fix a failed action: the tools the model can call instead of a missing
        name, and what the tools returned before the error."""
        unknown = unknown_name_note(error.message, snippet.code, self.tools)
        calls = [
            (_call_text(name, args, kwargs), _SHORT.repr(value))
            for name, args, kwargs, value in session.step_calls
        ]
        used = {name for name, *_ in session.step_calls}
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
                if _session_of(run).tool_calls == run.guard.tool_calls_at_start:  # nothing came from a tool
                    run.guard.asked_for_tools = True
                    raise AgentParsingError(no_tool_answer_hint(answer, self.tools)) from None
            raise

    async def _accept(self, run: Run, step: ActionStep, answer: Any) -> None:
        """End the step with `answer` if every check accepts it (a function stands for its source)."""
        session = _session_of(run)
        code = handed_back(answer, session.definitions, session.imports)
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
        guard, session = run.guard, _session_of(run)
        if code.examples and guard.examples_rejected < 2:
            run_code, defined = session.executor.run, session.definitions
            outcomes = [(e, _located(await run_code(e.code()), defined)) for e in code.examples]
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
        if not self.tools or _session_of(run).tool_calls > guard.tool_calls_at_start:
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


def _stopped(step: ActionStep) -> bool:
    """A step whose action was cancelled or stopped by the time limit: replaying it would only
    hit the same stop (and restart the sandbox, losing what the earlier steps restored)."""
    return step.error is not None and step.error.type in ("Cancelled", "TimeoutError")


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


def _described_executor(session: CodeSession) -> dict[str, Any]:
    """The executor's type name and its limits, as a `CodeAction` event carries them."""
    limits = getattr(session.executor, "limits", None)
    shown = _limits_shown(limits) if isinstance(limits, ExecutorLimits) else {}
    return {"executor": type(session.executor).__name__, "limits": dict(shown)}


@functools.lru_cache(maxsize=64)
def _limits_shown(limits: ExecutorLimits) -> dict[str, Any]:
    """`limits` as a dict, made once per distinct limits (copied for each event)."""
    return dataclasses.asdict(limits)


def _session_of(run: Run) -> CodeSession:
    assert run.session is not None, "a CodeAgent's run has its session from _open_executor on"
    return run.session


def _located(out: CodeOutput, definitions: Mapping[str, Definition]) -> CodeOutput:
    """An error raised in a function of an earlier step shows that function's line."""
    if out.error is None:
        return out
    message = with_earlier_line(out.error.message, definitions)
    return dataclasses.replace(out, error=dataclasses.replace(out.error, message=message))


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
