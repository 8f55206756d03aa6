"""Eval results: one `EvalResult` per task, one JSON line each in the results file.

The file is appended to the moment each task ends (written, flushed and synced), so a stopped
or crashed eval loses nothing it finished; resuming reads it back and skips the ids it holds.
A last line cut short by a crash mid-write is dropped on resume (that task runs again); any
other line that is not a result is an error (`ResultsFileError`): the file is not ours to fix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigurationError

__all__ = ["CRASHED", "EvalResult", "ResultsFile", "ResultsFileError"]

CRASHED = "crashed"
"""The `state` of a task whose run raised (or whose agent could not be built) instead of ending
with a `RunResult`; its `error` says what was raised."""


class ResultsFileError(ConfigurationError):
    """The results file holds something that is not a result; `line` is where (1-based)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class EvalResult(BaseModel):
    """What one task gave. `state` is the run's `RunState` value ("success", "max_steps_exceeded"...)
    or "crashed"; `output` is the answer as JSON data (None unless the run succeeded); `score`
    and `passed` are the scorer's; `reason` says why the scorer failed it (or the judge's
    explanation); `error` is the run's, or what the run or scorer raised. `cost` is in US
    dollars, None when the model has no known price; `duration` is the run's wall-clock seconds.
    `run_id` finds the run in the agent's store, when it has one. `judge_input_tokens`,
    `judge_output_tokens` and `judge_cost` are what scoring spent (a model as judge), apart
    from the run's own."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    task: str
    expected: Any = None
    output: Any = None
    score: float = 0.0
    passed: bool = False
    state: str
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    duration: float | None = None
    error: str | None = None
    reason: str | None = None
    tags: tuple[str, ...] = ()
    run_id: str | None = None
    judge_input_tokens: int = 0
    judge_output_tokens: int = 0
    judge_cost: float | None = None

    @property
    def crashed(self) -> bool:
        return self.state == CRASHED

    def to_line(self) -> str:
        """The result as one JSON line (no newline); values JSON cannot hold become their repr."""
        return json.dumps(self.model_dump(mode="json", fallback=repr), ensure_ascii=False)


def _lock(file: IO[str], path: Path) -> None:
    """Hold an exclusive lock on `file` until it is closed (where the OS has `flock`)."""
    try:
        import fcntl
    except ImportError:  # not on this OS: evals writing one file are not kept apart
        return
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ResultsFileError(
            f"{path} is being written by another eval now: wait for it to end, or write to another file"
        ) from None


class ResultsFile:
    """The results JSON Lines file of an eval: read back for resuming, appended to as tasks end."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None

    def open(self, *, resume: bool) -> list[EvalResult]:
        """Open for appending and return the results already there (with `resume`), or start
        the file afresh (without). The file is locked while open: a second eval writing the
        same file is refused (`ResultsFileError`), rather than interleaving with this one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        try:
            _lock(self._file, self.path)
            if not resume:
                self._file.truncate(0)
            return self.read() if resume else []
        except BaseException:
            self.close()
            raise

    def read(self) -> list[EvalResult]:
        """The results in the file (none if it does not exist); a torn last line is cut off."""
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        results = [
            _result(line, number, self.path) for number, line in enumerate(lines[:-1], 1) if line.strip()
        ]
        last = lines[-1]  # text after the last newline: empty, or a line whose write was cut short
        if last.strip():
            try:
                results.append(_result(last, len(lines), self.path))
                self._append_text("\n")
            except ResultsFileError:
                self._truncate(len(text.encode("utf-8")) - len(last.encode("utf-8")))
        return results

    def write(self, result: EvalResult) -> None:
        """Append `result` as a line, on disk before this returns."""
        if self._file is None:
            raise RuntimeError("ResultsFile.write() before open()")
        self._file.write(result.to_line() + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _append_text(self, text: str) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write(text)

    def _truncate(self, size: int) -> None:
        with self.path.open("r+b") as file:
            file.truncate(size)


def _result(line: str, number: int, path: Path) -> EvalResult:
    try:
        return EvalResult.model_validate_json(line)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"] if exc.errors() else str(exc)
        raise ResultsFileError(
            f"{path} line {number} is not an eval result ({problem}); "
            "give another --output file, or --no-resume to start it afresh",
            number,
        ) from None
