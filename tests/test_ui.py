"""`codeloop ui` in a real browser: the command serves tests/ui_agents.py's scripted agent (and,
in one test, the real local SmolLM2), and Debian's Chromium, driven by Playwright, does what a
person does: types a task, watches the run, reads the history and a run's waterfall, answers
approvals, cancels and resumes. Every assertion is on what the page shows.

Each view's screenshot goes to tests/artifacts/ui/ (docs/screenshots/ui-*.png are copies of
good ones, for the README).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from ui_server import ARTIFACTS, TESTS, UIServer, launch_chromium

from terminal import cli_command

MS = r"\d+(\.\d)? ms"  # a duration under a second as shown: "12 ms", "0.4 ms"
RED = "rgb(179, 38, 30)"  # the page's colour for errors (--bad in app.css)


@pytest.fixture(scope="module")
def server() -> Iterator[UIServer]:
    ui = UIServer(["--agent", "ui_agents:agent"])
    yield ui
    ui.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    """A fresh page; a JavaScript error in it fails the test (nothing may fail silently)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"the page raised: {errors}"


def tag() -> str:
    """A word no other run's task has: each test finds its own runs by it."""
    return uuid.uuid4().hex[:8]


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def start_run(page: Page, server: UIServer, task: str, *, shot: str | None = None) -> str:
    """Type the task in New run and press Run; the run's id, from the page it opens (`shot`: a
    screenshot of New run, by this name, before pressing Run)."""
    page.goto(server.url + "/#/")
    page.fill("#task-input", task)
    expect(page.locator("#new-run-agent")).to_contain_text("Runs are kept in the SQLite store")
    if shot:
        screenshot(page, shot)
    page.click("#start-run")
    page.wait_for_url(re.compile(r"#/runs/[0-9a-f]{32}$"))
    expect(page.locator("#run-task")).to_have_text(task)
    return page.url.rsplit("/", 1)[-1]


def wait_until_ended(page: Page, timeout: float = 30_000) -> str:
    """The final summary's text, once the run has ended."""
    summary = page.locator("#run-summary")
    expect(summary).to_be_visible(timeout=timeout)
    return summary.inner_text()


def step(page: Page, number: int, depth: int = 0) -> Any:
    return page.locator(f'[data-testid=step][data-depth="{depth}"][data-step="{number}"]')


# ---- a run, live -------------------------------------------------------------------------------


def test_a_run_streams_its_thought_code_tool_call_observation_and_answer(
    page: Page, server: UIServer
) -> None:
    start_run(page, server, f"What do two pears cost? ({tag()})", shot="new-run")
    expect(page.locator("#agent-info")).to_have_text("desk · scripted")
    summary = wait_until_ended(page)
    assert re.fullmatch(rf"State: success · 2 steps · [\d,]+ tokens · {MS}", summary), summary

    first = step(page, 1)
    expect(first.get_by_test_id("thought")).to_have_text("Thought: I will look up the price of a pear.")
    code = first.get_by_test_id("code")
    expect(code).to_have_text("price = get_price(item='pear')\nprint('one pear costs', price)")
    assert code.locator("span.s1").first.inner_text() == "'pear'"  # highlighted: the string has its colour
    call = first.get_by_test_id("tool-call")
    expect(call).to_contain_text("get_price")
    expect(call).to_contain_text('{"item":"pear"}')
    expect(call.get_by_test_id("tool-result")).to_have_text("→ 0.75")
    expect(first.get_by_test_id("observation")).to_contain_text("one pear costs 0.75")
    expect(first.get_by_test_id("step-meta")).to_have_text(re.compile(rf"^[\d,]+ tokens · {MS}$"))
    expect(step(page, 2).get_by_test_id("code")).to_have_text("final_answer(price * 2)")
    expect(page.get_by_test_id("final-answer")).to_have_text("Final answer: 1.5")
    expect(page.locator("#run-state")).to_have_text("success")

    rows = page.get_by_test_id("wf-row")
    expect(rows).to_have_count(7)
    kinds = rows.evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert kinds == ["step", "model", "code", "tool", "step", "model", "code"]  # from the live events
    screenshot(page, "live-run")


