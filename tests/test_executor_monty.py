"""MontyExecutor: the default sandbox. Real Monty workers throughout; nothing is mocked."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from codeloop.agents.run import short_repr
from codeloop.errors import ConfigurationError, ExecutorError, ManagedAgentError
from codeloop.executors.base import Executor, ExecutorLimits
from codeloop.executors.monty import HOST_MODULES, MONTY_MODULES, MontyExecutor
from codeloop.executors.monty.walk import TooLarge, measure

from redteam import HARMLESS_TOOLS, Arena, attack, load_payloads

LIMITS = ExecutorLimits(timeout_s=0.5, memory_bytes=64 * 2**20, max_output_chars=200, max_recursion_depth=200)


class Calls:
    """Host functions that record how they were called."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.loops: list[asyncio.AbstractEventLoop] = []

    def add(self, a: int, b: int = 0) -> int:
        self.log.append(("add", (a, b)))
        return a + b

    async def fetch(self, key: str, delay: float = 0.0) -> str:
        self.loops.append(asyncio.get_running_loop())
        await asyncio.sleep(delay)
        self.log.append(("fetch", key))
        return f"value of {key}"

    def fail(self, kind: str = "value") -> None:
        if kind == "managed":
            raise ManagedAgentError("the researcher gave up after 3 steps")
        raise ValueError("bad input: 42")

    def opaque(self) -> object:
        return object()

    def functions(self) -> dict[str, Any]:
        return {"add": self.add, "fetch": self.fetch, "fail": self.fail, "opaque": self.opaque}


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture(params=["pooled", "process"])
async def ex(calls: Calls, request: pytest.FixtureRequest) -> AsyncIterator[MontyExecutor]:
    """Each contract test runs on a pooled session and on one with a worker process of its own."""
    executor = MontyExecutor(LIMITS, pooled=request.param == "pooled")
    await executor.start(calls.functions())
    yield executor
    await executor.close()


async def test_implements_the_executor_protocol(ex: MontyExecutor) -> None:
    assert isinstance(ex, Executor)


# -- state, values, output -------------------------------------------------------------------


async def test_state_persists_between_runs(ex: MontyExecutor) -> None:
    assert (await ex.run("x = 20\ndef double(v):\n    return v * 2")).error is None
    out = await ex.run("y = double(x) + 2\ny")
    assert out.output == 42 and out.error is None and not out.is_final_answer


async def test_value_of_last_expression_and_none_otherwise(ex: MontyExecutor) -> None:
    assert (await ex.run("[i * i for i in range(4)]")).output == [0, 1, 4, 9]
    assert (await ex.run("z = 1")).output is None


async def test_print_is_captured(ex: MontyExecutor) -> None:
    out = await ex.run("print('hello', 1 + 1)\nprint('second line')")
    assert out.logs == "hello 2\nsecond line\n"


async def test_long_output_keeps_head_and_tail(ex: MontyExecutor) -> None:
    out = await ex.run("print('HEAD' + 'x' * 1000 + 'TAIL')")
    assert out.logs.startswith("HEAD") and out.logs.rstrip().endswith("TAIL")
    assert "[output truncated: 809 more chars]" in out.logs  # 1009 chars printed, 200 kept
    assert len(out.logs) < 300


async def test_send_variables_become_globals(ex: MontyExecutor) -> None:
    await ex.send_variables({"document": "a b c", "weights": [1, 2, 3]})
    assert (await ex.run("len(document.split()) + sum(weights)")).output == 9


async def test_send_variables_refuses_opaque_objects(ex: MontyExecutor) -> None:
    with pytest.raises(ConfigurationError, match="cannot be sent"):
        await ex.send_variables({"handle": object()})


# -- host functions --------------------------------------------------------------------------


async def test_sync_and_async_tools(ex: MontyExecutor, calls: Calls) -> None:
    out = await ex.run("s = add(2, b=3)\nv = fetch('k')\nprint(s, v)\nv")
    assert out.error is None and out.output == "value of k" and out.logs == "5 value of k\n"
    assert calls.log == [("add", (2, 3)), ("fetch", "k")]
    assert calls.loops == [asyncio.get_running_loop()]  # awaited in the host's own event loop


