"""The default executor: model-written code runs in Monty, Pydantic's Python interpreter in Rust.

This module is a **security boundary**. Snippets run in `pydantic-monty` worker subprocesses
that have no file system, network, environment or subprocess access: `open()`, `pathlib`,
`os.getenv`/`os.environ` and every other OS call the interpreter makes is surfaced to this host
and refused here (no mount, no `os` handler). No `__class__`/`__globals__`/frame access exists, so
host objects cannot be reached by introspection. The only ways out of the sandbox are the host
functions passed to `start()`, the pure host-implemented modules listed in `HOST_MODULES`, and
`final_answer`; their arguments cross as plain data.

Limits (`ExecutorLimits`): `timeout_s` bounds sandbox execution time per snippet (time spent in
host functions is not counted; a wall-clock backstop also bounds the time spent driving the
sandbox), `memory_bytes` the sandbox heap, `max_recursion_depth` the call stack, and
`max_output_chars` what `print` returns (a much larger hard cap stops runaway printing). After a
time limit, a crashed worker, or runaway output the session's heap is undefined, so the executor
starts a fresh session, re-registers the host functions and sent variables, and reports
`state_lost=True`. `time.sleep()` returns at once (sleeping would not count against the limit).

`final_answer(value)`: the call suspends the snippet and reaches this host, which records the
value and answers the call by raising `SystemExit` inside the snippet, so `except Exception`
does not see it and the snippet unwinds. The host never serves the snippet again: if it catches
the signal anyway (bare `except`, `finally`), every later host call raises the signal again, its
later output is dropped, and the first value stands; the time limit still bounds it. (Leaving the
snippet suspended forever is not an option: a Monty session accepts no new snippet while one is
suspended, so the session's variables would be lost.)

Workers: by default a session is pooled (`pool.py`, `pooled.py`): it borrows one of a few
shared worker processes for each code action and is kept in this process as a Monty dump in
between, so many concurrent sessions cost a few processes. Sessions are isolated from each other
by the interpreter: a checkout starts from an empty heap and only ever holds the one session it
loaded; every limit above is the session's own, enforced inside the interpreter (the time limit
also by killing a worker that overruns it, which loses only the action in flight there). A
session that grows past an eighth of `memory_bytes` (at most 8 MiB) keeps its worker from then
on. `MontyExecutor(pooled=False)` gives each session a worker process of its own instead.

Host functions may be sync or async; async ones are awaited in the caller's event loop. A call
the snippet awaits (`await tool(...)`, e.g. inside `async def` helpers run with `asyncio.gather`)
is started as a task, so such calls overlap; a plain call returns its result directly.

Before a snippet is fed, `rewrite.py` rewrites, line for line, what Monty would get wrong:
in-place operators, `len()` and truth tests of the session's own classes, `del container[key]`,
and generator expressions whose laziness shows. The helpers it calls are defined inside the
sandbox; errors still quote the model's own lines.

What it does not do: Monty is not full CPython. It refuses `del name`, generators (`yield`),
class inheritance (so custom exception classes), method decorators, statements in class bodies
other than methods and `name = value`, and many stdlib modules; some dunder methods of user
classes (`__lt__`, `__getattr__`, `__format__`...) are not called. The error the model sees says
what to write instead (`hints.py`). Host functions run in the host process with the host's
privileges: they are the trusted part, so give the agent only functions that are safe to call
with untrusted arguments. Third-party packages (numpy, pandas) need a full-CPython executor.
"""

from __future__ import annotations

from .executor import MontyExecutor
from .modules import HOST_MODULES, MONTY_MODULES
from .pool import MontyPool, close_shared_pool, shared_pool

__all__ = ["HOST_MODULES", "MONTY_MODULES", "MontyExecutor", "MontyPool", "close_shared_pool", "shared_pool"]
