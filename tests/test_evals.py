"""`codeloop.evals`: task files, each scorer, the runner (bounded concurrency, resume, crashes,
stores, backends) and the summary, with scripted agents that really run their tasks."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from eval_agents import answer_from_task, fenced, make_calculator, task_of

from codeloop import CodeAgent, ScriptedModel, ToolCallingAgent, tool
from codeloop.errors import ConfigurationError
from codeloop.evals import (
    CRASHED,
    Contains,
    EvalResult,
    EvalTask,
    ExactMatch,
    JudgeScorer,
    NumericMatch,
    ResultsFile,
    ResultsFileError,
    RunTask,
    ScorerSpecError,
    TaskFileError,
    aevaluate,
    as_scorer,
    evaluate,
    load_tasks,
    parse_tasks,
    parse_verdict,
    summary_table,
)
from codeloop.messages import ChatMessage
from codeloop.store import open_store

DATA = Path(__file__).parent / "data" / "evals"
TASK = EvalTask(id="t", task="What is the capital of France?")


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- task files --------------------------------------------------------------------------------


def test_a_task_file_gives_tasks_with_ids_defaulting_to_their_line_number() -> None:
    tasks = load_tasks(DATA / "arithmetic.jsonl")
    assert [t.id for t in tasks] == ["mul", "pow", "div", "trick", "6"]  # line 3 is blank
    assert tasks[1].expected == "1,024" and tasks[1].tags == ("arithmetic", "powers")
    assert tasks[4].task == "Keep thinking and never answer." and tasks[4].line == 6


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('{"task": "fine"}\n{"task": "cut', 2, "line 2: not valid JSON (Unterminated string"),
        ("[1, 2]", 1, "line 1: a task is a JSON object, got list"),
        ('{"id": "a", "expected": 1}', 1, "line 1: 'task': Field required"),
        ('{"task": "x", "expect": 3}', 1, "line 1: 'expect': unknown field (the fields are id, task,"),
        ('{"task": "x", "tags": "math"}', 1, "line 1: 'tags': Input should be a valid tuple"),
        ('{"task": "x", "additional_args": [1]}', 1, "line 1: 'additional_args': Input should be"),
        ('{"task": "   "}', 1, "line 1: 'task': must not be empty"),
        ('{"task": "x", "line": 3}', 1, "line 1: 'line': unknown field"),
        ('{"task": "x", "scorer": {"abs_tol": 1}}', 1, 'an object scorer needs a "name"'),
        (
            '{"id": 7, "task": "x"}\n\n{"id": "7", "task": "y"}',
            3,
            "line 3: id '7' was already used on line 1",
        ),
    ],
)
def test_a_bad_line_is_an_error_naming_the_line_and_what_is_wrong(text: str, line: int, message: str) -> None:
    with pytest.raises(TaskFileError) as caught:
        parse_tasks(text.splitlines())
    assert message in str(caught.value)
    assert caught.value.line == line


def test_a_missing_or_empty_task_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match=r"no task file .*nowhere\.jsonl"):
        load_tasks(tmp_path / "nowhere.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(TaskFileError, match=r"empty\.jsonl: there are no tasks in it"):
        load_tasks(tmp_path / "empty.jsonl")


# -- scorers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scorer", "output", "expected", "passed"),
    [
        (ExactMatch(), "  Paris\n", "paris", True),
        (ExactMatch(normalize=False), "  Paris\n", "paris", False),
        (ExactMatch(), "New   York", "new york", True),
        (ExactMatch(), "Paris.", "Paris", False),
        (ExactMatch(), 42, "42", True),
        (ExactMatch(), [1, 2], [1, 2], True),
        (ExactMatch(), [1, 2], [2, 1], False),
        (NumericMatch(), 10.8, 10.8, True),
        (NumericMatch(), "$1,234.50", 1234.5, True),
        (NumericMatch(), "The answer is 42.", "42", True),
        (NumericMatch(), "between 3 and 4", 3, False),
        (NumericMatch(), True, 1, False),
        (NumericMatch(), 10.84, 10.8, False),
        (NumericMatch(abs_tol=0.05), 10.84, 10.8, True),
        (NumericMatch(rel_tol=0.01), 101, 100, True),
        (NumericMatch(rel_tol=0.01), 102, 100, False),
        (Contains(), "The capital is PARIS.", "paris", True),
        (Contains(), "Paris and Lyon", ["paris", "lyon"], True),
        (Contains(), "Paris and Nice", ["paris", "lyon"], False),
        (Contains(normalize=False), "The capital is PARIS.", "Paris", False),
    ],
)
async def test_builtin_scorers(scorer: Any, output: Any, expected: Any, passed: bool) -> None:
    score = await scorer.score(output, expected, TASK)
    assert (score.passed, score.value) == (passed, 1.0 if passed else 0.0)
    assert (score.reason is None) == passed  # a failure says why


async def test_failing_scores_say_why() -> None:
    async def reason(scorer: Any, output: Any, expected: Any) -> str | None:
        return (await scorer.score(output, expected, TASK)).reason

    assert await reason(NumericMatch(), "between 3 and 4", 3) == "2 numbers (3, 4) in the output, not one"
    assert await reason(NumericMatch(), "no idea", 3) == "no number in no idea"
    assert await reason(NumericMatch(), 4, "four") == "the expected answer is not a number: no number in four"
    assert await reason(Contains(), "Paris and Nice", ["paris", "lyon"]) == "missing: 'lyon'"
    assert await reason(ExactMatch(), "Lyon", "Paris") == "expected Paris"


async def test_function_scorers_sync_async_and_by_name() -> None:
    def same_length(output: Any, expected: Any, task: EvalTask) -> bool:
        return len(str(output)) == len(str(expected))

    async def overlap(output: Any, expected: Any, task: EvalTask) -> float:
        mine, theirs = set(str(output).split()), set(str(expected).split())
        return len(mine & theirs) / len(theirs)

    assert (await as_scorer(same_length).score("Lyon", "Nice", TASK)).passed
    half = await as_scorer(overlap).score("red green", "red blue", TASK)
    assert (half.value, half.passed, half.reason) == (0.5, False, "score 0.5 < 1")  # only full credit passes
    lenient_scorer = as_scorer({"name": "test_evals:overlap_scorer", "threshold": 0.5})
    lenient = await lenient_scorer.score("a b", "a c", TASK)
    assert (lenient.value, lenient.passed) == (0.5, True)
    parity = as_scorer("eval_agents:same_parity")
    assert parity.name == "eval_agents:same_parity"
    assert (await parity.score(4, "1,024", TASK)).passed and not (await parity.score(3, 2, TASK)).passed


def overlap_scorer(output: Any, expected: Any, task: EvalTask) -> float:
    """A scorer named by module:function in a spec (above)."""
    mine, theirs = set(str(output).split()), set(str(expected).split())
    return len(mine & theirs) / len(theirs)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fuzzy", "unknown scorer 'fuzzy': use exact, numeric, contains, judge or module:function"),
        ({"name": "numeric", "tol": 1}, "scorer 'numeric': bad options ['tol']"),
        ({"name": "numeric", "abs_tol": -1}, "numeric tolerances must not be negative"),
        ("judge", "the judge scorer needs a judge model"),
        ("no_such_module_here:score", "cannot import no_such_module_here"),
        ("eval_agents:not_there", "eval_agents:not_there is not a function in eval_agents"),
    ],
)
def test_a_scorer_that_cannot_be_used_is_a_clear_error(spec: Any, message: str) -> None:
    with pytest.raises(ScorerSpecError) as caught:
        as_scorer(spec)
    assert message in str(caught.value)


def judge_reply(messages: Sequence[ChatMessage]) -> str:
    """A judge that reads its prompt: CORRECT when the agent's answer names the expected city."""
    prompt = messages[-1].content
    expected = re.search(r"Expected answer:\n(.*)\n", prompt)
    answer = re.search(r"The agent's answer:\n(.*)\n", prompt)
    assert expected and answer, prompt
    if expected.group(1).lower() in answer.group(1).lower():
        return "The answer names the expected city.\nVERDICT: CORRECT"
    return "<think>Maybe it is CORRECT?</think>\nIt names another city.\n**Verdict:** INCORRECT"


