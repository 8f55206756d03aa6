"""Confinement of the jail worker: rlimits, Landlock, seccomp, and the bubblewrap command line.

The jail executor runs a persistent CPython worker. Before the worker reads any code it calls
`apply(policy)`, which confines the process in this order and never leaves it half-jailed:

1. `PR_SET_NO_NEW_PRIVS`, then every capability is dropped (a root worker keeps uid 0 but loses
   `CAP_SYS_RESOURCE`, `CAP_DAC_OVERRIDE`...), so the limits below cannot be lifted again;
2. rlimits: address space, file size, open files, core dumps (0), CPU time when set;
3. Landlock (the best access set the running kernel's ABI offers): read-only `read_only` paths,
   read-write scratch and `read_write` paths, nothing else; nothing may be executed; on ABI >= 4
   TCP bind/connect are denied; on ABI >= 6 abstract unix sockets and signals are scoped to the
   jail;
4. seccomp (default allow, listed syscalls fail with EPERM): exec, process creation (threads are
   allowed), every `socket()` (AF_UNIX too unless `allow_unix_sockets`: Landlock does not stop a
   connect to a host socket such as /run/docker.sock), signals to other processes, ptrace,
   mount and namespace calls, kernel keyring, bpf, module and kexec calls, io_uring, userfaultfd.

On the host, `bwrap_argv()` builds a bubblewrap command (new user, pid, net, ipc and uts
namespaces; only the policy's paths mounted; a cleared environment) that wraps the worker, and
`missing_mechanisms()` says what this system lacks, so the executor can refuse to start.

Simulating a missing mechanism: set `CODELOOP_JAIL_SIMULATE_MISSING` to a comma-separated subset of
`landlock,seccomp,userns,bwrap` (or pass `SystemProbe(simulate_missing=...)`). The probes then
report those mechanisms as missing with their real message (tagged as simulated), and `apply()`
refuses before it changes anything. Simulation can only cause refusals, never weaken the jail.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import stat
import struct
import sys
import sysconfig
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

from ..errors import ConfigurationError, ExecutorError

__all__ = [
    "MECHANISMS",
    "SIMULATE_ENV",
    "JailPolicy",
    "JailUnavailable",
    "SystemProbe",
    "apply",
    "apply_landlock",
    "apply_rlimits",
    "apply_seccomp",
    "bwrap_argv",
    "bwrap_available",
    "default_read_only_paths",
    "landlock_abi",
    "missing_mechanisms",
]

SIMULATE_ENV = "CODELOOP_JAIL_SIMULATE_MISSING"
MECHANISMS = ("landlock", "seccomp", "userns", "bwrap")
_ALTERNATIVES = (
    "Use executor='monty' (secure, Python subset) or executor='local' (no isolation, trusted code only)"
)


class JailUnavailable(ExecutorError):
    """The jail cannot be built here. `missing` lists one sentence per missing mechanism."""

    def __init__(self, missing: Iterable[str]) -> None:
        self.missing = list(missing)
        super().__init__(f"The jail executor cannot run here: {'; '.join(self.missing)}. {_ALTERNATIVES}.")


# --------------------------------------------------------------------------------------------
# Policy


@dataclass(frozen=True)
class JailPolicy:
    """What the jailed worker may touch. Paths must be absolute; missing read-only paths are skipped."""

    scratch_dir: str
    read_only: tuple[str, ...]
    read_write: tuple[str, ...] = ()
    memory_bytes: int = 512 * 2**20
    cpu_seconds: int | None = None
    max_open_files: int = 64
    max_file_bytes: int = 16 * 2**20
    scratch_tmpfs_bytes: int | None = None
    """Under bwrap: mount the scratch directory as a tmpfs of this size (a hard quota: writes past
    it fail with ENOSPC), instead of binding the host directory. Ignored without bwrap."""
    allow_unix_sockets: bool = False
    """Allow `socket(AF_UNIX)`. Off by default: Landlock does not restrict connecting to a named
    unix socket, so without bwrap a jailed root worker could drive /run/docker.sock or systemd.
    `socketpair()` (asyncio's self-pipe) works either way."""

    def __post_init__(self) -> None:
        for path in (self.scratch_dir, *self.read_only, *self.read_write):
            if not os.path.isabs(path):
                raise ConfigurationError(f"JailPolicy paths must be absolute, got {path!r}.")
        limits = (self.memory_bytes, self.max_open_files, self.max_file_bytes, self.cpu_seconds or 1)
        if min(limits) <= 0:
            raise ConfigurationError(f"JailPolicy limits must be positive: {self!r}.")

    def to_json(self) -> str:
        """One line of JSON, for the worker's command line."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> JailPolicy:
        """The inverse of `to_json`."""
        data: dict[str, Any] = json.loads(text)
        data["read_only"] = tuple(data.get("read_only", ()))
        data["read_write"] = tuple(data.get("read_write", ()))
        return cls(**data)


def default_read_only_paths() -> tuple[str, ...]:
    """What CPython, numpy and pandas read once running: the interpreter prefixes, stdlib and
    site-packages, shared libraries, time zones and locales, a few devices, this process's
    /proc entry, the CPU topology, and the codeloop package. Only existing paths are returned.

    Never included: "" / the current directory (`sys.path[0]` of `python -c`), "/", and the home
    directory itself, even when they are on `sys.path`.
    """
    python = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    python += [p for key, p in sysconfig.get_paths().items() if key in _SYSCONFIG_KEYS]
    python += [os.path.dirname(os.path.realpath(sys.executable)), *sys.path]
    python.append(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    banned = {"", "/", os.getcwd(), os.path.expanduser("~")}
    ordered = [p for p in [*python, *_SYSTEM_READ_ONLY] if p not in banned and os.path.exists(p)]
    return tuple(dict.fromkeys(os.path.abspath(p) for p in ordered))


_SYSCONFIG_KEYS = ("stdlib", "platstdlib", "purelib", "platlib")
_SYSTEM_READ_ONLY = (
    "/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/etc/ld.so.cache",
    "/usr/share/zoneinfo", "/etc/localtime", "/usr/share/locale",
    "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random",
    "/proc/self", "/sys/devices/system/cpu",
)  # fmt: skip
_ALWAYS_WRITABLE = ("/dev/null",)  # `open(os.devnull, "w")` is common and harmless


# --------------------------------------------------------------------------------------------
# Probing the system


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_NR_LANDLOCK_CREATE_RULESET, _NR_LANDLOCK_ADD_RULE, _NR_LANDLOCK_RESTRICT_SELF = 444, 445, 446


def _syscall(number: int, *args: Any) -> int:
    """Call a raw syscall; raise OSError with the errno on failure."""
    result = int(_libc.syscall(ctypes.c_long(number), *args))
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


@lru_cache(maxsize=1)
def landlock_abi() -> int:
    """The running kernel's Landlock ABI version; raises OSError (ENOSYS, EOPNOTSUPP) without it."""
    if sys.platform != "linux":
        raise OSError(errno.ENOSYS, "not Linux")
    return _syscall(_NR_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))


