"""Saving and loading agents: `to_dict` / `from_dict`, `save(folder)` / `from_folder`. Loaded
agents run the same scripted tasks as the originals and give the same answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codeloop import CodeAgent, MultiStepAgent, OpenAIModel, ScriptedModel, Tool, ToolCallingAgent, tool
from codeloop.agents.persist import FORMAT_VERSION, AgentLoadError, UntrustedCodeError
from codeloop.errors import ConfigurationError

call = ScriptedModel.call


@tool
def convert(amount: float, rate: float = 1.1) -> float:
    """Convert an amount of euros to dollars.

    Args:
        amount: The amount in euros.
        rate: Dollars for one euro.
    """
    import math

    return math.floor(amount * rate * 100) / 100


class Shout(Tool):
    name = "shout"
    description = "Return the text in capitals, with an exclamation mark."
    inputs = {"text": {"type": "string", "description": "The text."}}  # noqa: RUF012
    output_type = "string"

    def forward(self, text: str) -> str:
        return text.upper() + "!"


def fenced(code: str) -> str:
    return f"Thought: next step.\n```python\n{code}\n```"


MANAGER_REPLIES = [
    "1. Convert, 2. ask the helper.\n<end_plan>",
    fenced("n = convert(10)\ns = shout(helper(task='spell the word hello please'))\nprint(n, s)"),
    fenced("final_answer(f'{s} {n}')"),
]
HELPER_REPLIES = [[call("final_answer", answer="hello")]]
TEMPLATES = {"managed_agent": {"task": "Task for {{name}}: {{task}}", "report": "{{final_answer}}"}}


def _team(manager_replies: list[Any], helper_replies: list[Any]) -> CodeAgent:
    helper = ToolCallingAgent(
        [shout_tool()],
        ScriptedModel(helper_replies),
        name="helper",
        description="Spells words.",
        prompt_templates=TEMPLATES,
    )
    return CodeAgent(
        [convert, shout_tool()],
        ScriptedModel(manager_replies),
        managed_agents=[helper],
        name="manager",
        instructions="Answer in one line.",
        output_type=str,
        max_steps=5,
        planning_interval=3,
        additional_authorized_imports=["math"],
        max_repeats=2,
    )


def shout_tool() -> Shout:
    return Shout()


def _models() -> dict[str, ScriptedModel]:
    return {"manager": ScriptedModel(MANAGER_REPLIES), "helper": ScriptedModel(HELPER_REPLIES)}


def _without_models(data: dict[str, Any]) -> dict[str, Any]:
    """`data` without its models' settings, which differ between two ScriptedModels."""
    subs = [_without_models(sub) for sub in data["managed_agents"]]
    return {**data, "model": data["model"]["class"], "managed_agents": subs}


def test_a_code_agent_round_trips_through_a_dict_and_gives_the_same_answer() -> None:
    original = _team(MANAGER_REPLIES, HELPER_REPLIES)
    expected = original.run("Convert 10 euros and shout hello.")
    data = json.loads(json.dumps(original.to_dict()))  # JSON through and through
    loaded = CodeAgent.from_dict(data, model=_models(), trust_remote_code=True)
    assert loaded.run("Convert 10 euros and shout hello.") == expected == "HELLO! 11.0"
    assert loaded.system_prompt == original.system_prompt
    assert _without_models(loaded.to_dict()) == _without_models(original.to_dict())
    helper = loaded.managed_agents["helper"]
    assert isinstance(helper, ToolCallingAgent)
    assert helper.prompt_templates["managed_agent"]["task"] == TEMPLATES["managed_agent"]["task"]
    assert (loaded.instructions, loaded.max_steps, loaded.planning_interval) == ("Answer in one line.", 5, 3)
    assert (loaded.additional_authorized_imports, loaded.max_repeats) == (["math"], 2)
    assert loaded.output_spec is not None and loaded.output_spec.json_schema == {"type": "string"}


