"""smolagents code, written as a smolagents user writes it, running on codeloop.

One test (or a few) per compatibility item: executor_type, add_base_tools, step_callbacks by
step class, callbacks for planning steps, prompt_templates, replay, interrupt, manual stepping,
memory.system_prompt and smolagents' step field names."""

from __future__ import annotations

import asyncio
import io
import threading
from typing import Any

import pytest

from codeloop import (
    ActionStep,
    CodeAgent,
    ConfigurationError,
    FinalAnswerStep,
    ImageContent,
    Memory,
    MemoryStep,
    PlanningStep,
    RunInterrupted,
    RunState,
    ScriptedModel,
    SystemPromptStep,
    TaskStep,
    Timing,
    ToolCallingAgent,
    tool,
)
from codeloop.events import RunFinished, StepFinished
from codeloop.messages import Role

from helpers import add

call = ScriptedModel.call


def fenced(code: str, thought: str = "Thought: next step.") -> str:
    return f"{thought}\n```python\n{code}\n```"


# ---- executor_type ---------------------------------------------------------------------------


def test_executor_type_local_runs_in_the_monty_sandbox_with_the_interpreter_options() -> None:
    model = ScriptedModel([fenced("while True:\n    pass"), fenced("final_answer(sum(range(5)))")])
    agent = CodeAgent(
        tools=[],
        model=model,
        executor_type="local",
        executor_kwargs={"timeout_seconds": 0.3, "max_print_outputs_length": 1000},
    )
    assert agent.executor_type == "monty"  # smolagents' restricted interpreter -> Monty
    result = agent.run("Sum 0..4", return_full_result=True)
    assert result.output == 10
    first = result.memory.action_steps()[0]
    assert first.error is not None and "0.3" in first.error.message  # the timeout came through

    with pytest.raises(ConfigurationError, match="executor='jail'") as info:
        CodeAgent(tools=[], model=model, executor_type="local", additional_authorized_imports=["numpy"])
    assert "executor_type='local'" in str(info.value) and "no security boundary" in str(info.value)
    with pytest.raises(ConfigurationError, match="as tools"):
        CodeAgent(tools=[], model=model, executor_type="local", executor_kwargs={"additional_functions": {}})


@pytest.mark.parametrize("name", ["docker", "e2b", "modal"])
def test_executor_type_remote_names_map_to_the_same_codeloop_executors(name: str) -> None:
    agent = CodeAgent(tools=[], model=ScriptedModel([]), executor_type=name)
    assert agent.executor_type == name
    assert type(agent._make_executor()).__name__.lower().startswith(name)


def test_executor_types_without_an_equivalent_are_clear_errors() -> None:
    model = ScriptedModel([])
    with pytest.raises(ConfigurationError, match=r"'wasm'.*no codeloop equivalent.*executor='monty'"):
        CodeAgent(tools=[], model=model, executor_type="wasm")
    with pytest.raises(ConfigurationError, match=r"'blaxel'.*no codeloop equivalent.*'e2b'"):
        CodeAgent(tools=[], model=model, executor_type="blaxel")
    with pytest.raises(ConfigurationError, match="smolagents' names: 'local'"):
        CodeAgent(tools=[], model=model, executor_type="lokal")
    with pytest.raises(ConfigurationError, match="not both"):
        CodeAgent(tools=[], model=model, executor="monty", executor_type="local")


# ---- add_base_tools --------------------------------------------------------------------------


def test_add_base_tools() -> None:
    model = ScriptedModel([fenced("final_answer(1)")])
    assert CodeAgent(tools=[], model=model, add_base_tools=False).tools == {}
    toolkit = {"web_search", "visit_webpage", "wikipedia_search", "user_input"}
    assert set(CodeAgent(tools=[], model=model, add_base_tools=True).tools) == toolkit
    calling = ToolCallingAgent(tools=[], model=model, add_base_tools=True)
    assert set(calling.tools) == toolkit | {"python_interpreter"}


def test_add_base_tools_keeps_a_user_tool_of_the_same_name() -> None:
    @tool
    def web_search(query: str) -> str:
        """My own search.

        Args:
            query: what to look for.
        """
        return "mine"

    agent = ToolCallingAgent(tools=[web_search], model=ScriptedModel([]), add_base_tools=True)
    assert agent.tools["web_search"]("x") == "mine"