def _landlock_problem() -> str | None:
    try:
        landlock_abi()
    except OSError as exc:
        if exc.errno == errno.EOPNOTSUPP:
            return "Landlock is built into this kernel but not enabled (add 'landlock' to the lsm= boot list)"
        return (
            "Landlock is not enabled in this kernel (needs Linux >= 5.13 with CONFIG_SECURITY_LANDLOCK "
            "and 'landlock' in the lsm= boot list)"
        )
    return None


def _seccomp_problem() -> str | None:
    if _libc.prctl(21, 0, 0, 0, 0) < 0:  # PR_GET_SECCOMP
        return "this kernel has no seccomp support (needs CONFIG_SECCOMP_FILTER)"
    try:
        _import_pyseccomp()
    except ImportError:
        return "the Python package pyseccomp is not installed (pip install 'codeloop[jail]')"
    except (RuntimeError, OSError):
        return "the libseccomp shared library is missing (apt-get install libseccomp2)"
    return None


_SONAMES = {"seccomp": "libseccomp.so.2", "c": "libc.so.6"}


def _import_pyseccomp() -> Any:
    """Import pyseccomp. It locates libseccomp with `ctypes.util.find_library`, which runs
    `ldconfig -p` in a subprocess: slow, and impossible inside bwrap, where there is no ldconfig.
    During the import the well-known sonames are tried first (the dynamic loader finds them)."""
    if sys.modules.get("pyseccomp") is not None:
        return sys.modules["pyseccomp"]
    import ctypes.util

    original = ctypes.util.find_library

    def find_library(name: str) -> str | None:
        soname = _SONAMES.get(name)
        if soname is not None:
            try:
                ctypes.CDLL(soname)
                return soname
            except OSError:
                pass
        return original(name)

    ctypes.util.find_library = find_library
    try:
        import pyseccomp
    finally:
        ctypes.util.find_library = original
    return pyseccomp


