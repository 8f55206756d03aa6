"""The `codeloop` command as a person uses it: the real command in a subprocess (on a
pseudo-terminal for Ctrl-C), against a scripted OpenAI-compatible server or the real SmolLM2
model through llama.cpp. Every test asserts the exact words the person reads."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codeloop import CodeAgent, ConsoleRenderer, ScriptedModel
from codeloop.models.gguf import SplitModel, assemble, smollm2_path

from helpers import USAGE_CHUNK, call_chunk, chunk
from terminal import Terminal, alive, run_cli
from wire import ReplayServer, Reply

# -- scripted model replies ----------------------------------------------------------------------


NO_ANSWER = (
    r"codeloop: no answer: Reached max_steps=1 without a final answer\. "
    r"\(run [0-9a-f]{32}, kept: see codeloop runs\)"
)


def streamed(text: str) -> Reply:
    """A streamed chat completion whose text arrives in pieces of 7 characters."""
    pieces = [chunk(text[i : i + 7]) for i in range(0, len(text), 7)]
    return Reply.sse([*pieces, chunk(finish="stop"), USAGE_CHUNK], path="/v1/chat/completions")


def tool_call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> Reply:
    events = [call_chunk(call_id, name, json.dumps(arguments)), chunk(finish="tool_calls"), USAGE_CHUNK]
    return Reply.sse(events, path="/v1/chat/completions")


def served(server: ReplayServer) -> list[str]:
    return ["--model", "m", "--api-base", server.url("/v1")]


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


HOSTED_HELP = (
    "  Local models: local (the default: Qwen2.5-Coder-1.5B), qwen (the same), smollm2 (SmolLM2-135M, "
    "tiny: for trying things out).\n"
    "  A hosted model needs --api-key KEY (or the OPENAI_API_KEY variable) for OpenAI's API, or "
    "--api-base URL for another OpenAI-compatible server (with --api-key if it asks for one).\n"
)

# -- a run, and its failures: each printed once, on stderr ---------------------------------------


def test_a_run_prints_the_view_on_stderr_and_the_answer_on_stdout() -> None:
    replies = [
        streamed(
            "Thought: compute.\n```python\na, b = 0, 1\nfor _ in range(20):\n"
            "    a, b = b, a + b\nprint(a)\n```"
        ),
        streamed("```python\nfinal_answer(a)\n```"),
    ]
    with ReplayServer(replies) as server:
        result = run_cli(["run", "What is the 20th Fibonacci number?", *served(server)])
        sent = server.bodies
    assert (result.code, result.out) == (0, "6765\n")
    assert "observation: 6765" in lines(result.err)
    assert "final answer: 6765" in lines(result.err)
    assert sent[0]["model"] == "m" and sent[0]["stream"] is True
    assert "6765" in sent[1]["messages"][-1]["content"]  # the observation went back to the model


def test_a_run_without_an_answer_is_reported_once() -> None:
    with ReplayServer([streamed("```python\nprint(1)\n```")]) as server:
        result = run_cli(["run", "loop", *served(server), "--max-steps", "1"])
    assert (result.code, result.out) == (1, "")
    summary, message = lines(result.err)[-2:]
    assert re.fullmatch(r"max_steps_exceeded · 1 steps · 3 in / 30 out tokens · \d+\.\ds", summary)
    assert re.fullmatch(NO_ANSWER, message)
    assert result.err.count("Reached max_steps") == 1


def test_runs_are_kept_in_the_users_store_unless_told_otherwise(tmp_path: Path) -> None:
    def one_run(*options: str) -> None:
        with ReplayServer([streamed("```python\nfinal_answer(7)\n```")]) as server:
            assert run_cli(["run", "Seven?", *served(server), "-q", *options]).out == "7\n"

    default_store = Path(os.environ["XDG_DATA_HOME"]) / "codeloop" / "runs.db"
    before = len(run_cli(["runs", "--json"]).out.splitlines())
    one_run()
    assert default_store.exists() and len(run_cli(["runs", "--json"]).out.splitlines()) == before + 1
    one_run("--store", str(tmp_path / "mine.db"))
    (mine,) = [
        json.loads(line)
        for line in run_cli(["runs", "--store", str(tmp_path / "mine.db"), "--json"]).out.splitlines()
    ]
    assert (mine["task"], mine["state"]) == ("Seven?", "success")
    one_run("--no-store")
    assert len(run_cli(["runs", "--json"]).out.splitlines()) == before + 1


def test_a_model_error_is_reported_once() -> None:
    refusal = Reply.json(
        {"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}}, 401
    )
    with ReplayServer([refusal]) as server:
        result = run_cli(["run", "hello", *served(server)])
    assert (result.code, result.out) == (1, "")
    message = result.err.splitlines()[-1]
    assert message.startswith("codeloop: no answer: Model 'm': ") and "Incorrect API key provided." in message
    assert result.err.count("Incorrect API key provided.") == 1


def test_quiet_prints_only_the_answer() -> None:
    with ReplayServer([streamed("```python\nfinal_answer(2 ** 10)\n```")]) as server:
        result = run_cli(["run", "What is 2**10?", *served(server), "-q"])
    assert (result.code, result.out, result.err) == (0, "1024\n", "")


def test_tool_calling_run_that_succeeds_shows_no_error() -> None:
    # What Qwen2.5-Coder-1.5B answered through llama.cpp: the prompt's tool list copied out, then
    # the call. The copied definition used to be taken for a second, broken final_answer call.
    echoed = (
        ' <tools>\n{"type": "function", "function": {"name": "final_answer", "description": "Give the '
        'final answer to the task.", "parameters": {"additionalProperties": false, "properties": '
        '{"answer": {"description": "The final answer to the task."}}, "required": ["answer"], '
        '"type": "object"}}}\n</tools>\n{"name": "final_answer", "arguments": {"answer": "6765"}}'
    )
    with ReplayServer([streamed(echoed)]) as server:
        result = run_cli(
            ["run", "What is the 20th Fibonacci number?", *served(server), "--agent", "tool-calling"]
        )
    assert (result.code, result.out) == (0, "6765\n")
    view = lines(result.err)
    assert [line for line in view if line.startswith("→")] == ["→ final_answer ({'answer': '6765'})"]
    assert not [line for line in view if "rror" in line]
    assert view[-1].startswith("success · 1 steps")


def test_a_failed_tool_call_is_shown_once_as_an_error() -> None:
    replies = [tool_call("search", {"query": "fib"}), tool_call("final_answer", {"answer": 6765}, "call_2")]
    with ReplayServer(replies) as server:
        result = run_cli(["run", "Fibonacci 20?", *served(server), "--agent", "tool-calling"])
    assert (result.code, result.out) == (0, "6765\n")
    mentions = [line for line in lines(result.err) if "Unknown tool" in line]
    assert mentions == ["error: Unknown tool 'search'; use one of: final_answer."]


# -- usage errors: exit code 2, one message, nothing run -------------------------------------------


@pytest.mark.parametrize("task", ["", "   \n"])
def test_an_empty_task_is_refused(task: str) -> None:
    with ReplayServer([]) as server:
        result = run_cli(["run", task, *served(server)])
        assert server.requests == []
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        'codeloop: the task is empty: say what the agent should do, e.g. codeloop run "What is 2**10?"\n'
    )


def test_an_unknown_model_name_says_which_names_exist_and_what_a_hosted_one_needs() -> None:
    result = run_cli(["run", "hello", "--model", "nonexistent"])
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        "codeloop: 'nonexistent' is not a local model, and no API is set up for a hosted one.\n" + HOSTED_HELP
    )


def test_a_misspelt_local_model_name_gets_a_suggestion() -> None:
    result = run_cli(["run", "hello", "--model", "smollm"])
    assert result.code == 2
    assert result.err == (
        "codeloop: 'smollm' is not a local model (did you mean smollm2?), and no API is set up for a "
        "hosted one.\n" + HOSTED_HELP
    )


def test_a_remote_api_without_a_key_says_how_to_give_one() -> None:
    result = run_cli(["run", "hello", "--model", "gpt-4o-mini", "--api-base", "https://api.example.com/v1"])
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        "codeloop: the API at https://api.example.com/v1 needs a key: give --api-key KEY or set "
        "OPENAI_API_KEY (only a server on this machine works without one).\n"
    )


def test_a_hosted_model_with_a_key_is_asked() -> None:
    with ReplayServer([streamed("```python\nfinal_answer('hi')\n```")]) as server:
        result = run_cli(["run", "Say hi", "--model", "gpt-4o-mini", "-q"], env=_key_for(server))
        assert server.requests[0].headers["authorization"] == "Bearer sk-test"
    assert (result.code, result.out, result.err) == (0, "hi\n", "")


def _key_for(server: ReplayServer) -> dict[str, str]:
    return {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": server.url("/v1")}


def test_a_bad_option_is_a_usage_error() -> None:
    result = run_cli(
        ["run", "x", "--model", "m", "--api-base", "http://127.0.0.1:9/v1", "--executor", "nope"]
    )
    assert (result.code, result.out) == (2, "")
    assert (
        result.err
        == "codeloop: Unknown executor 'nope'. Available: docker, e2b, jail, local, modal, monty.\n"
    )


def test_a_missing_task_shows_the_usage_and_one_message() -> None:
    result = run_cli(["run"])
    assert result.code == 2
    assert result.err.startswith("usage: codeloop run [-h]")
    assert result.err.endswith("\ncodeloop: the following arguments are required: task\n")


# -- Ctrl-C: one line, exit 130, no process left -----------------------------------------------------


def wait_until(condition: Callable[[], Any], timeout: float = 30) -> Any:
    """Poll `condition` until it is truthy (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)
    return value


