"""The worker protocol and LocalExecutor: real worker subprocesses throughout; nothing is mocked."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import gc
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from codeloop.errors import ConfigurationError, ExecutorError, ManagedAgentError
from codeloop.executors import create_executor
from codeloop.executors.base import Executor, ExecutorLimits
from codeloop.executors.inworker.session import SAFE_MODULES
from codeloop.executors.inworker.values import decode_value, encode_value
from codeloop.executors.local import LocalExecutor
from codeloop.executors.process import (
    ProcessTransport,
    ReprValue,
    WorkerClient,
    WorkerProtocolError,
)

# A generous time limit where time is not the subject (the box may be busy); QUICK where it is.
LIMITS = ExecutorLimits(
    timeout_s=20.0, memory_bytes=128 * 2**20, max_output_chars=200, max_recursion_depth=200
)
QUICK = ExecutorLimits(timeout_s=0.5, memory_bytes=128 * 2**20, max_output_chars=200)

pytestmark = pytest.mark.filterwarnings("ignore:LocalExecutor is not a security boundary")


class Calls:
    """Host functions that record how they were called."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []

    def add(self, a: int, b: int = 0) -> int:
        self.log.append(("add", (a, b)))
        return a + b

    async def fetch(self, key: str) -> str:
        await asyncio.sleep(0)
        self.log.append(("fetch", key))
        return f"value of {key}"

    def fail(self, kind: str = "value") -> None:
        if kind == "managed":
            raise ManagedAgentError("the researcher gave up after 3 steps")
        raise ValueError("bad input: 42")

    def opaque(self) -> object:
        return object()

    def records(self) -> list[dict[str, Any]]:
        return [{"day": datetime.date(2026, 1, d), "n": d} for d in (1, 2)]

    def functions(self) -> dict[str, Any]:
        return {
            "add": self.add, "fetch": self.fetch, "fail": self.fail, "opaque": self.opaque,
            "records": self.records,
        }  # fmt: skip


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
async def quick(calls: Calls) -> AsyncIterator[LocalExecutor]:
    executor = LocalExecutor(QUICK)
    await executor.start(calls.functions())
    yield executor
    await executor.close()


@pytest.fixture
async def ex(calls: Calls) -> AsyncIterator[LocalExecutor]:
    executor = LocalExecutor(LIMITS, ["os", "sys", "signal", "json", "asyncio", "threading"])
    await executor.start(calls.functions())
    yield executor
    await executor.close()


# -- the value encoding ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None, True, 3, -2.5, "text", [1, "a"], (1, (2, 3)), {"a": [1]}, {1: "one", (2, 3): "pair"},
        {"$codeloop": "not a tag"}, {1, 2}, frozenset({"x"}), b"\x00\xff",
        datetime.datetime(2026, 1, 2, 3, 4, 5), datetime.date(2026, 1, 2), datetime.time(12, 30),
        datetime.timedelta(days=1, microseconds=5), decimal.Decimal("1.10"),
    ],
)  # fmt: skip
def test_plain_values_round_trip(value: Any) -> None:
    assert decode_value(encode_value(value)) == value
    assert type(decode_value(encode_value(value))) is type(value)


def test_opaque_values_are_refused_or_become_a_repr() -> None:
    class Table:
        def __repr__(self) -> str:
            return "<a table>"

    with pytest.raises(TypeError, match="a Table object cannot cross"):
        encode_value([Table()])
    out = decode_value(encode_value([Table()], strict=False))[0]
    assert isinstance(out, ReprValue) and out == "<a table>" and repr(out) == "<a table>"
    assert out.type_name == "Table"


# -- protocol and state ------------------------------------------------------------------------------


async def test_implements_the_executor_protocol_and_is_registered() -> None:
    with pytest.warns(UserWarning, match="not a security boundary"):
        import codeloop.executors.local as local_module

        local_module._warned = False
        executor = create_executor("local", limits=LIMITS)
        assert isinstance(executor, Executor) and isinstance(executor, LocalExecutor)
        await executor.start({})
        await executor.close()


