"""`codeloop ui`: a local web UI for an agent: start runs and watch them stream, browse the run
history, read a run's steps and its waterfall, answer approvals, resume runs.

```python
from codeloop.ui import serve

serve(agent)  # http://127.0.0.1:7860; Ctrl-C stops it
```

It needs the `ui` extra (`pip install "codeloop[ui]"`: Starlette, uvicorn, sse-starlette). The
page is this package's own HTML, CSS and JavaScript (`static/`): nothing is loaded from
elsewhere. The history is read from the run store: the agent's (`store=`), or the one given
here; an agent without a store is given it (default: the user's store, as `codeloop run`
keeps its runs), so its runs are kept, listed and resumable.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..agents import MultiStepAgent
    from ..agents.durable import StoreSpec

__all__ = ["MISSING_EXTRA", "bind", "create_app", "is_loopback", "serve"]

MISSING_EXTRA = 'the web UI needs the ui extra: pip install "codeloop[ui]"'
LOOPBACK = ["127.0.0.1", "localhost", "::1", "[::1]"]


def create_app(
    agent: MultiStepAgent, store: StoreSpec = None, *, hosts: list[str] | None = None
) -> Starlette:
    """The UI's ASGI app serving `agent`. `store` (a `RunStore`, a path or URL, or True for the
    user's store; default: the agent's store, else the user's) is where the history is read;
    an agent without a store is given it. `hosts`: the Host names the app answers to (default:
    this machine's loopback names), against DNS rebinding."""
    _require_extra()
    from ..agents.durable import open_spec
    from .app import build_app

    spec = store if store not in (None, False) else (agent.store or True)
    if agent.store in (None, False):
        agent.store = spec
    reader, owned = open_spec(spec)
    return build_app(agent, reader, owned, hosts or LOOPBACK)


def serve(
    agent: MultiStepAgent,
    host: str = "127.0.0.1",
    port: int = 7860,
    store: StoreSpec = None,
    *,
    announce: Callable[[str], Any] | None = None,
) -> None:
    """Serve the UI for `agent` at http://host:port until Ctrl-C (port 0: a free one). The URL is
    given to `announce` (default: printed) once the port is bound."""
    _require_extra()
    import uvicorn

    app = create_app(agent, store, hosts=_hosts_for(host))
    sock = bind(host, port)
    url = f"http://{_url_host(host)}:{sock.getsockname()[1]}"
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    try:
        asyncio.run(_serve_until_stopped(server, sock, lambda: (announce or _print)(url)))
    finally:
        sock.close()


async def _serve_until_stopped(server: Any, sock: socket.socket, ready: Callable[[], Any]) -> None:
    """Run uvicorn's server on `sock`; `ready()` once it has started (Ctrl-C is its from then)."""
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    if server.started:
        ready()
    await serving


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; `ConfigurationError` naming the problem if it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        in_use = exc.errno == errno.EADDRINUSE
        why = "it is in use: pass another --port (0: any free one)" if in_use else exc.strerror
        raise ConfigurationError(f"cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock


def _require_extra() -> None:
    try:
        import sse_starlette  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ConfigurationError(MISSING_EXTRA) from None


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only (127.0.0.1, ::1, localhost)."""
    bare = host.strip("[]")
    try:
        return bare == "localhost" or ipaddress.ip_address(bare).is_loopback
    except ValueError:  # another name
        return False


def _hosts_for(host: str) -> list[str]:
    """The Host names to answer to: loopback names for a loopback address, any for a wildcard."""
    bare = host.strip("[]")
    if bare in ("0.0.0.0", "::", ""):
        return ["*"]
    return LOOPBACK if is_loopback(bare) else [*LOOPBACK, bare]


def _url_host(host: str) -> str:
    bare = host.strip("[]")
    if bare in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{bare}]" if ":" in bare else bare


def _print(url: str) -> None:
    print(f"codeloop ui: serving at {url} (Ctrl-C stops it)", file=sys.stdout, flush=True)