def test_a_failing_code_action_is_shown_as_an_error(page: Page, server: UIServer) -> None:
    start_run(page, server, f"Divide the cake among the boxes ({tag()})")
    wait_until_ended(page)
    error = step(page, 1).get_by_test_id("step-error")
    expect(error).to_contain_text("ZeroDivisionError")
    assert error.evaluate("e => getComputedStyle(e).color") == RED
    assert "failed" in step(page, 1).get_by_test_id("code").get_attribute("class")
    expect(page.get_by_test_id("final-answer")).to_have_text("Final answer: nothing to share: no boxes")
    expect(page.get_by_test_id("wf-bar").nth(0)).to_have_class(re.compile(r"\berror\b"))  # step 1's bar


def test_a_sub_agents_steps_are_nested_under_the_managers_step(page: Page, server: UIServer) -> None:
    start_run(page, server, f"Ask the team what an apple costs ({tag()})")
    wait_until_ended(page)
    manager_step = step(page, 1)
    subrun = manager_step.locator("[data-testid=subrun][data-agent=pricer]")
    expect(subrun).to_contain_text("What does one apple cost in the shop?")
    sub_steps = subrun.locator('[data-testid=step][data-depth="1"]')
    expect(sub_steps).to_have_count(2)
    expect(sub_steps.nth(0).get_by_test_id("tool-call")).to_contain_text('get_price{"item":"apple"}')
    expect(sub_steps.nth(1).get_by_test_id("code")).to_have_text("final_answer(p)")
    expect(page.get_by_test_id("final-answer")).to_have_text("Final answer: an apple costs 0.5")
    outer, inner = page.evaluate(  # both boxes at once, as the page shows them now
        """() => [document.querySelector('[data-testid=step][data-depth="0"][data-step="1"]'),
                  document.querySelector('[data-testid=step][data-depth="1"]')]
                 .map(e => e.getBoundingClientRect())
                 .map(r => [r.left, r.top, r.right, r.bottom])"""
    )
    assert inner[0] > outer[0] + 20  # indented under the manager's step
    assert outer[1] < inner[1] and inner[3] < outer[3]  # and inside it
    sub_rows = page.locator('[data-testid=wf-row][data-depth="1"][data-kind=step]')
    expect(sub_rows).to_have_count(2)  # the waterfall nests them too
    screenshot(page, "sub-agents")


# ---- the history ---------------------------------------------------------------------------------


def test_history_lists_runs_filters_by_state_and_date_and_finds_text(page: Page, server: UIServer) -> None:
    word = tag()
    start_run(page, server, f"What do two pears cost? ({word})")
    wait_until_ended(page)
    start_run(page, server, f"Dawdle and never answer ({word})")
    assert "State: max steps exceeded" in wait_until_ended(page)

    page.click("#nav-history")
    rows = page.get_by_test_id("run-row")
    expect(rows.first).to_contain_text(f"Dawdle and never answer ({word})")
    screenshot(page, "history")
    page.fill("#filter-q", word)
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(f"Dawdle and never answer ({word})")  # newest first
    expect(rows.nth(0)).to_contain_text("max steps exceeded")
    expect(rows.nth(1)).to_contain_text("success")
    expect(rows.nth(1).locator("td").nth(4)).to_have_text("2")  # steps

    page.select_option("#filter-state", "max_steps_exceeded")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Dawdle")
    page.select_option("#filter-state", "success")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("pears")
    page.select_option("#filter-state", "")

    today, tomorrow, yesterday = (
        date.today(),
        date.today() + timedelta(days=1),
        date.today() - timedelta(days=1),
    )
    page.fill("#filter-since", tomorrow.isoformat())
    expect(rows).to_have_count(0)
    expect(page.locator("#runs-empty")).to_have_text("No runs match these filters.")
    page.fill("#filter-since", "")
    page.fill("#filter-until", yesterday.isoformat())
    expect(rows).to_have_count(0)
    page.fill("#filter-since", today.isoformat())
    expect(page.locator("#history-error")).to_contain_text("The From date is after the To date")
    page.fill("#filter-until", today.isoformat())
    expect(rows).to_have_count(2)
    expect(page.locator("#history-error")).to_be_hidden()

    page.fill("#filter-q", f"PEARS COST? ({word}")  # any case
    expect(rows).to_have_count(1)
    rows.first.locator("td").first.click()
    expect(page.locator("#run-task")).to_have_text(f"What do two pears cost? ({word})")