async def test_a_model_judges_the_output_against_the_task_and_expected_answer() -> None:
    model = ScriptedModel([judge_reply, judge_reply, "I cannot tell."])
    judge = as_scorer("judge", judge=model)
    assert isinstance(judge, JudgeScorer)
    right = await judge.score("It is Paris.", "Paris", TASK)
    wrong = await judge.score("Lyon", "Paris", TASK)
    unsure = await judge.score("Paris", "Paris", TASK)
    assert (right.passed, right.reason) == (True, "The answer names the expected city.")
    assert (wrong.passed, wrong.reason) == (False, "It names another city.")
    assert (unsure.passed, unsure.reason) == (False, "the judge gave no clear verdict: I cannot tell.")
    prompt = model.requests[0][-1].content
    assert "What is the capital of France?" in prompt and "It is Paris." in prompt and "\nParis\n" in prompt


@pytest.mark.parametrize(
    ("reply", "passed"),
    [
        ("VERDICT: CORRECT", True),
        ("The numbers differ.\n**Verdict:** incorrect", False),
        ("<think>It might be CORRECT</think>\nVERDICT: INCORRECT", False),
        ("VERDICT: CORRECT\nOn second thought...\nVERDICT: INCORRECT", False),
        ("Final verdict: NOT CORRECT", False),
        ('{"verdict": "correct", "reason": "same number"}', True),
        ('```json\n{"correct": false}\n```', False),
        ("Yes.", True),
        ("Correct. The city matches.", True),
        ("It matches.\nno", False),
        ("No idea what the answer is.", None),
        ("The answer seems fine but I am unsure.", None),
        ("<think>VERDICT: CORRECT, surely", None),  # thinking that never ended gives no verdict
        ("", None),
    ],
)
def test_parse_verdict_reads_what_judges_reply(reply: str, passed: bool | None) -> None:
    assert parse_verdict(reply).passed is passed