def test_a_tool_calling_agent_round_trips_through_a_folder(tmp_path: Path) -> None:
    replies = [[call("convert", amount=20)], [call("final_answer", answer={"dollars": 22.0})]]
    schema = {"type": "object", "properties": {"dollars": {"type": "number"}}, "required": ["dollars"]}
    original = ToolCallingAgent([convert], ScriptedModel(replies), output_type=schema, name="cashier")
    expected = original.run("Convert 20 euros")
    original.save(tmp_path / "cashier")
    loaded = MultiStepAgent.from_folder(
        tmp_path / "cashier", model=ScriptedModel(replies), trust_remote_code=True
    )
    assert isinstance(loaded, ToolCallingAgent)
    assert loaded.run("Convert 20 euros") == expected == {"dollars": 22.0}
    assert loaded.system_prompt == original.system_prompt


def test_the_folder_layout_is_the_documented_one(tmp_path: Path) -> None:
    _team(MANAGER_REPLIES, HELPER_REPLIES).save(tmp_path)
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert files == [
        "agent.json",
        "managed_agents/helper/agent.json",
        "managed_agents/helper/requirements.txt",
        "managed_agents/helper/tools/shout.py",
        "requirements.txt",
        "tools/convert.py",
        "tools/shout.py",
    ]
    assert (tmp_path / "tools" / "convert.py").read_text() == convert.to_dict()["code"]
    assert "class Shout(Tool):" in (tmp_path / "tools" / "shout.py").read_text()
    saved = json.loads((tmp_path / "agent.json").read_text())
    assert saved["managed_agents"] == {"helper": "ToolCallingAgent"}
    assert {t["name"]: t["code_file"] for t in saved["tools"]} == {
        "convert": "tools/convert.py",
        "shout": "tools/shout.py",
    }
    assert all("code" not in t for t in saved["tools"])
    assert (tmp_path / "requirements.txt").read_text() == "codeloop\n"  # math is standard library


def test_agent_json_uses_smolagents_keys(tmp_path: Path) -> None:
    _team(MANAGER_REPLIES, HELPER_REPLIES).save(tmp_path)
    saved = json.loads((tmp_path / "agent.json").read_text())
    smolagents_keys = {
        "class", "tools", "model", "managed_agents", "prompt_templates", "max_steps", "verbosity_level",
        "planning_interval", "name", "description", "requirements", "authorized_imports", "executor_type",
    }  # fmt: skip
    assert smolagents_keys <= set(saved)
    assert saved["class"] == "CodeAgent" and saved["format_version"] == FORMAT_VERSION
    assert saved["model"] == {"class": "ScriptedModel", "data": saved["model"]["data"]}
    assert saved["authorized_imports"] == ["math"] and saved["executor_type"] == "monty"
    assert "final_answer" not in [t["name"] for t in saved["tools"]]
    assert set(saved["prompt_templates"]) >= {"system_prompt", "planning", "managed_agent", "final_answer"}


def test_requirements_list_the_third_party_modules_the_tools_import() -> None:
    @tool
    def table(n: int) -> str:
        """A table of n rows.

        Args:
            n: The number of rows.
        """
        import json

        import numpy as np
        from pandas import DataFrame

        return json.dumps(DataFrame(np.arange(n)).to_dict())

    data = ToolCallingAgent([table], ScriptedModel([])).to_dict()
    assert data["requirements"] == ["codeloop", "numpy", "pandas"]


def test_an_api_key_given_to_the_model_is_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-0123456789abcdef"
    model = OpenAIModel(
        "gpt-4o-mini",
        api_key=secret,
        api_base="https://api.example.com/v1",
        temperature=0.2,
        client_kwargs={"default_headers": {"Authorization": f"Bearer {secret}"}},
    )
    agent = CodeAgent([convert], model)
    agent.save(tmp_path)
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert secret not in written and secret not in json.dumps(agent.to_dict())
    assert agent.to_dict()["model"] == {
        "class": "OpenAIModel",
        "data": {"model_id": "gpt-4o-mini", "api_base": "https://api.example.com/v1", "temperature": 0.2},
    }
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    loaded = CodeAgent.from_folder(tmp_path, trust_remote_code=True)
    rebuilt = loaded.model.model  # inside the retry layer
    assert isinstance(rebuilt, OpenAIModel)
    assert (rebuilt.model_id, rebuilt.api_base) == ("gpt-4o-mini", "https://api.example.com/v1")
    assert rebuilt.completion_kwargs == {"temperature": 0.2}