async def test_tools_can_be_passed_around_and_awaited(ex: MontyExecutor) -> None:
    out = await ex.run("f = add\nr = await fetch('a')\n(f(1, 1), r)")
    assert out.error is None and out.output == (2, "value of a")


async def test_awaited_tools_run_concurrently(ex: MontyExecutor) -> None:
    code = (
        "import asyncio\n"
        "async def get(k):\n    return await fetch(k, 0.3)\n"
        "await asyncio.gather(get('a'), get('b'), get('c'))"
    )
    started = time.monotonic()
    out = await ex.run(code)
    assert out.error is None and out.output == ["value of a", "value of b", "value of c"]
    assert time.monotonic() - started < 0.8  # three 0.3 s calls overlapped


async def test_tools_are_rebound_each_run(ex: MontyExecutor) -> None:
    assert (await ex.run("add = add(1, 2)\nadd")).output == 3  # the model shadowed its tool...
    assert (await ex.run("add(2, 2)")).output == 4  # ...and gets it back in the next step


async def test_start_again_gives_a_fresh_session(ex: MontyExecutor, calls: Calls) -> None:
    await ex.run("x = 1")
    await ex.start({"add": calls.add})
    out = await ex.run("x")
    assert out.error is not None and out.error.type == "NameError"
    assert (await ex.run("fetch('a')")).error is not None  # only the new functions exist


async def test_raising_tool_is_an_exception_in_the_snippet(ex: MontyExecutor) -> None:
    code = (
        "try:\n    fail('managed')\nexcept Exception as e:\n    print('handled:', e)\n"
        "try:\n    fail()\nexcept ValueError as e:\n    print('value error:', e)"
    )
    out = await ex.run(code)
    assert out.error is None
    handled = "handled: ManagedAgentError: the researcher gave up after 3 steps\n"
    assert out.logs == handled + "value error: bad input: 42\n"


async def test_uncaught_tool_error_names_its_type(ex: MontyExecutor) -> None:
    out = await ex.run("x = 1\nfail('managed')")
    assert out.error is not None
    assert out.error.type == "ManagedAgentError"
    assert out.error.message == "the researcher gave up after 3 steps"
    assert out.error.line == 2 and out.error.source_line == "fail('managed')"
    out = await ex.run("fail()")
    assert out.error is not None and (out.error.type, out.error.message) == ("ValueError", "bad input: 42")


async def test_opaque_tool_result_is_a_type_error(ex: MontyExecutor) -> None:
    out = await ex.run("opaque()")
    assert out.error is not None and out.error.type == "TypeError"
    assert "opaque() returned a object object, which cannot enter the sandbox" in out.error.message


