"""A real Ray cluster on this machine for the tests: a head node and worker nodes, each started
with `ray start` in its own process group, so a node can be killed alone (SIGKILL to its group:
its raylet, object store and every worker process it started) and the whole cluster stopped at
the end without touching any other Ray on the machine (`ray stop` would kill every Ray process
of the user, by name).

The head has no CPUs, so every actor lands on a worker node. Its health checks are quick, so a
killed node is found dead in seconds rather than the default half-minute. The temp dir is
short: Ray's socket paths under it have a length limit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["NO_AUTH", "RayCluster", "RayNode", "free_port", "gone", "processes_with"]

RAY = str(Path(sys.executable).with_name("ray"))
OBJECT_STORE = str(150 * 1024 * 1024)
FAST_HEALTH_CHECKS = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}
"""The head's GCS finds a dead node after ~3 missed checks half a second apart."""
NO_AUTH = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
"""No token authentication (Ray would turn it on if ~/.ray/auth_token exists), no usage stats:
the nodes, the test process and the commands it starts all say so."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _processes() -> dict[int, tuple[int, int]]:
    """Every live process on the machine (zombies left out): pid -> (parent pid, process group)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (name) ": state ppid pgrp ...
        if fields[0] != "Z":
            found[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return found


def _command_line(pid: int) -> str:
    try:
        return (
            (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def processes_with(text: str) -> set[int]:
    """The live processes whose command line holds `text` (a Ray session's temp dir...)."""
    return {pid for pid in _processes() if pid != os.getpid() and text in _command_line(pid)}


def gone(text: str, deadline_s: float = 30) -> bool:
    """Whether every process whose command line holds `text` has ended (polled to a deadline)."""
    for _ in range(int(deadline_s / 0.1)):
        if not processes_with(text):
            return True
        time.sleep(0.1)
    return False


@dataclass
class RayNode:
    """One `ray start`: its process group holds the node's daemons (raylet, object store, agents);
    the raylet puts each worker process in a group of its own, so those are found as its children."""

    pgid: int
    head: bool

    def processes(self) -> set[int]:
        """The node's processes: its group, and every descendant of them (workers and theirs)."""
        table = _processes()
        found = {pid for pid, (_, group) in table.items() if group == self.pgid}
        grew = True
        while grew:
            children = {pid for pid, (parent, _) in table.items() if parent in found} - found
            found |= children
            grew = bool(children)
        return found

    def raylet_pid(self) -> int:
        """The node's raylet: the parent of its worker processes."""
        (raylet,) = [pid for pid in self.processes() if _command_line(pid).split(" ")[0].endswith("/raylet")]
        return raylet

    def kill(self) -> None:
        """SIGKILL every process of the node at once, and wait until they are gone."""
        doomed = self.processes()
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for _ in range(200):
            if not doomed & _processes().keys():
                return
            time.sleep(0.05)


@dataclass
class RayCluster:
    """A head node on 127.0.0.1 (`address`, and `client_address` for Ray Client) and the worker
    nodes added with `add_worker`."""

    temp_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rc", dir="/tmp")))
    port: int = field(default_factory=free_port)
    client_port: int = field(default_factory=free_port)
    nodes: list[RayNode] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def client_address(self) -> str:
        """The head's Ray Client server."""
        return f"ray://127.0.0.1:{self.client_port}"

    def start(self, worker_cpus: int = 2) -> RayCluster:
        """The head, and one worker node with `worker_cpus` CPUs."""
        self._start(
            "--head", "--port", str(self.port), "--num-cpus", "0", "--temp-dir", str(self.temp_dir),
            "--ray-client-server-port", str(self.client_port), "--dashboard-port", str(free_port()),
            "--include-dashboard=false", head=True,
        )  # fmt: skip
        self.add_worker(worker_cpus)
        return self

    def add_worker(self, cpus: int = 2) -> RayNode:
        return self._start("--address", self.address, "--num-cpus", str(cpus), head=False)

    def _start(self, *args: str, head: bool) -> RayNode:
        command = [
            RAY, "start", *args, "--node-ip-address", "127.0.0.1", "--object-store-memory", OBJECT_STORE,
            "--disable-usage-stats",
        ]  # fmt: skip
        env = {**os.environ, **FAST_HEALTH_CHECKS, **NO_AUTH}
        env.pop("RAY_ADDRESS", None)
        started = subprocess.Popen(  # its own process group: the node's processes inherit it
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        out, _ = started.communicate(timeout=120)
        node = RayNode(pgid=started.pid, head=head)
        self.nodes.append(node)
        if started.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{out}")
        return node

    @property
    def workers(self) -> list[RayNode]:
        return [node for node in self.nodes if not node.head]

    def stop(self) -> None:
        """Kill every node (workers first), and remove the temp dir."""
        for node in sorted(self.nodes, key=lambda n: n.head):
            node.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
