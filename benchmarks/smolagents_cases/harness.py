"""Run the extracted smolagents interpreter cases through codeloop's executors and judge each one.

    python -m benchmarks.smolagents_cases.harness [--executor monty] [--show-failures]

Each case gets a fresh session: its setup (smolagents' initial state) runs first, then its code,
then each check in the same session. A case passes when the run meets every expectation in
the data file (see `extract.py`). The import list is not what these cases test, so the
full-CPython executors run them with every import allowed (`"*"`); Monty always offers its
own modules. Not-applicable cases are never run.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeloop.executors.base import CodeOutput, Executor, ExecutorLimits

__all__ = ["CASES_FILE", "LIMITS", "Outcome", "executor_factories", "load_cases", "pass_rates", "run_cases"]

CASES_FILE = Path(__file__).resolve().parents[2] / "tests" / "data" / "smolagents_cases" / "cases.json"
LIMITS = ExecutorLimits(timeout_s=5.0, memory_bytes=256 * 2**20, max_output_chars=20_000)
CATEGORIES = ("stdlib", "third-party")


def add_two(x: Any) -> Any:
    """The one tool smolagents' tests pass to the code."""
    return x + 2


TOOLS = {"add_two": add_two}


@dataclass(frozen=True)
class Outcome:
    """How one case went. `kind`: "pass", "error" (the code failed: `message` is what the model
    reads), "wrong" (it ran but a result differs: the model is told nothing), or "check-error"
    (a check of the result could not run here)."""

    id: str
    category: str
    kind: str
    detail: str = ""
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.kind == "pass"


def load_cases(path: Path = CASES_FILE) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(path.read_text())["cases"]
    return cases


def applicable(cases: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in cases if c["category"] in CATEGORIES]


def executor_factories() -> dict[str, Callable[[], Executor]]:
    """The local executors this machine can run: monty and local always, the jail when it can be built."""
    from codeloop.executors.local import LocalExecutor
    from codeloop.executors.monty import MontyExecutor

    found: dict[str, Callable[[], Executor]] = {
        "monty": lambda: MontyExecutor(LIMITS),
        "local": lambda: LocalExecutor(LIMITS, ["*"]),
    }
    if sys.platform.startswith("linux"):
        from codeloop.executors import confine
        from codeloop.executors.jail import JailExecutor

        if not confine.missing_mechanisms():
            found["jail"] = lambda: JailExecutor(LIMITS, ["*"])
    return found


async def run_cases(factory: Callable[[], Executor], cases: Iterable[dict[str, Any]]) -> list[Outcome]:
    """Every case through one executor (a fresh session each)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LocalExecutor is not a security boundary")
        executor = factory()
        try:
            return [await run_case(executor, case) for case in cases]
        finally:
            await executor.close()


async def run_case(executor: Executor, case: dict[str, Any]) -> Outcome:
    await executor.start({name: TOOLS[name] for name in case["tools"]})

    def outcome(kind: str, detail: str = "", message: str = "") -> Outcome:
        return Outcome(case["id"], case["category"], kind, detail, message)

    if case["setup"]:
        setup = await executor.run(case["setup"])
        if setup.error is not None:
            return outcome("error", "the setup failed", setup.error.describe())
    out = await executor.run(case["code"])
    expect = case["expect"]
    if "error" in expect:
        return outcome(*_judge_error(out, expect))
    if out.error is not None:
        return outcome("error", "the code failed", out.error.describe())
    wrong = _judge_result(out, expect)
    if wrong:
        return outcome("wrong", wrong)
    return outcome(*await _judge_checks(executor, expect))


def _judge_error(out: CodeOutput, expect: dict[str, Any]) -> tuple[str, str, str]:
    if out.error is None:
        return "wrong", f"expected {expect['error'] or 'an error'}, but the code ran", ""
    message = out.error.describe()
    if expect["error"] and out.error.type != expect["error"]:
        return "error", f"expected {expect['error']}, got {out.error.type}", message
    if "error_line" in expect and out.error.line != expect["error_line"]:
        return "wrong", f"the error points at line {out.error.line}, not {expect['error_line']}", message
    return "pass", "", message


def _judge_result(out: CodeOutput, expect: dict[str, Any]) -> str:
    """What differs in the run's own result, or ""."""
    if "final" in expect and out.is_final_answer != expect["final"]:
        return f"final answer expected: {expect['final']}, got {out.is_final_answer}"
    if "output" in expect:
        wanted = ast.literal_eval(expect["output"])
        if type(out.output) is not type(wanted) or out.output != wanted:
            return f"output {out.output!r}, expected {wanted!r}"
    if "logs" in expect and out.logs != expect["logs"]:
        return f"printed {out.logs!r}, expected {expect['logs']!r}"
    return ""


async def _judge_checks(executor: Executor, expect: dict[str, Any]) -> tuple[str, str, str]:
    if "check_setup" in expect:
        await executor.run(expect["check_setup"])
    for check in expect.get("checks", []):
        result = await executor.run(check)
        if result.error is not None:
            return "check-error", f"check `{check}` raised", result.error.describe()
        if result.output is not True and result.output != True:  # noqa: E712 - numpy's bool too
            return "wrong", f"check `{check}` is {result.output!r}", ""
    for name in expect.get("undefined", []):
        result = await executor.run(name)
        if result.error is None or result.error.type != "NameError":
            return "wrong", f"`{name}` should not be defined", ""
    return "pass", "", ""


def pass_rates(outcomes: list[Outcome]) -> dict[str, tuple[int, int]]:
    """(passed, total) per category and for all applicable cases."""
    rates = {}
    for name, wanted in (("stdlib", {"stdlib"}), ("third-party", {"third-party"}), ("all", set(CATEGORIES))):
        chosen = [o for o in outcomes if o.category in wanted]
        rates[name] = (sum(o.passed for o in chosen), len(chosen))
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executor", action="append", help="monty, local or jail (default: all here)")
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the pass rates and failing cases here")
    args = parser.parse_args(argv)
    cases = applicable(load_cases())
    factories = executor_factories()
    report: dict[str, dict[str, Any]] = {}
    for name in args.executor or list(factories):
        outcomes = asyncio.run(run_cases(factories[name], cases))
        rates = pass_rates(outcomes)
        report[name] = {"rates": rates, "failing": [o.id for o in outcomes if not o.passed]}
        cells = ", ".join(f"{k} {p}/{t} ({100 * p / t:.1f}%)" for k, (p, t) in rates.items() if t)
        print(f"{name}: {cells}")
        for o in outcomes if args.show_failures else []:
            if not o.passed:
                print(f"  {o.kind:11} {o.id}: {o.detail}")
                print(f"              -> {o.message}" if o.message else "", end="\n" if o.message else "")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