async def test_value_monty_rejects_is_a_type_error(
    ex: MontyExecutor, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codeloop.executors.monty.executor as monty_module

    async def unchecked(value: Any, source: str | None = None) -> Any:
        return value

    monkeypatch.setattr(monty_module, "to_sandbox_async", unchecked)  # skip the pre-check
    out = await ex.run("try:\n    opaque()\nexcept TypeError as e:\n    print('refused:', e)")
    assert (
        out.error is None and out.logs == "refused: opaque() returned a value that cannot enter the sandbox\n"
    )
    assert (await ex.run("print(1 + 1)")).logs == "2\n"


async def test_snippet_error_after_a_tool_call_is_reported(ex: MontyExecutor) -> None:
    out = await ex.run("v = add(1, 2)\nw = v / 0")
    assert out.error is not None and (out.error.type, out.error.line) == ("ZeroDivisionError", 2)
    assert (await ex.run("v")).output == 3


async def test_unknown_function_is_a_name_error(ex: MontyExecutor) -> None:
    out = await ex.run("print('a')\nsearch_web('x')")
    assert out.logs == "a\n" and out.error is not None
    assert (out.error.type, out.error.line) == ("NameError", 2)


# -- final_answer -----------------------------------------------------------------------------


async def test_final_answer_ends_the_snippet(ex: MontyExecutor, calls: Calls) -> None:
    out = await ex.run("print('before')\nfinal_answer({'n': 3})\nprint('after')\nadd(1, 1)")
    assert out.is_final_answer and out.output == {"n": 3} and out.error is None
    assert out.logs == "before\n" and calls.log == []


@pytest.mark.parametrize(
    "code",
    [
        "try:\n    final_answer(1)\nexcept Exception:\n    print('caught')\nprint('after')",
        "try:\n    final_answer(1)\nexcept:\n    print('caught')\nadd(1, 1)",
        "try:\n    final_answer(1)\nexcept BaseException as e:\n    print('caught', e)\nadd(1, 1)",
        "try:\n    final_answer(1)\nfinally:\n    print('finally')\n    add(1, 1)\n    print('still here')",
        "def end():\n    try:\n        final_answer(1)\n    except:\n        final_answer(2)\n"
        "end()\nadd(1, 1)",
        "try:\n    await final_answer(1)\nexcept:\n    pass\nprint('after')",
    ],
    ids=["except-Exception", "bare-except", "except-BaseException", "finally", "nested-retry", "await"],
)
async def test_final_answer_cannot_be_caught(ex: MontyExecutor, calls: Calls, code: str) -> None:
    out = await ex.run("kept = 'yes'\n" + code)
    assert out.is_final_answer and out.output == 1 and out.error is None
    assert out.logs == "" and calls.log == []  # nothing after final_answer reached the host
    after = await ex.run("kept")  # the session carries on, with state from before final_answer
    assert after.error is None and after.output == "yes" and not after.is_final_answer


async def test_final_answer_then_a_runaway_handler_still_answers(ex: MontyExecutor) -> None:
    out = await ex.run("try:\n    final_answer('done')\nexcept:\n    while True:\n        pass")
    assert out.is_final_answer and out.output == "done"
    assert (await ex.run("print(1 + 1)")).logs.endswith("2\n")


async def test_final_answer_tool_from_caller_is_ignored(calls: Calls) -> None:
    executor = MontyExecutor(LIMITS)
    await executor.start({**calls.functions(), "final_answer": lambda answer: "hijacked"})
    try:
        out = await executor.run("final_answer(5)")
    finally:
        await executor.close()
    assert out.is_final_answer and out.output == 5


# -- limits ------------------------------------------------------------------------------------


async def test_infinite_loop_hits_the_time_limit_and_restarts(ex: MontyExecutor) -> None:
    await ex.send_variables({"task_input": 7})
    await ex.run("x = 1")
    started = time.monotonic()
    out = await ex.run("while True:\n    pass")
    assert time.monotonic() - started < 3
    assert out.error is not None
    assert (out.error.type, out.error.limit, out.error.state_lost) == ("TimeoutError", "timeout_s", True)
    assert "0.5 s time limit" in out.error.message and "restarted" in out.error.describe()
    out = await ex.run("print(1 + 1)\ntask_input")
    assert out.error is None and out.logs == "2\n" and out.output == 7  # fresh session, variables re-sent
    lost = await ex.run("x")
    assert lost.error is not None and lost.error.type == "NameError"


async def test_tool_call_loop_hits_the_wall_clock_backstop(ex: MontyExecutor, calls: Calls) -> None:
    # Each round trip costs the sandbox almost no time of its own, so Monty's clock alone would let
    # this spin for a long time; the executor also bounds the time spent driving the sandbox.
    started = time.monotonic()
    out = await ex.run("while True:\n    add(1, 1)")
    assert time.monotonic() - started < 4
    assert out.error is not None and out.error.limit == "timeout_s" and out.error.state_lost
    assert len(calls.log) > 100
    assert (await ex.run("print(1 + 1)")).logs == "2\n"


async def test_memory_bomb_hits_the_memory_limit(ex: MontyExecutor) -> None:
    await ex.run("x = 1")
    out = await ex.run("blocks = []\nwhile True:\n    blocks.append('x' * (8 * 1024 * 1024))")
    assert out.error is not None
    assert (out.error.type, out.error.limit, out.error.line) == ("MemoryError", "memory_bytes", 3)
    assert "64 MiB memory limit" in out.error.message
    assert (await ex.run("x + 1")).output == 2


async def test_oversized_tool_arguments_kill_only_the_worker(ex: MontyExecutor, calls: Calls) -> None:
    await ex.run("x = 1")
    out = await ex.run("add(list(range(2_000_000)))")  # fits the heap; serialising it does not
    assert out.error is not None and out.error.limit == "memory_bytes" and out.error.state_lost
    assert calls.log == []
    assert (await ex.run("print(1 + 1)")).logs == "2\n"


async def test_huge_integer_is_stopped(ex: MontyExecutor) -> None:
    out = await ex.run("n = 10 ** (10 ** 8)")
    assert out.error is not None and out.error.limit in ("memory_bytes", "timeout_s")
    assert (await ex.run("print(1 + 1)")).logs == "2\n"


async def test_deep_recursion_is_stopped(ex: MontyExecutor) -> None:
    out = await ex.run("def r(n):\n    return r(n + 1) + 1\nr(0)")
    assert out.error is not None
    assert (out.error.type, out.error.limit, out.error.line) == ("RecursionError", "max_recursion_depth", 2)
    assert "(200)" in out.error.message and "loop" in out.error.message
    assert (await ex.run("r")).error is None  # the function survives: no restart needed


async def test_output_flood_is_stopped(ex: MontyExecutor) -> None:
    out = await ex.run("while True:\n    print('y' * 100000)")
    # Whether the session also had to be restarted depends on how fast the cap was reached.
    assert out.error is not None and out.error.limit == "max_output_chars"
    assert "[output truncated:" in out.logs and len(out.logs) < 300
    assert (await ex.run("print(1 + 1)")).logs == "2\n"


async def test_cancelled_run_leaves_a_working_executor(ex: MontyExecutor) -> None:
    task = asyncio.ensure_future(ex.run("fetch('slow', 5)"))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    out = await ex.run("print(1 + 1)")
    assert out.error is None and out.logs.endswith("2\n") and "restarted" in out.logs


# -- errors the model can act on ---------------------------------------------------------------


async def test_syntax_error_gives_the_line(ex: MontyExecutor) -> None:
    out = await ex.run("a = 1\nif a\n    print(a)")
    assert out.error is not None and out.error.type == "SyntaxError"
    assert out.error.line == 2 and "Expected `:`" in out.error.message


async def test_runtime_error_gives_the_failing_line(ex: MontyExecutor) -> None:
    out = await ex.run("a = 1\nb = 0\nc = a / b")
    assert out.error is not None
    assert out.error.describe() == "ZeroDivisionError (line 3: c = a / b): division by zero"


async def test_error_inside_an_earlier_function_says_so(ex: MontyExecutor) -> None:
    await ex.run("def ratio(v):\n    return 1 / v")
    out = await ex.run("ratio(0)")
    assert out.error is not None and out.error.line == 1
    assert "raised in ratio() from an earlier step, line 2" in out.error.message


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("x = 1\ndel x", "rebind the name instead"),
        ("class C:\n    pass\nc = C()\nc.a = 1\ndel c.a", "rebind the name instead"),
        ("def gen():\n    yield 1", "build and return a list instead"),
        ("class A:\n    pass\nclass B(A):\n    pass", "class inheritance is not supported"),
        ("class MyError(Exception):\n    pass", "raise built-in exceptions such as ValueError"),
        ("class P:\n    @property\n    def x(self):\n        return 1", "use plain methods"),
        ("class P:\n    @staticmethod\n    def x():\n        return 1", "module-level functions"),
        ("import heapq", "bisect.insort()"),
        ("from fractions import Fraction", "decimal.Decimal"),
        ("import calendar", "use datetime"),
        ("import numpy as np", "Importable modules: asyncio"),
        ("import numpy as np", "third-party packages are not available in this sandbox"),
        ("import pandas", "create it with executor='jail' to use numpy, pandas"),
        ("from queue import Queue", "use collections.deque"),
        ("import zoneinfo", "part of the standard library"),
        ("import zoneinfo", "executor='jail' runs full CPython"),
        ("import types", "use a dict or a small class"),
        ("x = 1\n!pip install numpy", "packages cannot be installed here"),
        ("%pip install requests", "use the standard library"),
        ("pip install requests", "packages cannot be installed here"),
        ("import requests", "use the tools for files and the web"),
        ("class P:\n    def __lt__(self, o):\n        return True\nsorted([P(), P()])", "key=lambda c"),
        ("class P:\n    def __getattr__(self, n):\n        return 1\nP().x", "obj.get('name')"),
        ("class P:\n    def __format__(self, s):\n        return ''\nf'{P():x}'", "f'{obj.value:.2f}'"),
        ("class P:\n    def __reversed__(self):\n        return []\nreversed(P())", "reversed(list(obj))"),
        ("class T:\n    d = {}\n    d['k'] = 1", "set attributes or items of a class variable after"),
        ("class T:\n    x = 1\n    print(x)", "move other statements after the class statement"),
        ("callable(len)", "`callable` is a Python builtin that this sandbox does not provide"),
        ("input('name? ')", "there is no user to ask"),
        ("class C:\n    pass\nisinstance(C, type)", "Classes are not instances of `type` here"),
        ("open('notes.txt').read()", "no file system"),
        ("import os\nos.environ['HOME']", "no file system, environment or network access"),
        ("import asyncio\nawait asyncio.gather(add(1, 2), add(3, 4))", "wrap each call in an `async def`"),
    ],
)
async def test_unsupported_python_gets_a_rewrite_hint(ex: MontyExecutor, code: str, hint: str) -> None:
    out = await ex.run(code)
    assert out.error is not None and hint in out.error.message, out.error


