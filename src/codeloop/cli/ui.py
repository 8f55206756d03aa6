"""`codeloop ui`: the local web UI (being built: see codeloop.ui)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_ui_command"]


def add_ui_command(commands: Any) -> None:
    ui = commands.add_parser("ui", help="serve the local web UI: runs, traces, approvals")
    ui.set_defaults(handler=_ui)


def _ui(args: argparse.Namespace) -> int:
    raise NotImplementedError("codeloop ui is not built yet")
