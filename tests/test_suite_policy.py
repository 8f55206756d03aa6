"""The suite's own rule, enforced by `tests/conftest.py`: a skip for a missing credential or
service is allowed, any other skip fails the session and is named at the end."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8")


def test_a_skip_for_missing_data_fails_the_session(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import pytest

        def test_runs():
            assert True

        def test_needs_data():
            pytest.skip("fixture file not found")
        """
    )
    result = pytester.runpytest_subprocess()

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*skips that are not allowed*", "*test_needs_data: fixture file not found*", "*1 passed, 1 skipped*"]
    )


def test_a_skip_for_a_missing_credential_is_allowed(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import os, pytest

        @pytest.mark.skipif(not os.environ.get("E2B_API_KEY_FOR_NOBODY"), reason="needs E2B_API_KEY")
        def test_live():
            assert True
        """
    )
    result = pytester.runpytest_subprocess()

    assert result.ret == pytest.ExitCode.OK
    assert "not allowed" not in result.stdout.str()
