"""The web UI's server: a Starlette app serving the page, a JSON API and server-sent events.

    GET  /                          the page (its views are client-side routes: #/, #/runs, ...)
    GET  /api/info                  the agent served, its tools, the store
    GET  /api/runs                  the stored runs: ?state= &since= &until= &q= &limit=
    POST /api/runs                  {"task": ...}: start a run -> {"run_id": ...}
    GET  /api/runs/{id}             the run's summary and its events so far
    GET  /api/runs/{id}/events      server-sent events: the run's events, then each new one
    GET  /api/runs/{id}/trace       the run's waterfall
    POST /api/runs/{id}/cancel      stop a run in progress
    POST /api/runs/{id}/resume      {"max_steps": n?}: continue a stored run
    POST /api/runs/{id}/approvals   {"answers": {call_id: true | "reason"}}: answer, and continue
    GET  /api/approvals             the tool calls that wait for an answer

Every failure the page can cause is answered with `{"error": "..."}` and a 4xx status; the
page shows it. Requests that change something must be JSON from this page's own origin.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..store import RunNotFound, RunStore, StoreError
from .live import RunManager
from .stored import summary, told_events
from .trace import waterfall

if TYPE_CHECKING:
    from ..agents import MultiStepAgent

__all__ = [
    "ApiError",
    "UIState",
    "build_app",
    "events_of",
    "json_body",
    "moment",
    "run_summary",
    "stored",
    "trace_of",
    "ui_state",
    "where",
]

log = logging.getLogger("codeloop.ui")

STATIC = files("codeloop.ui") / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class ApiError(Exception):
    """A request the UI refuses: answered with `{"error": message}` and `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class UIState:
    """What the handlers share: the agent served, its runs, the store the history is read from."""

    agent: MultiStepAgent
    manager: RunManager
    store: RunStore
    owns_store: bool


def build_app(agent: MultiStepAgent, store: RunStore, owns_store: bool, hosts: list[str]) -> Starlette:
    """The app serving `agent`, its history read from `store` (closed at shutdown if owned)."""
    from . import handlers as h

    state = UIState(agent, RunManager(agent), store, owns_store)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        """Share the state; at shutdown cancel the runs in progress and close what is open."""
        app.state.ui = state
        try:
            yield
        finally:
            await _shut_down(state)

    routes = [
        Route("/", page),
        Route("/static/{name}", static),
        Route("/api/info", h.info),
        Route("/api/runs", h.list_runs, methods=["GET"]),
        Route("/api/runs", h.start_run, methods=["POST"]),
        Route("/api/runs/{run_id}", h.run_detail),
        Route("/api/runs/{run_id}/events", h.run_events),
        Route("/api/runs/{run_id}/trace", h.run_trace),
        Route("/api/runs/{run_id}/cancel", h.cancel_run, methods=["POST"]),
        Route("/api/runs/{run_id}/resume", h.resume_run, methods=["POST"]),
        Route("/api/runs/{run_id}/approvals", h.answer_approvals, methods=["POST"]),
        Route("/api/approvals", h.approvals),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts)]
    handlers: dict[Any, Any] = {ApiError: api_error, Exception: server_error}
    return Starlette(routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan)


async def _shut_down(state: UIState) -> None:
    await state.manager.close()
    with contextlib.suppress(Exception):
        await state.agent.aclose()
    if state.owns_store:
        with contextlib.suppress(Exception):
            await state.store.close()


async def page(request: Request) -> Response:
    """GET /: the page (its views are client-side routes)."""
    return _file("index.html")


async def static(request: Request) -> Response:
    """GET /static/{name}: the page's script, stylesheet and icon (nothing else)."""
    name = request.path_params["name"]
    if name not in ("app.js", "app.css") and not name.endswith(".svg"):
        raise ApiError(404, f"No file {name!r} here.")
    return _file(name)


def _file(name: str) -> Response:
    resource = STATIC / name
    if not resource.is_file():
        raise ApiError(404, f"No file {name!r} here.")
    suffix = name[name.rfind(".") :]
    media = _TYPES.get(suffix, "image/svg+xml")
    return Response(resource.read_bytes(), media_type=media, headers=_HEADERS)


async def api_error(request: Request, exc: Exception) -> Response:
    """A refused request: its message, for the page to show."""
    status = exc.status if isinstance(exc, ApiError) else 400
    return JSONResponse({"error": str(exc)}, status_code=status, headers=_HEADERS)


async def server_error(request: Request, exc: Exception) -> Response:
    """A failure: a store that cannot be read says so; a bug is logged (type and traceback, not
    the request's content) and the page is told to look at the log."""
    if isinstance(exc, StoreError):  # the store could not be read: say so, it is not a bug here
        return JSONResponse({"error": str(exc)}, status_code=503, headers=_HEADERS)
    log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
    message = f"The server failed: {type(exc).__name__} (its log has the details)."
    return JSONResponse({"error": message}, status_code=500, headers=_HEADERS)


def ui_state(request: Request) -> UIState:
    """The app's shared state."""
    state: UIState = request.app.state.ui
    return state


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; refused unless it is JSON sent by this page's origin."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ApiError(415, "Send the request as JSON (Content-Type: application/json).")
    origin = request.headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
        raise ApiError(403, "Requests that change something must come from this page.")
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ApiError(400, "The request's body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request's body must be a JSON object.")
    return data


def moment(text: str | None, name: str) -> float | None:
    """A `since`/`until` parameter: seconds since the epoch, or a date (YYYY-MM-DD, local time)."""
    if text is None or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ApiError(400, f"{name}={text!r} is not a date like 2026-12-01 or seconds since 1970.") from None


async def stored(state: UIState, run_id: str) -> tuple[Any, list[Any], list[Any]] | None:
    """The run's record, steps and journal from the store; None if the store has no such run."""
    try:
        record = await state.store.get_run(run_id)
    except RunNotFound:
        return None
    return record, await state.store.steps(run_id), await state.store.tool_calls(run_id)


def run_summary(
    state: UIState, found: tuple[Any, list[Any], list[Any]] | None, run_id: str
) -> dict[str, Any]:
    """The run's summary: from the store, with what this server knows of it live."""
    live = state.manager.get(run_id)
    if found is not None:
        data = summary(found[0], live_here=state.manager.is_live(run_id))
    elif live is not None:
        data = {"run_id": run_id, "state": live.state, "agent": live.agent, "task": live.task}
        data |= {"live": not live.done, "resumable": False, "pending": [], "steps": None}
    else:
        raise ApiError(404, f"No run {run_id!r} in {where(state)} or in this server.")
    if live is not None and not live.done:
        data["state"] = "running"
    return data


def events_of(
    state: UIState, found: tuple[Any, list[Any], list[Any]] | None, run_id: str, source: str
) -> tuple[str, list[dict[str, Any]]]:
    """The run's events and where they come from: this server's ("live") if it ran the run and
    `source` is not "store", else the store's ("store")."""
    live = state.manager.get(run_id)
    if live is not None and (source != "store" or found is None):
        return "live", list(live.events)
    if found is None:
        raise ApiError(404, f"No run {run_id!r} in {where(state)} or in this server.")
    return "store", told_events(*found)


def where(state: UIState) -> str:
    """The store in words (a PostgreSQL store's without its password)."""
    return str(getattr(state.store, "where", "the run store"))


def trace_of(events: list[dict[str, Any]], running: bool) -> dict[str, Any]:
    """The waterfall of the events (drawn up to now while the run goes on)."""
    return waterfall(events, now=time.time() if running else None)