def _bwrap_problem() -> str | None:
    import shutil

    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    return None


@lru_cache(maxsize=1)
def _userns_problem() -> str | None:
    import shutil
    import subprocess

    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return _userns_sysctl_problem()
    real = os.path.realpath(bwrap)  # runs itself inside: no dependence on PATH or /bin/true
    command = [real, *_NAMESPACES, "--ro-bind", "/", "/", "--", real, "--version"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not run ({exc})"
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return (
            f"user namespaces are not usable here (bwrap said: {said[0]}); enable them with "
            "sysctl user.max_user_namespaces=N and kernel.unprivileged_userns_clone=1"
        )
    return None


def _userns_sysctl_problem() -> str | None:
    try:
        with open("/proc/sys/user/max_user_namespaces") as file:
            limit = file.read().strip()
    except OSError:
        return "this kernel has no user namespaces (needs CONFIG_USER_NS)"
    if limit == "0":
        return "user namespaces are disabled (sysctl user.max_user_namespaces=0)"
    return None


_PROBLEMS: dict[str, Callable[[], str | None]] = {
    "landlock": _landlock_problem,
    "seccomp": _seccomp_problem,
    "userns": _userns_problem,
    "bwrap": _bwrap_problem,
}
_SIMULATED_MESSAGES = {
    "landlock": "Landlock is not enabled in this kernel (needs Linux >= 5.13 with "
    "CONFIG_SECURITY_LANDLOCK and 'landlock' in the lsm= boot list)",
    "seccomp": "this kernel has no seccomp support (needs CONFIG_SECCOMP_FILTER)",
    "userns": "user namespaces are not usable here (bwrap said: bwrap: No permissions to creating new "
    "namespace); enable them with sysctl user.max_user_namespaces=N and kernel.unprivileged_userns_clone=1",
    "bwrap": "bubblewrap is not installed (apt-get install bubblewrap)",
}


@dataclass(frozen=True)
class SystemProbe:
    """Asks the kernel what it offers. `simulate_missing` makes some mechanisms look absent, with
    the same message a real absence gives (tagged as simulated); see the module docstring."""

    simulate_missing: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        unknown = set(self.simulate_missing) - set(MECHANISMS)
        if unknown:
            raise ConfigurationError(
                f"Unknown mechanism(s) to simulate: {sorted(unknown)}; choose from {', '.join(MECHANISMS)}."
            )

    @classmethod
    def from_env(cls) -> SystemProbe:
        """The real probe, with `CODELOOP_JAIL_SIMULATE_MISSING` honoured."""
        names = os.environ.get(SIMULATE_ENV, "")
        return cls(frozenset(n.strip() for n in names.split(",") if n.strip()))

    def problem(self, mechanism: str) -> str | None:
        """Why `mechanism` (one of `MECHANISMS`) is unusable here, or None when it works."""
        if mechanism in self.simulate_missing:
            return f"{_SIMULATED_MESSAGES[mechanism]} [simulated by {SIMULATE_ENV}]"
        if sys.platform != "linux":
            return f"the jail needs Linux (Landlock, seccomp, namespaces), this is {sys.platform}"
        return _PROBLEMS[mechanism]()


def missing_mechanisms(*, bwrap: bool = False, probe: SystemProbe | None = None) -> list[str]:
    """One sentence per mechanism the jail needs that this system lacks; empty means the jail works.

    Landlock and seccomp are always needed. With `bwrap=True` (the worker will be wrapped in
    bubblewrap) the `bwrap` binary and working user namespaces are needed too.
    """
    probe = probe or SystemProbe.from_env()
    wanted = ["landlock", "seccomp"] + (["bwrap", "userns"] if bwrap else [])
    problems = [probe.problem(name) for name in wanted]
    return list(dict.fromkeys(p for p in problems if p is not None))


def bwrap_available(probe: SystemProbe | None = None) -> bool:
    """True when `bwrap` is installed and can create the namespaces `bwrap_argv` asks for."""
    probe = probe or SystemProbe.from_env()
    return probe.problem("bwrap") is None and probe.problem("userns") is None


# --------------------------------------------------------------------------------------------
# rlimits and privileges


def apply_rlimits(policy: JailPolicy) -> None:
    """Set RLIMIT_AS, FSIZE, NOFILE, CORE=0 and (when set) CPU, soft and hard, never above the
    current hard limit. Drop capabilities first so that a root worker cannot raise them back."""
    _set_no_new_privs()
    _drop_capabilities()
    limits = [
        (resource.RLIMIT_AS, policy.memory_bytes),
        (resource.RLIMIT_FSIZE, policy.max_file_bytes),
        (resource.RLIMIT_NOFILE, policy.max_open_files),
        (resource.RLIMIT_CORE, 0),
    ]
    if policy.cpu_seconds is not None:
        limits.append((resource.RLIMIT_CPU, policy.cpu_seconds))
    for which, value in limits:
        hard = resource.getrlimit(which)[1]
        capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
        # RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL one second later.
        ceiling = capped + 1 if which == resource.RLIMIT_CPU and capped + 1 <= hard else capped
        resource.setrlimit(which, (capped, ceiling))


def _set_no_new_privs() -> None:
    if _libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(code)}")