def test_a_code_agent_runs_the_base_python_interpreter_from_a_tool_calling_agent() -> None:
    call = ScriptedModel.call
    model = ScriptedModel(
        [[call("python_interpreter", code="print(6 * 7)")], [call("final_answer", answer="ok")]]
    )
    agent = ToolCallingAgent(tools=[], model=model, add_base_tools=True)
    assert agent.run("compute") == "ok"
    assert "42" in agent.memory.action_steps()[0].tool_results[0].content


# ---- step_callbacks --------------------------------------------------------------------------


def _planning_script() -> ScriptedModel:
    return ScriptedModel(["1. add\n2. answer", fenced("v = add(1, 2)"), fenced("final_answer(v)")])


def test_step_callbacks_dict_by_step_class_including_memory_step() -> None:
    seen: list[str] = []

    def on_action(memory_step: ActionStep, agent: CodeAgent) -> None:
        seen.append(f"action {memory_step.step_number} {agent.name}")

    def on_action_too(memory_step: ActionStep) -> None:
        seen.append(f"action-too {memory_step.step_number}")

    async def on_any(memory_step: MemoryStep) -> None:  # async callbacks are awaited
        seen.append(f"any {type(memory_step).__name__}")

    agent = CodeAgent(
        tools=[add],
        model=_planning_script(),
        planning_interval=5,
        name="calc",
        step_callbacks={
            ActionStep: [on_action, on_action_too],
            PlanningStep: lambda memory_step: seen.append("plan"),
            MemoryStep: on_any,
            FinalAnswerStep: lambda memory_step: seen.append(f"final {memory_step.output}"),
        },
    )
    assert agent.run("Add 1 and 2") == 3
    assert seen == [
        "plan",
        "any PlanningStep",
        "action 1 calc",
        "action-too 1",
        "any ActionStep",
        "action 2 calc",
        "action-too 2",
        "any ActionStep",
        "final 3",
        "any FinalAnswerStep",
    ]


def test_step_callbacks_list_is_for_action_steps_only_and_register_adds_more() -> None:
    listed: list[str] = []
    registered: list[str] = []
    agent = CodeAgent(
        tools=[add],
        model=_planning_script(),
        planning_interval=5,
        step_callbacks=[lambda memory_step: listed.append(type(memory_step).__name__)],
    )
    agent.step_callbacks.register(PlanningStep, lambda memory_step: registered.append(memory_step.plan))
    agent.run("Add 1 and 2")
    assert listed == ["ActionStep", "ActionStep"]  # smolagents: a list means ActionStep callbacks
    assert registered == ["1. add\n2. answer"]
    with pytest.raises(ConfigurationError, match="step classes"):
        CodeAgent(tools=[], model=ScriptedModel([]), step_callbacks={"ActionStep": print})


def test_a_planning_step_callback_can_edit_the_plan_the_model_sees_next() -> None:
    def amend(memory_step: PlanningStep, agent: CodeAgent) -> None:
        memory_step.plan += "\n3. Check the units."

    model = _planning_script()
    agent = CodeAgent(tools=[add], model=model, planning_interval=5, step_callbacks={PlanningStep: amend})
    agent.run("Add 1 and 2")
    plan_message = model.requests[1][-2]
    assert plan_message.role is Role.ASSISTANT and plan_message.content.endswith("3. Check the units.")


# ---- prompt_templates ------------------------------------------------------------------------

SMOLAGENTS_STYLE_SYSTEM_PROMPT = """\
You write code between {{code_block_opening_tag}} and {{code_block_closing_tag}}.
Tools:
{%- for tool in tools.values() %}
{{ tool.to_code_prompt() }}
{%- endfor %}
{%- if managed_agents and managed_agents.values() | list %}
Team:
{%- for agent in managed_agents.values() %}
- {{ agent.name }}: {{ agent.description }} (inputs: {{ agent.inputs | list }})
{%- endfor %}
{%- endif %}
Imports: {{authorized_imports}}
{%- if custom_instructions %}
{{custom_instructions}}
{%- endif %}"""


def test_prompt_templates_are_readable_under_smolagents_keys() -> None:
    agent = CodeAgent(tools=[add], model=ScriptedModel([]))
    templates = agent.prompt_templates
    assert set(templates) == {"system_prompt", "planning", "managed_agent", "final_answer"}
    assert "final_answer(answer)" in templates["system_prompt"]
    assert "plan" in templates["planning"]["initial_plan"]
    assert "Update your plan" in templates["planning"]["update_plan_post_messages"]
    assert templates["planning"]["update_plan_pre_messages"] == ""
    assert (
        "calling tools"
        in ToolCallingAgent(tools=[], model=ScriptedModel([])).prompt_templates["system_prompt"]
    )


