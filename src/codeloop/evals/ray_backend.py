"""`RayBackend`: an eval's tasks spread over a Ray cluster (`codeloop eval ... --ray [ADDRESS]`).

    report = evaluate("tasks.jsonl", "my_agents:make_agent", backend=RayBackend("auto", concurrency=16))

The agent is named as "module:attr" (`codeloop.evals.spec.TrialSpec`): an agent object holds a
model client and an executor that cannot be sent anywhere. Each worker is a Ray actor that
imports the module and builds its own `Trial` (its own agent, model client, executor and
judge) once, then runs the tasks it is given one at a time. The driver keeps at most
`concurrency` tasks in flight, giving a task to an actor only once the actor has started (an
actor waiting for a node to join holds none), and yields each `EvalResult` as it arrives.

A worker that dies (its process or node killed, out of memory) fails the task it held with a
`RayActorError`: that task goes back to the front of the queue and runs on another actor,
started in the dead one's place (it waits for a node with room, such as one that joins). A task
whose worker died `max_reruns` + 1 times is a "crashed" result saying so, rather than a crash
loop. The runner writes each id once, so a rerun can never count twice.

Where Python finds the code: each actor's `runtime_env` sets `PYTHONPATH` to this process's
current directory, the directories the agent and scorer modules were imported from here, and
this process's `PYTHONPATH` (then `runtime_env` given here, e.g. `{"working_dir": "."}` or
`{"pip": [...]}`, is added). On one machine the workers share the filesystem, so that is all.
On a cluster of several machines the same paths must hold the same code on every node, or
the code must travel: `runtime_env={"working_dir": "."}` uploads the directory, `py_modules`
some packages; codeloop itself (and the agent's dependencies) must be installed on every node.
What agents print goes to the workers' stderr, which Ray forwards to this process's stderr.

`address`: None starts a Ray instance on this machine for the eval (stopped after it); "auto"
joins the cluster started on this machine with `ray start`; "host:port" a cluster's head;
"ray://host:10001" through Ray Client. When Ray is already initialised in this process, the
backend uses that connection and leaves it open.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import socket
import sys
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .results import EvalResult
from .spec import SpecTrial, TrialSpec
from .tasks import EvalTask
from .trial import crashed_result

if TYPE_CHECKING:
    from .backends import RunTask

__all__ = ["RayBackend"]

logger = logging.getLogger("codeloop.evals.ray")

CLOSE_TIMEOUT_S = 10.0
"""How long the actors get to close their agents and judge models before they are killed."""
PROBE_TIMEOUT_S = 5.0
"""How long the cluster's address gets to accept a connection before the eval starts."""
NO_WORKER_WARNING_S = 60.0
"""A warning is logged when no actor has started by then (a cluster without room for one)."""