def _drop_capabilities() -> None:
    """capset(2) with empty effective, permitted and inheritable sets (version 3 header)."""
    header = ctypes.create_string_buffer(struct.pack("=Ii", 0x20080522, 0))
    if _libc.capset(header, ctypes.create_string_buffer(24)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"capset: {os.strerror(code)}")


# --------------------------------------------------------------------------------------------
# Landlock (raw syscalls: no maintained Python binding covers ABI 4-7)

_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_MAKE_CHAR, _FS_MAKE_BLOCK, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 6, 1 << 11, 1 << 14, 1 << 15
_FS_FILE_ONLY = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_FS_READ_ONLY = _FS_READ_FILE | _FS_READ_DIR
_FS_NEVER = _FS_EXECUTE | _FS_MAKE_CHAR | _FS_MAKE_BLOCK | _FS_IOCTL_DEV
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_RULE_PATH_BENEATH = 1


def _landlock_handled(abi: int) -> tuple[int, int, int]:
    """(fs, net, scoped) access sets handled by a ruleset for this ABI: everything it knows."""
    fs_bits = {1: 13, 2: 14, 3: 15, 4: 15}.get(abi, 16)  # REFER: v2, TRUNCATE: v3, IOCTL_DEV: v5
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    return (1 << fs_bits) - 1, net, scoped


class _Ruleset:
    """A Landlock ruleset being built; `restrict_self()` enforces it on this thread."""

    def __init__(self, abi: int) -> None:
        self.fs, net, scoped = _landlock_handled(abi)
        size = 8 if abi < 4 else 16 if abi < 6 else 24
        attr = ctypes.create_string_buffer(struct.pack("=QQQ", self.fs, net, scoped)[:size])
        self.fd = _syscall(_NR_LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(size), ctypes.c_uint32(0))

    def allow(self, path: str, access: int, *, required: bool) -> None:
        """Grant `access` beneath `path` (masked to what a file accepts when it is a file)."""
        try:
            path_fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            if required:
                raise
            return
        try:
            is_dir = stat.S_ISDIR(os.fstat(path_fd).st_mode)
            allowed = access & self.fs & (-1 if is_dir else _FS_FILE_ONLY)
            rule = ctypes.create_string_buffer(struct.pack("=Qi", allowed, path_fd))
            _syscall(_NR_LANDLOCK_ADD_RULE, self.fd, _RULE_PATH_BENEATH, rule, ctypes.c_uint32(0))
        finally:
            os.close(path_fd)

    def restrict_self(self) -> None:
        _set_no_new_privs()
        _syscall(_NR_LANDLOCK_RESTRICT_SELF, self.fd, ctypes.c_uint32(0))

    def close(self) -> None:
        os.close(self.fd)


def _build_ruleset(policy: JailPolicy) -> _Ruleset:
    ruleset = _Ruleset(landlock_abi())
    try:
        for path in policy.read_only:
            ruleset.allow(path, _FS_READ_ONLY, required=False)
        for path in _ALWAYS_WRITABLE:
            ruleset.allow(path, _FS_READ_FILE | _FS_WRITE_FILE | _FS_TRUNCATE, required=False)
        for path in (policy.scratch_dir, *policy.read_write):
            ruleset.allow(path, ~_FS_NEVER, required=True)
    except BaseException:
        ruleset.close()
        raise
    return ruleset


def apply_landlock(policy: JailPolicy) -> int:
    """Enforce the policy's file rules (and TCP/scope rules when the ABI has them) on this process,
    which must still be single-threaded. Returns the ABI used."""
    _require_single_thread()
    ruleset = _build_ruleset(policy)
    try:
        ruleset.restrict_self()
    finally:
        ruleset.close()
    return landlock_abi()