# ---- a stored run's waterfall ---------------------------------------------------------------------


def test_a_stored_runs_detail_shows_its_waterfall(page: Page, server: UIServer) -> None:
    """A run another process made (here: this one, with the same store) is read from the store:
    its steps, and a bar per step with its model call, code action and tool call under it."""
    import ui_agents

    task = f"What do two pears cost? Stored ({tag()})"
    assert ui_agents.agent.run(task) == 1.5

    page.goto(server.url + "/#/runs")
    page.fill("#filter-q", task)
    expect(page.get_by_test_id("run-row")).to_have_count(1)
    page.get_by_test_id("run-row").get_by_role("link").click()
    expect(page.locator("#run-source")).to_have_text("from the run store")
    expect(step(page, 1).get_by_test_id("tool-call")).to_contain_text("→ 0.75")
    expect(page.get_by_test_id("final-answer")).to_have_text("Final answer: 1.5")

    rows = page.get_by_test_id("wf-row")
    expect(rows).to_have_count(7)
    kinds = rows.evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert kinds == ["step", "model", "code", "tool", "step", "model", "code"]
    labels = rows.locator(".wf-label").all_inner_texts()
    assert labels == ["desk · step 1", "model", "code", "tool get_price", "desk · step 2", "model", "code"]
    values = rows.get_by_test_id("wf-value").all_inner_texts()
    assert all(re.match(rf"^{MS}|^\d+\.\d\d s", v) for v in values), values  # each bar's duration
    assert re.fullmatch(rf"{MS} · [\d,]+ tokens", values[1]), values[1]  # the model call's tokens
    assert re.search(r"[\d,]+ tokens", values[0]), values[0]  # and the step's

    bars = [b.bounding_box() for b in page.get_by_test_id("wf-bar").all()]
    assert all(b is not None and b["width"] > 0 for b in bars)
    step_bar, tool_bar, step2_bar = bars[0], bars[3], bars[4]
    assert (
        step_bar["x"] - 1 <= tool_bar["x"]
        and tool_bar["x"] + tool_bar["width"] <= step_bar["x"] + step_bar["width"] + 1
    )
    assert step2_bar["x"] >= step_bar["x"] + step_bar["width"] - 1  # step 2 comes after step 1
    screenshot(page, "run-detail")


# ---- approvals ----------------------------------------------------------------------------------


def paused_for_approval(page: Page, server: UIServer, customer: str) -> str:
    run_id = start_run(page, server, f"Please invoice {customer} ({tag()})")
    summary = wait_until_ended(page)
    assert summary.startswith("State: awaiting approval"), summary
    expect(step(page, 1).get_by_test_id("paused")).to_contain_text("waits for a human's approval")
    expect(step(page, 1).get_by_test_id("step-meta")).to_have_text("waiting for approval")
    expect(page.locator("#run-approvals").get_by_test_id("approval-tool")).to_have_text("send_invoice")
    page.click("#nav-approvals")
    card = page.locator(f'[data-testid=approval][data-run-id="{run_id}"]')
    expect(card.get_by_test_id("approval-tool")).to_have_text("send_invoice")
    arguments = json.loads(card.get_by_test_id("approval-args").inner_text())
    assert arguments == {"amount": 120, "customer": customer}
    expect(page.locator("#approvals-count")).to_be_visible()
    return run_id


