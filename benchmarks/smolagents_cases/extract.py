"""Extract smolagents' own interpreter test cases into executor-neutral data.

    python -m benchmarks.smolagents_cases.extract [SMOLAGENTS_DIR] [--out PATH]

SMOLAGENTS_DIR is a smolagents checkout or unpacked sdist holding
`tests/test_local_python_executor.py` and `src/smolagents/local_python_executor.py`. Without it,
the smolagents 1.26.0 sdist (which ships its tests) is fetched with
`pip download smolagents==1.26.0 --no-deps --no-binary :all:` into a temporary directory. The
cases are written to `tests/data/smolagents_cases/cases.json`.

smolagents tests its interpreter with `evaluate_python_code(code, tools, state=...)` or
`LocalPythonExecutor(...)(code)` followed by asserts. Each such call becomes one case:

* `setup`: smolagents' initial `state`, as assignments run before the code;
* `code`: the snippet, unchanged;
* `expect`: what the asserts require, in terms any executor can check - `output` (the value of
  the last expression, a Python literal), `final` (it ended with `final_answer`), `logs` (what
  it printed), `checks` (expressions evaluated afterwards in the same session that must be
  true; smolagents' "value of the last assignment" becomes a check on that variable, and
  `state["x"]` becomes `x`), `undefined` (names that must not exist) or `error` (the run must
  fail, with this exception type when CPython's type is known; smolagents wraps every error
  in its own InterpreterError, so its wording is kept only as a note).

Categories: `stdlib` (plain Python), `third-party` (numpy/pandas), and `not-applicable`:
tests of smolagents' own machinery - import authorisation, dunder and builtin blocking, its
operation and while-loop caps, its timeout decorator, source recovery, its name autocorrection
- which say nothing about whether an executor runs Python correctly. Every test of the file is
accounted for: converted, converted by a rule below, or not applicable with its reason; an
unknown shape stops the extraction.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import hashlib
import itertools
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Case", "extract", "main"]

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "smolagents_cases" / "cases.json"
VERSION = "1.26.0"
TEST_FILE = "tests/test_local_python_executor.py"
EXECUTOR_FILE = "src/smolagents/local_python_executor.py"
HOST_TOOLS = {"add_two"}  # tools the tests pass that are not Python builtins
THIRD_PARTY = re.compile(r"\b(numpy|pandas|np|pd|scipy|sklearn)\b")
_SMOLAGENTS_INTERNALS = ("__wrapped__", "_operations_count", "__source__")


class Unconvertible(Exception):
    """A test shape this script does not know: convert it by a rule, or say why it does not apply."""


@dataclass
class Case:
    id: str
    test: str
    line: int
    category: str = "stdlib"
    setup: str = ""
    code: str = ""
    tools: list[str] = field(default_factory=list)
    expect: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    note: str = ""


# -- tests that do not apply, and why ----------------------------------------------------------------

_POLICY = "smolagents' own import authorisation / dunder and builtin blocking, not Python semantics"
NOT_APPLICABLE: dict[str, str] = {
    "TestEvaluatePythonCode::test_assignment_cannot_overwrite_tool": "smolagents forbids assigning to a "
    "tool's name; Python allows rebinding any name",
    "TestEvaluatePythonCode::test_max_operations": "patches smolagents' operation cap (MAX_OPERATIONS)",
    "TestEvaluatePythonCode::test_operations_count": "reads smolagents' internal operation counter",
    "TestEvaluatePythonCode::test_additional_imports": _POLICY,
    "TestEvaluatePythonCode::test_tuple_id": "the code uses an undefined name (food_item_counts); "
    "smolagents autocorrects it to a close match (food_items), Python raises NameError",
    "TestEvaluatePythonCode::test_variable_args": "expects smolagents' argument binding, where *args also "
    "receives the positional argument bound to `self`: Python returns 14 for var_args_method(1, 2, 3, x=4, "
    "y=5), smolagents 15",
    "TestEvaluatePythonCode::test_exceptions": "calls method_that_raises() without its `self` argument: "
    "smolagents does not check missing arguments, Python raises TypeError before the intended ValueError",
    "TestEvaluatePythonCode::test_dangerous_builtins_calls_are_blocked": _POLICY,
    "TestEvaluatePythonCode::test_dangerous_builtins_are_callable_if_explicitly_added": _POLICY,
    "TestEvaluatePythonCode::test_can_import_os_if_explicitly_authorized": _POLICY,
    "TestEvaluatePythonCode::test_can_import_os_if_all_imports_authorized": _POLICY,
    "TestEvaluatePythonCode::test_can_import_scipy_if_explicitly_authorized": _POLICY
    + " (scipy is not installed here)",
    "TestEvaluatePythonCode::test_can_import_sklearn_if_explicitly_authorized": _POLICY
    + " (scikit-learn is not installed here)",
    "TestEvaluatePythonCode::test_function_def_recovers_source_code": "smolagents attaches a "
    "__source__ attribute to functions; final_answer() of a function object is not plain data",
    "test_get_safe_module_handle_lazy_imports": "unit test of smolagents' module wrapper",
    "test_fix_final_answer_code": "unit test of smolagents' source fixer for `final_answer = ...`",
    "TestTimeout": "tests smolagents' signal/thread timeout decorator and its parameter",
    "test_check_import_authorized": _POLICY,
    "TestLocalPythonExecutor::test_additional_authorized_imports_are_installed": _POLICY,
    "TestLocalPythonExecutor::test_function_def_recovers_source_code": "smolagents attaches a "
    "__source__ attribute to functions; final_answer() of a function object is not plain data",
    "TestLocalPythonExecutorSecurity": _POLICY,
}
for _name in ("via_submodules", "via_submodules_through_indirect_attribute_access", "builtins_via_sys",
              "builtins_via_traceback", "builtins_via_class_catch_warnings",
              "load_module_via_builtin_importer", "class_via_subclasses", "via_dunder_access",
              "via_dunder_indirect_access", "via_dunder_call"):  # fmt: skip
    NOT_APPLICABLE[f"TestLocalPythonExecutor::test_vulnerability_{_name}"] = _POLICY

# Single cases (by id) that do not apply although the rest of their test does.
CASE_NOT_APPLICABLE: dict[str, str] = {
    "TestEvaluatePythonCode::test_while#2": "patches smolagents' while-loop cap (MAX_WHILE_ITERATIONS) "
    "to stop an endless loop",
}
# Expectations smolagents states in its own words (here: the line its error points at).
CASE_EXPECT: dict[str, dict[str, Any]] = {
    "TestEvaluatePythonCode::test_error_highlights_correct_line_of_code#1": {"error": "TypeError",
                                                                             "error_line": 5},
}  # fmt: skip
_AUTOCORRECT = (
    "the state names `str` but the code reads `st`: smolagents autocorrects the misspelt name, "
    "Python raises NameError"
)

# Error types CPython raises where smolagents' InterpreterError words it its own way.
_ERROR_WORDING = [
    ("is not defined", "NameError"),
    ("Forbidden function evaluation", "NameError"),  # a function that is neither a tool nor defined
    ("Cannot unpack non-dict value in **kwargs", "TypeError"),
    ("Cannot unpack tuple of wrong size", "ValueError"),
    ("Cannot add non-list value", "TypeError"),
    ("Could not index {} with 'key'", "KeyError"),
    ("Maybe you meant one of these indexes instead", "KeyError"),
    ("You're trying to subscript a string with a string index", "TypeError"),
    ("1 == 2", "AssertionError"),
]
_EXCEPTIONS = {name for name, value in vars(builtins).items() if isinstance(value, type) and
               issubclass(value, BaseException)}  # fmt: skip


# -- reading the source ---------------------------------------------------------------------------


def fetch_sdist(into: Path) -> Path:
    """Download and unpack the smolagents sdist; return the unpacked directory."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", f"smolagents=={VERSION}", "--no-deps",
         "--no-binary", ":all:", "-q", "-d", str(into)],
        check=True,
    )  # fmt: skip
    archive = next(into.glob(f"smolagents-{VERSION}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / f"smolagents-{VERSION}"


def parametrizations(func: ast.FunctionDef) -> Iterator[tuple[str, dict[str, ast.expr]]]:
    """(id suffix, {argument: value node}) for every combination of the parametrize decorators."""
    axes: list[list[tuple[str, dict[str, ast.expr]]]] = []
    for decorator in reversed(func.decorator_list):
        if not (isinstance(decorator, ast.Call) and ast.unparse(decorator.func) == "pytest.mark.parametrize"):
            continue
        names_node, values_node = decorator.args[:2]
        names = [n.strip() for n in ast.literal_eval(names_node).split(",")] if isinstance(
            names_node, ast.Constant) else list(ast.literal_eval(names_node))  # fmt: skip
        if not isinstance(values_node, ast.List | ast.Tuple):
            raise Unconvertible(f"parametrized over {ast.unparse(values_node)}")
        axis = []
        for value in values_node.elts:
            items = value.elts if len(names) > 1 and isinstance(value, ast.Tuple) else [value]
            axis.append(dict(zip(names, items, strict=True)))
        axes.append([(str(i), params) for i, params in enumerate(axis)])
    for combo in itertools.product(*axes):
        suffix = f"[{'-'.join(i for i, _ in combo)}]" if combo else ""
        merged: dict[str, ast.expr] = {}
        for _, params in combo:
            merged.update(params)
        yield suffix, merged


def count_instances(func: ast.FunctionDef) -> int | None:
    try:
        return sum(1 for _ in parametrizations(func))
    except Unconvertible:
        return None  # parametrized over a list defined in smolagents itself


# -- the symbolic walk of one test ---------------------------------------------------------------


class _Env:
    """The test's local names, as AST nodes, and literal evaluation over them."""

    def __init__(self, params: dict[str, ast.expr]) -> None:
        self.names: dict[str, ast.expr] = dict(params)

    def resolve(self, node: ast.expr) -> ast.expr:
        while isinstance(node, ast.Name) and node.id in self.names:
            node = self.names[node.id]
        return node

    def literal(self, node: ast.expr) -> Any:
        node = self.resolve(node)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            values = [self.literal(e) for e in node.elts]
            return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](values)
        if isinstance(node, ast.Dict):
            return {self.literal(k): self.literal(v) for k, v in zip(node.keys, node.values, strict=True)
                    if k is not None}  # fmt: skip
        if isinstance(node, ast.Subscript):
            return self.literal(node.value)[self.literal(node.slice)]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self.literal(node.operand)
        if isinstance(node, ast.JoinedStr | ast.Call):
            return self.string(node)
        raise Unconvertible(f"not a literal: {ast.unparse(node)}")

    def literal_keys(self, node: ast.expr) -> set[Any]:
        resolved = self.resolve(node)
        if not isinstance(resolved, ast.Dict):
            return set()
        return {self.literal(k) for k in resolved.keys if k is not None}

    def string(self, node: ast.expr) -> str:
        node = self.resolve(node)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "dedent" and len(node.args) == 1:
            return textwrap.dedent(self.string(node.args[0]))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
            values = {k.arg: self.literal(k.value) for k in node.keywords if k.arg}
            return self.string(node.func.value).format(**values)
        if isinstance(node, ast.JoinedStr):
            return "".join(self._piece(v) for v in node.values)
        raise Unconvertible(f"not a string: {ast.unparse(node)}")

    def _piece(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return str(node.value)
        if isinstance(node, ast.FormattedValue) and node.format_spec is None and node.conversion == -1:
            return str(self.literal(node.value))
        raise Unconvertible(f"f-string piece {ast.unparse(node)}")

    def substituted(self, node: ast.expr) -> ast.expr:
        """`node` with the test's names replaced by their values (parameters, local constants)."""
        env = self

        class Substitute(ast.NodeTransformer):
            def visit_Name(self, name: ast.Name) -> ast.expr:
                return env.substituted(env.names[name.id]) if name.id in env.names else name

            def visit_Subscript(self, sub: ast.Subscript) -> ast.expr:
                return _state_name(env, sub) or self.generic_visit(sub)  # type: ignore[return-value]

            def visit_Call(self, call: ast.Call) -> ast.expr:
                return _generator_check(self.generic_visit(call))  # type: ignore[arg-type]

        return Substitute().visit(_copy(node))  # type: ignore[no-any-return]


def _state_name(env: _Env, node: ast.Subscript) -> ast.Name | None:
    """`state["x"]` (smolagents' variables) is the sandbox's `x`."""
    if isinstance(node.value, ast.Name) and node.value.id == "state":
        return ast.Name(id=env.literal(node.slice), ctx=ast.Load())
    return None


def _generator_check(node: ast.expr) -> ast.expr:
    """`isinstance(g, types.GeneratorType)` becomes `iter(g) is g`: the executor-neutral way to say
    that `g` is a lazy iterator (a list is not its own iterator) without the `types` module."""
    if (isinstance(node, ast.Call) and ast.unparse(node.func) == "isinstance" and len(node.args) == 2
            and ast.unparse(node.args[1]) == "types.GeneratorType"):  # fmt: skip
        subject = node.args[0]
        call = ast.Call(func=ast.Name(id="iter", ctx=ast.Load()), args=[subject], keywords=[])
        return ast.Compare(left=call, ops=[ast.Is()], comparators=[subject])
    return node


def _copy(node: ast.expr) -> ast.expr:
    copied = ast.parse(ast.unparse(node), mode="eval").body
    return copied


class _Walk:
    """Walks a test body statement by statement, turning evaluations into cases."""

    def __init__(self, test: str, line: int, params: dict[str, ast.expr]) -> None:
        self.test, self.line = test, line
        self.env = _Env(params)
        self.cases: list[Case] = []
        self.results: dict[str, Case] = {}  # test-local name -> the case whose result it holds
        self.finals: dict[str, Case] = {}
        self.errors: dict[str, Case] = {}  # `pytest.raises(...) as e` -> the case raising inside
        self.executor: list[str] = []  # the tools sent to a LocalPythonExecutor
        self.expect_error: str | None = None  # inside `pytest.raises(...)`: the expected type ("" unknown)
        self.expect_message = ""  # and smolagents' message for it
        self.raising: str | None = None  # the name of `pytest.raises(...) as e`
        self.patched: str | None = None

    def walk(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.statement(stmt)

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            self.assign(stmt.targets[0], stmt.value)
        elif isinstance(stmt, ast.Expr):
            self.expression(stmt.value)
        elif isinstance(stmt, ast.Assert):
            self.assertion(stmt.test)
        elif isinstance(stmt, ast.With):
            self.with_block(stmt)
        elif isinstance(stmt, ast.For) and any(s in ast.unparse(stmt) for s in _SMOLAGENTS_INTERNALS):
            return
        elif not isinstance(stmt, ast.Pass):
            raise Unconvertible(f"statement {ast.unparse(stmt)[:60]!r}")

    def assign(self, target: ast.expr, value: ast.expr) -> None:
        evaluation = self.evaluation(value)
        if evaluation is not None:
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            if isinstance(names[0], ast.Name):
                self.results[names[0].id] = evaluation
            if len(names) > 1 and isinstance(names[1], ast.Name):
                self.finals[names[1].id] = evaluation
        elif isinstance(value, ast.Call) and ast.unparse(value.func) == "LocalPythonExecutor":
            self.executor = []  # its import list is smolagents' policy: the cases run with any import
        elif isinstance(target, ast.Name):
            self.env.names[target.id] = value
        else:
            raise Unconvertible(f"assignment {ast.unparse(target)}")

    def expression(self, value: ast.expr) -> None:
        if isinstance(value, ast.Constant):  # a docstring
            return
        if self.evaluation(value) is not None:
            return
        call = value if isinstance(value, ast.Call) else None
        name = ast.unparse(call.func) if call else ""
        if call and name == "executor.send_tools":
            self.executor = self.tool_names(call.args[0])
        elif call and name == "self.assertDictEqualNoPrint":
            self.state_equals(call.args[1])
        else:
            raise Unconvertible(f"expression {ast.unparse(value)[:60]!r}")

    # -- evaluations become cases ----------------------------------------------------------------

    def evaluation(self, value: ast.expr) -> Case | None:
        if isinstance(value, ast.Attribute) and value.attr == "output":
            value = value.value
        if not isinstance(value, ast.Call):
            return None
        name = ast.unparse(value.func)
        if name == "evaluate_python_code":
            return self.evaluate_call(value)
        if name == "executor":
            return self.new_case(self.env.string(value.args[0]), None, self.executor)
        return None

    def evaluate_call(self, call: ast.Call) -> Case:
        args = dict(zip(["code", "static_tools", "custom_tools", "state"], call.args, strict=False))
        args.update({k.arg: k.value for k in call.keywords if k.arg})
        tools = [*self.tool_names(args.get("static_tools")), *self.tool_names(args.get("custom_tools"))]
        return self.new_case(self.env.string(args["code"]), args.get("state"), tools)

    def new_case(self, code: str, state: ast.expr | None, tools: list[str]) -> Case:
        number = len(self.cases) + 1
        case = Case(f"{self.test}#{number}", self.test.partition("[")[0], self.line, code=code)
        case.setup = self.setup(state)
        case.tools = sorted(set(tools) - {"final_answer"})
        if "final_answer" in tools:
            case.note = "smolagents passes its own final_answer tool; here final_answer is the executor's"
        if self.expect_error is not None:
            case.expect["error"] = self.expect_error or error_type(self.expect_message, code) or ""
        if self.raising:
            self.errors[self.raising] = case
        if self.patched:
            case.category, case.reason = "not-applicable", self.patched
        self.cases.append(case)
        return case

    def setup(self, state: ast.expr | None) -> str:
        if state is None:
            return ""
        node = self.env.resolve(state)
        if not isinstance(node, ast.Dict):
            raise Unconvertible(f"state {ast.unparse(node)}")
        lines = []
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                raise Unconvertible("state with ** unpacking")
            lines.append(f"{self.env.literal(key)} = {ast.unparse(self.env.substituted(value))}")
        return "\n".join(lines)

    def tool_names(self, node: ast.expr | None) -> list[str]:
        if node is None:
            return []
        node = self.env.resolve(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self.tool_names(node.left) + self.tool_names(node.right)
        if isinstance(node, ast.Name) and node.id == "BASE_PYTHON_TOOLS":
            return []  # smolagents' safe builtins: every executor has Python's own
        if not isinstance(node, ast.Dict):
            raise Unconvertible(f"tools {ast.unparse(node)}")
        names = [self.env.literal(k) for k in node.keys if k is not None]
        known = HOST_TOOLS | {"final_answer"}
        unknown = [n for n in names if n not in known and not hasattr(builtins, n)]
        if unknown:
            raise Unconvertible(f"tools {unknown}")
        return [n for n in names if n in HOST_TOOLS or n == "final_answer"]

    def with_block(self, stmt: ast.With) -> None:
        saved = (self.expect_error, self.patched, self.raising)
        for item in stmt.items:
            context = item.context_expr
            name = ast.unparse(context.func) if isinstance(context, ast.Call) else ""
            if name == "pytest.raises" and isinstance(context, ast.Call):
                self.expect_error, self.expect_message = self.raised_type(context)
                self.raising = item.optional_vars.id if isinstance(item.optional_vars, ast.Name) else None
            elif name == "patch" and isinstance(context, ast.Call):
                self.patched = f"patches smolagents' {self.env.literal(context.args[0]).rsplit('.', 1)[-1]}"
            else:
                raise Unconvertible(f"with {ast.unparse(context)[:60]}")
        self.walk(stmt.body)
        self.expect_error, self.patched, self.raising = saved

    def raised_type(self, call: ast.Call) -> tuple[str, str]:
        kind = self.env.resolve(call.args[0])
        if isinstance(kind, ast.Call) and ast.unparse(kind.func) == "type":  # type(expected_exception)
            instance = self.env.resolve(kind.args[0])
            assert isinstance(instance, ast.Call)
            kind, message = instance.func, self.env.literal(instance.args[0])
        else:
            match = next((k.value for k in call.keywords if k.arg == "match"), None)
            message = self.env.literal(match) if match is not None else ""
        name = ast.unparse(kind)
        if name in _EXCEPTIONS and name != "Exception":
            return name, message
        return error_type(message) or "", message

    # -- asserts become expectations ---------------------------------------------------------

    def assertion(self, test: ast.expr) -> None:
        text = ast.unparse(test)
        if any(s in text for s in _SMOLAGENTS_INTERNALS):
            return  # checks of smolagents' own wrappers and counters
        names = {n.id for n in ast.walk(test) if isinstance(n, ast.Name)}
        if names & set(self.errors):
            return self.error_assertion(test, self.errors[next(iter(names & set(self.errors)))])
        if names & set(self.finals):
            case = self.finals[next(iter(names & set(self.finals)))]
            case.expect["final"] = not (isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not))
            return None
        if "_print_outputs" in text and isinstance(test, ast.Compare):
            self.cases[-1].expect["logs"] = self.env.string(test.comparators[0])
            return None
        if isinstance(test, ast.Compare) and text.endswith(" not in state"):
            self.cases[-1].expect.setdefault("undefined", []).append(self.env.literal(test.left))
            return None
        result = next((self.results[n] for n in names if n in self.results), None)
        self.check(test, result or self.cases[-1], result is not None)
        return None

    def check(self, test: ast.expr, case: Case, on_result: bool) -> None:
        last = _last_expression(case.code)
        as_output = last is not None or "final_answer(" in case.code  # smolagents' result is the answer
        if on_result and as_output and isinstance(test, ast.Compare) and len(test.ops) == 1:
            if isinstance(test.ops[0], ast.Eq | ast.Is):
                try:
                    case.expect["output"] = repr(self.env.literal(test.comparators[0]))
                    return
                except Unconvertible:
                    pass
        result = "" if not on_result else f"({last})" if last is not None else _result_variable(case.code)
        source = ast.unparse(_Rewrite(self.env, set(self.results), result).visit(_copy(test)))
        case.expect.setdefault("checks", []).append(source)

    def state_equals(self, expected: ast.expr) -> None:
        node = self.env.resolve(expected)
        assert isinstance(node, ast.Dict)
        for key, value in zip(node.keys, node.values, strict=True):
            name = self.env.literal(key) if key is not None else None
            if name and name != "_operations_count":
                check = f"{name} == {ast.unparse(self.env.substituted(value))}"
                self.cases[-1].expect.setdefault("checks", []).append(check)

    def error_assertion(self, test: ast.expr, case: Case) -> None:
        if isinstance(test, ast.BoolOp):
            test = test.values[0]
        if not (isinstance(test, ast.Compare) and isinstance(test.ops[0], ast.In)):
            raise Unconvertible(f"error assert {ast.unparse(test)}")
        fragment = self.env.literal(test.left)  # compared with str(e), or (a slip in one test) with e
        case.note = (case.note + "; " if case.note else "") + f"smolagents' message contains {fragment!r}"
        if not case.expect.get("error"):
            case.expect["error"] = error_type(fragment, case.code) or ""


class _Rewrite(ast.NodeTransformer):
    """An assert, as an expression over the sandbox's variables."""

    def __init__(self, env: _Env, results: set[str], result: str) -> None:
        self.env, self.results, self.result = env, results, result

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in self.results:
            return ast.parse(self.result, mode="eval").body
        if node.id in self.env.names:
            return self.env.substituted(self.env.names[node.id])
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        return _state_name(self.env, node) or self.generic_visit(node)  # type: ignore[return-value]

    def visit_Call(self, node: ast.Call) -> ast.expr:
        return _generator_check(self.generic_visit(node))  # type: ignore[arg-type]


def _last_expression(code: str) -> str | None:
    body = ast.parse(code).body
    return ast.unparse(body[-1].value) if body and isinstance(body[-1], ast.Expr) else None


def _result_variable(code: str) -> str:
    """smolagents' result of code that ends in a statement: the last name assigned."""
    last = ast.parse(code).body[-1]
    for node in reversed(list(ast.walk(last))):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            names = [t for t in targets if isinstance(t, ast.Name)]
            if names:
                return names[-1].id
    raise Unconvertible(f"no result variable in {ast.unparse(last)[:60]!r}")


def error_type(fragment: str, code: str = "") -> str | None:
    """CPython's exception type for smolagents' error message `fragment`, when it can be known."""
    named = re.search(r"\b([A-Z]\w*(?:Error|Exception|Exit))\b", fragment)
    if named and named.group(1) in _EXCEPTIONS:
        return named.group(1)
    for wording, kind in _ERROR_WORDING:
        if wording in fragment:
            return kind
    text = fragment.removeprefix(".*")
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and text in ast.unparse(node.exc):
            return ast.unparse(node.exc.func)
    return None


# -- tests converted by their own rule ---------------------------------------------------------------


def _cases_of_internal(
    test: str, line: int, params: dict[str, ast.expr], func: ast.FunctionDef
) -> list[Case]:
    """Unit tests of smolagents' evaluate_* functions: each is code + state + expected value."""
    env = _Env(params)
    walk = _Walk(test, line, params)
    code = next(env.string(n.args[0]) for n in ast.walk(func) if isinstance(n, ast.Call)
                and ast.unparse(n.func) == "ast.parse")  # fmt: skip
    state = params.get("state") or next(
        n.value for n in func.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "state"
    )
    case = walk.new_case(code, state, [])
    if "str" in env.literal_keys(state) and "st[" in code:
        case.category, case.reason = "not-applicable", _AUTOCORRECT
    expected = params.get("expected_result") or params.get("expectation") or params.get("expected_exception")
    expected = expected or params.get("expected_error_message")
    if "boolop" in test:
        names = {n: env.literal(params[n]) for n in "abc"}
        case.expect["output"] = repr(eval(code, {"__builtins__": {}}, names))  # smolagents' own constant test
    elif "error" in test or "exception" in test:
        assert expected is not None
        node = env.resolve(expected)
        message = env.literal(node.args[0]) if isinstance(node, ast.Call) else env.literal(node)
        kind = ast.unparse(node.func) if isinstance(node, ast.Call) else ""
        case.expect["error"] = kind if kind in _EXCEPTIONS else error_type(message) or ""
    elif "delete" in test:
        _delete_expectation(case, env, expected)
    else:
        assert expected is not None
        _value_expectation(case, env, expected)
    if THIRD_PARTY.search(case.setup):
        case.category = "third-party"
        case.setup = "import numpy as np\nimport pandas as pd\n" + case.setup
    return [case]


def _delete_expectation(case: Case, env: _Env, expected: ast.expr | None) -> None:
    assert expected is not None
    node = env.resolve(expected)
    if isinstance(node, ast.Call):  # InterpreterError("Cannot delete name 'x': name is not defined")
        case.expect["error"] = error_type(env.literal(node.args[0])) or ""
        return
    before = {line.partition(" = ")[0] for line in case.setup.splitlines()}
    after = env.literal(node)
    case.expect["checks"] = [f"{k} == {v!r}" for k, v in after.items()]
    case.expect["undefined"] = sorted(before - set(after))


def _value_expectation(case: Case, env: _Env, expected: ast.expr) -> None:
    try:
        case.expect["output"] = repr(env.literal(expected))
    except Unconvertible:  # a numpy / pandas value: compare element-wise
        source = ast.unparse(env.resolve(expected))
        method = "equals" if "pd." in source else None
        if method:
            case.expect["checks"] = [f"({case.code}).equals({source})"]
        else:
            case.expect["checks"] = [f"bool((({case.code}) == ({source})).all())"]
        case.category = "third-party"


def _cases_of_print_container(test: str, line: int, func: ast.FunctionDef, container: str) -> list[Case]:
    """TestPrintContainer tests smolagents' PrintContainer class: with the class's source as setup,
    each test is a user class exercised through += and len(), str() and repr()."""
    code = "\n".join(ast.unparse(s) for s in func.body if not isinstance(s, ast.Assert))
    checks = [ast.unparse(s.test) for s in func.body if isinstance(s, ast.Assert)]
    case = Case(f"{test}#1", test, line, setup=container, code=code, expect={"checks": checks})
    case.note = "the class under test is smolagents' PrintContainer, pure Python, run as user code"
    return [case]


_INTERNAL = ("TestEvaluateBoolop", "TestEvaluateDelete", "TestEvaluateCondition", "TestEvaluateSubscript")
_MANUAL: dict[str, Callable[[str, int], list[Case]]] = {
    "TestEvaluatePythonCode::test_access_attributes": lambda test, line: [
        Case(f"{test}#1", test, line, setup="class A:\n    attr = 2", code="A.attr", expect={"output": "2"},
             note="the test defines class A in the test and passes it in the state")
    ],
    "TestEvaluatePythonCode::test_final_answer_accepts_kwarg_answer": lambda test, line: [
        Case(f"{test}#1", test, line, code="final_answer(answer=2)", expect={"final": True, "output": "2"},
             note="smolagents' test passes a final_answer tool that doubles its argument; the "
             "executor's own final_answer returns it unchanged")
    ],
    "TestLocalPythonExecutor::test_state_name": lambda test, line: [
        Case(f"{test}#1", test, line, code="__name__", expect={"output": "'__main__'"})
    ],
}  # fmt: skip
_CUSTOM_CLASS = {  # the test defines class Custom in its body, with or without __getitem__
    "0": ("class Custom:\n    def __getitem__(self, key):\n        return key * 10\nobj = Custom()",
          {"output": "20"}),
    "1": ("class Custom:\n    pass\nobj = Custom()", {"error": "TypeError"}),
}  # fmt: skip


# -- the whole file --------------------------------------------------------------------------------


def extract(source_dir: Path) -> dict[str, Any]:
    test_text = (source_dir / TEST_FILE).read_text()
    executor_text = (source_dir / EXECUTOR_FILE).read_text()
    container = _print_container_source(executor_text)
    cases: list[Case] = []
    not_applicable: list[dict[str, Any]] = []
    for owner, func in _tests(ast.parse(test_text)):
        test = f"{owner}::{func.name}" if owner else func.name
        reason = NOT_APPLICABLE.get(test) or NOT_APPLICABLE.get(owner or "")
        if reason:
            not_applicable.append({"test": test, "line": func.lineno, "instances": count_instances(func),
                                   "reason": reason})  # fmt: skip
            continue
        cases += _convert(test, owner, func, container)
    for case in cases:
        _finish(case)
    return {
        "source": {"project": "smolagents", "version": VERSION, "file": TEST_FILE,
                   "sha256": hashlib.sha256(test_text.encode()).hexdigest(), "licence": "Apache-2.0"},
        "cases": [asdict(c) for c in cases],
        "not_applicable_tests": not_applicable,
    }  # fmt: skip


def _tests(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef]]:
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                    yield node.name, item
        elif isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            yield "", node


def _convert(test: str, owner: str, func: ast.FunctionDef, container: str) -> list[Case]:
    if test in _MANUAL:
        return _MANUAL[test](test, func.lineno)
    if owner == "TestPrintContainer":
        return _cases_of_print_container(test, func.lineno, func, container)
    cases: list[Case] = []
    for suffix, params in parametrizations(func):
        name = f"{test}{suffix}"
        if test == "TestEvaluateSubscript::test_evaluate_subscript_with_custom_class":
            setup, expect = _CUSTOM_CLASS[suffix.strip("[]")]
            cases.append(Case(f"{name}#1", test, func.lineno, setup=setup, code="obj[2]", expect=expect))
        elif owner in _INTERNAL:
            cases += _cases_of_internal(name, func.lineno, params, func)
        else:
            walk = _Walk(name, func.lineno, params)
            try:
                walk.walk(func.body)
            except Unconvertible as exc:
                raise Unconvertible(f"{name}: {exc}") from None
            cases += walk.cases
    return cases


def _finish(case: Case) -> None:
    """Category and the last consistency checks of one case."""
    if case.id in CASE_NOT_APPLICABLE:
        case.category, case.reason = "not-applicable", CASE_NOT_APPLICABLE[case.id]
    case.expect.update(CASE_EXPECT.get(case.id, {}))
    for key in ("checks", "undefined"):
        if key in case.expect:
            case.expect[key] = list(dict.fromkeys(case.expect[key])) or None
    case.expect = {k: v for k, v in case.expect.items() if v is not None}
    text = "\n".join([case.setup, case.code, *case.expect.get("checks", [])])
    if case.category == "stdlib" and THIRD_PARTY.search(text):
        case.category = "third-party"
    if case.category == "third-party" and "np." in " ".join(case.expect.get("checks", [])):
        case.expect["check_setup"] = "import numpy as np"
    if case.category != "not-applicable" and case.expect.get("error") == "":
        raise Unconvertible(f"{case.id}: an expected error whose Python type is unknown")
    if case.category != "not-applicable" and not case.expect and case.note == "":
        case.note = "smolagents only requires that the code runs"


def _print_container_source(executor_text: str) -> str:
    tree = ast.parse(executor_text)
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "PrintContainer")
    segment = ast.get_source_segment(executor_text, node)
    assert segment is not None
    return segment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, help="a smolagents checkout or unpacked sdist")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        source = args.source or fetch_sdist(Path(scratch))
        data = extract(source)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for case in data["cases"]:
        counts[case["category"]] = counts.get(case["category"], 0) + 1
    print(f"{len(data['cases'])} cases {counts}; {len(data['not_applicable_tests'])} tests not applicable")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
