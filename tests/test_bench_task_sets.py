"""The harness of the real-model task sets, without a model: the recording proxy against a
scripted upstream, the rows computed from stored sides (partial runs merged), transcripts."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from benchmarks.__main__ import _merged_task_sets
from benchmarks.model_proxy import OVER_BUDGET, Exchange, ModelProxy
from benchmarks.report import render_markdown
from benchmarks.task_sets import _continued, per_task_markdown, rows_for
from benchmarks.transcripts import render_transcript, write_transcripts

TIMINGS = {"cache_n": 30, "prompt_n": 12, "prompt_ms": 400.0, "predicted_n": 5, "predicted_ms": 250.0}


class _Upstream(BaseHTTPRequestHandler):
    """Answers like llama.cpp's server: a JSON completion, or an event stream, with timings."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.headers["Authorization"] == "Bearer key"
        if request.get("stream"):
            chunks: list[dict[str, Any]] = [{"choices": [{"delta": {"content": p}}]} for p in ("Hel", "lo")]
            chunks.append({"choices": [{"delta": {}, "finish_reason": "stop"}], "timings": TIMINGS})
            body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            kind = "text/event-stream"
        else:
            body = json.dumps({"choices": [{"message": {"content": "Hello"}}], "timings": TIMINGS})
            kind = "application/json"
        payload = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()
    server.server_close()


def _post(base: str, body: dict[str, Any]) -> bytes:
    request = urllib.request.Request(f"{base}/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Authorization": "Bearer key"})  # fmt: skip
    with urllib.request.urlopen(request) as response:
        return bytes(response.read())


def test_the_proxy_files_each_request_under_its_run(upstream: str) -> None:
    messages = [{"role": "user", "content": "hi"}]
    with ModelProxy(upstream) as proxy:
        plain = _post(proxy.base_url("smolagents/task-1"), {"messages": messages})
        streamed = _post(proxy.base_url("codeloop-monty/task-1"), {"messages": messages, "stream": True})
        _post(proxy.base_url("codeloop-monty/task-1"), {"messages": messages})
        theirs, ours = proxy.take("smolagents/task-1"), proxy.take("codeloop-monty/task-1")
    assert json.loads(plain)["choices"][0]["message"]["content"] == "Hello"
    assert b"data: [DONE]" in streamed, "a stream is passed on as it came"
    assert [len(theirs), len(ours)] == [1, 2]
    for exchange in (*theirs, *ours):
        assert exchange.reply == "Hello" and exchange.messages == messages
        assert (exchange.input_tokens, exchange.cached_tokens, exchange.output_tokens) == (42, 30, 5)
        assert (exchange.prompt_s, exchange.decode_s) == (0.4, 0.25)
    assert proxy.take("smolagents/task-1") == []


def test_a_task_past_its_time_budget_gets_a_refusal_no_client_retries(upstream: str) -> None:
    messages = [{"role": "user", "content": "hi"}]
    with ModelProxy(upstream, task_budget_s=0.2) as proxy:
        _post(proxy.base_url("smolagents/slow"), {"messages": messages})
        time.sleep(0.3)
        with pytest.raises(urllib.error.HTTPError) as refused:
            _post(proxy.base_url("smolagents/slow"), {"messages": messages})
        _post(proxy.base_url("smolagents/other"), {"messages": messages})  # another task's own budget
        slow, other = proxy.take("smolagents/slow"), proxy.take("smolagents/other")
    assert refused.value.code == 400 and OVER_BUDGET in refused.value.read().decode()
    assert slow[0].error == "" and OVER_BUDGET in slow[1].error
    assert [e.reply for e in other] == ["Hello"]


def _side(solved: list[bool], tokens: int, measured: str = "2026-12-03T10:00:00") -> dict[str, Any]:
    rows = [
        {"id": f"t{i}", "answer": i, "state": "success", "steps": 2, "requests": 2, "input_tokens": tokens,
         "cached_tokens": 0, "output_tokens": 50, "wall_s": 10.0, "prompt_s": 4.0, "decode_s": 3.0,
         "solved": ok, "detail": ""}
        for i, ok in enumerate(solved)
    ]  # fmt: skip
    return {"measured": measured, "code": "abc1234", "settings": {"max_steps": 6, "max_tokens": 512},
            "wall_s": 100.0, "rows": rows}  # fmt: skip