def test_an_approval_pauses_the_run_and_approve_resumes_it_to_its_answer(
    page: Page, server: UIServer
) -> None:
    run_id = paused_for_approval(page, server, "Ada")
    screenshot(page, "approvals")
    page.locator(f'[data-testid=approval][data-run-id="{run_id}"] button[data-action=approve]').click()
    page.wait_for_url(f"**/#/runs/{run_id}")
    summary = wait_until_ended(page)
    assert summary.startswith("State: success"), summary
    expect(page.get_by_test_id("final-answer")).to_have_text("Final answer: invoice of 120 EUR sent to Ada")
    expect(page.get_by_test_id("resumed")).to_be_visible()
    expect(step(page, 1).get_by_test_id("tool-result")).to_have_text("→ invoice of 120 EUR sent to Ada")
    page.click("#nav-approvals")
    expect(page.locator(f'[data-testid=approval][data-run-id="{run_id}"]')).to_have_count(0)


def test_deny_with_a_reason_makes_the_model_see_it(page: Page, server: UIServer) -> None:
    run_id = paused_for_approval(page, server, "Bob")
    card = page.locator(f'[data-testid=approval][data-run-id="{run_id}"]')
    card.get_by_test_id("deny-reason").fill("not this month")
    card.locator("button[data-action=deny]").click()
    page.wait_for_url(f"**/#/runs/{run_id}")
    wait_until_ended(page)
    expect(step(page, 1).get_by_test_id("step-error")).to_contain_text(
        "was denied by a human: not this month"
    )
    expect(page.get_by_test_id("final-answer")).to_have_text("Final answer: not sent: not this month")


# ---- cancel and resume ----------------------------------------------------------------------------


def test_a_cancelled_run_is_resumed_to_its_answer(page: Page, server: UIServer) -> None:
    start_run(page, server, f"Hold the line ({tag()})")
    expect(page.locator("#run-state")).to_have_text("running")
    expect(step(page, 1).get_by_test_id("thought")).to_have_text("Waiting for the model…")
    expect(page.get_by_test_id("wf-row").first).to_contain_text("desk · step 1")  # live: its bar is open
    expect(page.get_by_test_id("wf-value").first).to_have_text("running…")
    screenshot(page, "running")

    page.click("#cancel-run")
    summary = wait_until_ended(page)
    assert summary.startswith("State: cancelled"), summary
    expect(page.locator("#run-state")).to_have_text("cancelled")
    expect(page.locator("#cancel-run")).to_be_hidden()

    page.click("#resume-run")
    expect(page.get_by_test_id("final-answer")).to_have_text("Final answer: resumed and done")
    assert wait_until_ended(page).startswith("State: success")
    expect(page.locator("#resume-box")).to_be_hidden()


def test_a_run_out_of_steps_resumes_with_a_higher_step_limit(page: Page, server: UIServer) -> None:
    start_run(page, server, f"Dawdle along ({tag()})")
    assert wait_until_ended(page).startswith("State: max steps exceeded · 4 steps")
    expect(page.locator("#resume-max-steps")).to_have_value("8")  # its limit, and as many again
    page.click("#resume-run")
    expect(page.get_by_test_id("resumed")).to_be_visible()  # the page follows the resumed run
    expect(page.locator("#run-summary")).to_contain_text("State: max steps exceeded · 8 steps")
    expect(step(page, 8).get_by_test_id("observation")).to_have_text("thinking, round 8\n")
    expect(step(page, 9)).to_have_count(0)


# ---- mistakes get clear messages -----------------------------------------------------------------


