"""Human approval of tool calls: a run pauses at a call that needs a human's answer, is stored
with the calls it waits for, and continues in any process once they are answered.

Which calls need an answer:

* without `approval_policy=`, the calls of tools with `requires_approval` (`@tool(requires_approval=
  True)`, `Tool.requires_approval`); every other call runs;
* with `approval_policy=`, the policy decides every call: a callable `(tool_name, arguments)`
  (sync or async) returning `"allow"`, `"deny"` or `"ask"`, or a `(decision, reason)` pair. A
  call it denies is not made: the model is told so, with the reason. It may be called more
  than once for one call: make it a function of its arguments.

A call that is asked about pauses the run: the run is stored with state `awaiting_approval` and
its `pending` calls (each `{"call_id", "tool", "arguments"}`, the call id being the call's
idempotency key `run_id/step/call_index`), its lease is given up, and `run()` raises
`ApprovalRequired` (its `.pending` lists them; with `return_full_result` it returns the
`RunResult` in state `RunState.AWAITING_APPROVAL`). Approvals therefore need `store=`.
`pending_approvals(store)` lists the calls that wait, from any process; `agent.resume(run_id,
approvals={call_id: True | False | "reason"})` answers them and continues the run. An answer
holds for that exact call (same tool, same arguments); calls left unanswered pause the run again.

How the step waits and continues:

* ToolCallingAgent: every call of the step is decided before any runs; if one is asked about,
  none runs (the step's allowed calls wait too), and the run pauses with the step in progress
  (the model's reply stored). On resume the step runs again from the stored reply: approved
  calls run, denied ones give the model an error result ("The call send_invoice(...) was denied
  by a human: reason"), the others run as before.
* CodeAgent: the code stops at the call (the call raises, as does any later tool call of the
  snippet, so code that catches the error cannot go on acting); the run pauses with the step in
  progress. On resume, the earlier steps' code is replayed (the journal answers their calls) and
  the step runs again from its stored reply: the calls it made before the pause are answered
  from the journal; the approved call runs for real, once (it is journaled); a denied one raises
  `ApprovalDenied` (a `PermissionError`) in the code, whose message has the reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, get_args

from ..errors import AgentToolExecutionError, ConfigurationError, RunFailed
from ..store import RunStore, open_store
from ..tools import Tool
from ..tools.context import ToolCallContext
from .callbacks import maybe_await

if TYPE_CHECKING:
    from ..memory import ActionStep
    from ..result import RunResult
    from .run import Run

__all__ = [
    "ApprovalDenied",
    "ApprovalPolicy",
    "ApprovalRequired",
    "Decision",
    "PendingApproval",
    "RunApproval",
    "check_setup",
    "for_run",
    "gate",
    "gather",
    "pause_if_waiting",
    "pending_approvals",
    "pending_of",
    "take_answers",
]

Decision: TypeAlias = Literal["allow", "deny", "ask"]
PolicyAnswer: TypeAlias = Decision | tuple[Decision, str]
ApprovalPolicy: TypeAlias = Callable[[str, dict[str, Any]], PolicyAnswer | Awaitable[PolicyAnswer]]
"""`(tool_name, arguments) -> "allow" | "deny" | "ask"` or `(decision, reason)`; sync or async."""
Answer: TypeAlias = bool | str
"""A human's answer: True approves; False or a reason denies."""


class ApprovalRequired(RunFailed):
    """The run waits for a human's answer to the tool calls in `pending` (each `{"call_id",
    "tool", "arguments"}`); answer with `agent.resume(run_id, approvals={call_id: ...})`."""

    def __init__(self, pending: Sequence[Mapping[str, Any]], result: RunResult | None = None) -> None:
        self.pending = [dict(p) for p in pending]
        calls = "; ".join(f"{p['call_id']}: {_call_text(p['tool'], p['arguments'])}" for p in self.pending)
        super().__init__(
            f"The run waits for a human's approval of {len(self.pending)} tool call(s) ({calls})."
            " Answer with agent.resume(run_id, approvals={call_id: True | False | 'reason'}).",
            result,
        )


class ApprovalDenied(AgentToolExecutionError, PermissionError):
    """A tool call was denied (by a human or by the approval policy); the message says why.
    In a CodeAgent's code it is a `PermissionError`."""


