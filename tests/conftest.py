"""Suite-wide policy: a test may be skipped only for a missing credential or outside service.

Everything else a test needs (data, packages from the dev extras, bubblewrap) is part of the
suite: the data lives in `tests/data/`, and the README's test command and `.ci/run` install the
rest. A skip for any other reason would hide a test that never ran, so it fails the session,
listed at the end with its reason. The allowed reasons are the patterns below, in one place.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pg_server import PostgresServer

ALLOWED_SKIP_REASONS: dict[str, str] = {
    r"needs E2B_API_KEY": "credential: an E2B account",
    r"needs a Modal token": "credential: a Modal account",
    r"needs a Docker daemon": "service: no Docker engine runs here",
}
"""Skip-reason pattern (searched in the reason) -> why such a skip is acceptable."""

_unexpected: list[tuple[str, str]] = []


def pytest_configure(config: pytest.Config) -> None:
    """Runs kept in "the user's store" (`codeloop run`'s default) go to a folder of this session,
    for the test process and every command it starts, never to the real user data directory."""
    os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="codeloop-test-data-")


def skip_allowed(reason: str) -> bool:
    return any(re.search(pattern, reason) for pattern in ALLOWED_SKIP_REASONS)


def _reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _reason(report)
        if not skip_allowed(reason):
            _unexpected.append((report.nodeid, reason))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _unexpected:
        return
    terminalreporter.section("skips that are not allowed", sep="=", red=True, bold=True)
    terminalreporter.write_line(
        "Only a missing credential or outside service may skip (tests/conftest.py lists the reasons);"
        " these tests did not run:"
    )
    for nodeid, reason in _unexpected:
        terminalreporter.write_line(f"  {nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _unexpected and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (`tests/pg_server.py`), stopped at the end;
    a missing PostgreSQL fails the tests that need it, naming the package to install."""
    from pg_server import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()