def assert_interrupted(terminal: Terminal, children: list[int]) -> None:
    """Ctrl-C now: exit 130 with one `codeloop: interrupted` line, no traceback, no child left."""
    terminal.interrupt()
    code = terminal.wait(timeout=30)
    shown = terminal.output
    assert code == 130, shown
    assert lines(shown)[-1] == "codeloop: interrupted"
    assert shown.count("interrupted") == 1
    assert "Traceback" not in shown and "Error" not in shown
    assert [pid for pid in children if alive(pid)] == []


@pytest.mark.parametrize("executor", ["monty", "local", "jail"])
def test_ctrl_c_during_a_run_stops_it_and_its_sandbox(executor: str) -> None:
    with ReplayServer([Reply(delay=30, path="/v1/chat/completions")]) as server:  # a slow model
        with Terminal(["run", "What is 2**10?", *served(server), "--executor", executor]) as terminal:
            terminal.expect("CodeAgent: What is 2**10?")
            wait_until(lambda: server.requests)  # the run waits for the model
            workers = terminal.descendants()
            assert workers, "the sandbox's worker processes should be running"
            assert_interrupted(terminal, workers)


def _llama_server(terminal: Terminal) -> int | None:
    for pid in terminal.descendants():
        try:
            if b"_child_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            pass
    return None


