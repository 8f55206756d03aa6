"""The code-writing task set: well formed, every reference solution passes its own hidden tests,
and the checker fails what it should (stubs, naive solutions, non-text answers, endless loops)."""

from __future__ import annotations

import ast

import pytest

from benchmarks.code_tasks.check import extract_source, load_tasks, run_hidden_tests
from benchmarks.code_tasks.problems import PROBLEMS, Problem

IDS = [p.id for p in PROBLEMS]


def test_the_set_is_large_enough_and_unique() -> None:
    assert len(PROBLEMS) >= 20
    assert len(set(IDS)) == len(IDS)
    assert len({p.entry for p in PROBLEMS}) == len(PROBLEMS)


@pytest.mark.parametrize("problem", PROBLEMS, ids=IDS)
def test_the_prompt_is_a_signature_and_a_docstring(problem: Problem) -> None:
    (function,) = ast.parse(problem.prompt + "    ...\n").body
    assert isinstance(function, ast.FunctionDef) and function.name == problem.entry
    docstring = ast.get_docstring(function)
    assert docstring and ">>>" in docstring
    assert len(function.body) == 2, "the prompt gives no body"
    assert len(problem.tests) >= 6


@pytest.mark.parametrize("problem", PROBLEMS, ids=IDS)
def test_the_reference_passes_its_hidden_tests(problem: Problem) -> None:
    outcome = run_hidden_tests(problem.id, problem.reference)
    assert outcome.solved, outcome.detail


@pytest.mark.parametrize("problem", PROBLEMS, ids=IDS)
def test_a_stub_fails(problem: Problem) -> None:
    stub = problem.prompt + "    raise NotImplementedError\n"
    outcome = run_hidden_tests(problem.id, stub)
    assert not outcome.solved
    assert outcome.passed < outcome.total


@pytest.mark.parametrize(
    ("problem_id", "naive"),
    [
        ("evaluate", "def evaluate(expression):\n    return eval(expression)\n"),
        ("parse-csv-line", "import csv\ndef parse_csv_line(line):\n"
                           "    return next(csv.reader([line]), [])\n"),
        ("luhn", "def luhn_valid(number):\n    d = number.replace(' ', '')\n"
                 "    return d.isdigit() and len(d) > 1 and sum(int(c) for c in d) % 10 == 0\n"),
        ("valid-ipv4", "def valid_ipv4(a):\n    p = a.split('.')\n"
                       "    return len(p) == 4 and all(x.isdigit() and int(x) < 256 for x in p)\n"),
    ],
)  # fmt: skip
def test_a_naive_solution_fails(problem_id: str, naive: str) -> None:
    assert not run_hidden_tests(problem_id, naive).solved


def test_a_slow_solution_times_out() -> None:
    brute = "def next_palindrome(n):\n    n += 1\n    while str(n) != str(n)[::-1]:\n        n += 1\n"
    brute += "    return n\n"
    outcome = run_hidden_tests("next-palindrome", brute, timeout=2)
    assert not outcome.solved
    assert "did not finish" in outcome.detail


def test_the_source_comes_out_of_a_reply() -> None:
    reply = "Here:\n```python\nimport re\n```\nand\n```python\ndef f(x):\n    return x\n```\nDone."
    assert extract_source(reply, "f") == "def f(x):\n    return x\n"
    assert extract_source("def f(x):\n    return x", "f") == "def f(x):\n    return x"
    assert extract_source("```\nimport re\n```", "f") == "import re\n"
    assert extract_source(None, "f") is None


def test_an_answer_that_is_not_text_fails_with_the_reason() -> None:
    outcome = run_hidden_tests("luhn", {"not": "source"})
    assert not outcome.solved and "not source text" in outcome.detail


def test_the_tasks_carry_the_prompt() -> None:
    tasks = load_tasks()
    assert [t["id"] for t in tasks] == IDS
    for task, problem in zip(tasks, PROBLEMS, strict=True):
        assert problem.prompt.strip() in task["task"] and problem.prompt.strip() in task["prompt"]
        assert "final answer" in task["task"] and "code block" in task["prompt"]
    assert [t["id"] for t in load_tasks(2, only="r")] == ["roman-to-int", "rle-encode"]