async def test_shell_escape_gets_its_own_message_on_its_line(ex: MontyExecutor) -> None:
    out = await ex.run("import json\n!pip install requests\nprint(1)")
    assert out.error is not None and (out.error.type, out.error.line) == ("SyntaxError", 2)
    assert out.error.message.startswith("`!pip install requests` is a shell command, not Python")
    plain = await ex.run("if True\n    pass")  # an ordinary syntax error keeps Monty's own message
    assert plain.error is not None and "Expected `:`" in plain.error.message


async def test_ordering_hint_only_when_a_class_defines_the_method(ex: MontyExecutor) -> None:
    out = await ex.run("class P:\n    pass\nP() < P()")
    assert out.error is not None and out.error.type == "TypeError"
    assert out.error.message == "'<' not supported between instances of 'P' and 'P'"


async def test_endless_generator_source_in_an_eager_position_gets_a_note(ex: MontyExecutor) -> None:
    out = await ex.run("import itertools\ntotal = sum(x for x in itertools.count() if x > 5)")
    assert out.error is not None and out.error.limit in ("memory_bytes", "timeout_s")
    assert out.error.line == 2 and "computed all at once in this sandbox" in out.error.message
    assert "itertools.islice(source, n)" in out.error.message
    loop = await ex.run("while True:\n    pass")  # a plain endless loop gets no such note
    assert loop.error is not None and "computed all at once" not in loop.error.message


