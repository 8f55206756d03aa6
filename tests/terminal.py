"""Run the real `codeloop` command as a person does: in a subprocess, with pipes or on a terminal.

`run_cli(args)` runs it to the end with stdout and stderr captured apart (no terminal).
`Terminal(args)` starts it on a pseudo-terminal that is its controlling terminal, so typing
Ctrl-C (`terminal.interrupt()`) makes the kernel send SIGINT to its foreground process group,
exactly as in a shell. `expect(text)` waits for text to appear (ANSI styling removed);
`descendants()` lists the processes it started (read from /proc), to check none outlives it.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CliResult", "Terminal", "alive", "cli_command", "plain", "run_cli"]

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[=>]")


def cli_command() -> list[str]:
    """The installed `codeloop` script beside this interpreter, else `python -m codeloop.cli`."""
    script = Path(sys.executable).with_name("codeloop")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "codeloop.cli"]


def plain(text: str) -> str:
    """`text` without ANSI escapes and carriage-return overdraws, with `\\n` line ends."""
    text = _ANSI.sub("", text).replace("\r\n", "\n")
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def _environment(env: Mapping[str, str] | None) -> dict[str, str]:
    merged = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODELOOP_"))}
    merged.update(env or {})
    return merged


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


def run_cli(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    command: Sequence[str] | None = None,
    timeout: float = 120,
    cwd: str | os.PathLike[str] | None = None,
) -> CliResult:
    """Run `codeloop ARGS` to the end (stdin empty, no terminal, in `cwd`). `env` is added to a
    copy of this process's environment without its OPENAI_* and CODELOOP_* variables."""
    done = subprocess.run(
        [*(command or cli_command()), *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=_environment(env),
        timeout=timeout,
        check=False,
    )
    return CliResult(done.returncode, done.stdout.decode(), done.stderr.decode())


def _take_terminal() -> None:
    """In the child: a new session whose controlling terminal is the pty on fd 0."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """`codeloop ARGS` on a pseudo-terminal (stdin, stdout and stderr all on it)."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
        columns: int = 100,
    ) -> None:
        self._master, slave = os.openpty()
        self._set_size(slave, rows=40, columns=columns)
        self.process = subprocess.Popen(
            [*(command or cli_command()), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**_environment(env), "TERM": "xterm-256color", "COLUMNS": str(columns)},
            preexec_fn=_take_terminal,
            close_fds=True,
        )
        os.close(slave)
        self._raw = b""

    @staticmethod
    def _set_size(fd: int, *, rows: int, columns: int) -> None:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    # -- reading -----------------------------------------------------------------------------
    @property
    def output(self) -> str:
        """Everything the command wrote so far, as plain text."""
        return plain(self._raw.decode("utf-8", "replace"))

    def _read(self, wait: float) -> bool:
        """Read what is available within `wait` seconds; False at end of output."""
        ready, _, _ = select.select([self._master], [], [], wait)
        if not ready:
            return True
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: every writer of the terminal has closed it
            return False
        self._raw += data
        return bool(data)

    def expect(self, text: str, timeout: float = 60) -> str:
        """Wait until `text` has appeared in the output; return the output. Fails on timeout
        or if the command ends first."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not appear within {timeout} s; output:\n{self.output}")
            if not self._read(0.05) and text not in self.output:
                raise AssertionError(f"the command ended before {text!r} appeared; output:\n{self.output}")
        return self.output

    # -- acting ------------------------------------------------------------------------------
    def interrupt(self) -> None:
        """Type Ctrl-C."""
        os.write(self._master, b"\x03")

    def wait(self, timeout: float = 30) -> int:
        """Wait for the command to exit (a hang guard, not a timing assertion); read its output."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.05)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"the command did not exit within {timeout} s; output:\n{self.output}")
        while self._read(0.05):
            pass
        return self.process.returncode

    def descendants(self) -> list[int]:
        """Process ids of every process the command started that is still running."""
        children: dict[int, list[int]] = {}
        for pid, parent in _parents().items():
            children.setdefault(parent, []).append(pid)
        found, todo = [], [self.process.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        return found

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self._master)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stat(pid: int | str) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: [state, ppid, pgrp, ...]."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _parents() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(entry)) is not None:
            parents[int(entry)] = int(fields[1])
    return parents


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"
