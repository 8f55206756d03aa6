"""The JSON API's handlers (routes in `codeloop.ui.app`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..agents.approval import pending_approvals
from ..agents.durable import RunLeaseHeld
from .app import ApiError, events_of, json_body, moment, run_summary, stored, trace_of, ui_state, where
from .stored import matches, summary

__all__ = [
    "answer_approvals",
    "approvals",
    "cancel_run",
    "info",
    "list_runs",
    "resume_run",
    "run_detail",
    "run_events",
    "run_trace",
    "start_run",
]

MAX_LIMIT = 1000


async def info(request: Request) -> Response:
    """GET /api/info: the agent served (name, model, tools, team, step limit) and the store."""
    state = ui_state(request)
    agent = state.agent
    tools = sorted(name for name in agent.tools if name != "final_answer")
    return JSONResponse(
        {
            "agent": agent.name,
            "kind": type(agent).__name__,
            "model": agent.model.model_id,
            "tools": tools,
            "managed_agents": sorted(agent.managed_agents),
            "max_steps": agent.max_steps,
            "store": where(state),
        }
    )


async def list_runs(request: Request) -> Response:
    """GET /api/runs: the stored runs, newest first, filtered by state, date range and text."""
    state, query = ui_state(request), request.query_params
    limit = _limit(query.get("limit"))
    text = query.get("q", "")
    records = await state.store.list_runs(
        state=query.get("state") or None,
        since=moment(query.get("since"), "since"),
        until=moment(query.get("until"), "until"),
        limit=None if text.strip() else limit,
    )
    found = [r for r in records if matches(r, text)][:limit]
    rows = [summary(r, live_here=state.manager.is_live(r.run_id)) for r in found]
    for row in rows:  # the action steps (the record counts every stored step: task, plans, answer)
        row["steps"] = sum(1 for s in await state.store.steps(row["run_id"]) if s.kind == "action")
    return JSONResponse({"runs": rows, "store": where(state)})


def _limit(text: str | None) -> int:
    try:
        limit = 100 if text is None else int(text)
    except ValueError:
        raise ApiError(400, f"limit={text!r} is not a number of runs.") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit must be between 1 and {MAX_LIMIT}.")
    return limit


async def start_run(request: Request) -> Response:
    """POST /api/runs {"task"}: start a run; 201 with its id once it has started."""
    state, body = ui_state(request), await json_body(request)
    task = body.get("task")
    if not isinstance(task, str) or not task.strip():
        raise ApiError(400, "The task is empty: say what the agent should do.")
    live = await state.manager.start(task.strip())
    return JSONResponse({"run_id": live.run_id}, status_code=201)


async def run_detail(request: Request) -> Response:
    """GET /api/runs/{id}: the run's summary and its events (?source=store: the store's)."""
    state, run_id = ui_state(request), request.path_params["run_id"]
    found = await stored(state, run_id)
    data = run_summary(state, found, run_id)
    source, events = events_of(state, found, run_id, request.query_params.get("source", ""))
    return JSONResponse({"run": data, "source": source, "events": events})


async def run_trace(request: Request) -> Response:
    """GET /api/runs/{id}/trace: the run's waterfall (`codeloop.ui.trace.waterfall`)."""
    state, run_id = ui_state(request), request.path_params["run_id"]
    found = await stored(state, run_id)
    source, events = events_of(state, found, run_id, request.query_params.get("source", ""))
    running = source == "live" and state.manager.is_live(run_id)
    return JSONResponse({"source": source, **trace_of(events, running)})


async def run_events(request: Request) -> Response:
    """The run's events as server-sent events (`id`: each event's `seq`; a reconnecting page
    continues after the last it saw), ending with an `end` event."""
    state, run_id = ui_state(request), request.path_params["run_id"]
    live = state.manager.get(run_id)
    if live is None:
        raise ApiError(404, f"Run {run_id!r} is not running in this server: read it from /api/runs/{run_id}.")
    after = _last_seen(request)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        """Each event as it comes (a late subscriber first gets those it missed)."""
        async for data in live.follow(after):
            yield ServerSentEvent(data=_compact(data), id=str(data["seq"]))
        yield ServerSentEvent(data=_compact({"state": live.state}), event="end")

    return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})