@pytest.mark.slow
def test_ctrl_c_while_the_local_model_loads_stops_its_server() -> None:
    with Terminal(["run", "What is 2**10?", "--model", "smollm2"]) as terminal:
        terminal.expect("Loading model smollm2-135m-instruct…")
        server = wait_until(lambda: _llama_server(terminal))
        os.kill(server, signal.SIGSTOP)  # hold it mid-load: a large model takes seconds, deaf to all
        assert "ready in" not in terminal.output
        assert_interrupted(terminal, [server])


@pytest.mark.slow
def test_ctrl_c_while_the_local_model_writes_stops_its_server() -> None:
    with Terminal(["run", "What is 2**10?", "--model", "smollm2", "--stream-text"]) as terminal:
        terminal.expect("── CodeAgent · step 1 ──")  # the first words have arrived
        shown = terminal.output
        assert re.search(r"^Loading model smollm2-135m-instruct… ready in \d+\.\d s$", shown, re.MULTILINE)
        children = terminal.descendants()
        assert _llama_server(terminal) in children
        assert_interrupted(terminal, children)


# -- the local model: joined once, then loaded, both shown ----------------------------------------


@pytest.fixture(scope="module")
def split_smollm2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SplitModel, Path]]:
    """SmolLM2 cut into three parts, each installed as a distribution in a directory for
    PYTHONPATH: the packaging of the Qwen model (22 wheels) at a tenth of its size."""
    data = smollm2_path().read_bytes()
    site = tmp_path_factory.mktemp("site")
    parts = []
    for number, piece in enumerate((data[:30_000_000], data[30_000_000:60_000_000], data[60_000_000:]), 1):
        package, part = f"codeloop_test_part{number}", f"part{number:02d}.bin"
        (site / package).mkdir()
        (site / package / part).write_bytes(piece)
        info = site / f"{package}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
        (info / "RECORD").write_text(f"{package}/{part},,\n")
        parts.append((package, part))
    model = SplitModel(
        filename="split-smollm2.gguf",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        parts=tuple(parts),
        install_hint="pip install codeloop-test-part{1..3}",
    )
    yield model, site


