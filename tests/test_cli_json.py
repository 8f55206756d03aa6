"""`codeloop run --json`: the run's events as JSON Lines on stdout, for other programs.

The command runs in-process (`codeloop.cli.main`) or as a real subprocess piped into a reader,
against a scripted OpenAI-compatible server (`wire.ReplayServer`), as tests/test_cli.py does."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from codeloop.cli import main

from helpers import USAGE_CHUNK, chunk
from terminal import cli_command, run_cli
from wire import ReplayServer, Reply


def streamed(text: str) -> Reply:
    """A streamed chat completion whose text arrives in pieces of 7 characters."""
    pieces = [chunk(text[i : i + 7]) for i in range(0, len(text), 7)]
    return Reply.sse([*pieces, chunk(finish="stop"), USAGE_CHUNK], path="/v1/chat/completions")


def served(server: ReplayServer) -> list[str]:
    return ["--model", "m", "--api-base", server.url("/v1")]


FIBONACCI = [
    streamed(
        "Thought: compute.\n```python\na, b = 0, 1\nfor _ in range(20):\n    a, b = b, a + b\nprint(a)\n```"
    ),
    streamed("```python\nfinal_answer(a)\n```"),
]
TASK = "What is the 20th Fibonacci number?"


def run_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]], str]:
    """`codeloop run ARGS --json` in this process: its exit status, stdout's lines as JSON, stderr."""
    code = main(["run", *args, "--json"])
    out, err = capsys.readouterr()
    assert out == "" or out.endswith("\n")
    return code, [json.loads(line) for line in out.splitlines()], err


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def test_a_run_writes_one_json_event_per_line_and_nothing_else(capsys: pytest.CaptureFixture[str]) -> None:
    with ReplayServer(FIBONACCI) as server:
        code, events, err = run_json([TASK, *served(server), "--no-store"], capsys)

    assert (code, err) == (0, "")  # no live view, no progress: stderr is empty
    assert types(events)[0] == "RunStarted" and events[0]["task"] == TASK
    assert types(events)[-2:] == ["FinalAnswer", "RunFinished"]
    finished = events[-1]["result"]
    assert (finished["state"], finished["output"], finished["error"], finished["steps"]) == (
        "success",
        6765,
        None,
        2,
    )
    assert finished["usage"]["input_tokens"] > 0
    assert types(events).count("ModelCallStarted") == types(events).count("ModelCallFinished") == 2
    assert types(events).count("CodeAction") == types(events).count("CodeActionFinished") == 2
    assert "ModelDelta" not in types(events)  # the text pieces only with --stream-text
    (observation,) = [e for e in events if e["type"] == "Observation"]
    assert "6765" in observation["text"] and observation["step"] == 1
    assert all(e["agent"] == "CodeAgent" and e["depth"] == 0 for e in events)
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)


def test_stream_text_adds_the_models_text_pieces(capsys: pytest.CaptureFixture[str]) -> None:
    text = "```python\nfinal_answer(2 ** 10)\n```"
    with ReplayServer([streamed(text)]) as server:
        code, events, err = run_json(["2**10?", *served(server), "--no-store", "--stream-text"], capsys)

    assert (code, err, events[-1]["result"]["output"]) == (0, "", 1024)
    pieces = [e["delta"]["content"] for e in events if e["type"] == "ModelDelta"]
    assert len(pieces) > 1 and "".join(pieces).startswith(text.rstrip("`\n"))
    assert types(events).index("ModelCallStarted") < types(events).index("ModelDelta")


def test_a_failed_run_still_ends_with_its_run_finished_line(capsys: pytest.CaptureFixture[str]) -> None:
    with ReplayServer([streamed("```python\nprint(1)\n```")]) as server:
        code, events, err = run_json(["loop", *served(server), "--max-steps", "1"], capsys)

    assert code == 1
    assert types(events)[0] == "RunStarted" and types(events)[-1] == "RunFinished"
    assert "FinalAnswer" not in types(events)
    finished = events[-1]["result"]
    assert (finished["state"], finished["output"]) == ("max_steps_exceeded", None)
    assert "Reached max_steps=1" in finished["error"]
    # the failure is said once, on stderr, as without --json (the run is kept, and named)
    assert re.fullmatch(
        r"codeloop: no answer: Reached max_steps=1 without a final answer\. "
        rf"\(run {finished['run_id']}, kept: see codeloop runs\)\n",
        err,
    )


def test_a_model_error_is_a_failed_run_line_and_one_message(capsys: pytest.CaptureFixture[str]) -> None:
    refusal = Reply.json(
        {"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}}, 401
    )
    with ReplayServer([refusal]) as server:
        code, events, err = run_json(["hello", *served(server), "--no-store"], capsys)

    assert code == 1
    assert types(events) == ["RunStarted", "ModelCallStarted", "RunFinished"]
    assert events[-1]["result"]["state"] == "error"
    assert "Incorrect API key provided." in events[-1]["result"]["error"]
    assert err.startswith("codeloop: no answer: Model 'm': ") and err.count("\n") == 1


def test_a_usage_error_writes_no_json(capsys: pytest.CaptureFixture[str]) -> None:
    with ReplayServer([]) as server:
        code, events, err = run_json(["  ", *served(server)], capsys)
        assert server.requests == []
    assert (code, events) == (2, [])
    assert err.startswith("codeloop: the task is empty")


def test_another_program_reads_the_events_from_a_pipe() -> None:
    """`codeloop run --json ... | python -c '...json.loads...'`: the reader gets every line whole."""
    reader = (
        "import json, sys\n"
        "events = [json.loads(line) for line in sys.stdin]\n"
        "print(len(events), events[0]['type'], events[-1]['type'], events[-1]['result']['output'])\n"
    )
    with ReplayServer(FIBONACCI) as server:
        command = [*cli_command(), "run", TASK, *served(server), "--json", "--no-store"]
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as writer:
            assert writer.stdout is not None
            read = subprocess.run(
                [sys.executable, "-c", reader],
                stdin=writer.stdout,
                capture_output=True,
                text=True,
                check=False,
            )
            writer.stdout.close()
            _, err = writer.communicate(timeout=120)
    assert (writer.returncode, err, read.returncode, read.stderr) == (0, b"", 0, "")
    count, first, last, output = read.stdout.split()
    assert (first, last, output) == ("RunStarted", "RunFinished", "6765") and int(count) > 10


def test_a_reader_that_goes_away_stops_the_run() -> None:
    """Nobody reads the events any more (`| head -n 1` gone): the run is cancelled, and kept as such."""
    with ReplayServer(FIBONACCI) as server:
        command = [*cli_command(), "run", TASK, *served(server), "--json"]
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as writer:
            assert writer.stdout is not None
            writer.stdout.close()  # before the first line: every write fails
            _, err = writer.communicate(timeout=120)
        asked = len(server.requests)
    said = err.decode()
    assert writer.returncode == 1, said
    match = re.fullmatch(
        r"codeloop: no answer: Cancelled: the reader of the JSON output went away\. "
        r"\(run ([0-9a-f]{32}), kept: see codeloop runs\)\n",
        said,
    )
    assert match, said
    assert asked <= 1  # stopped in its first step: the second reply was never asked for
    kept = [json.loads(line) for line in run_cli(["runs", "--json"]).out.splitlines()]
    assert [r["state"] for r in kept if r["run_id"] == match.group(1)] == ["cancelled"]