async def test_state_persists_between_runs(ex: LocalExecutor) -> None:
    assert (await ex.run("x = 20\ndef double(v):\n    return v * 2")).error is None
    out = await ex.run("y = double(x) + 2\ny")
    assert out.output == 42 and out.error is None and not out.is_final_answer


async def test_value_of_a_trailing_expression_and_none_otherwise(ex: LocalExecutor) -> None:
    assert (await ex.run("[i * i for i in range(4)]")).output == [0, 1, 4, 9]
    assert (await ex.run("z = 1")).output is None
    assert (await ex.run("if True:\n    w = 2\nw + 1")).output == 3


async def test_values_without_a_data_form_come_back_as_their_repr(ex: LocalExecutor) -> None:
    out = await ex.run("class Point:\n    def __repr__(self):\n        return 'Point(1, 2)'\nPoint()")
    assert (
        isinstance(out.output, ReprValue) and out.output == "Point(1, 2)" and out.output.type_name == "Point"
    )


async def test_print_is_captured_and_fd_writes_do_not_corrupt_the_channel(ex: LocalExecutor) -> None:
    code = (
        "import os, sys\nprint('hello', 1 + 1)\nos.write(1, b'raw fd write\\n')\n"
        "sys.stderr.write('err\\n')\n7"
    )
    out = await ex.run(code)
    assert out.error is None and out.logs == "hello 2\nerr\n" and out.output == 7
    assert (await ex.run("print(1 + 1)")).logs == "2\n"


async def test_long_output_keeps_head_and_tail(ex: LocalExecutor) -> None:
    out = await ex.run("print('HEAD' + 'x' * 1000 + 'TAIL')")
    assert out.logs.startswith("HEAD") and out.logs.rstrip().endswith("TAIL")
    assert "[output truncated: 809 more chars]" in out.logs and len(out.logs) < 300


async def test_send_variables_become_globals(ex: LocalExecutor) -> None:
    when = datetime.date(2026, 3, 1)
    await ex.send_variables({"document": "a b c", "weights": (1, 2, 3), "when": when})
    out = await ex.run("(len(document.split()) + sum(weights), type(weights).__name__, when.month)")
    assert out.output == (9, "tuple", 3)


async def test_send_variables_refuses_opaque_objects(ex: LocalExecutor) -> None:
    with pytest.raises(ConfigurationError, match="cannot be sent into the sandbox"):
        await ex.send_variables({"handle": object()})


async def test_input_reads_end_of_file(ex: LocalExecutor) -> None:
    out = await ex.run("input('name? ')")
    assert out.error is not None and out.error.type == "EOFError"


async def test_top_level_await_works(ex: LocalExecutor) -> None:
    out = await ex.run(
        "import asyncio\nasync def twice(v):\n    return 2 * v\nawait asyncio.gather(twice(1), twice(2))"
    )
    assert out.error is None and out.output == [2, 4]


async def test_start_again_gives_a_fresh_session(ex: LocalExecutor, calls: Calls) -> None:
    await ex.run("x = 1")
    await ex.start({"add": calls.add})
    out = await ex.run("x")
    assert out.error is not None and out.error.type == "NameError"
    assert (await ex.run("fetch('a')")).error is not None  # only the new functions exist


async def test_run_before_start_is_an_executor_error() -> None:
    with pytest.raises(ExecutorError, match="start"):
        await LocalExecutor(LIMITS).run("1")


# -- host functions ---------------------------------------------------------------------------------


async def test_sync_and_async_tools(ex: LocalExecutor, calls: Calls) -> None:
    out = await ex.run("s = add(2, b=3)\nv = fetch('k')\nprint(s, v)\nv")
    assert out.error is None and out.output == "value of k" and out.logs == "5 value of k\n"
    assert calls.log == [("add", (2, 3)), ("fetch", "k")]


async def test_tools_can_be_called_from_threads(ex: LocalExecutor, calls: Calls) -> None:
    code = (
        "import threading\nresults = []\n"
        "workers = [threading.Thread(target=lambda i=i: results.append(add(i, 1))) for i in range(4)]\n"
        "for w in workers:\n    w.start()\nfor w in workers:\n    w.join()\nsorted(results)"
    )
    out = await ex.run(code)
    assert out.error is None and out.output == [1, 2, 3, 4] and len(calls.log) == 4


