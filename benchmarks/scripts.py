"""Framework-neutral material shared by both sides of the benchmarks: scripted trajectories and
tool definitions. Imported by `codeloop_side.py` and `smolagents_side.py`, each in its own
environment, so this module imports neither framework."""

from __future__ import annotations

__all__ = [
    "OBSERVATION_SIZES",
    "TOOL_FUNCTIONS",
    "TreeMemory",
    "code_steps",
    "jsonable",
    "raise_open_files_limit",
    "trajectory_steps",
]


def get_weather(city: str) -> str:
    """Get the current weather for a city.

    Args:
        city: The city name.
    """
    return "sunny"


def convert_currency(amount: float, from_currency: str, to_currency: str) -> float:
    """Convert an amount of money between currencies.

    Args:
        amount: The amount.
        from_currency: ISO code to convert from.
        to_currency: ISO code to convert to.
    """
    return amount


def search_docs(query: str) -> str:
    """Search the documentation and return the best passage.

    Args:
        query: What to look for.
    """
    return "passage"


def read_table(name: str, limit: int) -> list:  # type: ignore[type-arg]
    """Read rows of a named table.

    Args:
        name: The table name.
        limit: How many rows to return.
    """
    return []


def send_email(to: str, subject: str, body: str) -> str:
    """Send an email and return its id.

    Args:
        to: The recipient's address.
        subject: The subject line.
        body: The message text.
    """
    return "id-1"


# Five tools of typical size: the same functions for both frameworks.
TOOL_FUNCTIONS = [get_weather, convert_currency, search_docs, read_table, send_email]

# Printed output sizes (characters) of a realistic 20-step run: small checks, medium listings,
# and a few large dumps.
OBSERVATION_SIZES = [120, 400, 1500, 250, 3000, 180, 800, 600, 2200, 150] * 2


def code_steps(steps: int) -> list[str]:
    """Python snippets for an overhead run: `steps - 1` cheap actions, then the final answer."""
    return [f"x = {i} * 2" for i in range(steps - 1)] + ["final_answer(x)"]


def trajectory_steps(steps: int = 20) -> list[str]:
    """Python snippets for a run of `steps` steps whose printed output has realistic sizes
    (`OBSERVATION_SIZES`, over and over), the last one giving the answer."""
    sizes = [OBSERVATION_SIZES[i % len(OBSERVATION_SIZES)] for i in range(steps - 1)]
    return [*(f"print('r' * {size})" for size in sizes), "final_answer('done')"]


class TreeMemory:
    """Samples the resident memory of this process and all its descendants (Linux /proc), and
    keeps the peak: worker subprocesses count, unlike `ru_maxrss`."""

    def __init__(self, interval: float = 0.05) -> None:
        import threading

        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(interval,), daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self, interval: float) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, _tree_rss_mb())
            self._stop.wait(interval)


def _tree_rss_mb() -> float:
    import os

    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(_rss_kb(pid) for pid in tree) / 1024


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def jsonable(value: object) -> object:
    """`value` if it can be written as JSON, else its repr (an agent's answer can be anything)."""
    import json

    try:
        json.dumps(value)
    except TypeError:
        return repr(value)
    return value


def raise_open_files_limit() -> None:
    """Allow as many open files as the hard limit does (a thousand concurrent runs need sockets)."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
