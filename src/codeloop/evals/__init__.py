"""Evals and batch runs: a dataset of tasks through an agent, each output scored, the results
kept one JSON line per task (resumable), and a summary.

    from codeloop.evals import evaluate

    report = evaluate("tasks.jsonl", make_agent, scorer="numeric", concurrency=8, output="results.jsonl")
    print(report.summary.passed, "of", report.summary.total)

The same from the shell: `codeloop eval tasks.jsonl --agent my_agents:make_agent --scorer numeric`.
One module per concern: `tasks` (the dataset), `scorers`, `trial` (one task end to end),
`backends` (where tasks run: `LocalBackend`, or another behind `EvalBackend`), `spec` (an eval
as data a worker elsewhere builds its trial from), `ray_backend` (`RayBackend`: tasks on a Ray
cluster; Ray is imported only when it runs), `results` (the results file), `runner`
(`evaluate`, `aevaluate`) and `summary`.
"""

from __future__ import annotations

from .backends import EvalBackend, LocalBackend, RunTask
from .ray_backend import RayBackend
from .results import CRASHED, EvalResult, ResultsFile, ResultsFileError
from .runner import EvalReport, TaskSource, aevaluate, evaluate
from .scorers import (
    JUDGE_PROMPT,
    SCORER_NAMES,
    Contains,
    ExactMatch,
    FunctionScorer,
    JudgeScorer,
    NumericMatch,
    Score,
    ScoreFunction,
    Scorer,
    ScorerSpecError,
    Verdict,
    as_scorer,
    parse_verdict,
)
from .spec import ModelSpec, SpecTrial, TrialSpec
from .summary import GroupStats, Summary, print_summary, summarize, summary_table
from .tasks import EvalTask, TaskFileError, load_tasks, parse_tasks, tasks_from
from .trial import AgentFactory, AgentSource, Trial, crashed_result

__all__ = [
    "CRASHED",
    "JUDGE_PROMPT",
    "SCORER_NAMES",
    "AgentFactory",
    "AgentSource",
    "Contains",
    "EvalBackend",
    "EvalReport",
    "EvalResult",
    "EvalTask",
    "ExactMatch",
    "FunctionScorer",
    "GroupStats",
    "JudgeScorer",
    "LocalBackend",
    "ModelSpec",
    "NumericMatch",
    "RayBackend",
    "ResultsFile",
    "ResultsFileError",
    "RunTask",
    "Score",
    "ScoreFunction",
    "Scorer",
    "ScorerSpecError",
    "SpecTrial",
    "Summary",
    "TaskFileError",
    "TaskSource",
    "Trial",
    "TrialSpec",
    "Verdict",
    "aevaluate",
    "as_scorer",
    "crashed_result",
    "evaluate",
    "load_tasks",
    "parse_tasks",
    "parse_verdict",
    "print_summary",
    "summarize",
    "summary_table",
    "tasks_from",
]