async def test_tool_results_keep_their_types(ex: LocalExecutor) -> None:
    out = await ex.run("rows = records()\n(type(rows[0]['day']).__name__, rows[1]['n'])")
    assert out.output == ("date", 2)


async def test_tools_are_rebound_each_run(ex: LocalExecutor) -> None:
    assert (await ex.run("add = add(1, 2)\nadd")).output == 3
    assert (await ex.run("add(2, 2)")).output == 4


async def test_raising_tool_is_an_exception_in_the_snippet(ex: LocalExecutor) -> None:
    code = (
        "try:\n    fail('managed')\nexcept Exception as e:\n    print('handled:', type(e).__name__, e)\n"
        "try:\n    fail()\nexcept ValueError as e:\n    print('value error:', e)"
    )
    out = await ex.run(code)
    assert out.error is None
    assert (
        out.logs
        == "handled: ManagedAgentError the researcher gave up after 3 steps\nvalue error: bad input: 42\n"
    )


async def test_uncaught_tool_error_names_its_type_and_line(ex: LocalExecutor) -> None:
    out = await ex.run("x = 1\nfail('managed')")
    assert out.error is not None
    assert (out.error.type, out.error.message) == (
        "ManagedAgentError",
        "the researcher gave up after 3 steps",
    )
    assert out.error.line == 2 and out.error.source_line == "fail('managed')"


async def test_opaque_tool_result_and_argument_are_type_errors(ex: LocalExecutor) -> None:
    out = await ex.run("opaque()")
    assert out.error is not None and out.error.type == "TypeError"
    assert "opaque() returned a object object, which cannot enter the sandbox" in out.error.message
    out = await ex.run("add(object())")
    assert out.error is not None and out.error.type == "TypeError"
    assert "add(): an argument cannot be passed to a tool" in out.error.message


async def test_unknown_function_is_a_name_error(ex: LocalExecutor) -> None:
    out = await ex.run("print('a')\nsearch_web('x')")
    assert (
        out.logs == "a\n" and out.error is not None and (out.error.type, out.error.line) == ("NameError", 2)
    )


async def test_awaiting_a_tool_gets_a_hint(ex: LocalExecutor) -> None:
    out = await ex.run("await fetch('a')")
    assert out.error is not None and "call them without await" in out.error.message


# -- final_answer ----------------------------------------------------------------------------------


async def test_final_answer_ends_the_snippet(ex: LocalExecutor, calls: Calls) -> None:
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
        "box = [1]\ntry:\n    final_answer(box)\nexcept BaseException:\n    box.append(2)\n"
        "    raise ValueError('x')",
    ],
    ids=[
        "except-Exception",
        "bare-except",
        "except-BaseException",
        "finally",
        "nested-retry",
        "mutate-then-raise",
    ],
)
async def test_final_answer_cannot_be_caught_or_changed(ex: LocalExecutor, calls: Calls, code: str) -> None:
    out = await ex.run("kept = 'yes'\n" + code)
    assert out.is_final_answer and out.output in (1, [1]) and out.error is None
    assert out.logs == "" and calls.log == []  # nothing after final_answer reached the host
    after = await ex.run("kept")
    assert after.error is None and after.output == "yes" and not after.is_final_answer


async def test_final_answer_then_a_runaway_handler_still_answers(quick: LocalExecutor) -> None:
    out = await quick.run("try:\n    final_answer('done')\nexcept:\n    while True:\n        pass")
    assert out.is_final_answer and out.output == "done"
    assert (await quick.run("print(1 + 1)")).logs.endswith("2\n")


async def test_final_answer_tool_from_caller_is_ignored(calls: Calls) -> None:
    executor = LocalExecutor(LIMITS)
    await executor.start({**calls.functions(), "final_answer": lambda answer: "hijacked"})
    try:
        out = await executor.run("final_answer(5)")
    finally:
        await executor.close()
    assert out.is_final_answer and out.output == 5