# -- rewrites: what Monty would get wrong, made right ------------------------------------------

ACCUMULATOR = (
    "class Acc:\n"
    "    def __init__(self):\n        self.items = []\n"
    "    def __iadd__(self, other):\n        self.items.append(other)\n        return self\n"
    "    def __isub__(self, other):\n        return NotImplemented\n"
    "    def __sub__(self, other):\n        return 'binary fallback'\n"
)


async def test_in_place_operators_call_the_class_method(ex: MontyExecutor) -> None:
    out = await ex.run(ACCUMULATOR + "a = Acc()\nalias = a\na += 1\na += 2\n(alias.items, a is alias)")
    assert out.error is None and out.output == ([1, 2], True)
    out = await ex.run("b = Acc()\nb -= 1\nb")  # NotImplemented falls back to __sub__, as in CPython
    assert out.error is None and out.output == "binary fallback"


async def test_in_place_operators_keep_builtin_semantics(ex: MontyExecutor) -> None:
    await ex.run(ACCUMULATOR)  # from here on, += is rewritten in this session
    code = (
        "lst = [1]\nalias = lst\nlst += [2]\nn = 5\nn += 2\ns = 'a'\ns += 'b'\n"
        "d = {'k': 1}\nd['k'] += 4\n(alias, lst is alias, n, s, d)"
    )
    out = await ex.run(code)
    assert out.error is None and out.output == ([1, 2], True, 7, "ab", {"k": 5})
    out = await ex.run("counts = [1, 2, 3]\ncounts += 1")
    assert out.error is not None and out.error.type == "TypeError" and out.error.line == 2
    assert out.error.source_line == "counts += 1"  # the model's line, not the rewritten one


