"""The jail worker's confinement, against the real kernel.

Each test starts a fresh `python -c` child that confines itself (all layers, or one layer alone)
and then runs probes; the host owns the targets (a secret file, TCP/UDP/unix listeners, a process
to signal) and checks afterwards that nothing reached them. Nothing is mocked; simulated missing
mechanisms use the documented `CODELOOP_JAIL_SIMULATE_MISSING` switch.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

import codeloop
from codeloop.errors import ConfigurationError, ExecutorError
from codeloop.executors.confine import (
    MECHANISMS,
    SIMULATE_ENV,
    JailPolicy,
    JailUnavailable,
    SystemProbe,
    bwrap_argv,
    bwrap_available,
    default_read_only_paths,
    landlock_abi,
    missing_mechanisms,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the jail is Linux only")

_REAL = SystemProbe()
MISSING = missing_mechanisms(probe=_REAL) if sys.platform == "linux" else ["not Linux"]
needs_jail = pytest.mark.skipif(bool(MISSING), reason="; ".join(MISSING))
MISSING_BWRAP = missing_mechanisms(bwrap=True, probe=_REAL) if not MISSING else MISSING
needs_bwrap = pytest.mark.skipif(bool(MISSING_BWRAP), reason="; ".join(MISSING_BWRAP))
ABI = landlock_abi() if not MISSING else 0

# The child: confine with the named layers, then run the named probes, one JSON line each.
CHILD = r"""
import ctypes, errno, json, os, resource, signal, socket, subprocess, sys, threading
from codeloop.executors import confine

policy = confine.JailPolicy.from_json(sys.argv[1])
layers, probes, ctx = sys.argv[2].split(","), sys.argv[3].split(","), json.loads(sys.argv[4])
layer_functions = {"all": confine.apply, "rlimits": confine.apply_rlimits,
                   "landlock": confine.apply_landlock, "seccomp": confine.apply_seccomp}
for layer in filter(None, layers):
    layer_functions[layer](policy)
libc = ctypes.CDLL(None, use_errno=True)

def check(result):
    if result < 0:
        raise OSError(ctypes.get_errno(), "failed")

def write(path, data=b"x"):
    with open(path, "wb") as file:
        file.write(data)

def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return "forked"

def thread():
    out = []
    worker = threading.Thread(target=lambda: out.append(sum(range(10))))
    worker.start()
    worker.join()
    return out[0]

def many_files():
    files = [open(os.devnull) for _ in range(ctx["many"])]
    for file in files:
        file.close()

def dataframe():
    import numpy, pandas
    frame = pandas.DataFrame({"k": ["a", "b", "a"], "v": numpy.arange(3.0)})
    return frame.groupby("k")["v"].sum().to_dict()

def udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"leak", ("127.0.0.1", ctx["udp_port"]))

def unix_connect():
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(ctx["unix_path"])

PROBES = {
    "read_secret": lambda: open(ctx["secret"]).read(),
    "write_outside": lambda: write(ctx["outside"] + "/new.txt"),
    "write_scratch": lambda: (write("inside.txt", b"kept"), open("inside.txt").read())[1],
    "read_ro": lambda: open(ctx["ro_file"]).read(),
    "write_ro": lambda: write(ctx["ro_dir"] + "/new.txt"),
    "write_rw": lambda: write(ctx["rw_dir"] + "/new.txt"),
    "devnull": lambda: open(os.devnull, "w").write("x"),
    "proc_self": lambda: "NoNewPrivs:\t1" in open("/proc/self/status").read(),
    "capabilities": lambda: [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0],
    "proc_other": lambda: open(f"/proc/{ctx['victim']}/environ", "rb").read(),
    "fork": fork,
    "system": lambda: os.system("touch " + ctx["marker"]),
    "subprocess": lambda: subprocess.run([sys.executable, "-c", "pass"]).returncode,
    "thread": thread,
    "tcp_connect": lambda: socket.create_connection(("127.0.0.1", ctx["tcp_port"]), timeout=5).close(),
    "udp_send": udp,
    "inet_socket": lambda: socket.socket(socket.AF_INET).close(),
    "unix_connect": unix_connect,
    "socketpair": lambda: [s.close() for s in socket.socketpair()] and "pair",
    "kill_other": lambda: os.kill(ctx["victim"], signal.SIGTERM),
    "kill_self": lambda: os.kill(os.getpid(), 0),
    "ptrace": lambda: check(libc.ptrace(0, 0, 0, 0)),
    "unshare": lambda: check(libc.unshare(0x10000000)),
    "tiocsti": lambda: __import__("fcntl").ioctl(0, 0x5412, b"x"),
    "memory": lambda: len(bytearray(ctx["big"])),
    "file_size": lambda: write("big.bin", bytes(ctx["big_file"])),
    "open_files": many_files,
    "raise_limit": lambda: resource.setrlimit(resource.RLIMIT_AS, (-1, -1)),
    "dataframe": dataframe,
    "execv": lambda: os.execv(sys.executable, [sys.executable, "-c", ctx["executed"]]),
}