@dataclass(frozen=True)
class PendingApproval:
    """A tool call that waits for a human's answer."""

    run_id: str
    call_id: str
    tool: str
    arguments: dict[str, Any]
    agent_name: str = ""
    task: str = ""


@dataclass
class RunApproval:
    """A run's approvals: the policy, the humans' answers (by call id, with the call they
    answer), the decisions made and the calls found waiting in the current step."""

    policy: ApprovalPolicy | None
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    decided: dict[str, tuple[Decision, str | None]] = field(default_factory=dict)
    waiting: list[dict[str, Any]] = field(default_factory=list)


def check_setup(tools: Mapping[str, Tool], policy: ApprovalPolicy | None, store: object) -> None:
    """An agent with approvals needs a store: a paused run is continued from it."""
    needing = sorted(name for name, t in tools.items() if t.requires_approval)
    if policy is not None and not callable(policy):
        raise ConfigurationError(f"approval_policy must be a callable, not {policy!r}.")
    if (needing or policy is not None) and store in (None, False):
        what = f"tools {', '.join(needing)} require approval" if needing else "approval_policy= is set"
        raise ConfigurationError(
            f"This agent's {what}: a run that waits for a human is stored and resumed later, so"
            " approvals need store= (a RunStore, a path or URL, or True for the default file)."
        )


def for_run(tools: Mapping[str, Tool], policy: ApprovalPolicy | None) -> RunApproval | None:
    """A new run's approval state; None when no call can need approval."""
    if policy is None and not any(t.requires_approval for t in tools.values()):
        return None
    return RunApproval(policy)


async def gate(
    run: Run | None, context: ToolCallContext, name: str, arguments: Mapping[str, Any], tool: Tool | None
) -> None:
    """Let the call run, or raise `ApprovalDenied` (denied) or `ApprovalRequired` (the run must
    wait; then every later call of the step raises it too)."""
    state = None if run is None else run.approval
    if state is None:
        return
    if state.waiting:
        raise ApprovalRequired(state.waiting)
    call = _call_json(name, arguments)
    decision, reason = await _decide(state, context.key, call, tool)
    if decision == "allow":
        return
    if decision == "deny":
        raise ApprovalDenied(_denial(name, arguments, "the approval policy", reason))
    answer = _answer_for(state, context.key, call)
    if answer is None:
        state.waiting.append({"call_id": context.key, **call})
        raise ApprovalRequired(state.waiting)
    if answer is not True:
        raise ApprovalDenied(_denial(name, arguments, "a human", answer or None))


async def gather(run: Run, calls: Sequence[tuple[ToolCallContext, str, Mapping[str, Any], Tool]]) -> bool:
    """Decide every call of a step before any runs (a ToolCallingAgent); True if some wait for
    a human's answer (the step then waits: `pause_if_waiting`)."""
    state = run.approval
    if state is None:
        return False
    for context, name, arguments, chosen in calls:
        call = _call_json(name, arguments)
        decision, _ = await _decide(state, context.key, call, chosen)
        if decision == "ask" and _answer_for(state, context.key, call) is None:
            state.waiting.append({"call_id": context.key, **call})
    return bool(state.waiting)


def pause_if_waiting(run: Run, step: ActionStep) -> None:
    """End the step with `ApprovalRequired` if calls wait for an answer: the step is taken out of
    memory (it stays in progress: its reply is stored, and it runs again on resume)."""
    state = run.approval
    if state is None or not state.waiting:
        return
    waiting, state.waiting = state.waiting, []
    if run.memory.steps and run.memory.steps[-1] is step:
        run.memory.steps.pop()
    raise ApprovalRequired(waiting)


def pending_of(result: RunResult) -> list[dict[str, Any]]:
    """The calls a finished run waits for (stored as the run's `pending`)."""
    exception = result.exception
    return list(exception.pending) if isinstance(exception, ApprovalRequired) else []


