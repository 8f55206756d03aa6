"""The `codeloop` command, end to end through the OpenAI SDK against a local server."""

from __future__ import annotations

import io
from typing import Any

import pytest

from codeloop import CodeAgent, ConsoleRenderer, ScriptedModel
from codeloop.cli import main

from wire import ReplayServer, Reply, sse


def _chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
    }


def _streamed(text: str) -> Reply:
    usage = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60},
    }
    events = [_chunk(text[i : i + 7]) for i in range(0, len(text), 7)] + [_chunk("", "stop"), usage]
    return Reply(body=sse(events), content_type="text/event-stream", path="/v1/chat/completions")


def test_cli_runs_a_code_agent_against_an_openai_compatible_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    replies = [
        _streamed(
            "Thought: compute.\n```python\na, b = 0, 1\nfor _ in range(20):\n"
            "    a, b = b, a + b\nprint(a)\n```"
        ),
        _streamed("```python\nfinal_answer(a)\n```"),
    ]
    with ReplayServer(replies) as server:
        code = main(
            ["run", "What is the 20th Fibonacci number?", "--model", "m", "--api-base", server.url("/v1")]
        )
        sent = server.bodies
    out, err = capsys.readouterr()
    assert code == 0
    assert out.strip() == "6765"
    assert "observation: 6765" in err and "final answer: 6765" in err
    assert sent[0]["model"] == "m" and sent[0]["stream"] is True
    assert sent[0]["messages"][0]["role"] == "system" and "final_answer" in sent[0]["messages"][0]["content"]
    assert "6765" in sent[1]["messages"][-1]["content"]  # the observation went back to the model


def test_cli_reports_a_run_without_answer(capsys: pytest.CaptureFixture[str]) -> None:
    with ReplayServer([_streamed("```python\nprint(1)\n```")]) as server:
        code = main(
            ["run", "loop", "--model", "m", "--api-base", server.url("/v1"), "--max-steps", "1", "-q"]
        )
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert "max_steps=1" in err


def test_cli_configuration_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "x", "--model", "m", "--api-base", "http://127.0.0.1:9/v1", "--executor", "nope"])
    assert code == 2
    assert "Unknown executor 'nope'" in capsys.readouterr().err


def test_console_renderer_shows_code_observations_and_answer() -> None:
    buffer = io.StringIO()
    model = ScriptedModel(
        ["Thought: add.\n```python\nprint(40 + 2)\n```", "```python\nfinal_answer(42)\n```"]
    )
    CodeAgent([], model, event_handlers=[ConsoleRenderer(1, file=buffer)]).run("Add")
    text = buffer.getvalue()
    for expected in (
        "Thought: add.",
        "print(40 + 2)",
        "observation: 42",
        "final answer: 42",
        "success · 2 steps",
    ):
        assert expected in text