def _require_single_thread() -> None:
    """Landlock confines the calling thread only (and its future children): refuse with others."""
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        threads = threading.active_count()
    if threads != 1:
        raise ExecutorError(f"apply() must run before any other thread starts; this process has {threads}.")


# --------------------------------------------------------------------------------------------
# seccomp (through pyseccomp, a ctypes binding of libseccomp)

_DENIED_REQUIRED = (
    "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "keyctl", "add_key",
    "request_key", "bpf", "perf_event_open", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register",
)  # fmt: skip
_DENIED_HARDENING = (
    "open_by_handle_at", "name_to_handle_at", "iopl", "ioperm", "modify_ldt", "reboot", "swapon",
    "swapoff", "acct", "quotactl", "quotactl_fd", "sethostname", "setdomainname", "settimeofday",
    "clock_settime", "clock_adjtime", "adjtimex", "syslog", "fanotify_init", "open_tree",
    "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "pidfd_getfd",
    "pidfd_send_signal", "process_madvise", "kcmp", "lookup_dcookie", "vhangup", "tkill",
    "uselib", "migrate_pages", "move_pages",
)  # fmt: skip
_SELF_ONLY = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")  # first argument: a pid
_CLONE_THREAD = 0x00010000
_CLONE_NAMESPACES = (0x80, 0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
_TTY_IOCTLS = (0x5412, 0x541C)  # TIOCSTI (type into the terminal), TIOCLINUX
_AF_UNIX = 1


def _load_pyseccomp() -> Any:
    try:
        return _import_pyseccomp()
    except (ImportError, RuntimeError, OSError) as exc:
        raise JailUnavailable([_seccomp_problem() or f"pyseccomp failed to load ({exc})"]) from exc


def _build_seccomp_filter(policy: JailPolicy) -> Any:
    """A default-allow filter; the calls below fail with EPERM (clone3 with ENOSYS, so that glibc
    falls back to clone, whose flags a filter can inspect)."""
    sc = _load_pyseccomp()
    flt = sc.SyscallFilter(sc.ALLOW)
    flt.set_attr(sc.Attr.CTL_TSYNC, 1)
    eperm = sc.ERRNO(errno.EPERM)
    for name in _DENIED_REQUIRED:
        _deny(sc, flt, eperm, name, required=True)
    for name in _DENIED_HARDENING:
        _deny(sc, flt, eperm, name, required=False)
    _deny(sc, flt, sc.ERRNO(errno.ENOSYS), "clone3", required=False)
    _deny(sc, flt, eperm, "clone", sc.Arg(0, sc.MASKED_EQ, _CLONE_THREAD, 0), required=True)
    for flag in _CLONE_NAMESPACES:
        _deny(sc, flt, eperm, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag), required=True)
    unix_only = [sc.Arg(0, sc.NE, _AF_UNIX)] if policy.allow_unix_sockets else []
    _deny(sc, flt, eperm, "socket", *unix_only, required=True)
    _deny(sc, flt, eperm, "socketpair", sc.Arg(0, sc.NE, _AF_UNIX), required=True)
    for name in _SELF_ONLY:
        _deny(sc, flt, eperm, name, sc.Arg(0, sc.NE, os.getpid()), required=True)
    _deny(sc, flt, eperm, "prlimit64", sc.Arg(0, sc.NE, 0), required=False)
    _deny(sc, flt, eperm, "personality", sc.Arg(0, sc.NE, 0xFFFFFFFF), required=True)
    for request in _TTY_IOCTLS:
        _deny(sc, flt, eperm, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, request), required=True)
    if landlock_abi() < 3:  # Landlock cannot stop truncate(2) on read-only paths before ABI 3
        _deny(sc, flt, eperm, "truncate", required=True)
    return flt


def _deny(sc: Any, flt: Any, action: int, name: str, *args: Any, required: bool) -> None:
    """Add one rule. Calls this architecture lacks (fork on aarch64) are skipped; a call libseccomp
    does not know is skipped too unless `required`, which makes it an error."""
    number = sc.resolve_syscall(sc.Arch.NATIVE, name)
    if number == -1 and required:
        raise JailUnavailable([f"libseccomp does not know the syscall {name!r}: upgrade libseccomp"])
    if number >= 0:
        flt.add_rule(action, number, *args)


def apply_seccomp(policy: JailPolicy) -> None:
    """Load the seccomp filter into every thread of this process."""
    _build_seccomp_filter(policy).load()