async def test_in_place_target_is_evaluated_once(ex: MontyExecutor) -> None:
    code = (
        ACCUMULATOR + "calls = []\nboxes = {'x': Acc()}\n"
        "def key():\n    calls.append('key')\n    return 'x'\n"
        "def box():\n    calls.append('box')\n    return boxes\n"
        "box()[key()] += 7\nholder = Acc()\nholder.inner = Acc()\nholder.inner += 'y'\n"
        "(calls, boxes['x'].items, holder.inner.items)"
    )
    out = await ex.run(code)
    assert out.error is None and out.output == (["box", "key"], [7], ["y"])


async def test_error_inside_a_rewritten_statement_names_the_model_s_code(ex: MontyExecutor) -> None:
    await ex.run("class Bad:\n    def __iadd__(self, other):\n        return 1 / 0\nb = Bad()")
    out = await ex.run("x = 1\nb += 1")
    assert out.error is not None and out.error.type == "ZeroDivisionError"
    assert out.error.line == 2 and out.error.source_line == "b += 1"
    assert "raised in __iadd__() from an earlier step, line 3" in out.error.message
    assert "_codeloop" not in out.error.describe()


async def test_user_len_and_truthiness(ex: MontyExecutor) -> None:
    code = (
        "class Box:\n    def __init__(self, n):\n        self.n = n\n"
        "    def __len__(self):\n        return self.n\n"
        "class Flag:\n    def __bool__(self):\n        return False\n"
        "empty, full = Box(0), Box(3)\n"
        "(len(full), bool(empty), bool(full), bool(Flag()), 'yes' if full else 'no', not empty,\n"
        " [b.n for b in (empty, full) if b], sorted([full, empty], key=len)[0].n, len([1, 2]))"
    )
    out = await ex.run(code)
    assert out.error is None
    assert out.output == (3, False, True, False, "yes", True, [3], 0, 2)
    out = await ex.run("if Flag():\n    r = 'wrong'\nelse:\n    r = 'right'\nwhile Flag():\n    pass\nr")
    assert out.error is None and out.output == "right"


async def test_a_rebound_len_is_left_alone(ex: MontyExecutor) -> None:
    await ex.run("class Box:\n    def __len__(self):\n        return 1\ndef len(x):\n    return 'mine'")
    assert (await ex.run("len([1, 2])")).output == "mine"


async def test_generator_expressions_are_lazy_where_it_shows(ex: MontyExecutor) -> None:
    code = (
        "import itertools\n"
        "evens = (x for x in itertools.count() if x % 2 == 0)\n"
        "it = iter(evens)\nfirst = [next(it) for _ in range(3)]\n"
        "found = next(n for n in itertools.count(10) if n % 7 == 0)\n"
        "hit = any(n > 100 for n in itertools.count())\n"
        "taken = list(itertools.islice((n * n for n in itertools.count()), 4))\n"
        "pairs = [k + str(v) for k, v in ((k, v) for k, v in {'a': 1, 'b': 2}.items())]\n"
        "for big in (n for n in itertools.count() if n > 3):\n    break\n"
        "(first, found, hit, taken, pairs, big)"
    )
    out = await ex.run(code)
    assert out.error is None
    assert out.output == ([0, 2, 4], 14, True, [0, 1, 4, 9], ["a1", "b2"], 4)
    shown = await ex.run("print(evens)")
    assert shown.logs == "<generator object <genexpr>>\n"


async def test_a_lazy_generator_cannot_reach_the_host(ex: MontyExecutor, calls: Calls) -> None:
    for code in ["g = (x for x in [1, 2])\nadd(g)", "g = (x for x in [1, 2])\nadd(1, b={'k': g})"]:
        out = await ex.run(code)
        assert out.error is not None and out.error.type == "TypeError"
        assert out.error.message == "a generator cannot be passed to add(): pass list(...) of it instead"
    out = await ex.run("g = (x for x in [1, 2])\nfinal_answer(g)")
    assert not out.is_final_answer and out.error is not None and "pass list(...)" in out.error.message
    out = await ex.run("g = (x for x in [1, 2])\nfinal_answer(list(g))")
    assert out.is_final_answer and out.output == [1, 2] and calls.log == []