def _last_seen(request: Request) -> int:
    text = request.headers.get("last-event-id") or request.query_params.get("after") or "-1"
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, f"{text!r} is not an event number.") from None


def _compact(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


async def cancel_run(request: Request) -> Response:
    """POST /api/runs/{id}/cancel: stop a run this server runs (it ends as cancelled)."""
    state, run_id = ui_state(request), request.path_params["run_id"]
    await json_body(request)
    if not state.manager.cancel(run_id):
        raise ApiError(409, f"Run {run_id} is not running in this server: there is nothing to cancel.")
    return JSONResponse({"run_id": run_id, "cancelling": True})


async def resume_run(request: Request) -> Response:
    """POST /api/runs/{id}/resume {"max_steps"?}: continue a stored run that can continue."""
    state, run_id = ui_state(request), request.path_params["run_id"]
    body = await json_body(request)
    max_steps = body.get("max_steps")
    if max_steps is not None and (
        not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1
    ):
        raise ApiError(400, f"max_steps must be a whole number of steps, at least 1; not {max_steps!r}.")
    found = await _resumable(state, run_id)
    return await _continue(state, run_id, found, max_steps=max_steps)


async def answer_approvals(request: Request) -> Response:
    """POST /api/runs/{id}/approvals {"answers"}: answer the run's pending calls, and continue it."""
    state, run_id = ui_state(request), request.path_params["run_id"]
    answers = (await json_body(request)).get("answers")
    if not isinstance(answers, dict) or not answers:
        raise ApiError(400, 'Give the answers as {"answers": {"<call id>": true or "reason"}}.')
    checked: dict[str, bool | str] = {}
    for call_id, answer in answers.items():
        if not isinstance(answer, (bool, str)):
            raise ApiError(400, f"The answer to {call_id} must be true (approve), false or a reason (deny).")
        checked[call_id] = (answer.strip() or False) if isinstance(answer, str) else answer  # "": deny
    found = await stored(state, run_id)
    if found is None:
        raise ApiError(404, f"No run {run_id!r} in {where(state)}.")
    if found[0].state != "awaiting_approval":
        raise ApiError(409, f"Run {run_id} does not wait for an answer (it is {found[0].state}).")
    return await _continue(state, run_id, found, approvals=checked)


async def _resumable(state: Any, run_id: str) -> Any:
    found = await stored(state, run_id)
    if found is None:
        raise ApiError(404, f"No run {run_id!r} in {where(state)}: only stored runs can be resumed.")
    data = summary(found[0], live_here=state.manager.is_live(run_id))
    if not data["resumable"]:
        why = "is running" if data["live"] or found[0].state == "running" else f"is {found[0].state}"
        raise ApiError(409, f"Run {run_id} {why}: there is nothing to resume.")
    return found


async def _continue(state: Any, run_id: str, found: Any, **how: Any) -> Response:
    from .stored import told_events

    told = [e for e in told_events(*found) if e["type"] != "RunFinished"]
    try:
        live = await state.manager.resume(run_id, told, **how)
    except (ValueError, RuntimeError) as exc:
        raise ApiError(409 if isinstance(exc, RuntimeError) else 400, str(exc)) from None
    except RunLeaseHeld as exc:
        raise ApiError(409, str(exc)) from None
    return JSONResponse({"run_id": live.run_id}, status_code=202)


async def approvals(request: Request) -> Response:
    """GET /api/approvals: the tool calls stored runs wait for a human's answer to."""
    state = ui_state(request)
    pending = await pending_approvals(state.store)
    calls = [
        {"run_id": p.run_id, "call_id": p.call_id, "tool": p.tool, "arguments": p.arguments,
         "agent": p.agent_name, "task": p.task}
        for p in pending
        if not state.manager.is_live(p.run_id)
    ]  # fmt: skip
    return JSONResponse({"pending": calls})