def _row(rows: list[Any], metric: str) -> Any:
    (row,) = [r for r in rows if r.metric == metric]
    return row


def test_tool_rows_compare_codeloop_with_smolagents_on_the_tasks_both_ran() -> None:
    sides = {
        "codeloop-monty": _side([True, True, True, False], 500),
        "smolagents": _side([True, True, False], 5000),
    }
    rows = rows_for("tool_tasks", sides)
    solved = _row(rows, "tasks solved (CodeAgent, executor monty)")
    assert (solved.codeloop, solved.smolagents, solved.met) == (3, 2, True)
    assert "3 tool-heavy tasks both ran" in solved.note
    tokens = _row(rows, "mean input tokens per task (CodeAgent, executor monty)")
    assert (tokens.ratio, tokens.met) == (0.1, True)
    assert _row(rows, "share solved (CodeAgent, executor monty)").met is True


def test_context_rows_compare_the_policy_with_full_history_on_the_tasks_both_ran() -> None:
    sides = {
        "codeloop-monty": _side([True, True, False, True], 400),
        "codeloop-monty-full-history": _side([True, True, True], 800),
    }
    rows = rows_for("tool_tasks", sides)
    solved = _row(rows, "tasks solved, context policy vs full history (executor monty)")
    assert (solved.codeloop, solved.target, solved.met) == (2, "≥ full history (3)", False)
    assert "3 tool-heavy tasks both ran" in solved.note
    tokens = _row(rows, "mean input tokens per task, context policy (executor monty)")
    assert tokens.codeloop == 400 and "full history: 800 (policy / full = 0.5x)" in tokens.note
    full = _row(rows, "tasks solved (CodeAgent, executor monty, full history)")  # its own rows too
    assert full.codeloop == 3


def test_a_side_not_run_yet_leaves_its_column_empty() -> None:
    rows = rows_for("tool_tasks", {"smolagents": _side([True, False], 5000)})
    solved = _row(rows, "tasks solved (CodeAgent)")
    assert (solved.codeloop, solved.smolagents, solved.ratio, solved.met) == (None, 1, None, None)


def test_code_rows_hold_the_model_alone_as_the_bar() -> None:
    sides = {
        "alone": _side([True, False, False], 300),
        "codeloop-jail": _side([True, True, False], 900),
        "smolagents": _side([False, False, True], 9000),
    }
    rows = rows_for("code_tasks", sides)
    solved = _row(rows, "tasks solved (CodeAgent, executor jail)")
    assert (solved.codeloop, solved.smolagents, solved.met) == (2, 1, True)
    assert solved.target == "> model alone (1)"
    alone = _row(rows, "tasks solved (the model alone)")
    assert (alone.codeloop, alone.smolagents) == (1, 1)


def test_a_partial_run_merges_with_the_days_earlier_sides() -> None:
    earlier = {"tool_tasks": {"smolagents": _side([True, False], 5000, "2026-12-03T08:00:00")}}
    fresh_sides = {"codeloop-monty": _side([True, True], 400)}
    fresh = {"rows": [r.to_dict() for r in rows_for("tool_tasks", fresh_sides)],
             "task_sets": {"tool_tasks": fresh_sides}}  # fmt: skip
    merged = _merged_task_sets(fresh, earlier)
    assert set(merged["task_sets"]["tool_tasks"]) == {"codeloop-monty", "smolagents"}
    (solved,) = [r for r in merged["rows"] if r["metric"] == "tasks solved (CodeAgent, executor monty)"]
    assert (solved["codeloop"], solved["smolagents"], solved["ratio"]) == (2, 1, 2.0)
    assert "smolagents measured 2026-12-03T08:00:00" in solved["note"]


def test_the_results_file_lists_every_task_of_every_side() -> None:
    sides = {"codeloop-monty": _side([True, False], 500), "smolagents": _side([False, False], 5000)}
    report = {
        "machine": {"date": "2026-12-03", "cpus": 2, "python": "3.11", "platform": "Linux"},
        "smolagents": "1.26.0",
        "rows": [r.to_dict() for r in rows_for("tool_tasks", sides)],
        "task_sets": {"tool_tasks": sides},
    }
    text = render_markdown(report)
    assert "## Tool-heavy tasks, task by task" in text
    assert "| t1 | " in text and "wrong: 1 (success, 2, 2)" in text
    assert per_task_markdown("tool_tasks", sides)[4].startswith("| task | expected |")