@dataclass(frozen=True)
class RayBackend:
    """Tasks on Ray actors (see the module docstring). `concurrency`: tasks in flight (one per
    actor); `num_cpus_per_task`: the CPUs each actor reserves; `max_reruns`: how many times a
    task whose worker died runs again; `runtime_env`: more of the actors' Ray runtime env."""

    address: str | None = None
    concurrency: int = 4
    num_cpus_per_task: float = 1.0
    max_reruns: int = 3
    runtime_env: Mapping[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.num_cpus_per_task < 0 or self.max_reruns < 0:
            raise ConfigurationError("num_cpus_per_task and max_reruns must not be negative")

    def check(self, trial: RunTask) -> None:
        """Before anything runs: Ray is installed, the trial can be sent (a spec, picklable),
        and something listens at the cluster's address (Ray itself retries for minutes)."""
        ray = _ray()
        spec = _spec_of(trial)
        try:
            ray.cloudpickle.dumps(spec)
        except Exception as exc:
            raise ConfigurationError(f"the eval cannot be sent to Ray workers: {exc}") from None
        if self.address and self.address != "auto" and not ray.is_initialized():
            _probe(self.address)

    async def run(self, tasks: Sequence[EvalTask], trial: RunTask) -> AsyncIterator[EvalResult]:
        if not tasks:
            return
        ray = _ray()
        spec = _spec_of(trial)
        started_ray = _connect(ray, self.address)
        size = min(self.concurrency, len(tasks))
        pool = _ActorPool(ray, spec, self.actor_options(spec), size, self.max_reruns)
        try:
            async for result in pool.results(tasks):
                yield result
        finally:
            pool.close()
            if started_ray:
                ray.shutdown()

    def actor_options(self, spec: TrialSpec) -> dict[str, Any]:
        """The Ray options of each actor: its CPUs, no restarts by Ray (the backend starts a new
        actor itself), and the runtime env with the Python path (see the module docstring)."""
        env = dict(self.runtime_env or {})
        env_vars = {**env.get("env_vars", {})}
        env_vars["PYTHONPATH"] = os.pathsep.join(_python_path(spec, env_vars.get("PYTHONPATH")))
        env["env_vars"] = env_vars
        cpus = self.num_cpus_per_task
        return {"num_cpus": cpus, "max_restarts": 0, "max_task_retries": 0, "runtime_env": env}


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigurationError("the Ray backend needs Ray: pip install 'codeloop[ray]'") from None
    return ray


def _spec_of(trial: RunTask) -> TrialSpec:
    spec = getattr(trial, "spec", None)
    if not isinstance(spec, TrialSpec):
        raise ConfigurationError(
            "Ray workers build their own agent: name it as 'module:attr' (an agent object or a "
            "function returning one), e.g. evaluate(tasks, 'my_agents:make_agent', backend=RayBackend())"
        )
    return spec


def _connect(ray: Any, address: str | None) -> bool:
    """Connect to (or start) Ray unless this process already is; True if this call did.

    A failed `ray.init` is undone with `ray.shutdown()` (a failed Ray Client connection leaves
    the process in client mode, and every later `ray.init` failing). Ray Client's proxy can fail
    to start the session's server (a race in Ray's proxier, "Starting Ray client server
    failed"): that is tried once more."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"logging_level": logging.WARNING}
    if address is None:  # a Ray instance of our own, even if a cluster runs on this machine
        options.update(address="local", include_dashboard=False)
    else:
        options["address"] = address
    attempts = 2 if address and address.startswith("ray://") else 1
    for attempt in range(1, attempts + 1):
        try:
            ray.init(**options)
            return True
        except BaseException as exc:
            with contextlib.suppress(Exception):
                ray.shutdown()
            if attempt == attempts or not isinstance(exc, ConnectionAbortedError):
                raise
            logger.warning("Ray Client could not start the session (%s); trying again", _first_line(exc))
    return True


def _probe(address: str) -> None:
    """Raise `ConnectionError` unless a TCP connection to "host:port" (or "ray://host:port")
    opens within a few seconds."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S):
            return
    except ValueError:
        raise ConfigurationError(f"{address!r} is not auto, host:port or ray://host:port") from None
    except OSError as exc:
        raise ConnectionError(f"no Ray cluster answers at {address}: {exc}") from None


def _python_path(spec: TrialSpec, given: str | None) -> list[str]:
    """The actors' PYTHONPATH: the runtime env's own entries, this directory, the directories
    the spec's modules come from (found here), and this process's PYTHONPATH; no duplicates."""
    entries = [*(given.split(os.pathsep) if given else []), os.getcwd()]
    entries += _module_roots(spec.modules())
    entries += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return list(dict.fromkeys(entries))


def _module_roots(modules: Iterator[str]) -> Iterator[str]:
    """The sys.path entry each module is imported from here; none for an installed module."""
    installed = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
    for name in dict.fromkeys(modules):
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if found is None or not found.origin or not os.path.isabs(found.origin):
            continue
        root = Path(found.origin).resolve().parent
        for _ in range(name.count(".") + (1 if found.submodule_search_locations else 0)):
            root = root.parent
        if not any(root.is_relative_to(prefix) for prefix in installed):
            yield str(root)


class _Worker:
    """The Ray actor: one `SpecTrial` built in its own process, running the tasks it is given."""

    def __init__(self, spec: TrialSpec) -> None:
        sys.stdout = sys.stderr  # what agents print is not the driver's output
        self.trial = SpecTrial(spec)

    async def ready(self) -> int:
        return os.getpid()

    async def run(self, task: EvalTask) -> EvalResult:
        return await self.trial(task)

    async def close(self) -> None:
        await self.trial.aclose(agent=True)


@dataclass
class _Attempt:
    """A task to run, and how many workers died running it."""

    task: EvalTask
    deaths: int = 0
    last_error: str = ""


class _ActorPool:
    """The driver's side: actors started, idle or busy, the queue of tasks, and what to do with
    each answer (see the module docstring)."""

    def __init__(
        self, ray: Any, spec: TrialSpec, options: dict[str, Any], size: int, max_reruns: int
    ) -> None:
        self.ray = ray
        self.spec = spec
        self.actor_class = ray.remote(_Worker).options(**options)
        self.size = size
        self.max_reruns = max_reruns
        self.queue: deque[_Attempt] = deque()
        self.idle: list[Any] = []
        self.starting: dict[asyncio.Future[Any], Any] = {}
        self.running: dict[asyncio.Future[Any], tuple[Any, _Attempt, Any]] = {}
        self.start_failures = 0
        self.any_started = False
        self.warned = False

    async def results(self, tasks: Sequence[EvalTask]) -> AsyncIterator[EvalResult]:
        self.queue.extend(_Attempt(task) for task in tasks)
        for _ in range(self.size):
            self._start_actor()
        while self.queue or self.running:
            self._dispatch()
            waiting = {*self.starting, *self.running}
            timeout = None if self.any_started or self.warned else NO_WORKER_WARNING_S
            done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not done:
                logger.warning("no Ray worker has started yet: does the cluster have room for one?")
                self.warned = True
            for future in done:
                result = self._settle(future)
                if result is not None:
                    yield result

    def _start_actor(self) -> None:
        actor = self.actor_class.remote(self.spec)
        self.starting[asyncio.wrap_future(actor.ready.remote().future())] = actor

    def _dispatch(self) -> None:
        """Give queued tasks to idle actors; start an actor if none is left for them."""
        while self.queue and self.idle:
            actor, attempt = self.idle.pop(), self.queue.popleft()
            ref = actor.run.remote(attempt.task)
            self.running[asyncio.wrap_future(ref.future())] = (actor, attempt, ref)
        if self.queue and not (self.starting or self.running or self.idle):
            self._start_actor()

    def _settle(self, future: asyncio.Future[Any]) -> EvalResult | None:
        """Act on an actor that started (or failed to) or a task that ended; its result, if any."""
        if future in self.starting:
            self._started(self.starting.pop(future), future.exception())
            return None
        actor, attempt, _ = self.running.pop(future)
        error = future.exception()
        if error is None:
            self.idle.append(actor)
            return future.result()  # type: ignore[no-any-return]
        if isinstance(error, self.ray.exceptions.RayActorError):
            return self._worker_died(actor, attempt, error)
        self.idle.append(actor)  # the call failed, not the actor (the result could not be read...)
        return crashed_result(attempt.task, f"the Ray worker failed the task: {_first_line(error)}")

    def _started(self, actor: Any, error: BaseException | None) -> None:
        if error is None:
            self.any_started, self.start_failures = True, 0
            self.idle.append(actor)
            return
        self.start_failures += 1
        self._kill(actor)
        if self.start_failures > 2 * self.size + 2:
            raise RuntimeError(f"the Ray workers cannot start: {_first_line(error)}")
        logger.warning("a Ray worker could not start (%s); starting another", _first_line(error))
        self._start_actor()

    def _worker_died(self, actor: Any, attempt: _Attempt, error: BaseException) -> EvalResult | None:
        """The task's worker died: rerun it on another actor (or give it up as crashed)."""
        self._kill(actor)
        attempt.deaths += 1
        attempt.last_error = _first_line(error)
        if len(self.idle) + len(self.starting) + len(self.running) < self.size:
            self._start_actor()
        if attempt.deaths > self.max_reruns:
            why = f"its Ray worker died {attempt.deaths} times; the last time: {attempt.last_error}"
            return crashed_result(attempt.task, why)
        logger.warning("the Ray worker running task %r died; it runs again", attempt.task.id)
        self.queue.appendleft(attempt)
        return None

    def _kill(self, actor: Any) -> None:
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception as exc:  # already gone, or the cluster is: nothing left to stop
            logger.debug("ray.kill: %s", exc)

    def close(self) -> None:
        """Stop every actor: those that started close their agent and judge first (a bounded
        wait), then all are killed; runs still going are cancelled with them."""
        live = self.idle + [actor for actor, _, _ in self.running.values()]
        try:
            closing = [actor.close.remote() for actor in live]
            if closing:
                self.ray.wait(closing, num_returns=len(closing), timeout=CLOSE_TIMEOUT_S)
        finally:
            for actor in [*live, *self.starting.values()]:
                self._kill(actor)
            for future in [*self.starting, *self.running]:
                future.cancel()
            self.idle, self.starting, self.running = [], {}, {}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {line}" if line else type(error).__name__
