"""`RayBackend` and `codeloop eval --ray` on a real Ray cluster on this machine: a head node (no
CPUs) and a worker node with 2 CPUs, each started by `ray start` (tests/ray_cluster.py), shared
by the module's tests and killed at the end. The agents are scripted (tests/eval_agents.py,
tests/ray_agents.py) and imported by the Ray workers from tests/, which is on no worker's path
but the one the backend gives them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from ray_agents import adder_task
from ray_cluster import NO_AUTH, RayCluster, free_port, gone

from codeloop.errors import ConfigurationError
from codeloop.evals import EvalReport, RayBackend, aevaluate, evaluate

from helpers import completion_reply
from terminal import run_cli
from wire import ReplayServer

if TYPE_CHECKING:
    from pg_server import PostgresServer

TESTS = Path(__file__).parent
DATASET = "data/evals/arithmetic.jsonl"
ADDER = "ray_agents:make_adder"


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in NO_AUTH.items():
            env.setenv(name, value)  # for this process (the driver) and the commands it starts
        started = RayCluster().start(worker_cpus=2)
        try:
            yield started
        finally:
            started.stop()
    assert not any(node.processes() for node in started.nodes), "a Ray process outlived the cluster"


def results_by_id(path: Path) -> dict[str, dict[str, Any]]:
    """The results file's lines by id; a task written twice fails the test."""
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    by_id = {line["id"]: line for line in lines}
    assert len(by_id) == len(lines), f"a task written twice: {sorted(line['id'] for line in lines)}"
    return by_id


def marks(folder: Path) -> dict[int, list[tuple[int, int]]]:
    """The `hold` tool's marks: task number -> [(worker pid, its parent: the node's raylet)]."""
    found: dict[int, list[tuple[int, int]]] = {}
    for mark in (folder / "started").iterdir():
        n, pid, parent = (int(part) for part in mark.name.split("."))
        found.setdefault(n, []).append((pid, parent))
    return found


def adder_tasks(count: int, folder: Path) -> list[dict[str, Any]]:
    return [{"id": f"t{n}", "task": adder_task(n, folder), "expected": 2 * n} for n in range(1, count + 1)]


def test_an_eval_through_ray_client(cluster: RayCluster, tmp_path: Path) -> None:
    (tmp_path / "gate").touch()
    backend = RayBackend(cluster.client_address, concurrency=2)
    report = evaluate(adder_tasks(4, tmp_path), ADDER, scorer="numeric", backend=backend, progress=False)
    assert (report.summary.total, report.summary.passed) == (4, 4), [r.error for r in report.results]
    ran = marks(tmp_path)
    assert {parent for runs in ran.values() for _, parent in runs} == {cluster.workers[0].raylet_pid()}


async def wait_for(condition: Any, what: str, running: asyncio.Future[Any], deadline_s: float = 120) -> None:
    """Poll `condition()` until it holds while the eval `running` goes on; an eval that ends
    first, or a test stuck past the deadline (the eval then cancelled), fails saying what."""
    for _ in range(int(deadline_s / 0.05)):
        if condition():
            return
        if running.done():
            raise AssertionError(f"the eval ended before {what}: {running.result()}")
        await asyncio.sleep(0.05)
    running.cancel()
    raise AssertionError(f"gave up waiting for {what}")


def started(folder: Path, count: int) -> Any:
    """Whether `count` tasks have started (their `hold` marks)."""
    started = folder / "started"
    return lambda: started.exists() and len(list(started.iterdir())) == count