async def take_answers(run: Run, approvals: Mapping[str, Answer] | None) -> None:
    """A resumed run: the humans' answers (earlier ones from the run's metadata, `approvals`
    added), stored before the run goes on. A call id the run does not wait for is refused."""
    durable = run.durable
    assert durable is not None, "a resumed run has its store"
    record = await durable.store.get_run(run.run_id)
    pending = {p["call_id"]: p for p in record.pending}
    stored: dict[str, dict[str, Any]] = dict(durable.metadata.get("approvals") or {})
    unknown = sorted(set(approvals or {}) - set(pending) - set(stored))
    if unknown:
        waiting = ", ".join(pending) or "none"
        asked = ", ".join(unknown)
        raise ValueError(f"Run {run.run_id!r} does not wait for {asked}; it waits for: {waiting}.")
    for call_id, answer in (approvals or {}).items():
        if not isinstance(answer, (bool, str)):
            raise ValueError(f"The answer to {call_id} must be True, False or a reason, not {answer!r}.")
        call = pending.get(call_id) or stored[call_id]
        stored[call_id] = {"tool": call["tool"], "arguments": call["arguments"], "answer": answer}
    durable.metadata["approvals"] = stored
    if run.approval is None:  # answers are honoured even by an agent without approvals
        run.approval = RunApproval(None)
    run.approval.answers = stored
    left = [p for p in record.pending if p["call_id"] not in stored]
    update = durable.store.update_run(run.run_id, metadata=durable.metadata, pending=left)
    await durable.write("store the approvals", update)


async def pending_approvals(
    store: RunStore | str | os.PathLike[str], run_id: str | None = None
) -> list[PendingApproval]:
    """The tool calls that wait for a human's answer: of run `run_id`, or of every run in state
    `awaiting_approval`. `store` is a `RunStore` or a path or URL (`open_store`)."""
    if not isinstance(store, RunStore):
        async with open_store(store) as opened:
            return await pending_approvals(opened, run_id)
    if run_id is not None:
        records = [await store.get_run(run_id)]
    else:
        records = await store.list_runs(state="awaiting_approval", limit=None)
    return [
        PendingApproval(r.run_id, p["call_id"], p["tool"], dict(p["arguments"]), r.agent_name, r.task)
        for r in records
        for p in r.pending
    ]


# ---- helpers ------------------------------------------------------------------------------------


async def _decide(
    state: RunApproval, key: str, call: dict[str, Any], tool: Tool | None
) -> tuple[Decision, str | None]:
    """The policy's decision for the call (made once per call and run); without a policy,
    "ask" for a tool that requires approval, else "allow". A human's answer to this very call
    stands whatever the policy says."""
    if _answer_for(state, key, call) is not None:
        return "ask", None
    if key not in state.decided:
        if state.policy is None:
            state.decided[key] = ("ask" if tool is not None and tool.requires_approval else "allow", None)
        else:
            given = await maybe_await(state.policy(call["tool"], dict(call["arguments"])))
            state.decided[key] = _checked(given)
    return state.decided[key]


def _checked(given: Any) -> tuple[Decision, str | None]:
    decision, reason = given if isinstance(given, tuple) and len(given) == 2 else (given, None)
    if decision not in get_args(Decision) or not (reason is None or isinstance(reason, str)):
        raise ConfigurationError(
            f"approval_policy returned {given!r}; it must return 'allow', 'deny' or 'ask', or a"
            " (decision, reason) pair."
        )
    return decision, reason


def _answer_for(state: RunApproval, key: str, call: dict[str, Any]) -> Answer | None:
    """The human's answer to this call, if one was given for this very tool and arguments."""
    answered = state.answers.get(key)
    if answered is None or (answered["tool"], answered["arguments"]) != (call["tool"], call["arguments"]):
        return None
    answer: Answer = answered["answer"]
    return answer


def _call_json(name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The call as JSON-compatible data, as it is stored and compared."""
    return {"tool": name, "arguments": json.loads(json.dumps(dict(arguments), sort_keys=True, default=repr))}


def _denial(name: str, arguments: Mapping[str, Any], by: str, reason: str | None) -> str:
    return f"The call {_call_text(name, arguments)} was denied by {by}: {reason or 'no reason given'}."


def _call_text(name: str, arguments: Mapping[str, Any]) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    return f"{name}({shown if len(shown) <= 200 else shown[:200] + '...'})"