def _as_qwen(model: SplitModel) -> list[str]:
    """The `codeloop` command with `model` standing in for the packaged Qwen model."""
    spec = json.dumps({**model.__dict__, "parts": [list(p) for p in model.parts]})
    shim = (
        "import json, sys\nfrom codeloop.models import gguf\nfrom codeloop.cli import main\n"
        f"gguf.QWEN_CODER = gguf.SplitModel(**json.loads({spec!r}))\nraise SystemExit(main())\n"
    )
    return [sys.executable, "-c", shim]


@pytest.mark.slow
def test_the_local_model_is_joined_once_and_loaded_with_progress(
    split_smollm2: tuple[SplitModel, Path], tmp_path: Path
) -> None:
    model, site = split_smollm2
    env = {"CODELOOP_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(site)}
    args = ["run", "What is 2+2?", "--max-steps", "1"]  # a task it stops at quickly

    first = run_cli(args, env=env, command=_as_qwen(model))
    second = run_cli(args, env=env, command=_as_qwen(model))

    assert (tmp_path / "models" / "split-smollm2.gguf").stat().st_size == model.size
    timed = r"\d+\.\d s"
    join, load = "Joining the model files (0.1 GB, once)…", "Loading model qwen2.5-coder-1.5b-instruct…"
    for expected in (f"{join}\n", rf"{join} done in {timed}\n", f"{load}\n", rf"{load} ready in {timed}\n"):
        assert re.search("^" + expected.replace("(", r"\(").replace(")", r"\)"), first.err, re.MULTILINE)
    assert join not in second.err  # joined once, then cached
    assert re.search(rf"^{load} ready in {timed}$", second.err, re.MULTILINE)
    for result in (first, second):  # the tiny model cannot do the task in one step
        assert (result.code, result.out) == (1, "")
        assert re.fullmatch(NO_ANSWER, lines(result.err)[-1])


@pytest.mark.slow
def test_quiet_shows_no_progress(split_smollm2: tuple[SplitModel, Path], tmp_path: Path) -> None:
    model, site = split_smollm2
    env = {"CODELOOP_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(site)}
    result = run_cli(["run", "What is 2+2?", "--max-steps", "1", "-q"], env=env, command=_as_qwen(model))
    assert (result.code, result.out) == (1, "")
    assert re.fullmatch(NO_ANSWER + "\n", result.err)  # the answer's one line, nothing else


def test_the_parts_of_a_local_model_missing_is_a_usage_error(split_smollm2: tuple[SplitModel, Path]) -> None:
    model, _ = split_smollm2  # its distributions are not on the path here
    result = run_cli(["run", "What is 2**10?"], command=_as_qwen(model))
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        "codeloop: split-smollm2.gguf is not cached and 3 of its 3 parts are not installed "
        "(codeloop_test_part1, codeloop_test_part2, codeloop_test_part3). "
        "Install them with: pip install codeloop-test-part{1..3}\n"
    )


def test_an_interrupted_join_leaves_no_partial_file(
    split_smollm2: tuple[SplitModel, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, site = split_smollm2
    monkeypatch.syspath_prepend(str(site))
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done > 10_000_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        assemble(model, tmp_path, progress=progress)
    assert seen[0] == (0, model.size)
    assert list(tmp_path.iterdir()) == []
    assert assemble(model, tmp_path) == tmp_path / model.filename  # a later start joins it whole


# -- the renderer on its own ---------------------------------------------------------------------------


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
