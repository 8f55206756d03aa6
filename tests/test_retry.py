"""Retries, budgets and fallbacks (codeloop.models.retry), driven through the real `openai` SDK
against a fault-injecting server on 127.0.0.1 (tests/faults.py). Waits are measured with an
injected clock: nothing here sleeps for backoff."""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

import pytest

from codeloop import CodeAgent
from codeloop.errors import (
    ConfigurationError,
    FallbacksExhausted,
    ModelError,
    ModelHTTPError,
    RetryBudgetExhausted,
)
from codeloop.events import ModelDelta
from codeloop.messages import ChatMessage, MessageDelta, Role
from codeloop.models.base import assemble_message
from codeloop.models.openai import OpenAIModel
from codeloop.models.retry import (
    FallbackModel,
    RetryingModel,
    RetryPolicy,
    parse_retry_after,
    should_fall_back,
    with_retries,
)
from codeloop.models.scripted import ScriptedModel
from codeloop.result import RunState

from faults import FakeClock, Fault, FaultServer
from helpers import chunk
from wire import Reply

HELLO = [ChatMessage(role=Role.USER, content="hello")]


# -- helpers ---------------------------------------------------------------------------------------
def completion(content: str, model: str = "m") -> Reply:
    choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
    body = {"id": "x", "object": "chat.completion", "created": 0, "model": model, "choices": [choice]}
    return Reply.json({**body, "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}})


def streamed(*pieces: str) -> Reply:
    return Reply.sse([*(chunk(p) for p in pieces), chunk(finish="stop")])


def error(status: int, message: str = "nope", **headers: str) -> Reply:
    body = {"error": {"message": message, "type": "error", "code": None}}
    return Reply.json(body, status=status, headers={k.replace("_", "-"): v for k, v in headers.items()})


def policy(clock: FakeClock, **kwargs: Any) -> RetryPolicy:
    kwargs.setdefault("jitter", 0.0)
    return RetryPolicy(sleep=clock.sleep, clock=clock, **kwargs)


def retrying(server: FaultServer, clock: FakeClock, model_id: str = "m", **kwargs: Any) -> RetryingModel:
    timeout = kwargs.pop("timeout", 5.0)
    model = OpenAIModel(model_id, api_base=server.url("/v1"), api_key="test", timeout=timeout)
    return RetryingModel(model, policy(clock, **kwargs))


async def collect(model: Any, messages: list[ChatMessage] = HELLO) -> list[MessageDelta]:
    return [delta async for delta in model.astream(messages)]


# -- what is retried, and how long it waits --------------------------------------------------------
async def test_429_retry_after_is_honoured_with_the_injected_clock() -> None:
    clock = FakeClock()
    with FaultServer([error(429, retry_after="7"), completion("hi")]) as server:
        answer = await retrying(server, clock).agenerate(HELLO)
    assert answer.content == "hi"
    assert clock.sleeps == [7.0]  # asked for, not slept
    assert len(server.requests) == 2


async def test_retry_after_ms_wins_over_retry_after() -> None:
    clock = FakeClock()
    with FaultServer([error(429, retry_after="7", retry_after_ms="1500"), completion("hi")]) as server:
        assert (await retrying(server, clock).agenerate(HELLO)).content == "hi"
    assert clock.sleeps == [1.5]


def test_retry_after_parsing() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after({"Retry-After": formatdate(now + 30, usegmt=True)}, now=now) == 30.0
    assert parse_retry_after({"retry-after": formatdate(now - 30, usegmt=True)}, now=now) == 0.0
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({"retry-after": "nan"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


async def test_500_then_success_waits_the_backoff() -> None:
    clock = FakeClock()
    replies = [error(500), error(502), error(503), completion("hi")]
    with FaultServer(replies) as server:
        model = retrying(server, clock, initial_delay=0.5, multiplier=3, max_attempts=4)
        assert (await model.agenerate(HELLO)).content == "hi"
    assert clock.sleeps == [0.5, 1.5, 4.5]


def test_backoff_is_capped_and_jittered_downwards() -> None:
    full = RetryPolicy(initial_delay=1, multiplier=2, max_delay=5, jitter=0.5, rng=lambda: 1.0)
    assert [full.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 2.5, 2.5]
    none = RetryPolicy(initial_delay=1, multiplier=2, max_delay=5, jitter=0.5, rng=lambda: 0.0)
    assert [none.backoff(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    assert RetryPolicy().backoff(10_000) <= RetryPolicy().max_delay  # no overflow


async def test_hung_response_times_out_and_is_retried() -> None:
    clock = FakeClock()
    with FaultServer([Fault.hang(), completion("hi")]) as server:
        model = retrying(server, clock, timeout=0.3)
        assert (await model.agenerate(HELLO)).content == "hi"
    assert len(clock.sleeps) == 1 and len(server.requests) == 2


async def test_timeout_error_is_retryable_and_says_so() -> None:
    with FaultServer([Fault.hang()]) as server:
        model = OpenAIModel("m", api_base=server.url("/v1"), timeout=0.3)
        with pytest.raises(ModelHTTPError, match="timed out") as caught:
            await model.agenerate(HELLO)
    assert caught.value.retryable and caught.value.status_code is None


async def test_connection_reset_mid_body_is_retried() -> None:
    clock = FakeClock()
    with FaultServer([Fault.cut(completion("lost"), keep=20), completion("hi")]) as server:
        assert (await retrying(server, clock).agenerate(HELLO)).content == "hi"
    assert len(clock.sleeps) == 1


async def test_malformed_json_is_retried() -> None:
    """A 200 whose body is not JSON is a transport fault (truncated, garbled by a proxy), not a
    problem with the request: retried like a reset connection, within the budget."""
    clock = FakeClock()
    with FaultServer([Reply(body='{"id": "x", "choi'), completion("hi")]) as server:
        model = retrying(server, clock)
        assert (await model.agenerate(HELLO)).content == "hi"
        with pytest.raises(ModelHTTPError, match="malformed JSON") as caught:
            server.replies.append(Reply(body="<html>"))
            await model.model.agenerate(HELLO)
    assert caught.value.retryable and caught.value.code == "malformed_response"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(status: int) -> None:
    clock = FakeClock()
    with FaultServer([error(status, "bad")]) as server:
        with pytest.raises(ModelHTTPError) as caught:
            await retrying(server, clock).agenerate(HELLO)
    assert type(caught.value) is ModelHTTPError and caught.value.status_code == status
    assert len(server.requests) == 1 and clock.sleeps == []


def test_other_exceptions_are_never_retried() -> None:
    clock = FakeClock()
    scripted = ScriptedModel([ConnectionError("boom"), "never reached"])
    with pytest.raises(ConnectionError):
        RetryingModel(scripted, policy(clock)).generate(HELLO)
    assert clock.sleeps == [] and len(scripted.requests) == 1


def test_policy_refuses_never_retried_statuses_and_bad_numbers() -> None:
    with pytest.raises(ConfigurationError, match=r"retry_on must not contain \[400, 404\]"):
        RetryPolicy(retry_on={429, 400, 404})
    with pytest.raises(ConfigurationError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigurationError, match="jitter"):
        RetryPolicy(jitter=2)
    assert RetryPolicy(retry_on=[429]).should_retry(ModelHTTPError("x", status_code=503))  # any 5xx
    only_429 = RetryPolicy(retry_on=[429], retry_any_5xx=False)
    assert not only_429.should_retry(ModelHTTPError("x", status_code=503))
    assert not RetryPolicy().should_retry(ModelHTTPError("x", status_code=418, retryable=True))


# -- the budget --------------------------------------------------------------------------------------
async def test_budget_of_attempts_raises_typed_error() -> None:
    clock = FakeClock()
    with FaultServer([error(503, "overloaded")] * 3) as server:
        with pytest.raises(RetryBudgetExhausted) as caught:
            await retrying(server, clock, max_attempts=3, initial_delay=2).agenerate(HELLO)
    spent = caught.value
    assert spent.attempts == 3 and spent.elapsed == 6.0 and clock.sleeps == [2.0, 4.0]
    assert isinstance(spent.__cause__, ModelHTTPError) and spent.__cause__ is spent.last_error
    assert spent.last_error.status_code == 503
    assert "gave up after 3 attempt(s) in 6.0s (max_attempts=3 reached)" in str(spent)
    assert "overloaded" in str(spent)
    assert isinstance(spent, ModelError)


async def test_retry_after_longer_than_the_budget_gives_up_at_once() -> None:
    clock = FakeClock()
    with FaultServer([error(500), error(429, retry_after="30")]) as server:
        with pytest.raises(RetryBudgetExhausted, match=r"asked to wait 30\.0s, but only 9\.0s") as caught:
            await retrying(server, clock, total_timeout=10).agenerate(HELLO)
    assert clock.sleeps == [1.0]  # the backoff after the 500; never the 30 s
    assert caught.value.attempts == 2 and caught.value.elapsed == 1.0


async def test_slow_attempts_use_up_the_budget() -> None:
    clock = FakeClock()

    def slow(messages: Any) -> str:
        clock.now += 50  # this attempt took 50 s of the budget
        raise ModelHTTPError("busy", status_code=503)

    scripted = ScriptedModel([slow, slow, "never reached"])
    with pytest.raises(RetryBudgetExhausted, match=r"only 0\.0s of total_timeout=60s"):
        await RetryingModel(scripted, policy(clock, total_timeout=60)).agenerate(HELLO)
    assert len(scripted.requests) == 2


# -- streams -----------------------------------------------------------------------------------------
async def test_error_chunk_mid_stream_restarts_the_stream() -> None:
    clock = FakeClock()
    failing = Reply.sse([chunk("Hel"), chunk("lo wor"), {"error": {"code": 502, "message": "Upstream died"}}])
    with FaultServer([failing, streamed("Hello", " world")]) as server:
        deltas = await collect(retrying(server, clock))
    assert [(d.content, d.restart) for d in deltas] == [
        ("Hel", False),
        ("lo wor", False),
        ("", True),
        ("Hello", False),
        (" world", False),
        ("", False),  # finish_reason
    ]
    assert assemble_message(deltas).content == "Hello world"
    assert len(clock.sleeps) == 1


async def test_connection_reset_mid_stream_restarts_the_stream() -> None:
    clock = FakeClock()
    cut = Fault.cut(streamed("lost ", "half", " of it"), keep=2)
    with FaultServer([cut, streamed("all", " of it")]) as server:
        deltas = await collect(retrying(server, clock))
    assert [d.content for d in deltas if not d.restart][:2] == ["lost ", "half"]
    assert sum(d.restart for d in deltas) == 1
    assert assemble_message(deltas).content == "all of it"


async def test_failure_before_the_first_delta_is_a_plain_retry() -> None:
    clock = FakeClock()
    with FaultServer([error(500), Reply.sse([{"error": {"message": "no code"}}]), streamed("ok")]) as server:
        deltas = await collect(retrying(server, clock))
    assert not any(d.restart for d in deltas) and assemble_message(deltas).content == "ok"
    assert len(clock.sleeps) == 2


async def test_error_chunk_with_a_client_error_code_is_not_retried() -> None:
    clock = FakeClock()
    failing = Reply.sse([chunk("a"), {"error": {"code": 400, "message": "Token limit reached"}}])
    with FaultServer([failing]) as server:
        with pytest.raises(ModelHTTPError, match="Token limit reached") as caught:
            await collect(retrying(server, clock))
    assert caught.value.code == "400" and not caught.value.retryable and clock.sleeps == []


# -- fallbacks ---------------------------------------------------------------------------------------
def fallback_chain(server: FaultServer, clock: FakeClock, **kwargs: Any) -> Any:
    first, second = (OpenAIModel(m, api_base=server.url("/v1"), api_key="test") for m in ("big", "small"))
    return with_retries(first, policy(clock, fallbacks=[second], **kwargs))


async def test_fallback_to_a_second_model_when_the_budget_is_spent() -> None:
    clock = FakeClock()
    with FaultServer([error(503), error(429), completion("from small", "small")]) as server:
        chain = fallback_chain(server, clock, max_attempts=2)
        answer = await chain.agenerate(HELLO)
    assert isinstance(chain, FallbackModel) and chain.model_id == "big"
    assert answer.content == "from small"
    assert [body["model"] for body in server.bodies] == ["big", "big", "small"]


async def test_fallback_on_not_found_but_not_on_bad_request() -> None:
    clock = FakeClock()
    with FaultServer([error(404, "no such model"), completion("ok", "small"), error(400, "bad")]) as server:
        chain = fallback_chain(server, clock)
        assert (await chain.agenerate(HELLO)).content == "ok"
        with pytest.raises(ModelHTTPError) as caught:
            await chain.agenerate(HELLO)
    assert caught.value.status_code == 400
    assert [body["model"] for body in server.bodies] == ["big", "small", "big"]
    assert clock.sleeps == []


async def test_fallback_mid_stream_restarts_then_streams_the_next_model() -> None:
    clock = FakeClock()
    replies = [Fault.cut(streamed("from ", "big ", "model"), keep=1), streamed("from small")]
    with FaultServer(replies) as server:
        deltas = await collect(fallback_chain(server, clock, max_attempts=1))
    pairs = [(d.content, d.restart) for d in deltas]
    assert pairs[:3] == [("from ", False), ("", True), ("from small", False)]
    assert assemble_message(deltas).content == "from small"


async def test_when_every_model_fails() -> None:
    clock = FakeClock()
    with FaultServer([error(503, "big is down"), error(401, "small: bad key")]) as server:
        with pytest.raises(FallbacksExhausted) as caught:
            await fallback_chain(server, clock, max_attempts=1).agenerate(HELLO)
    errors = caught.value.errors
    assert [type(e) for e in errors] == [RetryBudgetExhausted, ModelHTTPError]
    assert caught.value.__cause__ is errors[-1]
    assert "big: " in str(caught.value) and "small: bad key" in str(caught.value)


def test_fall_back_decisions() -> None:
    assert should_fall_back(RetryBudgetExhausted("x", attempts=1, elapsed=0, last_error=ModelError("y")))
    assert should_fall_back(ModelHTTPError("x", status_code=403))
    assert should_fall_back(ModelError("the local server did not start"))
    assert not should_fall_back(ModelHTTPError("x", status_code=400))
    assert not should_fall_back(ModelHTTPError("x", status_code=422))
    assert not should_fall_back(ModelHTTPError("Token limit reached", code="400"))


# -- wrapping ----------------------------------------------------------------------------------------
def test_agents_wrap_their_model_once() -> None:
    scripted = ScriptedModel(["x"])
    agent = CodeAgent([], scripted)
    assert isinstance(agent.model, RetryingModel) and agent.model.policy == RetryPolicy()
    assert agent.model.requests is scripted.requests  # attributes read through
    again = CodeAgent([], agent.model)
    assert again.model is agent.model
    mine = RetryPolicy(max_attempts=9)
    chosen = CodeAgent([], agent.model, retry_policy=mine).model
    assert isinstance(chosen, RetryingModel) and chosen.model is scripted and chosen.policy == mine


def test_openai_max_retries_maps_onto_the_policy_and_the_sdk_never_retries() -> None:
    local = "http://127.0.0.1:9/v1"
    model = OpenAIModel("m", api_base=local, max_retries=5, client_kwargs={"max_retries": 7})
    assert model.client.max_retries == 0
    assert model.retry_policy == RetryPolicy(max_attempts=6)
    assert CodeAgent([], model).model.policy == RetryPolicy(max_attempts=6)  # type: ignore[attr-defined]
    sdk_style = OpenAIModel("m", api_base=local, client_kwargs={"max_retries": 1})
    assert sdk_style.client.max_retries == 0 and sdk_style.retry_policy == RetryPolicy(max_attempts=2)
    assert OpenAIModel("m", api_base=local).retry_policy is None


# -- agent runs through the faults -------------------------------------------------------------------
STEP_ONE = "Thought: compute.\n```python\nx = 6 * 7\nprint(x)\n```"
STEP_TWO = "Thought: answer.\n```python\nfinal_answer(x)\n```"


async def test_code_agent_completes_despite_injected_faults() -> None:
    clock = FakeClock()
    cut = Reply.sse([chunk("Thought: comp"), {"error": {"code": 503, "message": "overloaded"}}])
    replies = [error(500), cut, streamed(STEP_ONE), Fault.cut(streamed(STEP_TWO), keep=0), streamed(STEP_TWO)]
    with FaultServer(replies) as server:
        model = OpenAIModel("m", api_base=server.url("/v1"), api_key="test")
        agent = CodeAgent([], model, retry_policy=policy(clock))
        events = [event async for event in agent.astream("What is 6 * 7?")]
        result = events[-1].result  # type: ignore[attr-defined]
    assert result.state is RunState.SUCCESS and result.output == 42
    assert len(server.requests) == 5 and len(clock.sleeps) == 3
    restarts = [e for e in events if isinstance(e, ModelDelta) and e.delta.restart]
    assert len(restarts) == 1  # the stream that failed after "Thought: comp"
    assert agent.memory.action_steps()[0].model_output == STEP_ONE  # no trace of the failed stream


async def test_code_agent_run_ends_with_model_error_when_the_budget_is_spent() -> None:
    clock = FakeClock()
    replies = [streamed(STEP_ONE), error(503), error(503), error(503), streamed(STEP_TWO)]
    with FaultServer(replies) as server:
        model = OpenAIModel("m", api_base=server.url("/v1"), api_key="test")
        agent = CodeAgent([], model, retry_policy=policy(clock, max_attempts=3))
        with pytest.raises(RetryBudgetExhausted) as caught:
            await agent.arun("What is 6 * 7?")
        result = caught.value.result
        assert result is not None and result.state is RunState.ERROR and result.output is None
        assert isinstance(result.exception, ModelError)
        assert [type(s).__name__ for s in agent.memory.steps] == ["TaskStep", "ActionStep"]
        assert agent.memory.action_steps()[0].observations.strip() == "42"
        # memory is intact: the same run carries on once the provider is back
        assert await agent.arun("Carry on.", reset=False) == 42
    assert len(server.requests) == 5