def test_a_model_that_cannot_be_rebuilt_asks_for_model() -> None:
    data = CodeAgent([], ScriptedModel([])).to_dict()
    with pytest.raises(ConfigurationError, match=r"ScriptedModel.*model="):
        CodeAgent.from_dict(data)


def test_tools_with_code_need_trust_remote_code(tmp_path: Path) -> None:
    _team(MANAGER_REPLIES, HELPER_REPLIES).save(tmp_path)
    with pytest.raises(UntrustedCodeError) as caught:
        CodeAgent.from_folder(tmp_path, model=_models())
    message = str(caught.value)
    assert "permissions" in message and "trust_remote_code=True" in message
    assert str(tmp_path / "tools" / "convert.py") in message
    assert str(tmp_path / "managed_agents" / "helper" / "tools" / "shout.py") in message


def test_own_tools_given_by_name_replace_the_saved_code(tmp_path: Path) -> None:
    replies = [[call("convert", amount=20)], [call("final_answer", answer="done")]]
    ToolCallingAgent([convert], ScriptedModel(replies)).save(tmp_path)

    @tool
    def convert_mine(amount: float) -> float:
        """Convert euros at a fixed rate.

        Args:
            amount: The amount in euros.
        """
        return amount * 2

    mine = Tool.from_dict(convert.to_dict(), function=lambda amount, rate=1.1: amount * 2)
    loaded = ToolCallingAgent.from_folder(tmp_path, model=ScriptedModel(replies), tools=[mine, convert_mine])
    assert set(loaded.tools) == {"convert", "convert_mine"}
    result = loaded.run("Convert 20", return_full_result=True)
    assert result.memory.action_steps()[0].tool_results[0].content == "40"


def test_a_schema_tool_is_saved_as_its_schema_and_refuses_to_run_when_loaded() -> None:
    remote = Tool.from_schema(
        "weather.now", "The weather now.", {"properties": {"city": {"type": "string"}}}, lambda city: "sun"
    )
    replies = [[call("weather.now", city="Paris")], [call("final_answer", answer="unknown")]]
    data = ToolCallingAgent([remote], ScriptedModel([])).to_dict()
    assert "code" not in data["tools"][0]
    with pytest.warns(UserWarning, match="saved without code"):
        loaded = ToolCallingAgent.from_dict(data, model=ScriptedModel(replies))  # no code: no trust needed
    assert loaded.tools["weather_now"].json_schema() == remote.json_schema()
    result = loaded.run("Weather in Paris?", return_full_result=True)
    outcome = result.memory.action_steps()[0].tool_results[0]
    assert outcome.is_error and "loaded without its implementation" in outcome.content


def test_a_dict_of_another_agent_class_is_refused() -> None:
    data = ToolCallingAgent([], ScriptedModel([])).to_dict()
    with pytest.raises(AgentLoadError, match=r"ToolCallingAgent.*MultiStepAgent\.from_dict"):
        CodeAgent.from_dict(data, model=ScriptedModel([]))
    assert isinstance(MultiStepAgent.from_dict(data, model=ScriptedModel([])), ToolCallingAgent)