def test_bad_input_is_answered_with_a_clear_message(page: Page, server: UIServer) -> None:
    page.goto(server.url + "/#/")
    page.click("#start-run")
    expect(page.locator("#new-run-error")).to_have_text("The task is empty: say what the agent should do.")
    page.goto(server.url + "/#/runs/0123456789abcdef")
    expect(page.locator("#run-error")).to_contain_text("No run '0123456789abcdef'")
    page.goto(server.url + "/#/nowhere")
    expect(page.locator("#app-error")).to_contain_text("There is no page #/nowhere")


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as failure:
        return failure.code, json.loads(failure.read())


def test_the_api_refuses_what_another_site_or_a_bad_request_sends(server: UIServer) -> None:
    url = server.url + "/api/runs"
    assert post(url, b"task=x", {"Content-Type": "application/x-www-form-urlencoded"}) == (
        415,
        {"error": "Send the request as JSON (Content-Type: application/json)."},
    )
    elsewhere = {"Content-Type": "application/json", "Origin": "http://evil.example"}
    assert post(url, b'{"task": "x"}', elsewhere)[0] == 403
    assert post(url, b"{", {"Content-Type": "application/json"}) == (
        400,
        {"error": "The request's body is not valid JSON."},
    )
    status, body = post(server.url + "/api/runs/nope/resume", b"{}", {"Content-Type": "application/json"})
    assert status == 404 and "only stored runs can be resumed" in body["error"]
    rebound = urllib.request.Request(server.url + "/api/approvals", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:  # a page of another name (DNS rebinding)
        urllib.request.urlopen(rebound)
    assert refused.value.code == 400


# ---- a stored run is told as it streamed -----------------------------------------------------------


def finished_in(client: Any, task: str) -> str:
    """Start `task` through the API and wait for its end (polling the run, as the page would)."""
    run_id = client.post("/api/runs", json={"task": task}).json()["run_id"]
    for _ in range(3000):
        if not client.get(f"/api/runs/{run_id}").json()["run"]["live"]:
            return str(run_id)
        time.sleep(0.02)
    raise AssertionError(f"the run of {task!r} did not end")


@pytest.mark.parametrize("kind", ["tool-calling", "planning"])
def test_a_stored_run_has_the_waterfall_and_steps_it_had_live(kind: str) -> None:
    """The app in this process (the same code the command serves): a run's waterfall and events
    read back from the store match what its live events gave, for a ToolCallingAgent and for a
    CodeAgent that plans."""
    from mcp_serve_agents import fenced, get_price, make_price_desk
    from starlette.testclient import TestClient

    from codeloop import CodeAgent, ScriptedModel
    from codeloop.ui import create_app

    if kind == "tool-calling":
        agent: Any = make_price_desk()
    else:
        script = ScriptedModel(
            ["1. Look the price up.\n2. Answer.", fenced("final_answer(get_price(item='pear'))")]
        )
        agent = CodeAgent([get_price], script, planning_interval=5, name="planner")
    with TestClient(create_app(agent), base_url="http://127.0.0.1") as client:
        run_id = finished_in(client, "What does an apple cost?")
        traces = [client.get(f"/api/runs/{run_id}/trace{source}").json() for source in ("", "?source=store")]
        told = [client.get(f"/api/runs/{run_id}{source}").json() for source in ("", "?source=store")]
    live, stored = ([(s["kind"], s["label"], s["parent"]) for s in t["spans"]] for t in traces)
    assert (traces[0]["source"], traces[1]["source"]) == ("live", "store")
    assert live == stored
    assert all(s["duration"] is not None for t in traces for s in t["spans"])
    if kind == "planning":
        assert [k for k, _, _ in live] == ["plan", "model", "step", "model", "code", "tool"]
    else:
        assert [label for _, label, _ in live] == [
            "price_desk · step 1", "model", "tool get_price", "price_desk · step 2", "model"
        ]  # fmt: skip
    shown = {"ModelOutput", "CodeAction", "ToolCallStarted", "ToolCallFinished", "PlanReady", "FinalAnswer"}
    for data in told:
        assert data["run"]["state"] == "success"
    live_kinds, stored_kinds = ([e["type"] for e in d["events"] if e["type"] in shown] for d in told)
    assert live_kinds == stored_kinds


# ---- the command ---------------------------------------------------------------------------------


def test_ctrl_c_stops_the_server() -> None:
    ui = UIServer(["--agent", "ui_agents:agent"])
    assert ui.agent == "desk"
    assert ui.stop() == 0
    err = "".join(ui.err)
    assert "codeloop ui: stopped" in err and "Traceback" not in err, err


def test_without_the_ui_extra_the_command_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['sse_starlette'] = None\n"  # as if the extra were not installed
        "from codeloop.cli import main\n"
        "raise SystemExit(main(['ui', '--agent', 'ui_agents:agent', '--port', '0']))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=TESTS, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        'codeloop: codeloop ui needs the ui extra (sse_starlette is missing): pip install "codeloop[ui]"'
    )


