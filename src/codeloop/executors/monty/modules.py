"""What a Monty snippet can import: Monty's own modules and pure stdlib functions run in the host."""

from __future__ import annotations

import stat
import statistics
import string
import sys
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import ConfigurationError

__all__ = [
    "HOST_MODULES",
    "MAX_HOST_MODULE_ARG",
    "MONTY_MODULES",
    "OS_STUBS",
    "check_imports",
    "is_stdlib",
]

MONTY_MODULES: frozenset[str] = frozenset(
    "asyncio base64 binascii bisect collections copy csv dataclasses datetime decimal functools hashlib "
    "itertools json math os os.path pathlib posixpath random re sys time tomllib typing unicodedata".split()
)
"""Modules built into Monty 1.4 and importable by every snippet (os/pathlib/sys are inert stubs)."""

OS_STUBS = frozenset({"os", "os.path", "pathlib", "posixpath", "sys"})

_STATISTICS = (
    "mean fmean geometric_mean harmonic_mean median median_low median_high median_grouped mode "
    "multimode pstdev pvariance stdev variance quantiles correlation covariance"
)
_STAT_PREFIXES = ("S_", "UF_", "SF_", "filemode")  # file-mode constants and pure int -> bool/str tests
HOST_MODULES: dict[str, dict[str, Any]] = {
    "statistics": {name: getattr(statistics, name) for name in _STATISTICS.split()},
    "textwrap": {name: getattr(textwrap, name) for name in ("dedent", "indent", "wrap", "fill", "shorten")},
    "stat": {name: getattr(stat, name) for name in dir(stat) if name.startswith(_STAT_PREFIXES)},
    "string": {
        name: getattr(string, name)
        for name in (
            "ascii_letters ascii_lowercase ascii_uppercase digits hexdigits octdigits punctuation "
            "printable whitespace capwords"
        ).split()
    },
}
"""Pure stdlib functions Monty lacks, offered to snippets as modules implemented outside the sandbox:
their calls run in the executor's helper process (see helper.py), never in the host process."""

MAX_HOST_MODULE_ARG = 1_000_000  # items + characters a host-module call may receive (shared parts each time)


def is_stdlib(name: str) -> bool:
    """Whether `name` (a module, possibly dotted) belongs to Python's standard library."""
    return name.split(".")[0] in sys.stdlib_module_names


def check_imports(names: Sequence[str], host_modules: Mapping[str, Any]) -> None:
    """Refuse authorised imports Monty cannot provide, at construction."""
    provided = (MONTY_MODULES - OS_STUBS) | set(host_modules)
    for name in names:
        top = name.split(".")[0]
        if name in provided or (name == f"{top}.*" and top in provided):
            continue
        detail = (
            "Monty's os/pathlib/sys are stubs without file system, environment or process access"
            if top in OS_STUBS
            else "the Monty sandbox cannot import arbitrary modules"
            if name == "*"
            else f"the Monty sandbox cannot provide {name!r}"
        )
        available = ", ".join(sorted(provided))
        raise ConfigurationError(
            f"additional_authorized_imports includes {name!r}, but {detail}. Monty provides: {available}. "
            "Other modules (numpy, pandas...) need executor='jail' (full CPython in an OS jail)."
        )
