"""JailExecutor: a pandas agent, restarts and refusals. Real jailed workers.

The red-team corpus runs on the jail (with and without bubblewrap) in test_redteam.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from codeloop import CodeAgent, RunState, ScriptedModel, tool
from codeloop.errors import ConfigurationError
from codeloop.executors import create_executor
from codeloop.executors.base import Executor, ExecutorLimits
from codeloop.executors.jail import JailExecutor

from redteam import ENV_SECRET_NAME, HARMLESS_TOOLS

if not sys.platform.startswith("linux"):
    pytest.skip(f"the jail executor is Linux only (this is {sys.platform})", allow_module_level=True)
from codeloop.executors import confine  # after the platform check: Linux only

_MISSING = confine.missing_mechanisms()
if _MISSING:
    pytest.skip(f"the jail cannot run here: {'; '.join(_MISSING)}", allow_module_level=True)
BWRAP = confine.bwrap_available()
# What this machine can run: with bubblewrap when it works, and the in-worker layers alone.
MODES = [True, False] if BWRAP else [False]

LIMITS = ExecutorLimits(timeout_s=0.5, memory_bytes=128 * 2**20, max_output_chars=2_000)
ROOMY = ExecutorLimits(timeout_s=30.0, memory_bytes=256 * 2**20, max_output_chars=2_000)


@pytest.fixture
async def jail() -> AsyncIterator[JailExecutor]:
    executor = JailExecutor(ROOMY, ["*"])
    await executor.start(dict(HARMLESS_TOOLS))
    yield executor
    await executor.close()


async def test_a_forged_protocol_message_costs_only_the_worker(jail: JailExecutor) -> None:
    await jail.run("kept = 1")
    code = (
        "import os\nfor fd in range(3, 12):\n    try:\n        os.write(fd, b'not json\\n')\n"
        "    except OSError:\n        pass\nwhile True:\n    pass"
    )
    out = await jail.run(code)
    assert out.error is not None and out.error.state_lost and "undecodable" in out.error.message
    assert (await jail.run("print(1 + 1)")).logs.endswith("2\n")


def _forge(line: str) -> str:
    """A snippet writing `line` on every fd 3..20 (one is the worker's channel), then returning."""
    return (
        "import os\n"
        f"line = {line!r}.encode() + b'\\n'\n"
        "for fd in range(3, 21):\n    try:\n        os.write(fd, line)\n    except OSError:\n        pass\n"
        "'mine'"
    )


FORGED = {
    "well-formed": '{"op":"done","output":"forged","logs":"","final":false,"error":null}',
    "guessed-seal": '{"s":"0000","re":"1234","op":"done","output":"forged","logs":"","final":false}',
    "bad-decimal": '{"op":"done","output":{"$codeloop":"decimal","text":"NaNx"},"logs":"","final":false}',
    "amplified": "[" + "[]," * 500_000 + "[]]",
}


@pytest.mark.parametrize("kind", list(FORGED))
async def test_forged_replies_end_the_session_and_the_next_action_shows_its_own(
    jail: JailExecutor, kind: str
) -> None:
    await jail.run("kept = 1")
    out = await jail.run(_forge(FORGED[kind]))
    assert out.output != "forged" and out.error is not None
    assert out.error.type == "WorkerProtocolError" and out.error.state_lost, out.error
    assert "restarted" in out.error.describe()
    after = await jail.run("print('own')\n'own result'")
    assert after.output == "own result" and after.logs.endswith("own\n") and after.error is None
    assert (await jail.run("kept")).error is not None  # the state really was lost


def test_a_forged_decimal_restarts_the_sandbox_and_the_run_continues() -> None:
    model = ScriptedModel([fenced(_forge(FORGED["bad-decimal"])), fenced("final_answer(6 * 7)")])
    agent = CodeAgent([], model, executor="jail", additional_authorized_imports=["os"],
                      executor_limits=ROOMY, max_steps=3)  # fmt: skip
    with agent:
        result = agent.run("Forge, then answer", return_full_result=True)
    assert result.state is RunState.SUCCESS and result.output == 42
    first = result.memory.action_steps()[0]
    assert first.error is not None and "WorkerProtocolError" in str(first.error.message) + str(first.error)


@pytest.mark.parametrize(
    "code",
    ["[[]] * 5_000_000", "final_answer([[]] * 5_000_000)", "lookup([[]] * 5_000_000)"],
    ids=["last-expression", "final-answer", "tool-argument"],
)
async def test_over_budget_values_are_refused_with_a_clear_message(jail: JailExecutor, code: str) -> None:
    out = await jail.run(code)
    assert out.error is not None and out.error.type == "ValueError", out
    assert "too large" in out.error.message and "100,000 items" in out.error.message
    assert not out.error.state_lost and (await jail.run("1 + 1")).output == 2


@pytest.mark.parametrize(
    "start",
    [
        "import threading\nthreading.Thread(target=spin, daemon=True).start()",
        "import _thread\n_thread.start_new_thread(spin, ())",
        "import queue\nqueue.threading.Thread(target=spin, daemon=True).start()",
    ],
    ids=["threading", "_thread", "re-exported"],
)
async def test_a_thread_left_running_recycles_the_worker(jail: JailExecutor, start: str) -> None:
    spin = "def spin():\n    while True:\n        time.sleep(0.001)\n"
    code = f"import time\nkept = 1\n{spin}{start}\nprint('ok')"
    out = await jail.run(code)
    assert out.error is None and out.logs.startswith("ok\n")
    assert "left 1 thread(s) running" in out.logs
    assert "sandbox was restarted after this action" in out.logs  # said once, in this observation
    after = await jail.run("kept")
    assert after.error is not None and after.error.type == "NameError"


async def test_a_thread_that_finishes_in_time_is_fine(jail: JailExecutor) -> None:
    code = "import threading\nt = threading.Thread(target=print, args=('hi',))\nt.start()\nt.join()\nkept = 2"
    out = await jail.run(code)
    assert out.error is None and "thread" not in out.logs
    assert (await jail.run("kept")).output == 2


@pytest.mark.parametrize("bwrap", MODES)
@pytest.mark.parametrize(
    "code",
    [
        "import os\nos.fork()",
        "import subprocess\nsubprocess.run(['/bin/true'])",
        "import os\nos.posix_spawn('/bin/true', ['true'], {})",
        "import multiprocessing\np = multiprocessing.Process(target=print)\np.start()\np.join()",
    ],
    ids=["fork", "subprocess", "posix_spawn", "multiprocessing"],
)
async def test_processes_cannot_be_created(bwrap: bool, code: str) -> None:
    executor = JailExecutor(ROOMY, ["*"], use_bwrap=bwrap)
    await executor.start({})
    try:
        out = await executor.run(code)
        again = await executor.run("1 + 1")
    finally:
        await executor.close()
    assert out.error is not None and out.error.type in ("PermissionError", "OSError", "BlockingIOError"), out
    assert again.output == 2


async def test_scratch_quota_under_bwrap_is_enospc() -> None:
    if not BWRAP:
        pytest.skip("bubblewrap does not work here")
    executor = JailExecutor(ROOMY, ["os"], use_bwrap=True, max_scratch_bytes=2 * 2**20)
    await executor.start({})
    try:
        code = "for i in range(100):\n    open(f'f{i}', 'wb').write(b'x' * 2**18)"
        out = await executor.run(code)
        after = await executor.run("import os\nlen(os.listdir('.'))")
    finally:
        await executor.close()
    assert out.error is not None and out.error.type == "OSError" and "No space left" in out.error.message
    assert after.error is None and 0 < after.output < 100  # the files written so far persist


async def test_scratch_quota_without_bwrap_is_enforced_by_the_host() -> None:
    executor = JailExecutor(ROOMY, ["os"], use_bwrap=False, max_scratch_bytes=2 * 2**20)
    await executor.start({})
    try:
        big = await executor.run("open('big', 'wb').write(b'x' * 3 * 2**20)")
        write = "open(f'f{i}', 'wb').write(b'x' * 2**18)"
        code = f"import time\nfor i in range(400):\n    {write}\n    time.sleep(0.005)"
        out = await executor.run(code)
        scratch = executor.scratch_dir
        assert scratch is not None and os.listdir(scratch) == []
        assert (await executor.run("open('small', 'w').write('ok')")).error is None
    finally:
        await executor.close()
    assert big.error is not None and "File too large" in big.error.message  # RLIMIT_FSIZE
    assert out.error is not None and out.error.type == "OSError" and "scratch quota" in out.error.message
    assert out.error.state_lost


# -- the sandbox's view of the world ---------------------------------------------------------------


async def test_only_the_given_environment_is_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_SECRET_NAME, "host-secret")
    executor = JailExecutor(ROOMY, ["os"], env={"API_BASE": "http://example.invalid"})
    await executor.start({})
    try:
        out = await executor.run("import os\ndict(os.environ)")
    finally:
        await executor.close()
    assert out.error is None and out.output["API_BASE"] == "http://example.invalid"
    assert ENV_SECRET_NAME not in out.output and "host-secret" not in str(out.output)
    assert "PATH" not in out.output