async def test_lazy_generator_errors_and_exhaustion(ex: MontyExecutor) -> None:
    out = await ex.run("g = (1 / x for x in [1, 0])\nnext(g)\nnext(g)")
    assert out.error is not None and (out.error.type, out.error.line) == ("ZeroDivisionError", 1)
    out = await ex.run("g = (x for x in [])\nnext(g, 'done')")
    assert out.error is None and out.output == "done"
    out = await ex.run("g = (a for a, b in [(1, 2, 3)])\nnext(g)")
    assert out.error is not None and out.error.type == "ValueError"
    assert out.error.message == "too many values to unpack (expected 2)"


async def test_item_deletion_works(ex: MontyExecutor) -> None:
    code = (
        "lst = [0, 1, 2, 3, 4, 5]\nalias = lst\ndel lst[1]\ndel lst[::2]\n"
        "d = {'a': 1, 'b': 2}\ndel d['a'], lst[0]\n"
        "class Box:\n    def __init__(self):\n        self.gone = []\n"
        "    def __delitem__(self, key):\n        self.gone.append(key)\n"
        "box = Box()\ndel box['k']\n(alias, d, box.gone)"
    )
    out = await ex.run(code)
    assert out.error is None and out.output == ([4], {"b": 2}, ["k"])
    for snippet, kind, message in [
        ("x = [1]\ndel x[3]", "IndexError", "list assignment index out of range"),
        ("x = {}\ndel x['k']", "KeyError", "'k'"),
        ("s = 'abc'\ndel s[0]", "TypeError", "'str' object doesn't support item deletion"),
    ]:
        out = await ex.run(snippet)
        assert out.error is not None and (out.error.type, out.error.message) == (kind, message)
        assert out.error.line == 2 and out.error.source_line == snippet.splitlines()[1]


async def test_host_modules_fill_monty_gaps(ex: MontyExecutor) -> None:
    code = (
        "import statistics, string, textwrap, stat\nfrom statistics import median\n"
        "(statistics.mean([1, 2, 6]), median([3, 1, 2]), string.ascii_lowercase[:3],\n"
        " textwrap.dedent('  a'), stat.S_ISREG(0o100644), stat.filemode(0o40755))"
    )
    out = await ex.run(code)
    assert out.error is None and out.output == (3, 2, "abc", "a", True, "drwxr-xr-x")
    err = await ex.run("import statistics\nstatistics.mean([])")
    assert err.error is not None and err.error.type == "StatisticsError"  # a ValueError in the sandbox
    caught = await ex.run("try:\n    statistics.mean([])\nexcept ValueError:\n    'caught'")
    assert caught.output is None and caught.error is None
    big = await ex.run("import textwrap\ntextwrap.dedent('x' * 1_100_000)")
    assert big.error is not None and "arguments too large" in big.error.message


async def test_host_modules_can_be_withheld() -> None:
    executor = MontyExecutor(LIMITS, host_modules=False)
    await executor.start({})
    try:
        out = await executor.run("import statistics")
    finally:
        await executor.close()
    assert out.error is not None and out.error.type == "ModuleNotFoundError"


async def test_sleep_does_not_block(ex: MontyExecutor) -> None:
    started = time.monotonic()
    out = await ex.run("import time\ntime.sleep(30)\n'awake'")
    assert out.output == "awake" and time.monotonic() - started < 1


# -- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["numpy", "pandas", "os", "pathlib", "*", "requests.*", "queue"])
def test_authorising_what_monty_cannot_provide_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="executor='jail'") as info:
        MontyExecutor(additional_authorized_imports=[name])
    assert repr(name) in str(info.value)


def test_authorising_what_monty_provides_is_accepted() -> None:
    executor = MontyExecutor(additional_authorized_imports=["json", "re", "statistics", "collections.*"])
    assert executor.additional_authorized_imports == ("json", "re", "statistics", "collections.*")
    assert {"json", "math", "datetime", "re"} <= MONTY_MODULES and "statistics" in HOST_MODULES


async def test_run_before_start_is_an_executor_error() -> None:
    with pytest.raises(ExecutorError, match="start"):
        await MontyExecutor().run("1")