def test_a_smolagents_style_system_prompt_renders_with_smolagents_variables() -> None:
    helper = ToolCallingAgent(
        tools=[], model=ScriptedModel([]), name="helper", description="Answers questions."
    )
    model = ScriptedModel([fenced("final_answer(add(1, 1))")])
    agent = CodeAgent(
        tools=[add],
        model=model,
        managed_agents=[helper],
        instructions="Be brief.",
        additional_authorized_imports=["math"],
        prompt_templates={"system_prompt": SMOLAGENTS_STYLE_SYSTEM_PROMPT},
    )
    assert agent.run("1 + 1") == 2
    system = model.requests[0][0]
    assert system.role is Role.SYSTEM and system.content == agent.system_prompt
    assert system.content.startswith("You write code between ```python and ```.")
    assert "def add(a: int, b: int) -> int:" in system.content
    assert "def final_answer(answer: Any)" in system.content  # smolagents lists final_answer as a tool
    assert "- helper: Answers questions. (inputs: ['task', 'additional_args'])" in system.content
    assert "'math'" in system.content and system.content.endswith("Be brief.")

    agent.prompt_templates["system_prompt"] = "Only {{ tools | length }} tools."  # read on every run
    assert agent.system_prompt == "Only 2 tools."
    with pytest.raises(AttributeError, match=r"prompt_templates\['system_prompt'\]"):
        agent.system_prompt = "no"  # type: ignore[misc]


def test_tool_calling_prompt_template_and_planning_templates_with_task_and_remaining_steps() -> None:
    model = ScriptedModel(
        [
            "Plan A",
            [call("add", a=1, b=2)],
            "Plan B",
            [call("final_answer", answer=3)],
        ]
    )
    agent = ToolCallingAgent(
        tools=[add],
        model=model,
        planning_interval=1,
        max_steps=4,
        prompt_templates={
            "system_prompt": (
                "{%- for tool in tools.values() %}\n- {{ tool.to_tool_calling_prompt() }}{% endfor %}"
            ),
            "planning": {
                "initial_plan": "Plan for: {{task}}",
                "update_plan_pre_messages": "You revise plans for: {{task}}",
                "update_plan_post_messages": "New plan; {{remaining_steps}} steps left.",
            },
        },
    )
    assert agent.run("Add 1 and 2") == 3
    assert model.requests[0][0].content.startswith("- add: Add two integers.\n    Takes inputs: {'a'")
    assert model.requests[0][-1].content == "Plan for: Add 1 and 2"
    update = model.requests[2]
    assert update[0].role is Role.SYSTEM and update[0].content == "You revise plans for: Add 1 and 2"
    assert update[-1].content == "New plan; 3 steps left."
    assert model.requests[3][0].content == agent.system_prompt  # action steps keep the system prompt


def test_prompt_templates_errors_and_the_unused_final_answer_templates() -> None:
    model = ScriptedModel([])
    with pytest.raises(ConfigurationError, match=r"no key 'planing'.*planning"):
        CodeAgent(tools=[], model=model, prompt_templates={"planing": {}})
    with pytest.raises(ConfigurationError, match=r"no key 'plan'.*initial_plan"):
        CodeAgent(tools=[], model=model, prompt_templates={"planning": {"plan": "x"}})
    with pytest.raises(ConfigurationError, match=r"'nope' is undefined.*custom_instructions"):
        CodeAgent(tools=[], model=model, prompt_templates={"system_prompt": "{{ nope }}"})
    with pytest.warns(UserWarning, match=r"final_answer.*not used"):
        CodeAgent(tools=[], model=model, prompt_templates={"final_answer": {"pre_messages": "Help!"}})


def test_managed_agent_task_and_report_templates_wrap_the_sub_agent() -> None:
    sub_model = ScriptedModel([[call("final_answer", answer="Paris")]])
    sub = ToolCallingAgent(
        tools=[],
        model=sub_model,
        name="researcher",
        description="Looks things up.",
        prompt_templates={
            "managed_agent": {
                "task": "You are {{name}}. Your manager asks: {{task}}",
                "report": "Report from {{name}}: {{final_answer}}",
            }
        },
    )
    boss = CodeAgent(
        tools=[],
        model=ScriptedModel([fenced("final_answer(researcher(task='capital of France?'))")]),
        managed_agents=[sub],
    )
    assert boss.run("Ask") == "Report from researcher: Paris"
    assert (
        sub_model.requests[0][-1].content == "Task: You are researcher. Your manager asks: capital of France?"
    )


