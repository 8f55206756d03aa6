"""`codeloop.GradioUI`, smolagents' one-line chat page: served for real on 127.0.0.1 and talked
to with `gradio_client`, as a browser's page does, with agents on scripted models."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client, handle_file

from codeloop import ChatMessage, CodeAgent, GradioUI, Role, ScriptedModel, Usage

FORTY_TWO = [
    "Thought: multiply.\n```python\nprint(6 * 7)\n```",
    "Thought: done.\n```python\nfinal_answer(42)\n```",
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from the test


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(ui: GradioUI) -> Iterator[Client]:
    """`ui` launched on a free local port, and a client of it; stopped afterwards."""
    _, url, _ = ui.launch(
        server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        yield Client(url, verbose=False)
    finally:
        ui.close()


@pytest.fixture
def forty_two() -> Iterator[tuple[Client, CodeAgent]]:
    agent = CodeAgent([], ScriptedModel(FORTY_TWO, model_id="gpt-4o-mini"))
    for client in serve(GradioUI(agent)):
        yield client, agent


def titled(messages: list[dict[str, Any]], title: str) -> list[dict[str, Any]]:
    return [m for m in messages if (m.get("metadata") or {}).get("title") == title]


def by_id(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["id"]: m for m in messages if (m.get("metadata") or {}).get("id")}


def test_a_message_runs_the_agent_and_the_chat_streams_its_steps(forty_two: tuple[Client, CodeAgent]) -> None:
    client, agent = forty_two
    job = client.submit("What is 6 times 7?", api_name="/chat")
    reply = job.result(timeout=60)
    streamed = job.outputs()

    assert agent.model.requests[0][-1].content.endswith("What is 6 times 7?")  # the agent got the message
    step_1, step_2 = titled(reply, "Step 1"), titled(reply, "Step 2")
    assert step_1[0]["content"] == "Thought: multiply." and step_2[0]["content"] == "Thought: done."
    codes = titled(reply, "🛠️ Code")
    assert [c["content"] for c in codes] == [
        "```python\nprint(6 * 7)\n```",
        "```python\nfinal_answer(42)\n```",
    ]
    (observation,) = titled(reply, "📝 Observation")
    assert observation["content"] == "```\n42\n```"
    # each step's code and observation sit in its box, whose spinner stops when the step is done
    assert [c["metadata"]["parent_id"] for c in codes] == [
        step_1[0]["metadata"]["id"],
        step_2[0]["metadata"]["id"],
    ]
    assert observation["metadata"]["parent_id"] == step_1[0]["metadata"]["id"]
    assert [m["metadata"].get("status") for m in step_1 + step_2] == [None, None]
    assert any(
        box["metadata"].get("status") == "pending" for shown in streamed for box in titled(shown, "Step 1")
    )
    answer, summary = reply[-2:]
    assert answer["content"] == "**Final answer:** 42"
    assert summary["content"].startswith("*success · 2 steps · ") and summary["content"].endswith("s*")
    assert "<$0.0001" in summary["content"]  # gpt-4o-mini has a price: the run's cost is told
    # it streamed: the page showed the first step before the answer existed
    assert len(streamed) > 3
    assert any(titled(shown, "🛠️ Code") and "Final answer" not in str(shown) for shown in streamed)


def test_the_conversation_goes_on_unless_memory_is_reset() -> None:
    for reset in (False, True):
        replies = ["```python\nfinal_answer('Ada')\n```", "```python\nfinal_answer('still Ada')\n```"]
        model = ScriptedModel(replies)
        ui = GradioUI(CodeAgent([], model), reset_agent_memory=reset)
        for client in serve(ui):
            client.predict("My name is Ada. What is it?", api_name="/chat")
            second = client.predict("And now?", api_name="/chat")
        assert second[-2]["content"] == "**Final answer:** still Ada"
        seen = "\n".join(m.content for m in model.requests[1])
        assert ("My name is Ada" in seen) is not reset, seen


def test_a_run_without_an_answer_says_why() -> None:
    agent = CodeAgent([], ScriptedModel(["```python\nprint('thinking')\n```"]), max_steps=1)
    for client in serve(GradioUI(agent)):
        reply = client.predict("Loop", api_name="/chat")
    assert titled(reply, "📝 Observation")[0]["content"] == "```\nthinking\n```"
    failure, summary = reply[-2:]
    assert failure["content"].startswith("**No answer** (max_steps_exceeded): Reached max_steps=1")
    assert summary["content"].startswith("*max_steps_exceeded · 1 steps · ")
    assert "Final answer" not in str(reply)


def test_an_error_in_a_step_is_shown_and_the_agent_recovers() -> None:
    replies = ["```python\nprint(1 / 0)\n```", "```python\nfinal_answer('fixed')\n```"]
    for client in serve(GradioUI(CodeAgent([], ScriptedModel(replies)))):
        reply = client.predict("Divide", api_name="/chat")
    (error,) = titled(reply, "💥 Error")
    assert "ZeroDivisionError" in error["content"]
    assert error["metadata"]["parent_id"] == titled(reply, "Step 1")[0]["metadata"]["id"]
    assert reply[-2]["content"] == "**Final answer:** fixed"


def test_a_sub_agents_run_is_a_box_inside_the_step_that_called_it() -> None:
    sub_reply = ChatMessage(
        role=Role.ASSISTANT, content="```python\nfinal_answer('Paris')\n```", usage=Usage(10, 5)
    )
    sub = CodeAgent([], ScriptedModel([sub_reply]), name="researcher", description="Finds facts.")
    manager_reply = (
        "```python\ncity = researcher(task='What is the capital of France?')\nfinal_answer(city)\n```"
    )
    manager = CodeAgent([], ScriptedModel([manager_reply]), managed_agents=[sub], name="boss")
    for client in serve(GradioUI(manager)):
        reply = client.predict("Capital of France?", api_name="/chat")

    ids = by_id(reply)
    (box,) = titled(reply, "🤖 researcher")
    assert box["content"] == "What is the capital of France?"
    assert ids[box["metadata"]["parent_id"]]["metadata"]["title"] == "Step 1"  # the manager's step
    assert "status" not in box["metadata"] and box["metadata"]["log"].startswith("success · 1 steps · 10 in")
    sub_code = [c for c in titled(reply, "🛠️ Code") if "final_answer('Paris')" in c["content"]]
    sub_step = ids[sub_code[0]["metadata"]["parent_id"]]
    assert sub_step["metadata"]["parent_id"] == box["metadata"]["id"]  # its steps inside its box
    (sub_answer,) = titled(reply, "✅ Answer")
    assert (
        sub_answer["content"] == "```\nParis\n```"
        and sub_answer["metadata"]["parent_id"] == box["metadata"]["id"]
    )
    assert reply[-2]["content"] == "**Final answer:** Paris"


def test_a_sub_agent_called_twice_has_a_box_for_each_run() -> None:
    answers = ["```python\nfinal_answer('Paris')\n```", "```python\nfinal_answer('Rome')\n```"]
    sub = CodeAgent([], ScriptedModel(answers), name="researcher", description="Finds facts.")
    manager_reply = (
        "```python\na = researcher(task='What is the capital of France?')\n"
        "b = researcher(task='What is the capital of Italy?')\nfinal_answer(a + ' and ' + b)\n```"
    )
    manager = CodeAgent([], ScriptedModel([manager_reply]), managed_agents=[sub], name="boss")
    reply = list(GradioUI(manager).interact_with_agent("Two capitals?", []))[-1]

    ids = by_id(reply)
    boxes = titled(reply, "🤖 researcher")
    assert [b["content"] for b in boxes] == [
        "What is the capital of France?",
        "What is the capital of Italy?",
    ]
    sub_steps = [m for m in titled(reply, "Step 1") if m["metadata"].get("parent_id")]
    assert [ids[s["metadata"]["parent_id"]]["content"] for s in sub_steps] == [b["content"] for b in boxes]
    assert reply[-2]["content"] == "**Final answer:** Paris and Rome"


def test_an_uploaded_file_is_kept_in_the_folder_and_named_to_the_agent(tmp_path: Path) -> None:
    upload = tmp_path / "my notes (v2).txt"
    upload.write_text("The secret is 7.")
    folder = tmp_path / "uploads"
    model = ScriptedModel(["```python\nfinal_answer(7)\n```"])
    for client in serve(GradioUI(CodeAgent([], model), file_upload_folder=folder)):
        reply = client.predict(
            {"text": "What is the secret?", "files": [handle_file(str(upload))]}, api_name="/chat"
        )

    kept = folder / "my_notes__v2_.txt"
    assert kept.read_text() == "The secret is 7."
    task = model.requests[0][-1].content
    assert "What is the secret?" in task and f"these files, which might be helpful or not: ['{kept}']" in task
    assert reply[-2]["content"] == "**Final answer:** 7"


def test_without_gradio_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)  # what `import gradio` meets when it is not installed
    with pytest.raises(ImportError, match=r'GradioUI needs Gradio: pip install "codeloop\[gradio\]"'):
        GradioUI(CodeAgent([], ScriptedModel([])))


def test_importing_codeloop_does_not_import_gradio() -> None:
    probe = "import sys, codeloop\ncodeloop.GradioUI\nprint('gradio' in sys.modules)\n"
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert shown.stdout == "False\n"


def test_the_models_text_shows_in_its_step_as_it_comes() -> None:
    """Called as Gradio calls it: each snapshot is what the page shows at that moment."""
    agent = CodeAgent([], ScriptedModel(FORTY_TWO, chunk_size=5))
    snapshots = list(GradioUI(agent).interact_with_agent("What is 6 times 7?", []))
    shown = [step[0]["content"] for s in snapshots if (step := titled(s, "Step 1"))]
    assert shown[0] == "```\nThoug\n```"  # the first piece of the reply, as plain text
    assert shown[1] == "```\nThought: m\n```"
    assert "````\nThought: multiply.\n```pyt\n````" in shown  # text holding a fence: a longer one
    assert shown[-1] == "Thought: multiply."  # the whole reply came: its thought stays