def test_usage_errors_say_what_is_wrong() -> None:
    both = subprocess.run(
        [*cli_command(), "ui", "--agent", "ui_agents:agent", "--model", "smollm2", "--max-steps", "3"],
        cwd=TESTS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert both.returncode == 2
    assert both.stderr == (
        "codeloop: --model, --max-steps: for the default agent; the agent given by --agent has its own\n"
    )
    ui = UIServer(["--agent", "ui_agents:agent"])
    try:
        port = ui.url.rsplit(":", 1)[1]
        taken = subprocess.run(
            [*cli_command(), "ui", "--agent", "ui_agents:agent", "--port", port],
            cwd=TESTS,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        ui.stop()
    assert taken.returncode == 2
    assert taken.stderr == (
        f"codeloop: cannot listen on 127.0.0.1:{port}: it is in use: pass another --port (0: any free one)\n"
    )


def test_a_bad_agent_spec_is_a_usage_error() -> None:
    done = subprocess.run(
        [*cli_command(), "ui", "--agent", "ui_agents:nothing"],
        cwd=TESTS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "module ui_agents has no attribute 'nothing'; its agents: agent, pricer" in done.stderr


# ---- the real local model --------------------------------------------------------------------------


@pytest.mark.slow
def test_the_local_model_runs_through_the_ui(page: Page) -> None:
    """SmolLM2-135M, offline: the run streams its steps and ends (its answer may be wrong)."""
    ui = UIServer(["--model", "smollm2", "--max-steps", "1"], ready_timeout=300)  # a step: ~1 min
    try:
        start_run(page, ui, "What is 2**10?")
        expect(step(page, 1)).to_be_visible(timeout=120_000)
        summary = wait_until_ended(page, timeout=300_000)
        assert re.match(r"State: (success|max steps exceeded|error) · 1 step · [\d,]+ tokens", summary), (
            summary
        )
        steps = page.locator('[data-testid=step][data-depth="0"]')
        expect(steps).to_have_count(1)
        expect(steps.first.get_by_test_id("step-meta")).to_have_text(re.compile(r"tokens · "))
        expect(page.get_by_test_id("wf-row").first).to_contain_text("step 1")
        screenshot(page, "local-model")
    finally:
        assert ui.stop() == 0


def test_a_running_run_whose_lease_expired_is_listed_as_abandoned_and_resumable(tmp_path: Path) -> None:
    """The app in this process, on a store where one run's worker died (its lease expired) and
    another's is alive: the history says which is which and offers Resume for the first."""
    from starlette.testclient import TestClient

    from codeloop import CodeAgent, ScriptedModel
    from codeloop.ui import create_app

    from helpers import store_with_a_dead_workers_run

    db = tmp_path / "runs.db"
    store_with_a_dead_workers_run(str(db))
    agent = CodeAgent([], ScriptedModel([]), store=str(db))
    with TestClient(create_app(agent), base_url="http://127.0.0.1") as client:
        rows = client.get("/api/runs").json()["runs"]
    assert {(r["run_id"], r["state"], r["resumable"]) for r in rows} == {
        ("dead-worker", "abandoned", True),
        ("still-alive", "running", False),
    }
