"""What `codeloop run` shows on stderr while it gets a local model ready: the one-time join of
the model files, then the model load. On a terminal each is a live line (a bar for the join, a
spinner for the load, with the time so far); elsewhere (a pipe, a log file) one line as it starts.
Either way a line with the time it took follows when it is done. Nothing is shown when quiet."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["Activity", "Display", "JoinView"]


class Display:
    """The progress lines of the steps before a run, on `file` (stderr)."""

    def __init__(self, file: IO[str], *, quiet: bool = False) -> None:
        from rich.console import Console

        self.quiet = quiet
        self.console = Console(file=file, highlight=False, soft_wrap=True)

    @contextmanager
    def activity(self, label: str, *, total: int | None = None, done: str = "done") -> Iterator[Activity]:
        """Show `label` while the block runs; then `label done in N s` if it succeeded."""
        shown = Activity(self, label, total)
        try:
            yield shown
        except BaseException:
            shown.close(None)
            raise
        shown.close(f"{done} in {shown.elapsed():.1f} s")

    @contextmanager
    def joining(self) -> Iterator[JoinView]:
        """A `codeloop.models.gguf.JoinProgress` callback that shows a join if one happens."""
        view = JoinView(self)
        try:
            yield view
        except BaseException:
            view.close(success=False)
            raise
        view.close(success=True)


class Activity:
    """One step on show: live on a terminal, else a line now; `close` ends it."""

    def __init__(self, display: Display, label: str, total: int | None) -> None:
        self.display, self.label = display, label
        self.started = time.perf_counter()
        self._live: Progress | None = None
        if display.quiet:
            return
        if display.console.is_terminal:
            self._live = _live_line(display, label, total)
            self._live.start()
        else:
            display.console.print(label)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def advance_to(self, completed: int) -> None:
        if self._live is not None:
            self._live.update(self._live.task_ids[0], completed=completed)

    def close(self, outcome: str | None) -> None:
        """Stop the live line; print `label outcome` when there is an outcome."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        if outcome is not None and not self.display.quiet:
            self.display.console.print(f"{self.label} {outcome}", markup=False)


class JoinView:
    """Called with (bytes joined, bytes in all); the first call starts the line."""

    def __init__(self, display: Display) -> None:
        self.display = display
        self.activity: Activity | None = None

    def __call__(self, completed: int, total: int) -> None:
        if self.activity is None:
            label = f"Joining the model files ({total / 1e9:.1f} GB, once)…"
            self.activity = Activity(self.display, label, total)
        self.activity.advance_to(completed)

    def close(self, *, success: bool) -> None:
        if self.activity is not None:
            self.activity.close(f"done in {self.activity.elapsed():.1f} s" if success else None)


def _live_line(display: Display, label: str, total: int | None) -> Progress:
    """A transient one-line rich progress view: spinner, label, (bar and bytes,) time so far."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}", markup=False)]
    if total is not None:
        columns += [BarColumn(), DownloadColumn()]
    live = Progress(*columns, TimeElapsedColumn(), console=display.console, transient=True)
    live.add_task(label, total=total)
    return live
