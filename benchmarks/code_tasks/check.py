"""The code-writing task set as the benchmark uses it: task texts, the source out of an answer,
and the hidden tests, run on that source in a fresh CPython subprocess with a timeout."""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from .problems import PROBLEMS, Problem

__all__ = ["AGENT_TASK", "ALONE_PROMPT", "Outcome", "extract_source", "load_tasks", "run_hidden_tests"]

AGENT_TASK = """Implement this Python function:

```python
{prompt}```

Write it, check it on the docstring's examples and on the edge cases the docstring describes, \
then give as your final answer the complete source code of the function as a string (with any \
imports it needs)."""

ALONE_PROMPT = """Implement this Python function:

```python
{prompt}```

Reply with the complete implementation (the function, with any imports it needs) in one \
```python code block."""

TIMEOUT_S = 10.0
_FENCE = re.compile(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)
_RUNNER = """
import json, sys

def raises(error, function, *args, **kwargs):
    try:
        function(*args, **kwargs)
    except error:
        return True
    except Exception:
        return False
    return False

source, tests = json.loads(sys.stdin.read())
namespace = {"raises": raises, "__name__": "answer"}
try:
    exec(compile(source, "<answer>", "exec"), namespace)
except BaseException as exc:
    print(json.dumps({"failures": [f"the source does not run: {type(exc).__name__}: {exc}"]}))
    sys.exit(0)
failures = []
for test in tests:
    try:
        ok = eval(test, namespace) is True
    except BaseException as exc:
        ok, test = False, f"{test}  ({type(exc).__name__}: {exc})"
    if not ok:
        failures.append(test)
print(json.dumps({"failures": failures}))
"""


@dataclass(frozen=True)
class Outcome:
    """How an answer fared on a problem's hidden tests."""

    passed: int
    total: int
    detail: str = ""

    @property
    def solved(self) -> bool:
        return self.total > 0 and self.passed == self.total


def load_tasks(limit: int | None = None, only: str = "") -> list[dict[str, Any]]:
    """The problems as the sides get them: the agent's task text and the model-alone prompt."""
    prefixes = tuple(p.strip() for p in only.split(",") if p.strip())
    chosen = [p for p in PROBLEMS if not prefixes or p.id.startswith(prefixes)]
    return [
        {"id": p.id, "entry": p.entry, "task": AGENT_TASK.format(prompt=p.prompt.lstrip("\n")),
         "prompt": ALONE_PROMPT.format(prompt=p.prompt.lstrip("\n")), "tools": [], "team": None}
        for p in (chosen[:limit] if limit else chosen)
    ]  # fmt: skip


def problem(problem_id: str) -> Problem:
    (match,) = [p for p in PROBLEMS if p.id == problem_id]
    return match


def extract_source(answer: Any, entry: str) -> str | None:
    """The Python source in an answer: the fenced block that defines `entry` (else every fenced
    block), or the whole text when it has no fences. None when the answer is not text."""
    if not isinstance(answer, str):
        return None
    blocks = _FENCE.findall(answer)
    if not blocks:
        return answer
    defining = [b for b in blocks if re.search(rf"^\s*def {re.escape(entry)}\(", b, re.MULTILINE)]
    return defining[0] if defining else "\n".join(blocks)


def run_hidden_tests(problem_id: str, answer: Any, timeout: float = TIMEOUT_S) -> Outcome:
    """Run the problem's hidden tests on the source in `answer`, in a fresh `python -I`."""
    spec = problem(problem_id)
    source = extract_source(answer, spec.entry)
    total = len(spec.tests)
    if source is None:
        return Outcome(0, total, f"the answer is not source text but {type(answer).__name__}")
    with tempfile.TemporaryDirectory() as scratch:
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-c", _RUNNER], input=json.dumps([source, list(spec.tests)]),
                capture_output=True, text=True, timeout=timeout, cwd=scratch, preexec_fn=_limits,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return Outcome(0, total, f"the tests did not finish within {timeout:g} s")
    lines = done.stdout.strip().splitlines()
    if not lines:
        return Outcome(0, total, f"the test process died: {done.stderr.strip()[-300:]}")
    failures: list[str] = json.loads(lines[-1])["failures"]
    if failures and failures[0].startswith("the source does not run"):
        return Outcome(0, total, failures[0])
    return Outcome(total - len(failures), total, "; ".join(failures[:3]))


def _limits() -> None:
    """Bound the answer's process: memory and CPU time."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    resource.setrlimit(resource.RLIMIT_CPU, (int(TIMEOUT_S) + 5, int(TIMEOUT_S) + 5))


def references() -> dict[str, str]:
    """Each problem's reference solution, by id (for the tests of the task set)."""
    return {p.id: p.reference for p in PROBLEMS}
