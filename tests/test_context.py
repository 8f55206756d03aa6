"""Context policies (`codeloop.context`): what each model request sends of a run's memory.

Real runs (scripted model, the default Monty executor): the default `RecentWindow` keeps a
request's size bounded over 100 steps while `FullHistory` grows with every step; the last steps
go verbatim, older ones short (code cut, output cut with a marker, errors as their first line,
the variables they set listed, a ToolCallingAgent's calls kept and results cut); a model that
prints a listed variable gets what was cut; each step is rendered once per form in a run.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from codeloop import (
    ActionStep,
    CodeAgent,
    ConfigurationError,
    ImageContent,
    Memory,
    MultiStepAgent,
    ScriptedModel,
    ToolCallingAgent,
    tool,
)
from codeloop.context import FullHistory, RecentWindow, policy_from_dict, policy_to_dict
from codeloop.memory import TaskStep
from codeloop.messages import ChatMessage, Role

call = ScriptedModel.call
SHORTENED = "characters left out]"


def fenced(code: str, thought: str = "Thought: next step.") -> str:
    return f"{thought}\n```python\n{code}\n```"


def size(messages: Sequence[ChatMessage]) -> int:
    return sum(len(m.content) for m in messages)


def text(messages: Sequence[ChatMessage]) -> str:
    return "\n".join(m.content for m in messages)


def history_before(memory: Memory, step_number: int) -> Memory:
    """The memory as it was when the model was asked for action step `step_number`."""
    steps = memory.steps
    index = next(i for i, s in enumerate(steps) if isinstance(s, ActionStep) and s.step_number == step_number)
    return Memory(steps=steps[:index])


def printing_run(policy: Any, steps: int = 100, chars: int = 600) -> tuple[CodeAgent, ScriptedModel]:
    """A CodeAgent run of `steps` steps, each setting a new variable and printing `chars` chars."""
    codes = [f"v{i} = 'o' * {chars}\nprint(v{i})" for i in range(1, steps)] + ["final_answer('done')"]
    model = ScriptedModel([fenced(c) for c in codes])
    agent = CodeAgent([], model, max_steps=steps, max_repeats=None, context_policy=policy)
    assert agent.run("Print things.") == "done"
    return agent, model


# ---- size -------------------------------------------------------------------------------------


def test_request_size_stays_bounded_over_100_steps_while_full_history_grows() -> None:
    _, windowed = printing_run(None)  # the default policy
    _, full = printing_run(FullHistory())
    bounded = [size(r) for r in windowed.requests]
    growing = [size(r) for r in full.requests]
    assert len(bounded) == len(growing) == 100
    assert all(b > a for a, b in itertools.pairwise(growing))  # every step adds to it
    assert growing[99] > 1.9 * growing[49] and growing[99] > 60_000
    assert max(bounded[50:]) <= max(bounded[:50]) * 1.1  # no growth in the second half
    assert max(bounded) < 8_000 and bounded[99] < growing[99] / 8


def test_the_default_policy_is_a_recent_window() -> None:
    agent = CodeAgent([], ScriptedModel([]))
    assert agent.context_policy == RecentWindow()
    assert ToolCallingAgent([], ScriptedModel([])).context_policy == RecentWindow()


# ---- what is kept verbatim, what is shortened -------------------------------------------------


def test_the_last_k_steps_are_verbatim_and_the_ones_before_shortened() -> None:
    policy = RecentWindow(recent_steps=3)
    agent, model = printing_run(policy, steps=8, chars=300)
    memory = agent.memory
    last = model.requests[-1]  # asked for step 8: steps 1..7 are history
    recent = [m for s in memory.action_steps()[4:7] for m in s.to_messages()]
    assert last[-len(recent) :] == recent
    shortened = last[: -len(recent)]
    assert text(shortened).count(SHORTENED) == 4  # steps 1 to 4
    assert "Thought: next step." not in text(shortened)  # older steps lose their thought
    assert "```python\nv4 = 'o' * 300\nprint(v4)\n```" in text(shortened)  # two lines: kept whole
    assert "o" * 300 not in text(shortened)
    assert "Observation: [300 characters left out]" in text(shortened)  # its trailing newline dropped
    assert agent.write_memory_to_messages() == policy.messages(memory, agent.system_prompt)


def test_older_code_is_cut_to_its_first_lines() -> None:
    code = "\n".join(f"line_{i} = {i}" for i in range(10)) + "\nprint(line_9)"
    model = ScriptedModel([fenced(code), fenced("print(1)"), fenced("final_answer(2)")])
    CodeAgent([], model, context_policy=RecentWindow(recent_steps=1, code_lines=2)).run("Go.")
    shown = text(model.requests[2])
    assert "```python\nline_0 = 0\nline_1 = 1\n# … 9 more line(s) left out\n```" in shown
    assert "line_5 = 5" not in shown
    assert f"Variables set: {', '.join(f'line_{i}' for i in range(10))}." in shown


def test_a_model_prints_an_elided_variable_and_gets_it_back() -> None:
    """Step 1's output is cut from later requests; the model reads the variable's name from
    the shortened step, prints it, and the real executor shows what was cut."""
    asked: list[str] = []

    def print_listed_variable(messages: Sequence[ChatMessage]) -> str:
        match = re.search(r"Variables set: (\w+)\.", text(messages))
        assert match is not None
        asked.append(match[1])
        return fenced(f"print({match[1]}[-11:])")

    model = ScriptedModel(
        [
            fenced("report = 'x' * 400 + ' total=' + str(4200 + 17)\nprint(report)"),
            fenced("print('checking')"),
            print_listed_variable,
            fenced("final_answer(report[-4:])"),
        ]
    )
    agent = CodeAgent([], model, context_policy=RecentWindow(recent_steps=1))
    assert agent.run("Find the total.") == "4217"
    before = text(model.requests[2])
    assert "total=4217" not in before and f"Observation: [{400 + 11} {SHORTENED}" in before
    assert "The variables they set still exist: print() one to see it again." in before
    assert asked == ["report"]
    assert model.requests[3][-1].content == "Observation:\n total=4217\n"  # back, verbatim


def test_errors_of_older_steps_are_their_first_line() -> None:
    model = ScriptedModel(
        [
            fenced("raise ValueError('bad input' + chr(10) + 'details: ' + str(6 * 7))"),
            fenced("print('fixed')"),
            fenced("final_answer(1)"),
        ]
    )
    CodeAgent([], model, context_policy=RecentWindow(recent_steps=1)).run("Go.")
    assert "details: 42" in text(model.requests[1])  # verbatim while recent
    shown = text(model.requests[2])
    assert "details: 42" not in shown and "Fix this and try again" not in shown
    (error,) = [line for line in shown.splitlines() if line.startswith("Error:")]
    assert error.startswith("Error: ValueError (line 1") and error.endswith("bad input […]")


def test_a_step_that_failed_lists_no_variables() -> None:
    model = ScriptedModel([fenced("a = 1\nb = 1 / 0"), fenced("print(2)"), fenced("final_answer(1)")])
    CodeAgent([], model, context_policy=RecentWindow(recent_steps=1)).run("Go.")
    assert "Variables set" not in text(model.requests[2])


def test_tool_calling_agent_keeps_old_calls_and_elides_their_results() -> None:
    @tool
    def fetch(page: int) -> str:
        """Fetch a page.

        Args:
            page: Its number.
        """
        return f"page {page}: " + "z" * 300 + f" END{page}"

    replies: list[Any] = [[call("fetch", page=n)] for n in range(1, 6)]
    model = ScriptedModel([*replies, [call("final_answer", answer="read")]])
    agent = ToolCallingAgent([fetch], model, max_steps=6, context_policy=RecentWindow(recent_steps=2))
    assert agent.run("Read five pages.") == "read"
    last = model.requests[-1]
    calls = [c for m in last if m.role is Role.ASSISTANT for c in m.tool_calls]
    assert [(c.name, c.arguments) for c in calls] == [("fetch", {"page": n}) for n in range(1, 6)]
    results = {m.tool_call_id: m.content for m in last if m.role is Role.TOOL}
    contents = [results[c.id] for c in calls]
    assert contents[:3] == [f"[313 {SHORTENED}"] * 3
    assert [c[-4:] for c in contents[3:]] == ["END4", "END5"]  # the recent two, whole
    assert "Call a tool again to see its result." in text(last)


def test_tool_calls_written_as_json_keep_the_call_and_drop_the_thought() -> None:
    model = ScriptedModel(
        [
            'I should add them first. {"name": "add", "arguments": {"a": 1, "b": 2}}',
            '{"name": "add", "arguments": {"a": 3, "b": 4}}',
            '{"name": "final_answer", "arguments": {"answer": 7}}',
        ]
    )

    @tool
    def add(a: int, b: int) -> int:
        """Add.

        Args:
            a: One.
            b: Two.
        """
        return a + b

    ToolCallingAgent([add], model, context_policy=RecentWindow(recent_steps=1)).run("Add.")
    shown = [m.content for m in model.requests[2]]
    assert '{"name": "add", "arguments": {"a": 1, "b": 2}}' in shown
    assert "I should add them first." not in text(model.requests[2])
    assert "Observation:\nadd: 3" in shown  # a short result is kept whole


def test_only_the_latest_plan_is_kept() -> None:
    replies = []
    for n in range(1, 4):
        replies += [f"Plan number {n}.", fenced(f"print({n})"), fenced(f"print({n * 10})")]
    model = ScriptedModel([*replies[:-1], fenced("final_answer(3)")])
    agent = CodeAgent([], model, planning_interval=2, max_steps=6)
    assert agent.run("Plan things.") == 3
    last = text(model.requests[-1])
    assert "Plan number 3." in last and "Plan number 1." not in last and "Plan number 2." not in last
    full = text(FullHistory().messages(agent.memory, agent.system_prompt))
    assert all(f"Plan number {n}." in full for n in (1, 2, 3))


def test_images_are_sent_only_with_the_recent_steps() -> None:
    image = ImageContent(data=b"\x89PNG screenshot", mime_type="image/png")
    task_image = ImageContent(data=b"\x89PNG task", mime_type="image/png")

    def screenshot(step: ActionStep, agent: MultiStepAgent) -> None:
        step.observations_images = [image]

    codes = [fenced(f"print({n})") for n in range(5)] + [fenced("final_answer(0)")]
    model = ScriptedModel(codes)
    agent = CodeAgent([], model, step_callbacks=[screenshot], context_policy=RecentWindow(recent_steps=2))
    agent.run("Look.", images=[task_image])
    last = model.requests[-1]
    assert [m.images for m in last if m.images] == [(task_image,), (image,), (image,)]
    assert text(last).count("[1 image(s) left out]") == 3


def test_folded_steps_are_one_line_with_their_variables_and_change_in_blocks() -> None:
    policy = RecentWindow(recent_steps=2, short_steps=5)
    _, model = printing_run(policy, steps=30, chars=10)
    preambles = [
        next((m.content for m in r if m.content.startswith("[Earlier steps")), None) for r in model.requests
    ]
    assert preambles[:3] == [None, None, None]
    folded = [p.splitlines()[1] if p and "\n" in p else "" for p in preambles]
    assert folded[11] == ""  # request 12: 9 older steps, all short
    assert folded[12] == "Steps 1 to 5 are left out. Variables they set: v1, v2, v3, v4, v5."
    assert folded[12:17] == [folded[12]] * 5  # the same line until the next block folds
    assert folded[17].startswith("Steps 1 to 10 are left out.")
    assert text(model.requests[-1]).count(SHORTENED) == 0  # 10-char outputs fit the budget
    assert "Observation: oooooooooo\nVariables set: v27." in text(model.requests[-1])
    shorts = [m for m in model.requests[-1] if m.content.startswith("```python\nv")]
    assert 5 <= len(shorts) < 10


# ---- the cache: each step rendered once per form ----------------------------------------------


def counting(monkeypatch: pytest.MonkeyPatch, owner: type, name: str) -> Counter[int]:
    """Count the calls of `owner.name` by the id of the step they render."""
    calls: Counter[int] = Counter()
    original: Callable[..., list[ChatMessage]] = getattr(owner, name)

    def counted(self: Any, *args: Any) -> list[ChatMessage]:
        step = args[0] if args else self
        calls[id(step)] += 1
        return original(self, *args)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_each_step_is_rendered_at_most_once_per_form_across_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    verbatim = counting(monkeypatch, ActionStep, "to_messages")
    short = counting(monkeypatch, RecentWindow, "short_messages")
    printing_run(RecentWindow(recent_steps=3, short_steps=5), steps=40, chars=200)
    assert len(verbatim) == 39 and set(verbatim.values()) == {1}  # steps 1-39, once each
    assert len(short) >= 30 and set(short.values()) == {1}
    verbatim.clear()
    printing_run(FullHistory(), steps=40, chars=200)
    assert len(verbatim) == 39 and set(verbatim.values()) == {1}  # not 39 * 40 / 2 renders


def test_a_step_changed_after_it_was_rendered_is_rendered_again() -> None:
    image = ImageContent(data=b"\x89PNG", mime_type="image/png")
    memory = Memory(steps=[TaskStep(task="t")])
    memory.steps += [
        ActionStep(step_number=n, observations=f"seen {n}", observations_images=[image]) for n in (1, 2)
    ]
    policy = RecentWindow(recent_steps=1)
    first = policy.messages(memory, "s")
    assert first == policy.messages(memory, "s")
    step = memory.action_steps()[0]
    step.observations_images = None  # as smolagents' browser example does to older steps
    step.observations += " and more"
    again = text(policy.messages(memory, "s"))
    assert "[1 image(s) left out]" in text(first) and "[1 image(s) left out]" not in again
    assert "seen 1 and more" in again
    memory.action_steps()[1].observations_images.append(image)  # type: ignore[union-attr]
    assert sum(len(m.images) for m in memory.to_messages("s")) == 2  # changed in place: seen too


# ---- FullHistory, purity, persistence -----------------------------------------------------------


def reference_messages(memory: Memory, system_prompt: str) -> list[ChatMessage]:
    """Today's rendering, without the cache: every step's own `to_messages()`."""
    history = [m for step in memory.steps for m in step.to_messages()]
    return [ChatMessage(role=Role.SYSTEM, content=system_prompt), *history]


def test_full_history_sends_exactly_memory_to_messages_at_every_step() -> None:
    image = ImageContent(data=b"\x89PNG", mime_type="image/png")
    model = ScriptedModel(
        [
            fenced("x = 1\nprint('x' * 500)"),
            "no code here",
            fenced("y = x / 0"),
            fenced("print(x)"),
            fenced("print(x + 1)"),
            fenced("final_answer(x)"),
        ]
    )
    agent = CodeAgent([], model, context_policy=FullHistory())
    agent.run("Go.", images=[image])
    memory, prompt = agent.memory, agent.system_prompt
    for number, request in enumerate(model.requests, start=1):
        assert request == reference_messages(history_before(memory, number), prompt)
    assert FullHistory().messages(memory, prompt) == memory.to_messages(prompt)
    assert memory.to_messages(prompt) == reference_messages(memory, prompt)
    assert agent.write_memory_to_messages() == memory.to_messages(prompt)


def test_full_history_matches_for_a_tool_calling_run_with_plans() -> None:
    @tool
    def echo(word: str) -> str:
        """Echo.

        Args:
            word: A word.
        """
        return word * 50

    replies: list[Any] = ["A plan.", [call("echo", word="a")], [call("echo", word="b")], "A new plan."]
    model = ScriptedModel([*replies, [call("nope")], [call("final_answer", answer="ok")]])
    agent = ToolCallingAgent([echo], model, planning_interval=2, context_policy=FullHistory())
    assert agent.run("Echo.") == "ok"
    memory, prompt = agent.memory, agent.system_prompt
    assert memory.to_messages(prompt) == reference_messages(memory, prompt)
    assert model.requests[-1] == reference_messages(history_before(memory, 4), prompt)


def test_the_window_is_a_pure_function_of_memory() -> None:
    """A resumed run rebuilds its memory from stored JSON: the requests must not change."""
    agent, _ = printing_run(RecentWindow(recent_steps=2, short_steps=3), steps=12, chars=150)
    policy, prompt = agent.context_policy, agent.system_prompt
    restored = Memory.from_json(agent.memory.to_json())
    assert policy.messages(restored, prompt) == policy.messages(agent.memory, prompt)


def test_a_resumed_run_sends_what_the_window_makes_of_the_stored_memory(tmp_path: Path) -> None:
    store = str(tmp_path / "runs.db")
    codes = [fenced(f"v{n} = 'q' * 300 + 'END' + str({n})\nprint(v{n})") for n in range(1, 7)]
    first = CodeAgent([], ScriptedModel([*codes, RuntimeError("down")]), store=store)
    failed = first.run("Go.", return_full_result=True)
    model = ScriptedModel([fenced("print(v1[-4:])"), fenced("final_answer(v2[-4:])")])
    again = CodeAgent([], model, store=store)
    assert again.resume(failed.run_id) == "END2"  # v2 set by step 2's code, replayed
    policy = again.context_policy
    assert model.requests[0] == policy.messages(history_before(again.memory, 7), again.system_prompt)
    assert "END1" not in text(model.requests[0]) and SHORTENED in text(model.requests[0])
    assert model.requests[1][-1].content == "Observation:\nEND1\n"


def test_a_saved_agent_keeps_its_context_policy(tmp_path: Path) -> None:
    window = RecentWindow(recent_steps=5, short_steps=8, code_lines=4, output_chars=60)
    agent = CodeAgent([], ScriptedModel([]), context_policy=window)
    assert agent.to_dict()["context_policy"] == {
        "class": "RecentWindow", "recent_steps": 5, "short_steps": 8, "code_lines": 4, "output_chars": 60
    }  # fmt: skip
    agent.save(tmp_path / "agent")
    assert CodeAgent.from_folder(tmp_path / "agent", model=ScriptedModel([])).context_policy == window
    full = ToolCallingAgent([], ScriptedModel([]), context_policy=FullHistory()).to_dict()
    assert full["context_policy"] == {"class": "FullHistory"}
    assert isinstance(MultiStepAgent.from_dict(full, model=ScriptedModel([])).context_policy, FullHistory)
    older = {k: v for k, v in full.items() if k != "context_policy"}  # saved before policies existed
    assert MultiStepAgent.from_dict(older, model=ScriptedModel([])).context_policy == RecentWindow()


def test_a_custom_policy_is_used_but_not_saved() -> None:
    class LastMessageOnly:
        def messages(self, memory: Memory, system_prompt: str) -> list[ChatMessage]:
            return FullHistory().messages(memory, system_prompt)[-1:]

    model = ScriptedModel([fenced("final_answer(1)")])
    agent = CodeAgent([], model, context_policy=LastMessageOnly())
    agent.run("Only this.")
    assert [m.content for m in model.requests[0]] == ["Task: Only this."]
    with pytest.warns(UserWarning, match="LastMessageOnly.*not saved"):
        assert "context_policy" not in agent.to_dict()


def test_bad_policies_and_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="context_policy must have a messages"):
        CodeAgent([], ScriptedModel([]), context_policy="recent")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="recent_steps must be an integer ≥ 1"):
        RecentWindow(recent_steps=0)
    with pytest.raises(ConfigurationError, match="output_chars"):
        RecentWindow(output_chars=-1)
    with pytest.raises(ConfigurationError, match="whose class is FullHistory or RecentWindow"):
        policy_from_dict({"class": "Everything"})
    with pytest.raises(ConfigurationError, match="does not fit RecentWindow"):
        policy_from_dict({"class": "RecentWindow", "window": 3})
    assert policy_from_dict(policy_to_dict(RecentWindow()) or {}) == RecentWindow()


def test_a_detailed_replay_shows_what_the_policy_sent(capsys: pytest.CaptureFixture[str]) -> None:
    agent, model = printing_run(RecentWindow(recent_steps=1), steps=4, chars=300)
    agent.replay(detailed=True)
    shown = capsys.readouterr().out
    assert shown.count("[Earlier steps are shortened") == 2  # the model inputs of steps 3 and 4
    assert "Earlier steps" in text(model.requests[2]) and "Earlier steps" not in text(model.requests[1])
