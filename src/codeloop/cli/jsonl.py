"""`codeloop run --json`: the run's events as JSON Lines on stdout, for other programs (jq...).

Each event is one line, `event_to_dict(event)` (`{"type": "RunStarted", "agent": ..., ...}`),
written and flushed as it happens, so a reader sees the run as it goes. The model's text pieces
(`ModelDelta`) are left out unless asked for (`--stream-text`): the whole reply follows anyway, in
`ModelCallFinished` and `ModelOutput`. The last line of a run that ended is its `RunFinished`,
which carries its state, output (the answer) and error.

Lines are ASCII (other characters escaped), so they never fail on a stdout that is not UTF-8.
When the reader goes away (`codeloop run --json ... | head -n 3`), writing stops and
`on_closed` is called once: the command cancels the run there, as nobody reads it any more. It
is called with the first event from then on at which a run can be cancelled: not a
`RunStarted` (the run is not under way yet), nor a `RunFinished` (it is over).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import IO

from ..events import Event, ModelDelta, RunFinished, RunStarted, event_to_dict

__all__ = ["JsonLines"]


class JsonLines:
    """An event handler writing each event as one JSON line to `file` (default: `sys.stdout` at
    the time of each event); `deltas=True` includes the model's text pieces (`ModelDelta`)."""

    def __init__(
        self,
        file: IO[str] | None = None,
        *,
        deltas: bool = False,
        on_closed: Callable[[], object] | None = None,
    ) -> None:
        self.file = file
        self.deltas = deltas
        self.on_closed = on_closed
        self.closed = False
        """The reader went away: nothing more is written."""
        self._told = False

    def __call__(self, event: Event) -> None:
        if not self.closed and (self.deltas or not isinstance(event, ModelDelta)):
            self._write(event)
        if self.closed and not self._told and not isinstance(event, (RunStarted, RunFinished)):
            self._told = True
            if self.on_closed is not None:
                self.on_closed()

    def _write(self, event: Event) -> None:
        out = self.file if self.file is not None else sys.stdout
        try:
            out.write(json.dumps(event_to_dict(event)) + "\n")
            out.flush()
        except BrokenPipeError:
            self.closed = True
            _discard(out)


def _discard(out: IO[str]) -> None:
    """Point `out`'s file descriptor at /dev/null: what is still buffered, or written later (a
    flush at exit), goes nowhere instead of failing again on the closed pipe."""
    try:
        fd = out.fileno()
    except (OSError, ValueError):  # not a real file (a test's capture)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