# -- errors the model can act on ------------------------------------------------------------------


async def test_syntax_error_gives_the_line(ex: LocalExecutor) -> None:
    out = await ex.run("a = 1\nif a\n    print(a)")
    assert out.error is not None and out.error.type == "SyntaxError"
    assert (out.error.line, out.error.source_line) == (2, "if a") and "expected ':'" in out.error.message


async def test_runtime_error_gives_the_failing_line(ex: LocalExecutor) -> None:
    out = await ex.run("a = 1\nb = 0\nc = a / b")
    assert out.error is not None
    assert out.error.describe() == "ZeroDivisionError (line 3: c = a / b): division by zero"


async def test_error_inside_an_earlier_function_says_so(ex: LocalExecutor) -> None:
    await ex.run("def ratio(v):\n    return 1 / v")
    out = await ex.run("ratio(0)")
    assert out.error is not None and out.error.line == 1
    assert "raised in ratio() from an earlier step, line 2" in out.error.message


async def test_no_worker_frames_or_paths_in_errors(ex: LocalExecutor) -> None:
    out = await ex.run("import json\njson.loads('{')")
    assert out.error is not None and out.error.type == "JSONDecodeError" and out.error.line == 2
    assert "worker" not in out.error.describe() and "File " not in out.error.describe()


# -- the import hook -------------------------------------------------------------------------------


async def test_safe_modules_import_and_others_are_refused(calls: Calls) -> None:
    executor = LocalExecutor(LIMITS)
    await executor.start({})
    try:
        ok = await executor.run(
            "import collections, statistics\nfrom datetime import date\nstatistics.mean([1, 3])"
        )
        assert ok.error is None and ok.output == 2
        for code in ("import os", "from subprocess import run", "__import__('os')", "exec('import os', {})",
                     "import importlib"):  # fmt: skip
            out = await executor.run(code)
            assert out.error is not None and out.error.type == "ImportError", code
            assert "is not allowed. Authorized imports are: ['collections'" in out.error.message
        # C code importing on the snippet's behalf is not the snippet importing
        out = await executor.run("import datetime\ndatetime.datetime.strptime('2026', '%Y').year")
        assert out.error is None and out.output == 2026
        assert executor.importable_modules == sorted(SAFE_MODULES)
    finally:
        await executor.close()


async def test_authorised_modules_include_their_submodules_and_star_allows_all() -> None:
    executor = LocalExecutor(LIMITS, ["xml", "json.*"])
    await executor.start({})
    try:
        out = await executor.run(
            "import xml.etree.ElementTree as ET\nimport json.decoder\nET.fromstring('<a/>').tag"
        )
        assert out.error is None and out.output == "a"
        assert "xml" in executor.importable_modules and "json" in executor.importable_modules
        await executor.start({})  # a module authorised by one session's snippet is not leaked to the next
        assert (await executor.run("import os")).error is not None
    finally:
        await executor.close()
    star = LocalExecutor(LIMITS, ["*"])
    await star.start({})
    try:
        assert (await star.run("import os\nos.getpid() > 0")).output is True
        assert star.importable_modules == ["any installed module"]
    finally:
        await star.close()


# -- limits and restarts ---------------------------------------------------------------------------


async def test_infinite_loop_hits_the_time_limit_and_restarts(quick: LocalExecutor) -> None:
    await quick.send_variables({"task_input": 7})
    await quick.run("x = 1")
    out = await quick.run("while True:\n    pass")
    assert out.error is not None
    assert (out.error.type, out.error.limit, out.error.state_lost) == ("TimeoutError", "timeout_s", True)
    assert "0.5 s time limit" in out.error.message and "restarted" in out.error.describe()
    out = await quick.run("print(1 + 1)\ntask_input")
    assert out.error is None and out.logs == "2\n" and out.output == 7  # fresh worker, variables re-sent
    lost = await quick.run("x")
    assert lost.error is not None and lost.error.type == "NameError"