async def test_scratch_dir_is_the_working_directory_and_is_removed() -> None:
    jail = JailExecutor(ROOMY, ["*"], use_bwrap=False)  # with bwrap, scratch is a tmpfs inside
    await jail.start({})
    out = await jail.run("import os\nopen('notes.txt', 'w').write('kept')\nos.getcwd()")
    assert out.error is None and out.output == jail.scratch_dir
    scratch = Path(out.output)
    assert (scratch / "notes.txt").read_text() == "kept"
    assert (await jail.run("open('notes.txt').read()")).output == "kept"
    await jail.close()
    assert not scratch.exists()


@pytest.mark.parametrize("bwrap", MODES)
async def test_workdir_read_only_and_read_write(tmp_path: Path, bwrap: bool) -> None:
    (tmp_path / "data.csv").write_text("city,n\nParis,3\n")
    ro = JailExecutor(ROOMY, ["pathlib"], workdir=str(tmp_path), use_bwrap=bwrap)
    await ro.start({})
    try:
        path = str(tmp_path)
        assert (await ro.run(f"open({path!r} + '/data.csv').read()")).output == "city,n\nParis,3\n"
        refused = await ro.run(f"open({path!r} + '/new.txt', 'w').write('x')")
        assert refused.error is not None and refused.error.type in ("PermissionError", "OSError")
    finally:
        await ro.close()
    rw = JailExecutor(ROOMY, workdir=str(tmp_path), workdir_mode="rw", use_bwrap=bwrap)
    await rw.start({})
    try:
        assert (await rw.run(f"open({path!r} + '/new.txt', 'w').write('x')")).error is None
    finally:
        await rw.close()
    assert (tmp_path / "new.txt").read_text() == "x"


