"""`codeloop eval`: the real command, in a subprocess run from tests/ (so `eval_agents:<name>`
and `data/evals/...` are found as a user's would be in their own directory)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers import completion_reply
from terminal import CliResult, run_cli
from wire import ReplayServer

TESTS = Path(__file__).parent
DATASET = "data/evals/arithmetic.jsonl"


def codeloop(*args: str) -> CliResult:
    return run_cli(["eval", *args], cwd=TESTS, timeout=120)


def table_rows(out: str) -> dict[str, list[str]]:
    """The summary table's rows by label ("all", "#tag"): the cells after the label."""
    rows = {}
    for line in out.splitlines():
        cells = line.split()
        if cells and (cells[0] == "all" or cells[0].startswith("#")):
            rows[cells[0]] = cells[1:]
    return rows


def results(path: Path) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    by_id = {line["id"]: line for line in lines}
    assert len(by_id) == len(lines), "a task written twice"
    return by_id


def test_eval_scores_a_dataset_prints_the_summary_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    options = ["--agent", "eval_agents:make_calculator", "--scorer", "numeric", "--output", str(out)]
    first = codeloop(DATASET, *options)
    assert first.code == 0, first.err
    rows = table_rows(first.out)
    assert rows["all"][:4] == ["5", "3", "60.0%", "1.2"]  # tasks, passed, rate, mean steps
    assert rows["#arithmetic"][:3] == ["3", "3", "100.0%"] and rows["#trick"][:3] == ["2", "0", "0.0%"]
    assert "5/5 · 3 passed" in first.err and f"results in {out}" in first.err  # the progress bar
    written = results(out)
    assert {i: (r["passed"], r["state"]) for i, r in written.items()} == {
        "mul": (True, "success"),
        "pow": (True, "success"),
        "div": (True, "success"),
        "trick": (False, "success"),
        "6": (False, "max_steps_exceeded"),
    }

    again = codeloop(DATASET, *options, "--quiet")
    assert again.code == 0, again.err
    assert table_rows(again.out)["all"][:2] == ["5", "3"] and "5 from earlier runs" in again.out
    assert "5/5" not in again.err  # --quiet: no progress bar
    assert results(out) == written  # nothing ran again, nothing written twice


def test_eval_with_a_shared_agent_other_scorers_and_no_resume(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    shared = ["--agent", "eval_agents:calculator", "--output", str(out), "-q"]
    exact = codeloop(DATASET, *shared)  # "1,024" is not 1024, exactly
    assert exact.code == 0, exact.err
    assert table_rows(exact.out)["all"][:2] == ["5", "2"]
    tolerant = codeloop(DATASET, *shared, "--no-resume", "--scorer", "numeric", "--tolerance", "30%")
    assert tolerant.code == 0, tolerant.err
    assert table_rows(tolerant.out)["all"][:2] == ["5", "4"] and "earlier runs" not in tolerant.out  # 4 ≈ 5
    assert results(out)["trick"]["passed"] is True
    parity = codeloop(DATASET, *shared, "--no-resume", "--scorer", "eval_agents:same_parity", "-c", "1")
    assert parity.code == 0, parity.err
    assert table_rows(parity.out)["all"][:2] == ["5", "3"]
    assert len(results(out)) == 5


def test_eval_with_a_model_as_judge(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    verdicts = [
        "Same number.\nVERDICT: CORRECT",
        "VERDICT: INCORRECT",
        "Yes.",
        "It differs.\nVERDICT: INCORRECT",
    ]
    with ReplayServer([completion_reply(v) for v in verdicts]) as server:
        done = codeloop(
            DATASET, "--agent", "eval_agents:make_calculator", "--output", str(out), "-c", "1",
            "--scorer", "judge", "--judge-model", "m", "--judge-api-base", server.url("/v1"),
        )  # fmt: skip
        prompts = [body["messages"][-1]["content"] for body in server.bodies]
    assert done.code == 0, done.err
    written = results(out)
    assert {i: r["passed"] for i, r in written.items()} == {
        "mul": True, "pow": False, "div": True, "trick": False, "6": False,
    }  # fmt: skip
    assert written["mul"]["reason"] == "Same number." and written["trick"]["reason"] == "It differs."
    assert len(prompts) == 4  # the run with no answer is not judged
    assert "What is 2 ** 10?" in prompts[1] and "\n1,024\n" in prompts[1] and "\n1024\n" in prompts[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data/evals/bad_line.jsonl"], "bad_line.jsonl: line 3: 'expect': unknown field"),
        (["data/evals/none.jsonl"], "codeloop: no task file data/evals/none.jsonl"),
        (
            [DATASET, "--agent", "eval_agents:broken"],
            "eval_agents:broken() returned 42 (of type int), not an agent",
        ),
        ([DATASET, "--agent", "eval_agents:nowhere"], "module eval_agents has no attribute 'nowhere'"),
        ([DATASET, "--agent", "no_such_agents:agent"], "no module named 'no_such_agents'"),
        ([DATASET, "--scorer", "fuzzy"], "unknown scorer 'fuzzy'"),
        ([DATASET, "--scorer", "judge"], "--scorer judge needs --judge-model MODEL"),
        ([DATASET, "--tolerance", "lots"], "'lots' is not a tolerance like 0.01 (absolute) or 1% (relative)"),
        ([DATASET, "--concurrency", "0"], "'0' is not a whole number of at least 1"),
    ],
)
def test_usage_errors_exit_2_and_say_what_is_wrong(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "results.jsonl"
    agent = [] if "--agent" in args else ["--agent", "eval_agents:make_calculator"]
    failed = codeloop(*args, *agent, "--output", str(out))
    assert failed.code == 2, failed.err
    assert message in failed.err and failed.out == ""
    assert "Traceback" not in failed.err
    assert not out.exists()  # nothing ran


def test_an_eval_that_cannot_write_its_results_exits_1(tmp_path: Path) -> None:
    failed = codeloop(DATASET, "--agent", "eval_agents:make_calculator", "--output", str(tmp_path))
    assert failed.code == 1, failed.err
    assert failed.err.startswith("codeloop: the eval could not run: IsADirectoryError") and failed.out == ""


def test_the_results_file_defaults_to_the_task_files_name_in_the_current_directory(tmp_path: Path) -> None:
    dataset = str(TESTS / DATASET)
    done = run_cli(
        ["eval", dataset, "--agent", "eval_agents:make_calculator", "-q"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(TESTS)},  # eval_agents, from another directory
        timeout=120,
    )
    assert done.code == 0, done.err
    assert "results in arithmetic.results.jsonl" in done.err
    assert sorted(results(tmp_path / "arithmetic.results.jsonl")) == ["6", "div", "mul", "pow", "trick"]