# -- the runner --------------------------------------------------------------------------------


def test_an_eval_runs_every_task_and_writes_one_result_line_each(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    dataset = DATA / "arithmetic.jsonl"
    report = evaluate(dataset, make_calculator, scorer="numeric", output=out, progress=False)
    by_id = {r.id: r for r in report.results}
    assert [r.id for r in report.results] == ["mul", "pow", "div", "trick", "6"]  # the dataset's order
    assert {i: (r.output, r.passed, r.state) for i, r in by_id.items()} == {
        "mul": (42, True, "success"),
        "pow": (1024, True, "success"),
        "div": (3.5, True, "success"),
        "trick": (4, False, "success"),
        "6": (None, False, "max_steps_exceeded"),
    }
    assert by_id["trick"].reason == "4 is not 5"
    assert by_id["6"].error == "Reached max_steps=2 without a final answer." and by_id["6"].steps == 2
    written = lines_of(out)
    assert sorted(line["id"] for line in written) == sorted(by_id)
    line = next(line for line in written if line["id"] == "pow")
    assert set(line) == {
        "id", "task", "expected", "output", "score", "passed", "state", "steps", "input_tokens",
        "output_tokens", "cost", "duration", "error", "reason", "tags", "run_id", "judge_input_tokens",
        "judge_output_tokens", "judge_cost",
    }  # fmt: skip
    assert (line["judge_input_tokens"], line["judge_cost"]) == (0, None)  # no judge here
    assert line["tags"] == ["arithmetic", "powers"] and line["expected"] == "1,024" and line["steps"] == 1
    assert line["input_tokens"] > 0 and line["output_tokens"] > 0 and line["cost"] == 0.0  # scripted: free
    assert len(line["run_id"]) == 32 and line["duration"] > 0
    assert len({r.run_id for r in report.results}) == 5


def test_the_summary_counts_over_all_tasks_and_per_tag() -> None:
    report = evaluate(DATA / "arithmetic.jsonl", make_calculator, scorer="numeric", progress=False)
    summary = report.summary
    assert (summary.total, summary.passed, summary.crashed, summary.missing) == (5, 3, 0, 0)
    assert summary.success_rate == 0.6 and summary.mean_steps == 1.2
    assert summary.input_tokens == sum(r.input_tokens for r in report.results)
    assert summary.total_tokens == summary.input_tokens + summary.output_tokens
    assert summary.cost == 0.0 and summary.cost_unknown == 0
    tags = {tag: (s.total, s.passed, s.success_rate, s.mean_steps) for tag, s in summary.by_tag.items()}
    assert tags == {"arithmetic": (3, 3, 1.0, 1.0), "powers": (1, 1, 1.0, 1.0), "trick": (2, 0, 0.0, 1.5)}
    table = summary_table(summary)
    assert [cell for cell in table.columns[0].cells] == ["all", "#arithmetic", "#powers", "#trick"]
    assert list(table.columns[3].cells) == ["60.0%", "100.0%", "100.0%", "0.0%"]


class InFlight:
    """Counts the runs inside the `check_in` tool at once. Each waits there until `bound` runs
    are in (so the bound is reached), then yields to every other ready task before it leaves:
    a runner that let more runs start would have them counted here."""

    def __init__(self, bound: int) -> None:
        self.bound, self.now, self.most = bound, 0, 0
        self.full = asyncio.Event()

    async def check_in(self) -> str:
        self.now += 1
        self.most = max(self.most, self.now)
        if self.now >= self.bound:
            self.full.set()
        await self.full.wait()
        for _ in range(50):
            await asyncio.sleep(0)
        self.now -= 1
        return "checked in"


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_no_more_runs_than_the_concurrency_are_in_flight(concurrency: int) -> None:
    desk = InFlight(bound=concurrency)

    async def check_in() -> str:
        """Check in at the desk."""
        return await desk.check_in()

    def make_agent() -> ToolCallingAgent:
        script = ScriptedModel(
            [[ScriptedModel.call("check_in")], [ScriptedModel.call("final_answer", answer="checked in")]]
        )
        return ToolCallingAgent([tool(check_in)], script, name="desk")

    tasks = [{"task": f"Guest {n}: check in.", "expected": "checked in"} for n in range(8)]
    report = await aevaluate(tasks, make_agent, concurrency=concurrency, progress=False)
    assert [r.passed for r in report.results] == [True] * 8
    assert desk.most == concurrency


def counting_calculator(ran: list[str]) -> Any:
    """A calculator factory that notes each task it is asked."""

    def reply(messages: Sequence[ChatMessage]) -> str:
        ran.append(task_of(messages).removeprefix("Task: "))
        return answer_from_task(messages)

    return lambda: CodeAgent([], ScriptedModel([reply]), max_steps=1, name="calculator")


def test_resume_skips_the_tasks_already_in_the_results_file(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    tasks = [{"id": f"t{n}", "task": f"What is {n} * 2?", "expected": n * 2} for n in range(1, 5)]
    ran: list[str] = []
    evaluate(tasks[:2], counting_calculator(ran), output=out, progress=False)
    assert sorted(ran) == ["What is 1 * 2?", "What is 2 * 2?"]
    with out.open("a") as file:
        file.write('{"id": "t3", "task": "What is 3')  # a crash cut this write short
    ran.clear()
    again = evaluate(tasks, counting_calculator(ran), output=out, progress=False)
    assert sorted(ran) == ["What is 3 * 2?", "What is 4 * 2?"]  # t3's torn line did not count
    assert sorted(line["id"] for line in lines_of(out)) == ["t1", "t2", "t3", "t4"]  # each once
    summary = again.summary
    assert (summary.total, summary.passed, summary.skipped) == (4, 4, 2)
    assert [r.id for r in again.results] == ["t1", "t2", "t3", "t4"]

    ran.clear()
    fresh = evaluate(tasks, counting_calculator(ran), output=out, resume=False, progress=False)
    assert len(ran) == 4 and fresh.summary.skipped == 0
    assert sorted(line["id"] for line in lines_of(out)) == ["t1", "t2", "t3", "t4"]


def test_resume_runs_crashed_tasks_again_and_their_new_line_wins(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    tasks = [{"id": f"t{n}", "task": f"What is {n} * 2?", "expected": n * 2} for n in range(1, 4)]
    calls: list[str] = []

    def flaky() -> CodeAgent:  # no model key yet for the second task, say
        calls.append("built")
        if len(calls) == 2:
            raise RuntimeError("no API key")
        return make_calculator()

    first = evaluate(tasks, flaky, concurrency=1, output=out, progress=False)
    assert [r.state for r in first.results] == ["success", CRASHED, "success"]
    ran: list[str] = []
    again = evaluate(tasks, counting_calculator(ran), output=out, progress=False)
    assert ran == ["What is 2 * 2?"]  # only the crashed task ran again
    assert [(r.id, r.state) for r in again.results] == [
        ("t1", "success"),
        ("t2", "success"),
        ("t3", "success"),
    ]
    assert (again.summary.skipped, again.summary.crashed, again.summary.passed) == (2, 0, 3)
    assert [line["id"] for line in lines_of(out)] == ["t1", "t2", "t3", "t2"]  # the file keeps both lines
    ran.clear()
    assert evaluate(tasks, counting_calculator(ran), output=out, progress=False).summary.skipped == 3
    assert ran == []  # the later line of t2 is the one read back


def test_a_results_file_that_is_not_one_is_refused_naming_the_line(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    out.write_text('{"id": "t1", "task": "x", "state": "success"}\n{"name": "something else"}\n')
    with pytest.raises(ResultsFileError, match=r"results.jsonl line 2 is not an eval result"):
        evaluate(["What is 1 + 1?"], make_calculator, output=out, progress=False)


class Exploding(CodeAgent):
    """A CodeAgent whose run raises, for a task that says "explode", instead of returning."""

    async def arun(self, task: str, **options: Any) -> Any:
        if "explode" in task:
            raise RuntimeError("the sandbox caught fire")
        return await super().arun(task, **options)


def test_a_task_whose_run_raises_is_a_failed_result_with_its_error(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    agent = Exploding([], ScriptedModel([answer_from_task] * 2), max_steps=1, name="calculator")
    tasks = [
        {"task": "What is 1 + 1?", "expected": 2},
        {"task": "Please explode."},
        {"task": "What is 2 + 2?", "expected": 4},
    ]
    report = evaluate(tasks, agent, output=out, progress=False)
    crashed = report.results[1]
    assert (crashed.state, crashed.passed) == (CRASHED, False)
    assert crashed.error == "RuntimeError: the sandbox caught fire"
    assert crashed.run_id is None and crashed.duration is not None
    assert [r.passed for r in report.results] == [True, False, True]
    assert report.summary.crashed == 1 and report.summary.passed == 2
    assert len(lines_of(out)) == 3


def test_an_agent_factory_that_fails_or_returns_no_agent_is_a_crashed_task() -> None:
    calls: list[int] = []

    def factory() -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("no model today")
        return 42 if len(calls) == 3 else make_calculator()

    report = evaluate([f"What is {n} + 1?" for n in range(3)], factory, concurrency=1, progress=False)
    assert [(r.state, r.error) for r in report.results] == [
        ("success", None),
        (CRASHED, "ValueError: no model today"),
        (CRASHED, "TypeError: the agent factory test_an_agent_factory_that_fails_or_returns_no_agent_is_a_"
         "crashed_task.<locals>.factory returned int, not an agent"),
    ]  # fmt: skip


def test_a_factory_taking_one_argument_builds_each_agent_for_its_task() -> None:
    seen: list[tuple[str, tuple[str, ...]]] = []

    def for_task(task: EvalTask) -> CodeAgent:  # e.g. a model endpoint or tools per task
        seen.append((task.id, task.tags))
        bound = task.additional_args["bound"]
        return CodeAgent([], ScriptedModel([fenced(f"final_answer(min({bound}, 10))")]), max_steps=1)

    tasks = [{"id": f"t{n}", "task": "Answer.", "expected": min(n, 10), "tags": [f"n{n}"],
              "additional_args": {"bound": n}} for n in (3, 30)]  # fmt: skip
    report = evaluate(tasks, for_task, concurrency=1, progress=False)
    assert sorted(seen) == [("t3", ("n3",)), ("t30", ("n30",))]
    assert [(r.id, r.output, r.passed) for r in report.results] == [("t3", 3, True), ("t30", 10, True)]


def test_a_factory_whose_parameters_cannot_be_given_is_refused_before_any_task() -> None:
    ran: list[str] = []

    def two(task: EvalTask, model: Any) -> CodeAgent:
        ran.append(task.id)
        return make_calculator()

    with pytest.raises(TypeError, match=r"no argument or one \(the task\), but it requires task, model"):
        evaluate(["What is 1 + 1?"], two, progress=False)
    assert ran == []


def test_a_scorer_that_raises_fails_the_task_with_its_error() -> None:
    def picky(output: Any, expected: Any, task: EvalTask) -> bool:
        raise KeyError("no rubric for this task")

    report = evaluate(["What is 1 + 1?"], make_calculator, scorer=picky, progress=False)
    (result,) = report.results
    assert (result.state, result.output, result.passed) == ("success", 2, False)
    assert result.error is not None and result.error.startswith("the scorer ")
    assert result.error.endswith("picky failed: KeyError: 'no rubric for this task'")


def test_a_tasks_own_scorer_and_the_evals_tolerance_apply() -> None:
    tasks = [
        {"id": "close", "task": "What is 10 / 3?", "expected": 3.33},  # the eval's scorer: numeric
        {
            "id": "own",
            "task": "What is 10 / 3?",
            "expected": 3.3,
            "scorer": {"name": "numeric", "abs_tol": 0.1},
        },
        {"id": "text", "task": "What is 'Paris, ' + 'France'?", "expected": "paris", "scorer": "contains"},
    ]
    loose = evaluate(tasks, make_calculator, scorer="numeric", tolerance={"abs_tol": 0.01}, progress=False)
    assert [r.passed for r in loose.results] == [True, True, True]
    strict = evaluate(tasks, make_calculator, scorer="numeric", progress=False)
    assert [r.passed for r in strict.results] == [False, True, True]


def test_a_bad_task_scorer_is_an_error_before_any_task_runs(tmp_path: Path) -> None:
    built: list[int] = []

    def factory() -> CodeAgent:
        built.append(1)
        return make_calculator()

    tasks = parse_tasks(['{"task": "What is 1 + 1?"}', '{"task": "What is 2 + 2?", "scorer": "fuzzy"}'])
    out = tmp_path / "results.jsonl"
    with pytest.raises(ScorerSpecError, match="line 2: unknown scorer 'fuzzy'"):
        evaluate(tasks, factory, output=out, progress=False)
    with pytest.raises(ConfigurationError, match="concurrency must be at least 1"):
        evaluate(tasks[:1], factory, concurrency=0, output=out, progress=False)
    assert built == [] and not out.exists()


def test_the_judge_scorer_in_an_eval() -> None:
    tasks = [
        {"task": "What is 'Paris'?", "expected": "Paris"},
        {"task": "What is 'Lyon'?", "expected": "Paris"},
    ]
    judge = ScriptedModel([judge_reply, judge_reply], model_id="gpt-4o-mini")
    report = evaluate(tasks, make_calculator, scorer="judge", judge=judge, concurrency=1, progress=False)
    assert [(r.passed, r.reason) for r in report.results] == [
        (True, "The answer names the expected city."),
        (False, "It names another city."),
    ]
    assert len(judge.requests) == 2
    # what judging spent is counted apart from the runs' own tokens, and priced by the judge's model
    for result, request in zip(report.results, judge.requests, strict=True):
        prompt_chars = sum(len(m.content) for m in request)
        assert result.judge_input_tokens == prompt_chars // 4 + 1 and result.judge_output_tokens > 0
        expected_cost = (result.judge_input_tokens * 0.15 + result.judge_output_tokens * 0.60) / 1e6
        assert result.judge_cost == pytest.approx(expected_cost)
    summary = report.summary
    assert summary.judge_input_tokens == sum(r.judge_input_tokens for r in report.results)
    assert summary.judge_cost == pytest.approx(sum(r.judge_cost or 0 for r in report.results))
    assert summary.input_tokens == sum(r.input_tokens for r in report.results)  # the runs' only
    caption = str(summary_table(summary).caption)
    assert caption.startswith(
        f"judge: {summary.judge_input_tokens:,} in / {summary.judge_output_tokens:,} out"
    )


def test_cost_is_priced_by_model_id_and_none_when_unknown() -> None:
    def agent_on(model_id: str) -> CodeAgent:
        return CodeAgent([], ScriptedModel([answer_from_task], model_id=model_id), max_steps=1)

    (priced,) = evaluate(["What is 1 + 1?"], lambda: agent_on("gpt-4o-mini"), progress=False).results
    assert priced.cost == pytest.approx((priced.input_tokens * 0.15 + priced.output_tokens * 0.60) / 1e6)
    report = evaluate(["What is 1 + 1?"], lambda: agent_on("house-model-7"), progress=False)
    assert report.results[0].cost is None
    assert (report.summary.cost, report.summary.cost_unknown) == (None, 1)


def test_runs_are_kept_in_the_agents_store(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"

    async def create() -> None:
        # The store exists before the eval: SQLiteStore's first open of a new file by several
        # runs at once can fail with "database is locked" (its PRAGMA journal_mode=WAL does not
        # wait), a store matter of its own, reported apart; here the runs find their store.
        async with open_store(db):
            pass

    asyncio.run(create())
    model = ScriptedModel([answer_from_task] * 2)
    agent = CodeAgent([], model, max_steps=1, name="calculator", store=str(db))
    report = evaluate(["What is 1 + 1?", "What is 2 + 3?"], agent, progress=False)
    assert [r.state for r in report.results] == ["success", "success"], [r.error for r in report.results]

    async def stored() -> list[Any]:
        async with open_store(db) as store:
            return [await store.get_run(r.run_id) for r in report.results if r.run_id]

    records = asyncio.run(stored())
    assert [(r.task, r.state, r.agent_name) for r in records] == [
        ("What is 1 + 1?", "success", "calculator"),
        ("What is 2 + 3?", "success", "calculator"),
    ]
    assert [json.loads(r.output_json) for r in records] == [2, 5]


class Flaky:
    """A backend that delivers every result twice (as a rerun after a lost worker may), one for
    a task never asked for, and none for the last task."""

    async def run(self, tasks: Sequence[EvalTask], trial: RunTask) -> AsyncIterator[EvalResult]:
        for task in tasks[:-1]:
            result = await trial(task)
            yield result
            yield result
        yield EvalResult(id="stranger", task="?", state="success", passed=True)


def test_the_runner_keeps_each_task_once_whatever_the_backend_delivers(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    tasks = [{"task": f"What is {n} + {n}?", "expected": 2 * n} for n in range(1, 5)]
    report = evaluate(tasks, make_calculator, backend=Flaky(), output=out, progress=False)
    assert [line["id"] for line in lines_of(out)] == ["1", "2", "3"]
    assert (report.summary.total, report.summary.passed, report.summary.missing) == (3, 3, 1)
    ran: list[str] = []
    resumed = evaluate(tasks, counting_calculator(ran), output=out, progress=False)
    assert ran == ["What is 4 + 4?"] and resumed.summary.missing == 0
    assert sorted(line["id"] for line in lines_of(out)) == ["1", "2", "3", "4"]


def test_readme_evals_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # --- README: evals and batch runs ---
    from codeloop import CodeAgent, ScriptedModel
    from codeloop.evals import evaluate, print_summary

    def make_agent() -> CodeAgent:  # called once per task: nothing carries over between tasks
        # a real eval gives a real model, e.g. OpenAIModel("gpt-4o-mini"); this one answers 42
        return CodeAgent([], ScriptedModel(["```python\nfinal_answer(6 * 7)\n```"]), max_steps=3)

    with open("tasks.jsonl", "w") as file:
        file.write('{"id": "mul", "task": "What is 6 * 7?", "expected": 42, "tags": ["arithmetic"]}\n')
        file.write('{"id": "pow", "task": "What is 2 ** 10?", "expected": 1024, "tags": ["powers"]}\n')

    report = evaluate("tasks.jsonl", make_agent, scorer="numeric", concurrency=8, output="results.jsonl")
    print_summary(report.summary)
    print(report.summary.passed, "of", report.summary.total)  # 1 of 2
    print(report.results[1].reason)  # 42 is not 1024
    # --- end ---
    assert (report.summary.passed, report.summary.total) == (1, 2)
    assert report.results[1].reason == "42 is not 1024"
    again = evaluate("tasks.jsonl", make_agent, scorer="numeric", output="results.jsonl", progress=False)
    assert (again.summary.skipped, again.summary.passed) == (2, 1)
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 2


async def test_an_eval_stopped_midway_keeps_what_finished_and_resume_runs_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    stuck = asyncio.Event()

    async def wait_forever() -> str:
        """Wait for something that never comes."""
        stuck.set()
        await asyncio.Event().wait()
        return "never"

    def make_agent() -> ToolCallingAgent:
        def reply(messages: Sequence[ChatMessage]) -> list[Any]:
            if "hang" in task_of(messages):
                return [ScriptedModel.call("wait_forever")]
            return [ScriptedModel.call("final_answer", answer="done")]

        return ToolCallingAgent([tool(wait_forever)], ScriptedModel([reply]), name="worker")

    tasks = [{"id": f"t{n}", "task": f"Task {n}", "expected": "done"} for n in range(1, 6)]
    tasks[2]["task"] = "Task 3: hang"
    running = asyncio.ensure_future(aevaluate(tasks, make_agent, concurrency=1, output=out, progress=False))
    await stuck.wait()  # t1 and t2 ended; t3 hangs in its tool
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    kept = [line["id"] for line in lines_of(out)]
    assert kept[:1] == ["t1"] and "t3" not in kept and set(kept) <= {"t1", "t2"}

    tasks[2]["task"] = "Task 3"
    ran: list[str] = []

    def recording_agent() -> ToolCallingAgent:
        ran.append("run")
        return make_agent()

    report = await aevaluate(tasks, recording_agent, output=out, progress=False)
    assert len(ran) == 5 - len(kept)
    assert sorted(line["id"] for line in lines_of(out)) == ["t1", "t2", "t3", "t4", "t5"]
    assert report.summary.passed == 5 and report.summary.skipped == len(kept)


def test_two_evals_cannot_write_one_results_file_at_once(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    first = ResultsFile(out)
    first.open(resume=True)
    try:
        with pytest.raises(ResultsFileError, match="is being written by another eval now"):
            evaluate(["What is 1 + 1?"], make_calculator, output=out, progress=False)
        with pytest.raises(ResultsFileError, match="another eval"):
            evaluate(["What is 1 + 1?"], make_calculator, output=out, resume=False, progress=False)
    finally:
        first.close()
    task = {"task": "What is 1 + 1?", "expected": 2}
    report = evaluate([task], make_calculator, output=out, progress=False)
    assert report.summary.passed == 1 and len(lines_of(out)) == 1  # once the first one has closed it