def test_missing_folder_bad_json_and_newer_format_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(AgentLoadError, match="does not exist"):
        CodeAgent.from_folder(tmp_path / "nowhere")
    with pytest.raises(AgentLoadError, match=r"no agent\.json"):
        CodeAgent.from_folder(tmp_path)
    (tmp_path / "agent.json").write_text('{"class": "CodeAgent",')
    with pytest.raises(AgentLoadError, match=r"not valid JSON \(line 1"):
        CodeAgent.from_folder(tmp_path)
    data = CodeAgent([], ScriptedModel([])).to_dict()
    (tmp_path / "agent.json").write_text(json.dumps({**data, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(AgentLoadError, match=r"newer codeloop.*Upgrade"):
        CodeAgent.from_folder(tmp_path, model=ScriptedModel([]))
    with pytest.raises(AgentLoadError, match="no integer 'format_version'"):
        CodeAgent.from_dict({"class": "CodeAgent"})


def test_a_code_file_outside_the_folder_is_refused(tmp_path: Path) -> None:
    ToolCallingAgent([convert], ScriptedModel([])).save(tmp_path / "agent")
    saved = json.loads((tmp_path / "agent" / "agent.json").read_text())
    saved["tools"][0]["code_file"] = "../elsewhere.py"
    (tmp_path / "agent" / "agent.json").write_text(json.dumps(saved))
    with pytest.raises(AgentLoadError, match="outside"):
        ToolCallingAgent.from_folder(tmp_path / "agent", model=ScriptedModel([]), trust_remote_code=True)


def test_overrides_reach_the_constructor() -> None:
    data = CodeAgent([convert], ScriptedModel([]), max_steps=7).to_dict()
    loaded = CodeAgent.from_dict(
        data, model=ScriptedModel([]), trust_remote_code=True, max_steps=2, name="other"
    )
    assert (loaded.max_steps, loaded.name) == (2, "other")


def test_executor_settings_are_saved_and_restored() -> None:
    original = CodeAgent(
        [],
        ScriptedModel([]),
        executor_type="local",
        executor_kwargs={"timeout_seconds": 3},
        max_print_outputs_length=500,
    )
    data = json.loads(json.dumps(original.to_dict()))
    assert data["executor_type"] == "monty"  # codeloop's executor for smolagents' "local"
    assert data["executor_limits"]["timeout_s"] == 3 and data["executor_limits"]["max_output_chars"] == 500
    loaded = CodeAgent.from_dict(data, model=ScriptedModel([fenced("print('x' * 2000)")]))
    assert loaded.executor_limits == original.executor_limits
    result = loaded.run("Print a lot", return_full_result=True)
    assert len(result.memory.action_steps()[0].observations) < 1000  # the saved output limit applies


@tool(requires_approval=True)
def pay(customer: str, amount: int) -> str:
    """Pay a customer.

    Args:
        customer: The customer's name.
        amount: The amount in euros.
    """
    return f"paid {customer} {amount} EUR"


def test_a_tool_that_requires_approval_still_requires_it_when_loaded(tmp_path: Path) -> None:
    from codeloop.result import RunState

    store = str(tmp_path / "runs.db")
    replies = [[call("pay", customer="Ada", amount=300)], [call("final_answer", answer="done")]]
    ToolCallingAgent([pay], ScriptedModel([]), store=store).save(tmp_path / "payer")
    saved = json.loads((tmp_path / "payer" / "agent.json").read_text())
    assert saved["tools"][0]["requires_approval"] is True
    with pytest.raises(ConfigurationError, match="pay require approval"):  # store is not saved
        ToolCallingAgent.from_folder(tmp_path / "payer", model=ScriptedModel(replies), trust_remote_code=True)
    loaded = ToolCallingAgent.from_folder(
        tmp_path / "payer", model=ScriptedModel(replies), trust_remote_code=True, store=store
    )
    assert loaded.tools["pay"].requires_approval
    paused = loaded.run("Pay Ada 300 euros.", return_full_result=True)
    assert paused.state is RunState.AWAITING_APPROVAL and paused.output is None


def test_a_tool_dict_keeps_requires_approval_and_only_when_set() -> None:
    assert Tool.from_dict(pay.to_dict(), trust_remote_code=True).requires_approval
    assert Tool.from_dict(pay.to_dict(), function=lambda customer, amount: "paid").requires_approval
    assert "requires_approval" not in convert.to_dict()
    assert not Tool.from_dict(convert.to_dict(), trust_remote_code=True).requires_approval


def test_a_tool_given_in_place_of_one_that_required_approval_is_named_in_a_warning() -> None:
    data = ToolCallingAgent([pay], ScriptedModel([]), store=":memory:").to_dict()
    mine = Tool.from_dict(pay.to_dict(), function=lambda customer, amount: "paid")
    mine.requires_approval = False
    with pytest.warns(UserWarning, match="'pay' was saved with requires_approval=True"):
        loaded = ToolCallingAgent.from_dict(data, model=ScriptedModel([]), tools=[mine])
    assert loaded.tools["pay"] is mine