for name in probes:
    try:
        value = PROBES[name]()
        result = "ok" if value is None else f"ok:{value}"
    except OSError as exc:
        result = errno.errorcode.get(exc.errno, str(exc))
    except Exception as exc:
        result = type(exc).__name__
    print(json.dumps({name: result}), flush=True)
"""


@dataclass
class World:
    """The host's side: directories, a secret, listeners and a process the jail must not reach."""

    policy: JailPolicy
    ctx: dict[str, object]
    tcp: socket.socket
    udp: socket.socket
    unix: socket.socket
    victim: subprocess.Popen[bytes]

    def run(self, layers: str, probes: Iterable[str], *, bwrap: bool = False) -> dict[str, str]:
        """Run the child with `layers` applied, then `probes` (execv last: it replaces the child)."""
        ordered = sorted(set(probes), key=lambda name: name == "execv")
        inner = [sys.executable, "-c", CHILD, self.policy.to_json(), layers, ",".join(ordered)]
        inner.append(json.dumps(self.ctx))
        argv = bwrap_argv(self.policy, inner, {"LANG": "C.UTF-8"}) if bwrap else inner
        done = subprocess.run(
            argv,
            cwd=self.policy.scratch_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        results: dict[str, str] = {}
        for line in done.stdout.splitlines():
            results.update(json.loads(line))
        return results

    def nothing_reached(self) -> None:
        """No TCP connection was accepted, no datagram or unix connection arrived, the victim lives."""
        for sock in (self.tcp, self.udp, self.unix):
            sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            self.tcp.accept()
        with pytest.raises(BlockingIOError):
            self.udp.recv(16)
        with pytest.raises(BlockingIOError):
            self.unix.accept()
        assert self.victim.poll() is None
        assert not os.path.exists(str(self.ctx["marker"]))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    dirs = {name: tmp_path / name for name in ("scratch", "outside", "ro", "rw")}
    for path in dirs.values():
        path.mkdir()
    (dirs["outside"] / "secret.txt").write_text("host secret")
    (dirs["ro"] / "data.txt").write_text("readable")
    policy = JailPolicy(
        scratch_dir=str(dirs["scratch"]),
        read_only=(*default_read_only_paths(), str(dirs["ro"])),
        read_write=(str(dirs["rw"]),),
        max_file_bytes=2**20,
    )
    tcp = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix_dir = tempfile.mkdtemp(prefix="cl-", dir="/tmp")  # AF_UNIX paths must stay under 108 bytes
    unix.bind(f"{unix_dir}/host.sock")
    unix.listen()
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    ctx: dict[str, object] = {
        "secret": str(dirs["outside"] / "secret.txt"), "outside": str(dirs["outside"]),
        "ro_dir": str(dirs["ro"]), "ro_file": str(dirs["ro"] / "data.txt"), "rw_dir": str(dirs["rw"]),
        "marker": str(dirs["outside"] / "marker"), "victim": victim.pid, "many": 100,
        "tcp_port": tcp.getsockname()[1], "udp_port": udp.getsockname()[1],
        "unix_path": f"{unix_dir}/host.sock", "big": 2**30, "big_file": 2 * 2**20,
        "executed": "import json; print(json.dumps({'execv': 'ok:executed'}))",
    }  # fmt: skip
    yield World(policy, ctx, tcp, udp, unix, victim)
    victim.kill()
    victim.wait()
    for sock in (tcp, udp, unix):
        sock.close()
    shutil.rmtree(unix_dir)


BLOCKED_BY_ALL = {
    "read_secret": "EACCES", "write_outside": "EACCES", "write_ro": "EACCES", "proc_other": "EACCES",
    "fork": "EPERM", "subprocess": "EPERM", "execv": "EPERM", "tcp_connect": "EPERM",
    "udp_send": "EPERM", "inet_socket": "EPERM", "unix_connect": "EPERM", "kill_other": "EPERM",
    "ptrace": "EPERM", "unshare": "EPERM", "tiocsti": "EPERM", "memory": "MemoryError",
    "file_size": "EFBIG", "open_files": "EMFILE", "raise_limit": "ValueError",
}  # fmt: skip
ALLOWED_BY_ALL = {
    "write_scratch": "ok:kept", "read_ro": "ok:readable", "write_rw": "ok", "devnull": "ok:1",
    "proc_self": "ok:True", "capabilities": "ok:0000000000000000", "thread": "ok:45",
    "socketpair": "ok:pair", "kill_self": "ok",
}  # fmt: skip


@needs_jail
def test_every_probe_is_blocked_by_the_full_jail(world: World) -> None:
    results = world.run("all", [*BLOCKED_BY_ALL, *ALLOWED_BY_ALL, "system"])
    assert {k: results[k] for k in BLOCKED_BY_ALL} == BLOCKED_BY_ALL
    assert {k: results[k] for k in ALLOWED_BY_ALL} == ALLOWED_BY_ALL
    assert results["system"] != "ok:0"  # glibc's system() reports a failed spawn as status 127
    world.nothing_reached()


@needs_jail
@pytest.mark.parametrize("bwrap", [False, pytest.param(True, marks=needs_bwrap)], ids=["plain", "bwrap"])
def test_numpy_and_pandas_work_after_apply(world: World, bwrap: bool) -> None:
    pytest.importorskip("pandas", reason="pandas is not installed in this environment")
    assert world.run("all", ["dataframe", "thread"], bwrap=bwrap) == {
        "dataframe": "ok:{'a': 2.0, 'b': 1.0}",
        "thread": "ok:45",
    }


@needs_jail
def test_landlock_alone_guards_files_exec_tcp_and_signals_but_not_udp(world: World) -> None:
    expected = {"read_secret": "EACCES", "write_outside": "EACCES", "write_ro": "EACCES",
                "proc_other": "EACCES", "execv": "EACCES", "subprocess": "EACCES", "write_scratch": "ok:kept",
                "read_ro": "ok:readable", "write_rw": "ok", "fork": "ok:forked"}  # fmt: skip
    results = world.run("landlock", [*expected, "tcp_connect", "kill_other", "udp_send", "unix_connect"])
    assert {k: results[k] for k in expected} == expected
    if ABI >= 4:
        assert results["tcp_connect"] == "EACCES"
    if ABI >= 6:
        assert results["kill_other"] == "EPERM"
    if ABI <= 7:  # the gaps seccomp closes: UDP, and connecting to a named unix socket
        assert results["udp_send"] == "ok"
        assert results["unix_connect"] == "ok"
        assert world.udp.recv(16) == b"leak"


@needs_jail
def test_seccomp_alone_stops_processes_and_sockets_but_not_file_reads(world: World) -> None:
    expected = {"fork": "EPERM", "subprocess": "EPERM", "execv": "EPERM", "udp_send": "EPERM",
                "tcp_connect": "EPERM", "inet_socket": "EPERM", "unix_connect": "EPERM",
                "kill_other": "EPERM", "ptrace": "EPERM", "unshare": "EPERM", "tiocsti": "EPERM",
                "thread": "ok:45", "socketpair": "ok:pair", "kill_self": "ok",
                "read_secret": "ok:host secret"}  # fmt: skip
    results = world.run("seccomp", expected)
    assert {k: results[k] for k in expected} == expected
    world.nothing_reached()


@needs_jail
def test_unix_sockets_can_be_allowed(world: World) -> None:
    world.policy = replace(world.policy, allow_unix_sockets=True)
    assert world.run("seccomp", ["unix_connect", "inet_socket"]) == {
        "unix_connect": "ok",
        "inet_socket": "EPERM",
    }


def test_rlimits_alone_stop_memory_file_size_and_open_files(world: World) -> None:
    probes = ["memory", "file_size", "open_files", "raise_limit", "capabilities", "read_secret"]
    results = world.run("rlimits", probes)
    assert results == {"memory": "MemoryError", "file_size": "EFBIG", "open_files": "EMFILE",
                       "raise_limit": "ValueError", "capabilities": "ok:0000000000000000",
                       "read_secret": "ok:host secret"}  # fmt: skip


@needs_bwrap
def test_bwrap_runs_python(world: World) -> None:
    inner = [sys.executable, "-c", "print(1)"]
    done = subprocess.run(bwrap_argv(world.policy, inner, {}), capture_output=True, text=True, check=True)
    assert done.stdout == "1\n"


@needs_bwrap
def test_bwrap_passes_only_the_given_environment(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODELOOP_HOST_SECRET", "s3cret")
    inner = [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]
    done = subprocess.run(bwrap_argv(world.policy, inner, {"ONLY": "this"}), capture_output=True, text=True)
    env = json.loads(done.stdout)
    assert env["ONLY"] == "this"
    assert set(env) <= {"ONLY", "PWD", "LC_CTYPE"}  # bwrap sets PWD; Python may coerce LC_CTYPE


@needs_bwrap
def test_bwrap_has_no_network_and_hides_the_host(world: World) -> None:
    code = (
        "import json, os, socket, sys\n"
        "ctx = json.loads(sys.argv[1])\n"
        "try:\n    socket.create_connection(('127.0.0.1', ctx['tcp_port']), timeout=5); tcp = 'connected'\n"
        "except OSError as exc:\n    tcp = type(exc).__name__\n"
        "print(json.dumps([sorted(n for _, n in socket.if_nameindex()), tcp,\n"
        "    os.path.exists(ctx['secret']), os.path.exists(f\"/proc/{ctx['victim']}\")]))"
    )
    inner = [sys.executable, "-c", code, json.dumps(world.ctx)]
    done = subprocess.run(bwrap_argv(world.policy, inner, {}), capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [["lo"], "ConnectionRefusedError", False, False]
    world.nothing_reached()


@needs_bwrap
def test_full_jail_inside_bwrap(world: World) -> None:
    results = world.run("all", [*BLOCKED_BY_ALL, *ALLOWED_BY_ALL], bwrap=True)
    # Where bubblewrap answers first: unmounted paths, a read-only mount, another pid namespace.
    by_bwrap = {
        "read_secret": "ENOENT",
        "write_outside": "ENOENT",
        "write_ro": "EROFS",
        "proc_other": "ENOENT",
    }
    assert {k: results[k] for k in by_bwrap} == by_bwrap
    blocked = {k: v for k, v in BLOCKED_BY_ALL.items() if k not in by_bwrap}
    assert {k: results[k] for k in blocked} == blocked
    assert {k: results[k] for k in ALLOWED_BY_ALL} == ALLOWED_BY_ALL
    world.nothing_reached()


# ---------------------------------------------------------------------------------------------
# Refusing to start


SIMULATED = {
    "landlock": "Landlock is not enabled in this kernel (needs Linux >= 5.13 with CONFIG_SECURITY_LANDLOCK "
    "and 'landlock' in the lsm= boot list) [simulated by CODELOOP_JAIL_SIMULATE_MISSING]",
    "seccomp": "this kernel has no seccomp support (needs CONFIG_SECCOMP_FILTER) "
    "[simulated by CODELOOP_JAIL_SIMULATE_MISSING]",
    "bwrap": "bubblewrap is not installed (apt-get install bubblewrap) "
    "[simulated by CODELOOP_JAIL_SIMULATE_MISSING]",
}


@pytest.mark.parametrize("mechanism", ["landlock", "seccomp", "bwrap"])
def test_each_simulated_missing_mechanism_has_its_message(mechanism: str) -> None:
    probe = SystemProbe(frozenset({mechanism}))
    found = [m for m in missing_mechanisms(bwrap=True, probe=probe) if "simulated" in m]
    assert found == [SIMULATED[mechanism]]


def test_simulated_missing_user_namespaces() -> None:
    probe = SystemProbe(frozenset({"userns"}))
    [message] = [m for m in missing_mechanisms(bwrap=True, probe=probe) if "simulated" in m]
    assert message.startswith("user namespaces are not usable here")
    assert "user.max_user_namespaces" in message
    assert not bwrap_available(probe)
    assert not [m for m in missing_mechanisms(probe=probe) if "simulated" in m]  # bwrap not asked for


@pytest.mark.skipif(
    shutil.which("unshare") is None or shutil.which("bwrap") is None, reason="needs unshare and bwrap"
)
def test_really_missing_user_namespaces_are_reported() -> None:
    """A user namespace whose own limit of nested namespaces is 0: bwrap really cannot start."""
    code = (
        "from codeloop.executors.confine import *; print(missing_mechanisms(bwrap=True), bwrap_available())"
    )
    python = f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"
    script = f"echo 0 > /proc/sys/user/max_user_namespaces && exec {python}"
    done = subprocess.run(["unshare", "-Ur", "sh", "-c", script], capture_output=True, text=True)
    if done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip(f"cannot create a user namespace to test in: {done.stderr.strip()}")
    assert "user namespaces are not usable here (bwrap said: bwrap: " in done.stdout
    assert done.stdout.rstrip().endswith("False")


def test_really_missing_pyseccomp_is_reported() -> None:
    code = (
        "import sys; sys.modules['pyseccomp'] = None\n"
        "from codeloop.executors.confine import *; print(missing_mechanisms())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "the Python package pyseccomp is not installed (pip install 'codeloop[jail]')" in done.stdout


def test_environment_switch_and_refusal_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIMULATE_ENV, "landlock, seccomp")
    missing = missing_mechanisms()
    assert SIMULATED["landlock"] in missing and SIMULATED["seccomp"] in missing
    message = str(JailUnavailable(missing))
    assert message.startswith("The jail executor cannot run here: ")
    assert message.endswith(
        "Use executor='monty' (secure, Python subset) or executor='local' (no isolation, trusted code only)."
    )
    with pytest.raises(ConfigurationError, match="choose from landlock, seccomp, userns, bwrap"):
        SystemProbe(frozenset({"selinux"}))
    assert set(MECHANISMS) == {"landlock", "seccomp", "userns", "bwrap"}


def test_apply_refuses_before_changing_anything(world: World) -> None:
    code = (
        "import sys\nfrom codeloop.executors import confine\n"
        "try:\n    confine.apply(confine.JailPolicy.from_json(sys.argv[1]))\n"
        "except confine.JailUnavailable as exc:\n    print(exc)\n"
        "print(open(sys.argv[2]).read(), 'NoNewPrivs:\\t0' in open('/proc/self/status').read())"
    )
    env = {**os.environ, SIMULATE_ENV: "seccomp"}
    argv = [sys.executable, "-c", code, world.policy.to_json(), str(world.ctx["secret"])]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    refusal, after = done.stdout.splitlines()
    assert refusal.startswith("The jail executor cannot run here: ")
    assert "this kernel has no seccomp support (needs CONFIG_SECCOMP_FILTER) [simulated" in refusal
    assert after == "host secret True"


@needs_jail
def test_apply_refuses_in_a_threaded_process(world: World) -> None:
    code = (
        "import sys, threading, time\nfrom codeloop.executors import confine\n"
        "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
        "try:\n    confine.apply(confine.JailPolicy.from_json(sys.argv[1]))\n"
        "except confine.ExecutorError as exc:\n    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, world.policy.to_json()], capture_output=True, text=True
    )
    assert done.stdout.startswith("ExecutorError apply() must run before any other thread starts")


# ---------------------------------------------------------------------------------------------
# Policy and paths


def test_policy_round_trips_through_json_and_checks_paths() -> None:
    policy = JailPolicy("/scratch", ("/usr", "/lib"), ("/work",), cpu_seconds=3, allow_unix_sockets=True)
    assert JailPolicy.from_json(policy.to_json()) == policy
    with pytest.raises(ConfigurationError, match="absolute"):
        JailPolicy("scratch", ())
    with pytest.raises(ConfigurationError, match="positive"):
        JailPolicy("/scratch", (), memory_bytes=0)
    assert issubclass(JailUnavailable, ExecutorError)


def test_default_read_only_paths_cover_python_but_not_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    paths = default_read_only_paths()
    assert str(tmp_path) not in paths and "/" not in paths and "" not in paths
    assert sys.base_prefix in paths and sysconfig.get_paths()["purelib"] in paths
    assert os.path.dirname(os.path.realpath(codeloop.__file__)) in paths


def test_bwrap_argv_recreates_symlinks_and_binds_parents_once(tmp_path: Path) -> None:
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to("real")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    ro = (str(tmp_path / "link" / "sub"), str(tmp_path / "real"), "/proc/self", "/dev/null", "/nonexistent")
    argv = bwrap_argv(JailPolicy(str(scratch), ro), ["true"], {"A": "1"}, bwrap="/usr/bin/bwrap")
    real = os.path.realpath(tmp_path / "real")
    assert argv[0] == "/usr/bin/bwrap" and argv[-2:] == ["--", "true"]
    assert ["--symlink", "real", str(tmp_path / "link")] == argv[
        argv.index("--symlink") : argv.index("--symlink") + 3
    ]
    assert argv.count("--ro-bind") == 1 and argv[argv.index("--ro-bind") + 1] == real
    assert "/proc/self" not in argv and "/dev/null" not in argv and "/nonexistent" not in argv
    for flag in ("--unshare-user", "--unshare-pid", "--unshare-net", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert argv.index("--tmpfs") < argv.index("--ro-bind") < argv.index("--bind") < argv.index("--clearenv")
    assert argv[argv.index("--setenv") : argv.index("--setenv") + 3] == ["--setenv", "A", "1"]