async def test_an_eval_runs_every_task_on_the_clusters_workers(cluster: RayCluster, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    tasks = adder_tasks(14, tmp_path)
    tasks.append({"id": "wrong", "task": adder_task(50, tmp_path), "expected": 99, "tags": ["trick"]})
    backend = RayBackend(cluster.address, concurrency=2)
    eval_run = asyncio.ensure_future(
        aevaluate(tasks, ADDER, scorer="numeric", backend=backend, output=out, progress=False)
    )
    await wait_for(started(tmp_path, 2), "2 tasks in flight", eval_run)
    held = marks(tmp_path)
    assert len(held) == 2 and len({pid for runs in held.values() for pid, _ in runs}) == 2  # two actors
    (tmp_path / "gate").touch()
    report: EvalReport = await eval_run

    assert [r.id for r in report.results] == [t["id"] for t in tasks]  # the dataset's order
    assert [r.output for r in report.results] == [2 * n for n in range(1, 15)] + [100]
    summary = report.summary
    assert (summary.total, summary.passed, summary.crashed, summary.missing) == (15, 14, 0, 0)
    assert summary.by_tag["trick"].passed == 0 and summary.mean_steps == 2
    written = results_by_id(out)
    assert sorted(written) == sorted(t["id"] for t in tasks)
    assert all(written[r.id]["passed"] == r.passed for r in report.results)

    ran = marks(tmp_path)
    assert sorted(ran) == [*range(1, 15), 50] and all(len(runs) == 1 for runs in ran.values())
    actors = {pid for runs in held.values() for pid, _ in runs}
    assert {pid for runs in ran.values() for pid, _ in runs} == actors  # each actor ran many tasks
    assert {parent for runs in ran.values() for _, parent in runs} == {cluster.workers[0].raylet_pid()}
    assert os.getpid() not in actors


async def test_a_worker_node_killed_mid_eval_loses_no_task_and_runs_none_twice_in_the_results(
    cluster: RayCluster, tmp_path: Path
) -> None:
    out = tmp_path / "results.jsonl"
    tasks = adder_tasks(12, tmp_path)
    backend = RayBackend(cluster.address, concurrency=2)
    eval_run = asyncio.ensure_future(
        aevaluate(tasks, ADDER, scorer="numeric", backend=backend, output=out, progress=False)
    )
    await wait_for(started(tmp_path, 2), "2 tasks in flight", eval_run)
    doomed = cluster.workers[0]
    in_flight = marks(tmp_path)
    doomed_processes = doomed.processes()
    assert all(pid in doomed_processes for runs in in_flight.values() for pid, _ in runs)

    doomed.kill()  # the raylet, the object store and both actors' processes, by SIGKILL
    (tmp_path / "gate").touch()  # from now on no task waits
    fresh = await asyncio.to_thread(cluster.add_worker, 2)
    report: EvalReport = await eval_run

    assert (report.summary.total, report.summary.passed, report.summary.missing) == (12, 12, 0)
    assert [r.output for r in report.results] == [2 * n for n in range(1, 13)]
    written = results_by_id(out)  # each id exactly once
    assert sorted(written) == sorted(t["id"] for t in tasks) and all(r["passed"] for r in written.values())

    ran = marks(tmp_path)
    assert sorted(ran) == list(range(1, 13))
    for n, runs in ran.items():
        if n in in_flight:  # killed with its node, then run again on the new one
            assert len(runs) == 2 and in_flight[n][0] in runs, runs
            (rerun,) = [run for run in runs if run not in in_flight[n]]
            assert rerun[1] == fresh.raylet_pid()
        else:
            assert [parent for _, parent in runs] == [fresh.raylet_pid()]
    assert not doomed.processes()


async def test_a_task_whose_worker_always_dies_ends_crashed_after_its_reruns(
    cluster: RayCluster, tmp_path: Path
) -> None:
    (tmp_path / "gate").touch()
    out = tmp_path / "results.jsonl"
    tasks = adder_tasks(4, tmp_path)
    tasks.append({"id": "doomed", "task": adder_task(9, tmp_path, dies="always"), "expected": 18})
    backend = RayBackend(cluster.address, concurrency=2, max_reruns=1)
    report = await aevaluate(tasks, ADDER, scorer="numeric", backend=backend, output=out, progress=False)

    summary = report.summary
    assert (summary.total, summary.passed, summary.crashed, summary.missing) == (5, 4, 1, 0)
    doomed = report.results[-1]
    assert (doomed.id, doomed.state, doomed.passed) == ("doomed", "crashed", False)
    assert doomed.error is not None and doomed.error.startswith(
        "its Ray worker died 2 times; the last time: "
    )
    assert "ActorDiedError" in doomed.error
    assert len(marks(tmp_path)[9]) == 2  # run, and run once more: no crash loop
    assert results_by_id(out)["doomed"]["state"] == "crashed" and len(results_by_id(out)) == 5


async def test_runs_are_kept_in_a_shared_postgres_store_once_each(
    cluster: RayCluster, pg_server: PostgresServer, tmp_path: Path
) -> None:
    from codeloop.store import PostgresStore

    (tmp_path / "gate").touch()
    url = pg_server.dsn(pg_server.create_database())
    tasks = adder_tasks(5, tmp_path)
    tasks.append({"id": "t6", "task": adder_task(6, tmp_path, dies="once"), "expected": 12})
    texts = {t["id"]: t["task"] for t in tasks}
    env = {"env_vars": {"CODELOOP_TEST_STORE": url}}  # the store, for the workers' agents
    backend = RayBackend(cluster.address, concurrency=2, runtime_env=env)
    stored = "ray_agents:make_stored_adder"
    report = await aevaluate(tasks, stored, scorer="numeric", backend=backend, progress=False)
    assert (report.summary.total, report.summary.passed) == (6, 6), [r.error for r in report.results]

    async with PostgresStore(url) as store:
        kept = {r.id: await store.get_run(r.run_id) for r in report.results if r.run_id}
        every = await store.list_runs(agent_name="adder", limit=None)
    assert sorted(kept) == sorted(texts)
    for task_id, run in kept.items():
        answer = json.loads(run.output_json or "null")
        assert (run.task, run.state, answer) == (texts[task_id], "success", 2 * int(task_id[1:]))
    finished = sorted(run.task for run in every if run.state == "success")
    assert finished == sorted(texts.values())  # one finished run per task, none twice
    # The run whose worker was killed stays "running" in the store: the rerun started afresh.
    assert [(run.task, run.state) for run in every if run.state != "success"] == [(texts["t6"], "running")]


def codeloop(*args: str, env: dict[str, str] | None = None) -> Any:
    return run_cli(["eval", *args], cwd=TESTS, env=env, timeout=180)


def table_rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        cells = line.split()
        if cells and (cells[0] == "all" or cells[0].startswith("#")):
            rows[cells[0]] = cells[1:]
    return rows


def test_codeloop_eval_with_ray_address_runs_on_the_cluster_and_resumes(
    cluster: RayCluster, tmp_path: Path
) -> None:
    out = tmp_path / "results.jsonl"
    options = ["--agent", "eval_agents:make_calculator", "--scorer", "numeric", "--output", str(out)]
    first = codeloop(DATASET, *options, "--ray", cluster.address, "-c", "2")
    assert first.code == 0, first.err
    rows = table_rows(first.out)
    assert rows["all"][:4] == ["5", "3", "60.0%", "1.2"]  # tasks, passed, rate, mean steps
    assert rows["#arithmetic"][:3] == ["3", "3", "100.0%"] and rows["#trick"][:3] == ["2", "0", "0.0%"]
    assert "5/5 · 3 passed" in first.err
    written = results_by_id(out)
    assert {i: (r["passed"], r["state"]) for i, r in written.items()} == {
        "mul": (True, "success"),
        "pow": (True, "success"),
        "div": (True, "success"),
        "trick": (False, "success"),
        "6": (False, "max_steps_exceeded"),
    }
    again = codeloop(DATASET, *options, "--ray", cluster.address, "-q")
    assert again.code == 0, again.err
    assert table_rows(again.out)["all"][:2] == ["5", "3"] and "5 from earlier runs" in again.out
    assert results_by_id(out) == written


def test_codeloop_eval_on_ray_with_a_judge_the_workers_build(cluster: RayCluster, tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    verdicts = [
        "Same number.\nVERDICT: CORRECT",
        "VERDICT: INCORRECT",
        "Yes.",
        "Differs.\nVERDICT: INCORRECT",
    ]
    with ReplayServer([completion_reply(v) for v in verdicts]) as server:
        done = codeloop(
            DATASET, "--agent", "eval_agents:make_calculator", "--output", str(out), "-c", "1",
            "--scorer", "judge", "--judge-model", "m", "--judge-api-base", server.url("/v1"),
            "--ray", cluster.address,
        )  # fmt: skip
        asked = [body["messages"][-1]["content"] for body in server.bodies]
    assert done.code == 0, done.err
    written = results_by_id(out)
    assert {i: r["passed"] for i, r in written.items()} == {
        "mul": True, "pow": False, "div": True, "trick": False, "6": False,
    }  # fmt: skip
    assert written["mul"]["reason"] == "Same number." and written["trick"]["reason"] == "Differs."
    assert len(asked) == 4 and "What is 2 ** 10?" in asked[1]  # the worker's judge asked, in order


MY_AGENTS = """
from codeloop import CodeAgent, ScriptedModel

def make_agent() -> CodeAgent:
    return CodeAgent([], ScriptedModel(["```python\\nfinal_answer(6 * 7)\\n```"]), max_steps=3)
"""


def test_readme_ray_example(cluster: RayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # my_agents.py is here only: the workers find it by this directory
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)  # what "auto" finds (ray start sets it up)
    (tmp_path / "my_agents.py").write_text(MY_AGENTS)
    with open("tasks.jsonl", "w") as file:
        file.write('{"id": "mul", "task": "What is 6 * 7?", "expected": 42, "tags": ["arithmetic"]}\n')
        file.write('{"id": "pow", "task": "What is 2 ** 10?", "expected": 1024, "tags": ["powers"]}\n')
    # --- README: evals on a Ray cluster ---
    from codeloop.evals import RayBackend, evaluate

    # my_agents.py (in this directory) defines make_agent(), as above
    report = evaluate(
        "tasks.jsonl", "my_agents:make_agent", scorer="numeric", output="results.jsonl",
        backend=RayBackend("auto", concurrency=16),  # None: a Ray instance started for the eval
    )  # fmt: skip
    print(report.summary.passed, "of", report.summary.total)  # 1 of 2
    # --- end ---
    assert (report.summary.passed, report.summary.total) == (1, 2), [r.error for r in report.results]
    assert report.results[1].reason == "42 is not 1024"
    assert sorted(results_by_id(tmp_path / "results.jsonl")) == ["mul", "pow"]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temp dir with a short path: Ray's socket paths under it have a length limit."""
    folder = Path(tempfile.mkdtemp(prefix="rl", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_codeloop_eval_with_ray_and_no_address_starts_and_stops_its_own_ray(
    tmp_path: Path, short_tmp: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "results.jsonl"
    # Ray's default for an instance of its own: token authentication, the token made in ~/.ray
    env = {"RAY_TMPDIR": str(short_tmp), "HOME": str(home), "RAY_AUTH_MODE": "token"}
    shared = ["--agent", "eval_agents:calculator", "--output", str(out)]
    done = codeloop(DATASET, *shared, "--ray", "-q", env=env)
    assert done.code == 0, done.err
    assert table_rows(done.out)["all"][:2] == ["5", "2"]  # the shared agent, exact: "1,024" is not 1024
    assert sorted(results_by_id(out)) == ["6", "div", "mul", "pow", "trick"]
    assert list(short_tmp.iterdir()), "the eval's Ray instance kept its session elsewhere"
    assert (home / ".ray" / "auth_token").exists()  # it ran with a token, made for it
    assert gone(str(short_tmp)), "a process of the eval's own Ray instance outlived it"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--ray-cpus-per-task", "lots"], 2, "'lots' is not a number of CPUs"),
        (["--agent", "eval_agents:nowhere"], 2, "module eval_agents has no attribute 'nowhere'"),
        (["--scorer", "fuzzy"], 2, "unknown scorer 'fuzzy'"),
        (["--scorer", "judge"], 2, "--scorer judge needs --judge-model MODEL"),
        (["--ray", "nowhere"], 2, "'nowhere' is not auto, host:port or ray://host:port"),
        ([], 1, "codeloop: the eval could not run: ConnectionError: no Ray cluster answers at 127.0.0.1:"),
    ],
)
def test_ray_usage_errors_and_a_cluster_that_is_not_there_are_told_before_anything_runs(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    out = tmp_path / "results.jsonl"
    agent = [] if "--agent" in args else ["--agent", "eval_agents:make_calculator"]
    nowhere = [] if "--ray" in args else ["--ray", f"127.0.0.1:{free_port()}"]  # nothing listens there
    failed = codeloop(DATASET, *agent, *nowhere, *args, "--output", str(out))
    assert failed.code == code, failed.err
    assert message in failed.err and failed.out == "" and "Traceback" not in failed.err
    assert not out.exists()


def test_an_agent_object_cannot_go_to_ray_and_nothing_runs(tmp_path: Path) -> None:
    from eval_agents import calculator

    out = tmp_path / "results.jsonl"
    with pytest.raises(ConfigurationError, match="name it as 'module:attr'"):
        evaluate(["What is 1 + 1?"], calculator, backend=RayBackend(), output=out, progress=False)
    assert not out.exists()