# --------------------------------------------------------------------------------------------
# All layers


def apply(policy: JailPolicy, probe: SystemProbe | None = None) -> None:
    """Confine this process: no new privileges, no capabilities, rlimits, Landlock, seccomp; and
    `chdir` to the scratch directory. Call it before any thread starts and before reading code.

    Raises `JailUnavailable` when a mechanism is missing (checked before anything changes) or
    fails to apply; in the latter case the process may be partly confined and must exit.
    """
    probe = probe or SystemProbe.from_env()
    missing = [p for p in (probe.problem("landlock"), probe.problem("seccomp")) if p is not None]
    if missing:
        raise JailUnavailable(missing)
    _require_single_thread()
    if not os.path.isdir(policy.scratch_dir):
        raise ExecutorError(f"The jail's scratch directory {policy.scratch_dir!r} does not exist.")
    ruleset = _step("building the Landlock ruleset", _build_ruleset, policy)
    try:
        seccomp_filter = _step("building the seccomp filter", _build_seccomp_filter, policy)
        os.chdir(policy.scratch_dir)
        _step("setting rlimits", apply_rlimits, policy)
        _step("enforcing Landlock", ruleset.restrict_self)
        _step("loading the seccomp filter", seccomp_filter.load)
    finally:
        ruleset.close()


def _step(what: str, function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except OSError as exc:
        raise JailUnavailable([f"{what} failed: {exc}"]) from exc


# --------------------------------------------------------------------------------------------
# bubblewrap

_NAMESPACES = ("--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts")
_PROVIDED = ("/proc", "/dev")  # bwrap mounts fresh ones; the host's are never bound


def bwrap_argv(
    policy: JailPolicy, inner: list[str], env: Mapping[str, str], *, bwrap: str = "bwrap"
) -> list[str]:
    """The full command that runs `inner` under bubblewrap: new user, pid, net, ipc and uts (and,
    when possible, cgroup) namespaces, no capabilities, its own session, killed with its parent;
    fresh /proc, /dev and an empty /tmp; the `read_only` paths bound read-only (symlinks among
    them, like /lib -> usr/lib, recreated), scratch (or a tmpfs of `scratch_tmpfs_bytes` in its
    place) and `read_write` bound read-write; the
    environment is exactly `env`; the working directory is the scratch directory."""
    argv = [bwrap, *_NAMESPACES, "--unshare-cgroup-try", "--cap-drop", "ALL"]
    argv += ["--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    argv += _read_only_mounts(policy.read_only)
    scratch = os.path.realpath(policy.scratch_dir)
    if policy.scratch_tmpfs_bytes is not None:
        argv += ["--size", str(policy.scratch_tmpfs_bytes), "--tmpfs", scratch]
    else:
        argv += ["--bind", scratch, scratch]
    for path in policy.read_write:
        real = os.path.realpath(path)
        argv += ["--bind", real, real]
    argv.append("--clearenv")
    for name, value in env.items():
        argv += ["--setenv", name, value]
    return [*argv, "--chdir", os.path.realpath(policy.scratch_dir), "--", *inner]


def _read_only_mounts(paths: Iterable[str]) -> list[str]:
    """`--symlink` for each symlink on the way to a path, then `--ro-bind` of each real path not
    already under another bound one, parents first."""
    links: dict[str, str] = {}
    binds: set[str] = set()
    for path in paths:
        if _is_under(path, _PROVIDED) or not os.path.exists(path):
            continue
        _collect_symlinks(path, links)
        binds.add(os.path.realpath(path))
    roots = sorted(b for b in binds if not _is_under(b, binds - {b}))
    argv: list[str] = []
    for link, target in sorted(links.items()):
        if not _is_under(link, roots):
            argv += ["--symlink", target, link]
    for root in roots:
        argv += ["--ro-bind", root, root]
    return argv


def _collect_symlinks(path: str, links: dict[str, str], hops: int = 40) -> None:
    """Record every symlink met while resolving `path`, following targets that are links too
    (at most `hops` deep, as the kernel does)."""
    prefix = "/"
    for part in path.strip("/").split("/"):
        prefix = os.path.join(prefix, part)
        if hops > 0 and os.path.islink(prefix) and prefix not in links:
            links[prefix] = target = os.readlink(prefix)
            resolved = os.path.normpath(os.path.join(os.path.dirname(prefix), target))
            _collect_symlinks(resolved, links, hops - 1)


def _is_under(path: str, roots: Iterable[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)
