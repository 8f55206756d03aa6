"""`codeloop ui` run as a person runs it, for tests/test_ui.py: a subprocess whose printed URL
the tests open in Debian's Chromium, driven by Playwright; Ctrl-C (SIGINT) stops it.

`UIServer(args)` starts `codeloop ui ARGS --port 0` in `tests/` (so `--agent ui_agents:agent`
imports) and waits for the line naming its URL; `stop()` sends SIGINT and returns the exit
status. `launch_chromium(playwright)` starts the system Chromium headless, or fails saying how
to install it.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from terminal import cli_command

__all__ = ["ARTIFACTS", "CHROMIUM_ARGS", "UIServer", "chromium_path", "launch_chromium"]

TESTS = Path(__file__).resolve().parent
ARTIFACTS = TESTS / "artifacts" / "ui"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_URL = re.compile(r"serving (\S+) at (http://\S+)")


class UIServer:
    """A `codeloop ui` process; `url` once it serves. Its output is kept in `out` and `err`."""

    def __init__(self, args: Sequence[str], *, ready_timeout: float = 120) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODELOOP_"))}
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [*cli_command(), "ui", *args, "--port", "0"],
            cwd=TESTS,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(self.process.stdout, self.out, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, self.err, False), daemon=True).start()
        self.agent, self.url = self._wait_for_url(ready_timeout)

    def _pump(self, stream: Any, into: list[str], announce: bool) -> None:
        for line in stream:
            into.append(line)
            if announce:
                self._lines.put(line)
        if announce:
            self._lines.put(None)

    def _wait_for_url(self, timeout: float) -> tuple[str, str]:
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                self.stop()
                raise AssertionError(
                    f"codeloop ui printed no URL in {timeout} s: {''.join(self.err)}"
                ) from None
            if line is None:
                self.process.wait()
                code, err = self.process.returncode, "".join(self.err)
                raise AssertionError(f"codeloop ui exited ({code}) without serving; stderr:\n{err}")
            found = _URL.search(line)
            if found:
                return found.group(1), found.group(2)

    def stop(self, timeout: float = 30) -> int:
        """Ctrl-C, as a person stops it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(
                    f"codeloop ui did not stop on Ctrl-C; stderr:\n{''.join(self.err)}"
                ) from None
        return self.process.returncode


def chromium_path() -> str:
    """The system Chromium; the test fails (it is part of the suite) when it is missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Chromium is missing: the web UI's tests drive it. Install it: apt-get install chromium")
    return found


def launch_chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
