"""smolagents' own interpreter test cases through every local executor.

The cases are smolagents 1.26.0's `tests/test_local_python_executor.py`, extracted by
`benchmarks/smolagents_cases/extract.py` into `tests/data/smolagents_cases/cases.json` (see the
README there). The full-CPython executors (local, jail) must pass every applicable case. Monty
must pass every stdlib case except the ones recorded below, each with why Monty cannot run it
and what the message the model reads must say, so that no failure misleads; a recorded case
that starts passing fails the test too, so the record stays honest. Third-party cases (numpy,
pandas) cannot run in Monty: their message must point to executor='jail'.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
from collections import Counter

import pytest

from benchmarks.smolagents_cases.harness import (
    Outcome,
    applicable,
    executor_factories,
    load_cases,
    pass_rates,
    run_cases,
)

CASES = load_cases()
APPLICABLE = applicable(CASES)
FACTORIES = executor_factories()
# Recorded for pydantic-monty 1.4.0; with another version a recorded case may pass.
STRICT = importlib.metadata.version("pydantic-monty") == "1.4.0"

_CLASS_BODY = (
    "a Monty class body holds only methods and `name = value` class variables",
    "set attributes or items of a class variable after the class statement",
)
_INHERITANCE = (
    "Monty has no class inheritance (so no Enum subclass)",
    "class inheritance is not supported here",
)
_DEL_NAME = (
    "Monty has no `del`: item deletion is rewritten, but a name cannot be unbound",
    "rebind the name instead (x = None)",
)
KNOWN_MONTY_FAILURES: dict[str, tuple[str, str]] = {
    "TestEvaluatePythonCode::test_evaluate_class_def_with_assign_attribute_target#1": _CLASS_BODY,
    "TestEvaluatePythonCode::test_evaluate_class_def_with_ann_assign_attribute#1": _CLASS_BODY,
    "TestEvaluatePythonCode::test_evaluate_class_def_with_ann_assign_subscript#1": _CLASS_BODY,
    "TestEvaluatePythonCode::test_classes#1": _INHERITANCE,
    "TestEvaluatePythonCode::test_evaluate_class_def_with_enum#1": _INHERITANCE,
    "TestEvaluatePythonCode::test_imports#4": (
        "Monty has no queue module, and Queue objects hold state, so the host cannot lend one",
        "Instead, use collections.deque",
    ),
    "TestEvaluatePythonCode::test_evaluate_class_def_with_ann_assign_name#1": (
        "the code runs; smolagents' checks then introspect the class, and in Monty a class is not an "
        "instance of `type` (and annotations are kept as strings)",
        "Classes are not instances of `type` here",
    ),
    "TestEvaluatePythonCode::test_evaluate_delete[0]#1": _DEL_NAME,
    "TestEvaluatePythonCode::test_evaluate_delete[3]#1": _DEL_NAME,
    "TestEvaluateDelete::test_evaluate_delete[0]#1": _DEL_NAME,
    "TestEvaluateDelete::test_evaluate_delete[3]#1": _DEL_NAME,
}


@functools.cache
def outcomes(executor: str) -> dict[str, Outcome]:
    results = asyncio.run(run_cases(FACTORIES[executor], APPLICABLE))
    return {o.id: o for o in results}


def _describe(failures: list[Outcome]) -> str:
    return "\n".join(f"{o.id} [{o.kind}] {o.detail}: {o.message}" for o in failures)


def test_case_data_is_well_formed() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids))
    assert Counter(c["category"] for c in CASES).keys() <= {"stdlib", "third-party", "not-applicable"}
    assert len(APPLICABLE) >= 300
    for case in CASES:
        if case["category"] == "not-applicable":
            assert case["reason"], case["id"]
        elif "error" in case["expect"]:
            assert case["expect"]["error"], f"{case['id']}: an expected error names its Python type"
    assert set(KNOWN_MONTY_FAILURES) <= {c["id"] for c in APPLICABLE if c["category"] == "stdlib"}


@pytest.mark.parametrize("executor", ["local", "jail"])
def test_full_cpython_executors_pass_every_applicable_case(executor: str) -> None:
    if executor not in FACTORIES:
        pytest.skip(f"the {executor} executor cannot run on this machine")
    failures = [o for o in outcomes(executor).values() if not o.passed]
    assert not failures, _describe(failures)


def test_monty_passes_every_stdlib_case_but_the_recorded_ones() -> None:
    stdlib = [o for o in outcomes("monty").values() if o.category == "stdlib"]
    unexpected = [o for o in stdlib if not o.passed and o.id not in KNOWN_MONTY_FAILURES]
    assert not unexpected, _describe(unexpected)
    if STRICT:
        now_passing = [o.id for o in stdlib if o.passed and o.id in KNOWN_MONTY_FAILURES]
        assert not now_passing, f"recorded as failing, but passed: {now_passing}"
    passed, total = pass_rates(stdlib)["stdlib"]
    assert passed / total > 0.95  # 88% before in-place operators, __len__, lazy generators, del, stat


def test_every_monty_failure_tells_the_model_what_to_write() -> None:
    for case_id, (reason, fragment) in KNOWN_MONTY_FAILURES.items():
        outcome = outcomes("monty")[case_id]
        if outcome.passed:
            continue  # only possible with another Monty version (see the test above)
        assert outcome.kind in ("error", "check-error"), f"{case_id} fails silently: {outcome.detail}"
        assert fragment in outcome.message, f"{case_id} ({reason}) reads: {outcome.message}"


def test_third_party_cases_in_monty_point_to_the_jail() -> None:
    third_party = [o for o in outcomes("monty").values() if o.category == "third-party"]
    assert third_party
    for outcome in third_party:
        assert not outcome.passed and outcome.kind == "error", outcome
        assert "third-party packages are not available in this sandbox" in outcome.message, outcome
        assert "executor='jail'" in outcome.message, outcome