@pytest.mark.parametrize("bwrap", MODES)
async def test_numpy_and_pandas_work_in_the_jail(bwrap: bool) -> None:
    pytest.importorskip("pandas")
    executor = JailExecutor(ROOMY, ["numpy", "pandas"], use_bwrap=bwrap)
    await executor.start({})
    try:
        code = (
            "import numpy as np\nimport pandas as pd\n"
            "df = pd.DataFrame({'k': ['a', 'b', 'a'], 'v': np.arange(3.0)})\n"
            "df.to_csv('out.csv', index=False)\n"
            "sums = df.groupby('k')['v'].sum().to_dict()\n"
            "(sums, float(np.linalg.norm([3, 4])), pd.read_csv('out.csv').shape)"
        )
        out = await executor.run(code)
        table = await executor.run("df")
    finally:
        await executor.close()
    assert out.error is None, out.error
    assert out.output == ({"a": 2.0, "b": 1.0}, 5.0, (3, 2))
    assert getattr(table.output, "type_name", None) == "DataFrame" and "k" in table.output


def test_configuration_is_checked_when_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="workdir_mode"):
        JailExecutor(workdir=str(tmp_path), workdir_mode="rwx")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not an existing directory"):
        JailExecutor(workdir=str(tmp_path / "missing"))
    assert isinstance(create_executor("jail"), Executor)
    assert JailExecutor(additional_authorized_imports=["pandas"]).importable_modules[:2] == [
        "collections",
        "datetime",
    ]
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(ConfigurationError, match=r"needs Linux.*this is darwin"):
        JailExecutor()