async def test_tool_call_loop_is_bounded_by_the_time_limit(quick: LocalExecutor, calls: Calls) -> None:
    out = await quick.run("while True:\n    add(1, 1)")
    assert out.error is not None and out.error.limit == "timeout_s" and out.error.state_lost
    assert len(calls.log) > 100
    assert (await quick.run("print(1 + 1)")).logs == "2\n"


async def test_swallowing_the_output_limit_still_ends_at_the_time_limit(quick: LocalExecutor) -> None:
    out = await quick.run(
        "while True:\n    try:\n        print('y' * 100000)\n    except BaseException:\n        pass"
    )
    assert out.error is not None and out.error.limit == "timeout_s" and out.error.state_lost


async def test_memory_bomb_hits_the_memory_limit(ex: LocalExecutor) -> None:
    await ex.run("x = 1")
    out = await ex.run("blocks = []\nwhile True:\n    blocks.append('x' * (32 * 1024 * 1024))")
    assert out.error is not None
    assert (out.error.type, out.error.limit, out.error.line) == ("MemoryError", "memory_bytes", 3)
    assert "128 MiB memory limit" in out.error.message
    assert (await ex.run("blocks = None\nx + 1")).output == 2


async def test_deep_recursion_is_stopped(ex: LocalExecutor) -> None:
    out = await ex.run("def r(n):\n    return r(n + 1) + 1\nr(0)")
    assert out.error is not None
    assert (out.error.type, out.error.limit, out.error.line) == ("RecursionError", "max_recursion_depth", 2)
    assert "(200)" in out.error.message
    assert (
        await ex.run("def depth(n):\n    return 0 if n == 0 else 1 + depth(n - 1)\ndepth(150)")
    ).output == 150


async def test_output_flood_is_stopped(ex: LocalExecutor) -> None:
    out = await ex.run("while True:\n    print('y' * 100000)")
    assert out.error is not None and out.error.limit == "max_output_chars" and not out.error.state_lost
    assert "[output truncated:" in out.logs and len(out.logs) < 300
    assert (await ex.run("print(1 + 1)")).logs == "2\n"


async def test_worker_crash_restarts_it(ex: LocalExecutor) -> None:
    await ex.send_variables({"kept": 1})
    out = await ex.run("x = 1\nimport os\nos._exit(3)")
    assert out.error is not None and out.error.state_lost and out.error.limit is None
    assert "the sandbox process died (exit code 3)" in out.error.message
    assert (await ex.run("kept + 1")).output == 2