# ---- replay ----------------------------------------------------------------------------------


def test_replay_prints_the_run_from_memory() -> None:
    model = ScriptedModel(
        ["1. add", fenced("v = add(2, 3)\nprint('v is', v)"), fenced("final_answer(v * 10)")]
    )
    agent = CodeAgent(tools=[add], model=model, planning_interval=5, verbosity_level=0)
    agent.run("Compute (2+3)*10")

    out = io.StringIO()
    agent.replay(file=out)
    text = out.getvalue()
    for expected in ("Compute (2+3)*10", "1. add", "v = add(2, 3)", "v is 5", "final answer: 50"):
        assert expected in text
    assert text.index("v is 5") < text.index("final answer: 50")
    assert "model input" not in text

    detailed = io.StringIO()
    agent.replay(detailed=True, file=detailed)
    assert detailed.getvalue().count("model input") == 3  # one per planning and action step
    assert "[system] You solve tasks by writing Python code" in detailed.getvalue()


# ---- interrupt -------------------------------------------------------------------------------


def test_interrupt_from_a_step_callback_stops_the_run_after_that_step() -> None:
    def interrupt_callback(memory_step: ActionStep, agent: CodeAgent) -> None:
        agent.interrupt()

    model = ScriptedModel([fenced("print(1)"), fenced("final_answer(2)"), fenced("final_answer(3)")])
    agent = CodeAgent(tools=[], model=model, step_callbacks=[interrupt_callback])
    with pytest.raises(RunInterrupted, match="interrupt") as info:
        agent.run("Test task")
    result = info.value.result
    assert result is not None and result.state is RunState.INTERRUPTED and result.output is None
    assert len(model.requests) == 1 and len(agent.memory.action_steps()) == 1

    agent.step_callbacks = type(agent.step_callbacks)()  # no more interrupts: a new run runs
    assert agent.run("Again", return_full_result=True).state is RunState.SUCCESS


def test_interrupt_from_another_thread_while_streaming() -> None:
    model = ScriptedModel([fenced("print(1)"), fenced("print(2)"), fenced("final_answer(3)")])
    agent = CodeAgent(tools=[], model=model)
    states = []
    for event in agent.stream("Count"):
        if isinstance(event, StepFinished):
            worker = threading.Thread(target=agent.interrupt)
            worker.start()
            worker.join()
        if isinstance(event, RunFinished):
            states.append(event.result.state)
    assert states == [RunState.INTERRUPTED]
    assert len(model.requests) == 1


# ---- step ------------------------------------------------------------------------------------


def test_step_runs_one_step_at_a_time_as_in_the_smolagents_docs() -> None:
    model = ScriptedModel(
        [
            fenced("a, b = 0, 1\nfor _ in range(19):\n    a, b = b, a + b"),
            "no code",
            fenced("final_answer(b)"),
        ]
    )
    agent = CodeAgent(tools=[], model=model)
    print(agent.memory.system_prompt)

    agent.memory.steps.append(TaskStep(task="What is the 20th Fibonacci number?", task_images=[]))
    final_answer = None
    step_number = 1
    while final_answer is None and step_number <= 10:
        memory_step = ActionStep(step_number=step_number, observations_images=[])
        final_answer = agent.step(memory_step)
        agent.memory.steps.append(memory_step)
        step_number += 1

    assert final_answer == 6765 and step_number == 4
    steps = agent.memory.action_steps()
    assert steps[1].error is not None and steps[1].error.type == "AgentParsingError"  # recorded, not raised
    assert "```python" in model.requests[2][-1].content  # and fed back to the model
    assert steps[2].is_final_answer and steps[2].timing.end_time is not None


def test_astep_is_the_async_form() -> None:
    async def main() -> list[Any]:
        agent = ToolCallingAgent(
            tools=[add], model=ScriptedModel([[call("add", a=2, b=2)], [call("final_answer", answer=4)]])
        )
        agent.memory.steps.append(TaskStep(task="2 + 2"))
        answers = []
        for number in (1, 2):
            memory_step = ActionStep(step_number=number)
            answers.append(await agent.astep(memory_step))
            agent.memory.steps.append(memory_step)
        return answers

    assert asyncio.run(main()) == [None, 4]