def _exchange(messages: list[dict[str, Any]], reply: str) -> Exchange:
    return Exchange(messages=messages, reply=reply, input_tokens=100, output_tokens=10)


def test_a_transcript_shows_each_request_once(tmp_path: Path) -> None:
    system = {"role": "system", "content": "You are an agent. " * 20}
    task = {"role": "user", "content": [{"type": "text", "text": "Task: find it"}]}
    first = _exchange([system, task], "```python\nget_order('1')\n```")
    step = [{"role": "assistant", "content": "```python\nget_order('1')\n```"},
            {"role": "user", "content": "Error: try 'ORD-1'"}]  # fmt: skip
    second = _exchange([system, task, *step], "final_answer('x')")
    row = {"answer": "x", "state": "success", "steps": 2, "wall_s": 3.0, "input_tokens": 200}
    prompts: list[str] = []
    text = render_transcript({"id": "retry-1", "answer": "y"}, row, [first, second], prompts)
    assert text.count("Task: find it") == 1 and text.count("Error: try 'ORD-1'") == 1
    assert "system prompt 1 in `_system_prompts.md`" in text and "You are an agent" not in text
    assert "- expected: `y`" in text and "final_answer('x')" in text
    assert prompts == [system["content"]]
    write_transcripts(tmp_path / "side", {"retry-1": ({"id": "retry-1"}, row, [first])})
    assert sorted(p.name for p in (tmp_path / "side").iterdir()) == ["_system_prompts.md", "retry-1.md"]
    write_transcripts(tmp_path / "side", {"retry-2": ({"id": "retry-2"}, row, [first])}, part=2)
    names = sorted(p.name for p in (tmp_path / "side").iterdir())
    assert names == ["_system_prompts-2.md", "_system_prompts.md", "retry-1.md", "retry-2.md"]
    assert "system prompt 1 in `_system_prompts-2.md`" in (tmp_path / "side" / "retry-2.md").read_text()
    write_transcripts(tmp_path / "side", {})
    assert not (tmp_path / "side").exists(), "a re-run replaces the side's transcripts"


def test_a_continued_side_keeps_its_earlier_tasks_and_says_when_each_part_ran() -> None:
    earlier = {"measured": "T1", "code": "aaa", "wall_s": 600.0, "rows": [{"id": "t1"}], "stopped": "stopped"}
    fresh = {"measured": "T2", "code": "bbb", "wall_s": 120.0, "rows": [{"id": "t2"}], "settings": {}}
    side = _continued(earlier, fresh)
    assert [r["id"] for r in side["rows"]] == ["t1", "t2"] and side["wall_s"] == 720.0
    assert [(p["code"], p["tasks"]) for p in side["parts"]] == [("aaa", 1), ("bbb", 1)]
    third = _continued(side, {**fresh, "code": "ccc", "rows": [{"id": "t3"}]})
    assert [p["code"] for p in third["parts"]] == ["aaa", "bbb", "ccc"] and len(third["rows"]) == 3
    assert _continued(None, fresh) is fresh


_SLOW_SIDE = """
import json, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open("child.pid", "w").write(str(child.pid))
for i in range(1000):
    time.sleep(0.05)
    print(json.dumps({"progress": f"t{i}", "row": {"id": f"t{i}"}}), file=sys.stderr, flush=True)
print(json.dumps({"rows": "never"}))
"""


def test_a_side_over_its_budget_is_stopped_with_the_tasks_it_finished(tmp_path: Path) -> None:
    import sys

    from benchmarks.common import run_side

    script = tmp_path / "slow_side.py"
    script.write_text(_SLOW_SIDE)
    out = run_side(sys.executable, str(script), "agent_tasks", {}, tmp_path, budget_s=0.5)
    assert out["stopped_after_s"] == 0.5
    assert 0 < len(out["rows"]) < 1000
    assert out["rows"][0] == {"id": "t0"}
    assert _gone(int((tmp_path / "child.pid").read_text())), "the side's own children are stopped too"


def _gone(pid: int) -> bool:
    import os
    import time

    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False