async def test_a_killed_worker_is_restarted(ex: LocalExecutor) -> None:
    out = await ex.run("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert out.error is not None and "killed by signal SIGKILL" in out.error.message
    assert (await ex.run("print(1 + 1)")).logs == "2\n"


async def test_cancelled_run_leaves_a_working_executor(ex: LocalExecutor) -> None:
    task = asyncio.ensure_future(ex.run("import time\ntime.sleep(30)"))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    out = await ex.run("print(1 + 1)")
    assert out.error is None and out.logs.endswith("2\n") and "restarted" in out.logs


async def test_local_executor_is_no_boundary(ex: LocalExecutor, tmp_path: Any) -> None:
    """Documented behaviour: trusted code can touch the host."""
    marker = tmp_path / "marker"
    assert (await ex.run(f"open({str(marker)!r}, 'w').write('x')")).error is None
    assert marker.exists()


# -- the client against misbehaving workers -------------------------------------------------------


async def _client_for(script: str) -> WorkerClient:
    transport = await ProcessTransport.spawn([sys.executable, "-c", script], env=dict(os.environ))
    return WorkerClient(transport, {})


_READY = (
    "import json, sys\nsecret = json.loads(sys.stdin.readline())['secret']\n"
    "print(json.dumps({'op': 'ready', 's': secret, 're': ''}), flush=True)\n"
    "rid = json.loads(sys.stdin.readline())['id']\n"
    "def send(m): print(json.dumps({'s': secret, 're': rid, **m}), flush=True)\n"
)
_DONE = "'op': 'done', 'output': 1, 'logs': '', 'final': False, 'error': None"


@pytest.mark.parametrize(
    ("script", "why"),
    [
        (_READY + "print('not json', flush=True)", "undecodable"),
        (_READY + "print('[1, 2]', flush=True)", "not a JSON object"),
        (_READY + "send({'op': 'pwn'})", "unexpected"),
        (_READY + "print('{' * 100000 + '}' * 100000, flush=True)", "more items|undecodable"),
        (_READY + "print('[' * 100000 + ']' * 100000, flush=True)", "undecodable"),
        (_READY + "print('x' * (9 * 2**20), flush=True)", "oversized"),
        (_READY + "print(json.dumps({'re': rid, " + _DONE + "}), flush=True)", "secret"),
        (_READY + "print(json.dumps({'s': secret, 're': 'guess', " + _DONE + "}), flush=True)", "no pending"),
        (_READY + "send({'op': 'done', 'output': {'$codeloop': 'decimal', 'text': 'NaNx'}})", "InvalidOp"),
        (_READY + "send({'op': 'done', 'output': {'$codeloop': 'nope'}})", "undecodable"),
        (_READY + "send({'op': 'done', 'output': [[]] * 300000})", "more items"),
    ],
    ids=["garbage", "array", "unknown-op", "deep-dicts", "deep-lists", "oversized", "unsealed", "wrong-id",
         "bad-decimal", "bad-tag", "amplified"],
)  # fmt: skip
async def test_a_misbehaving_worker_only_costs_the_worker(script: str, why: str) -> None:
    client = await _client_for(script)
    try:
        await client.handshake()
        with pytest.raises(WorkerProtocolError, match=why):
            await client.request({"op": "run", "code": "1"}, budget_s=10)
    finally:
        await client.transport.kill()


async def test_a_line_after_the_reply_is_a_violation_at_the_next_request() -> None:
    script = _READY + "send({" + _DONE + "})\nsend({" + _DONE + "})\nsys.stdin.readline()"
    client = await _client_for(script)
    try:
        await client.handshake()
        assert (await client.request({"op": "run", "code": "1"}, budget_s=10))["output"] == 1
        with pytest.raises(WorkerProtocolError, match="no pending"):
            await client.request({"op": "run", "code": "1"}, budget_s=10)
    finally:
        await client.transport.kill()


async def test_the_channel_is_private_and_fd_1_is_harmless(ex: LocalExecutor) -> None:
    code = (
        "import os\nfds = [int(f) for f in os.listdir('/proc/self/fd')]\n"
        "def inherited(fd):\n    try:\n        return os.get_inheritable(fd)\n    except OSError:\n"
        "        return False\n"
        "(os.readlink('/proc/self/fd/1'), [fd for fd in fds if fd > 2 and inherited(fd)])"
    )
    out = await ex.run(code)
    assert out.error is None and out.output == ("/dev/null", [])


async def test_heartbeat_while_the_biggest_allowed_reply_is_decoded(ex: LocalExecutor) -> None:
    """The event loop keeps running while a large reply arrives and is decoded."""
    worst = 0.0

    async def beat() -> None:
        nonlocal worst
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(0.001)
            worst = max(worst, loop.time() - started - 0.001)

    # What is measured is the decoding's own stall: the objects earlier tests left in this process
    # are moved out of the collector's reach first (a full collection over them, triggered by the
    # decoded reply's allocations, took 0.4 s at the end of the suite; that is the host's heap,
    # not this reply).
    gc.collect()
    gc.freeze()
    task = asyncio.ensure_future(beat())
    try:
        for code in ("[[]] * 99_000", "'x' * (7 * 2**20)", "[{} for _ in range(99_000)]"):
            out = await ex.run(code)
            assert out.error is None
    finally:
        task.cancel()
        gc.unfreeze()
    print(f"worst heartbeat delay: {worst * 1000:.1f} ms")  # ~35 ms on the 2-core box
    assert worst < 0.1


async def test_a_worker_that_dies_at_start_is_a_start_error() -> None:
    client = await _client_for("import sys; sys.stderr.write('boom: cannot start'); sys.exit(4)")
    with pytest.raises(
        ExecutorError, match=r"(?s)exited before it was ready \(exit code 4.*boom: cannot start"
    ):
        await client.handshake()