# ---- memory.system_prompt and step field names -----------------------------------------------


def test_memory_system_prompt_is_a_system_prompt_step() -> None:
    model = ScriptedModel([fenced("final_answer(1)")])
    agent = CodeAgent(tools=[add], model=model, instructions="Answer 1.")
    system_prompt_step = agent.memory.system_prompt
    assert isinstance(system_prompt_step, SystemPromptStep)
    assert system_prompt_step.system_prompt == agent.system_prompt  # before any run
    agent.run("One")
    assert agent.memory.system_prompt.system_prompt == model.requests[0][0].content
    assert agent.memory.system_prompt.to_messages()[0].role is Role.SYSTEM


def test_smolagents_step_field_names() -> None:
    def screenshot(memory_step: ActionStep, agent: CodeAgent) -> None:
        memory_step.observations_images = [ImageContent(data=b"\x89PNG shot")]

    image = ImageContent(data=b"\x89PNG task")
    model = ScriptedModel(
        ["1. divide", fenced("x = 1 / 0"), fenced("y = add(40, 2)\ny"), fenced("final_answer(y)")]
    )
    agent = CodeAgent(tools=[add], model=model, planning_interval=9, step_callbacks=[screenshot])
    agent.run("Answer", images=[image])

    task, plan, failed, computed, last, final = agent.memory.steps
    assert isinstance(task, TaskStep) and task.task_images == [image]
    assert isinstance(plan, PlanningStep) and plan.model_output_message.content == plan.plan == "1. divide"
    assert plan.token_usage is not None and plan.token_usage.total_tokens > 0
    assert isinstance(failed, ActionStep) and "ZeroDivisionError" in str(failed.error)
    assert isinstance(computed, ActionStep) and computed.action_output == 42
    assert computed.code_action == "y = add(40, 2)\ny"
    assert computed.tool_calls[0].name == "python_interpreter"
    assert computed.tool_calls[0].arguments == computed.code_action
    assert computed.model_output_message.role is Role.ASSISTANT
    assert computed.model_output_message.content == computed.model_output
    assert computed.token_usage is computed.usage and computed.timing.duration is not None
    assert isinstance(last, ActionStep) and last.is_final_answer and last.action_output == 42
    assert isinstance(final, FinalAnswerStep) and final.output == 42
    shots = [
        m for m in model.requests[3] if m.images and m.role is Role.USER and m is not model.requests[3][1]
    ]
    assert [m.images[0].data for m in shots] == [b"\x89PNG shot", b"\x89PNG shot"]

    restored = Memory.from_json(agent.memory.to_json())
    assert restored == agent.memory
    assert restored.steps[0].task_images == [image]  # type: ignore[union-attr]
    assert restored.action_steps()[0].observations_images == [ImageContent(data=b"\x89PNG shot")]
    assert agent.memory.return_full_code() == "x = 1 / 0\n\ny = add(40, 2)\ny\n\nfinal_answer(y)"
    full = agent.memory.get_full_steps()
    assert [s["kind"] for s in full] == ["task", "planning", "action", "action", "action", "final_answer"]
    assert full[2]["error"]["type"] == "AgentExecutionError"


def test_step_constructors_take_smolagents_keywords() -> None:
    image = ImageContent(data=b"img")
    step = TaskStep(task="Describe", task_images=[image])
    assert step.images == (image,) and step.to_messages()[0].images == (image,)
    with pytest.raises(TypeError, match="not both"):
        TaskStep(task="x", images=[image], task_images=[image])
    action = ActionStep(step_number=1, timing=Timing(start_time=0.0), observations_images=[image])
    assert action.to_messages()[1].images == (image,)
    memory = Memory(steps=[step, action])
    memory.reset()
    assert memory.steps == []


@tool
def shout(text: str) -> str:
    """Upper-case a text.

    Args:
        text: The text.
    """
    return text.upper()


def test_tool_calling_steps_keep_smolagents_names() -> None:
    model = ScriptedModel([[call("shout", text="hi")], [call("final_answer", answer="HI")]])
    agent = ToolCallingAgent(tools=[shout], model=model)
    agent.run("Shout hi")
    step = agent.memory.action_steps()[0]
    assert [c.name for c in step.tool_calls] == ["shout"]
    assert step.model_output_message.tool_calls == step.tool_calls
    assert step.code_action is None