# -- refusing to run unjailed ------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["landlock", "seccomp", "userns", "bwrap"])
def test_refuses_to_build_without_a_mechanism(mechanism: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(confine.SIMULATE_ENV, mechanism)
    use_bwrap = mechanism in ("userns", "bwrap")
    with pytest.raises(confine.JailUnavailable) as info:
        JailExecutor(use_bwrap=use_bwrap)
    assert "[simulated by" in str(info.value) and "executor='monty'" in str(info.value)


@pytest.mark.parametrize("mechanism", ["landlock", "seccomp"])
async def test_worker_refuses_to_run_unjailed(mechanism: str) -> None:
    # The host's checks pass; the worker's own check (its environment says the mechanism is
    # missing) fails before it reads any code, and start() reports it.
    executor = JailExecutor(ROOMY, env={confine.SIMULATE_ENV: mechanism})
    with pytest.raises(confine.JailUnavailable, match=r"\[simulated by") as info:
        await executor.start({})
    await executor.close()
    assert info.value.missing and "executor='monty'" in str(info.value)


# -- a CodeAgent in the jail -------------------------------------------------------------------------


@tool
def sales_records() -> list[dict[str, Any]]:
    """The shop's sales, one record per sale.

    Returns:
        Records with the keys region, product and amount.
    """
    return [
        {"region": "north", "product": "apple", "amount": 120.0},
        {"region": "south", "product": "apple", "amount": 80.5},
        {"region": "north", "product": "pear", "amount": 40.0},
        {"region": "south", "product": "pear", "amount": 49.5},
        {"region": "north", "product": "plum", "amount": 10.0},
    ]


def fenced(code: str) -> str:
    return f"Thought: next step.\n```python\n{code}\n```"


PANDAS_STEPS = [
    fenced("import pandas as pd\ndf = pd.DataFrame(sales_records())\nprint(df.shape)"),
    fenced(
        "by_region = df.groupby('region')['amount'].sum().sort_values(ascending=False)\n"
        "print(by_region)\nfinal_answer({'top': by_region.index[0], 'total': float(by_region.iloc[0])})"
    ),
]


def test_monty_refuses_the_pandas_task() -> None:
    with pytest.raises(ConfigurationError, match="pandas"):
        CodeAgent([sales_records], ScriptedModel(PANDAS_STEPS), additional_authorized_imports=["pandas"])


def test_code_agent_completes_a_pandas_analysis_in_the_jail() -> None:
    pytest.importorskip("pandas")
    model = ScriptedModel(PANDAS_STEPS)
    agent = CodeAgent(
        [sales_records], model, executor="jail", additional_authorized_imports=["pandas"],
        executor_limits=ROOMY, max_steps=4,
    )  # fmt: skip
    with agent:
        result = agent.run("Which region sold the most, and how much?", return_full_result=True)
    assert result.state is RunState.SUCCESS, result.error
    assert result.output == {"top": "north", "total": 170.0}
    first = result.memory.action_steps()[0]
    assert first.error is None and first.observations.strip() == "(5, 3)"
    assert "pandas" in agent.importable_modules


def test_a_time_limit_kill_restarts_the_worker_and_the_run_continues() -> None:
    model = ScriptedModel(
        [
            fenced("x = 41\nwhile True:\n    pass"),
            fenced("print(x)"),
            fenced("x = 1\nfinal_answer(x + 1)"),
        ]
    )
    limits = ExecutorLimits(timeout_s=0.5, memory_bytes=128 * 2**20)
    agent = CodeAgent([], model, executor="jail", executor_limits=limits, max_steps=5)
    with agent:
        result = agent.run("Loop, then answer", return_full_result=True)
    assert result.state is RunState.SUCCESS and result.output == 2
    steps = result.memory.action_steps()
    assert steps[0].error is not None and "0.5 s time limit" in steps[0].error.message
    assert "sandbox was restarted" in steps[0].error.message
    assert steps[1].error is not None and "NameError" in steps[1].error.message  # x was lost, as announced
    seen = model.requests[1][-1].content
    assert isinstance(seen, str) and "time limit" in seen and "restarted" in seen