def test_importing_codeloop_does_not_import_monty() -> None:
    code = (
        "import sys, codeloop, codeloop.executors, codeloop.executors.monty\n"
        "print('pydantic_monty' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# -- host work: helper process and bounded walks (tests/data/redteam/host-work.yaml) ----------

HOST_WORK = load_payloads(Path(__file__).resolve().parent / "data" / "redteam" / "host-work.yaml")
HOST_WORK_LIMITS = ExecutorLimits(timeout_s=1.0, memory_bytes=64 * 2**20, max_output_chars=2_000)


async def _heartbeat(worst: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(0.01)
        worst[0] = max(worst[0], loop.time() - started - 0.01)


@pytest.mark.parametrize("payload", HOST_WORK, ids=[p.id for p in HOST_WORK])
async def test_monty_bounds_host_work(payload: Any) -> None:
    with Arena() as arena:
        executor = MontyExecutor(HOST_WORK_LIMITS)
        await executor.start(HARMLESS_TOOLS)
        threads = {t.ident for t in threading.enumerate()}
        worst = [0.0]
        beat = asyncio.ensure_future(_heartbeat(worst))
        try:
            verdict = await attack(executor, payload, arena, memory_limit=HOST_WORK_LIMITS.memory_bytes)
        finally:
            beat.cancel()
            await executor.close()
    assert verdict.passed, verdict.summary()
    assert verdict.elapsed_s < 3 * HOST_WORK_LIMITS.timeout_s + 1
    assert worst[0] < 0.2, f"the event loop stalled {worst[0]:.3f} s"
    assert {t.ident for t in threading.enumerate()} <= threads  # no host thread left running


async def test_helper_process_is_reused_and_fast() -> None:
    executor = MontyExecutor(HOST_WORK_LIMITS)
    await executor.start({})
    try:
        started = time.monotonic()
        first = await executor.run("import statistics\nstatistics.mean([1, 2, 3])")
        cold = time.monotonic() - started
        started = time.monotonic()
        for _ in range(20):
            warm_out = await executor.run("statistics.mean([1, 2, 3])")
        warm = (time.monotonic() - started) / 20
        assert first.output == 2 and warm_out.output == 2
        assert executor._helper.starts == 1 and cold < 1.0 and warm < 0.05
        stopped = await executor.run("import textwrap\ntextwrap.fill('x' * 300_000, width=1)")
        assert stopped.error is not None and stopped.error.limit == "timeout_s"
        assert not stopped.error.state_lost  # the session survived; only the helper was killed
        again = await executor.run("statistics.median([3, 1, 2])")
        assert again.output == 2 and executor._helper.starts == 2
    finally:
        await executor.close()


async def test_helper_errors_keep_their_types(ex: MontyExecutor) -> None:
    out = await ex.run("import statistics\nstatistics.mean([])")
    assert out.error is not None and out.error.type == "StatisticsError"
    out = await ex.run("import textwrap\ntextwrap.wrap('a b', width=-1)")
    assert out.error is not None and out.error.type == "ValueError"
    out = await ex.run("statistics.mean(['a', 'b'])")
    assert out.error is not None and out.error.type == "TypeError"
    out = await ex.run("from decimal import Decimal\nstatistics.mean([Decimal('1.5'), Decimal('2.5')])")
    assert out.error is None and str(out.output) == "2"  # CPython gives Decimal("2") too


def test_measure_counts_shared_parts_without_expanding_them() -> None:
    x: list[Any] = [1]
    for _ in range(60):
        x = [x, x]
    started = time.monotonic()
    with pytest.raises(TooLarge):
        measure([x])
    assert time.monotonic() - started < 0.05
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(TooLarge):
        measure([cycle])
    assert measure([{"a": (1, 2)}, "xyz"], text=True).size == 10  # dict "a"+1 tuple 1 2 "xyz"+3


def test_short_repr_of_shared_lists_is_bounded() -> None:
    x: list[Any] = [1]
    for _ in range(60):
        x = [x, x]
    started = time.monotonic()
    text = short_repr(x, limit=500)
    assert time.monotonic() - started < 0.05 and len(text) < 600 and text.startswith("[[[[")
