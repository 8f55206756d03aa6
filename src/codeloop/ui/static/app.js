// codeloop's web UI: a single page with client-side routes (#/, #/runs, #/runs/<id>, #/approvals).
// It talks to the JSON API and follows live runs through server-sent events. All text is put in
// the page as text; the only HTML from the server is code highlighted (and escaped) by pygments.
"use strict";

const STATES_DONE_OK = new Set(["success"]);
let cleanup = () => {};

// ---- small helpers ---------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key === "style") Object.assign(node.style, value); // CSSOM: allowed by the page's CSP
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function view(id) {
  // Each view gets a container of its own: work still under way for a view the person left
  // (a fetch answered late) writes into its detached container, never into the next view.
  const root = el("div", { class: "view", "data-view": id });
  root.append(document.getElementById(id).content.cloneNode(true));
  document.getElementById("view").replaceChildren(root);
  return root;
}

function show(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

async function api(path, options = {}) {
  const init = { headers: { Accept: "application/json" }, ...options };
  if (options.json !== undefined) {
    init.method = init.method || "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.json);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new Error(`The server did not answer (${error.message}). Is codeloop ui still running?`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    throw new Error(`The server answered ${response.status} without JSON.`);
  }
  if (!response.ok) throw new Error(data && data.error ? data.error : `The server answered ${response.status}.`);
  return data;
}

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "?";
  if (seconds < 0.01) return `${Math.max(0, seconds * 1000).toFixed(1)} ms`;
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 120) return `${seconds.toFixed(2)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

function tokensOf(usage) {
  if (!usage) return null;
  const total = (usage.input_tokens || 0) + (usage.output_tokens || 0);
  return total;
}

function fmtTokens(total) {
  return total === null || total === undefined ? "? tokens" : `${total.toLocaleString("en")} tokens`;
}

function fmtWhen(epoch) {
  if (!epoch) return "-";
  const d = new Date(epoch * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function asText(value) {
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}

function stateBadge(state) {
  return el("span", { class: `state state-${state}`, "data-state": state, text: state.replaceAll("_", " ") });
}

function setAppError(message) {
  show(document.getElementById("app-error"), message);
}

// ---- the steps of a run, from its events -------------------------------------------------------

class RunRenderer {
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.containers = { 0: root };
    this.current = {};
    this.calls = {};
    this.lastCall = {};
    this.segments = 0;
  }

  add(ev) {
    const handler = this[`on${ev.type}`];
    if (handler) handler.call(this, ev);
  }

  depth(ev) {
    return ev.depth || 0;
  }

  newStep(ev, kind) {
    const d = this.depth(ev);
    const parent = this.containers[d] || this.root;
    const title = kind === "plan" ? "Plan" : `Step ${ev.step}`;
    const meta = el("span", { class: "step-meta", "data-testid": "step-meta", text: "running…" });
    const head = el("header", {}, el("span", { class: "step-title", text: title }), el("span", { class: "step-agent", text: ev.agent }), meta);
    const section = el("section", {
      class: `step step-${kind}`, "data-testid": kind === "plan" ? "plan" : "step",
      "data-agent": ev.agent, "data-depth": d, "data-step": ev.step,
    }, head);
    parent.append(section);
    this.current[d] = section;
    return section;
  }

  block(ev) {
    const cur = this.current[this.depth(ev)];
    if (cur && cur.dataset.step === String(ev.step) && cur.dataset.agent === ev.agent) return cur;
    return this.newStep(ev, "action");
  }

  thought(block) {
    let node = block.querySelector(":scope > .thought");
    if (!node) {
      node = el("div", { class: "thought", "data-testid": "thought" });
      block.append(node);
    }
    return node;
  }

  onRunStarted(ev) {
    const d = this.depth(ev);
    if (d === 0) {
      if (this.segments++ > 0) this.root.append(el("div", { class: "resumed", "data-testid": "resumed", text: "Resumed" }));
      this.current = {};
      return;
    }
    const host = this.lastCall[d - 1] || this.current[d - 1] || this.root;
    const sub = el("div", { class: "subrun", "data-testid": "subrun", "data-agent": ev.agent, "data-depth": d },
      el("div", { class: "subrun-head" }, el("span", { class: "subrun-agent", text: `↳ ${ev.agent}` }), el("span", { class: "subrun-task", text: ev.task })));
    host.append(sub);
    this.containers[d] = sub;
    this.current[d] = null;
  }

  onModelCallStarted(ev) {
    const block = this.newStep(ev, ev.purpose === "plan" ? "plan" : "action");
    const node = this.thought(block);
    node.classList.add("pending");
    node.textContent = "Waiting for the model…";
  }

  onModelDelta(ev) {
    const text = ev.delta && ev.delta.content;
    if (!text) return;
    const node = this.thought(this.block(ev));
    if (node.classList.contains("pending")) {
      node.classList.remove("pending");
      node.textContent = "";
    }
    node.textContent += text;
  }

  onModelOutput(ev) {
    const node = this.thought(this.block(ev));
    node.classList.remove("pending");
    node.textContent = ev.thought || "";
    node.hidden = !ev.thought;
  }

  onPlanReady(ev) {
    const block = this.block(ev);
    const node = this.thought(block);
    node.classList.remove("pending");
    node.textContent = ev.plan;
    node.hidden = false;
  }

  onTask(ev) {
    this.root.append(el("div", { class: "note", "data-testid": "task-note", text: ev.task }));
  }

  onCodeAction(ev) {
    const code = el("code");
    code.innerHTML = ev.code_html; // pygments' output: every character of the code escaped
    this.block(ev).append(el("pre", { class: "code", "data-testid": "code" }, code));
  }

  onCodeActionFinished(ev) {
    if (!ev.error) return;
    const block = this.block(ev);
    const pre = block.querySelector(":scope > pre.code:last-of-type");
    if (ev.error.startsWith("ApprovalRequired")) { // not a failure: the run waits for a human
      if (pre) pre.classList.add("paused");
      block.append(el("div", { class: "note paused", "data-testid": "paused", text: "Paused: a tool call of this code waits for a human's approval." }));
      return;
    }
    if (pre) pre.classList.add("failed");
  }

  onToolCallStarted(ev) {
    const args = JSON.stringify(ev.arguments);
    const result = el("div", { class: "tool-result pending", "data-testid": "tool-result", text: "running…" });
    const call = el("div", { class: "tool-call", "data-testid": "tool-call", "data-tool": ev.name },
      el("div", { class: "tool-head" }, el("span", { class: "tool-name", text: ev.name }), el("code", { class: "tool-args", text: args })),
      result);
    this.block(ev).append(call);
    this.calls[`${ev.agent}/${this.depth(ev)}/${ev.step}/${ev.call_index}`] = call;
    this.lastCall[this.depth(ev)] = call;
  }

  onToolCallFinished(ev) {
    const call = this.calls[`${ev.agent}/${this.depth(ev)}/${ev.step}/${ev.call_index}`];
    if (!call) return;
    const result = call.querySelector(":scope > .tool-result");
    result.classList.remove("pending");
    if (ev.error) {
      call.classList.add("error");
      result.textContent = `failed: ${ev.error}`;
    } else {
      result.textContent = `→ ${ev.result}`;
    }
    if (this.lastCall[this.depth(ev)] === call) this.lastCall[this.depth(ev)] = null;
  }

  onObservation(ev) {
    if (!ev.text) return;
    const node = el("pre", { class: `observation${ev.is_error ? " error" : ""}`, "data-testid": "observation", text: ev.text });
    this.block(ev).append(node);
  }

  onActionOutput(ev) {
    if (ev.output === null || ev.output === undefined) return;
    this.block(ev).append(el("div", { class: "action-output", text: `Out: ${asText(ev.output)}` }));
  }

  onStepErrored(ev) {
    const block = this.block(ev);
    block.classList.add("has-error");
    block.append(el("div", { class: "step-error error", "data-testid": "step-error", role: "alert", text: `${ev.error.type}: ${ev.error.message}` }));
  }

  onStepFinished(ev) {
    const kind = ev.memory_step && ev.memory_step.kind === "planning" ? "plan" : "action";
    const cur = this.current[this.depth(ev)];
    const block = kind === "plan" && cur && cur.classList.contains("step-plan") ? cur : this.block(ev);
    const step = ev.memory_step || {};
    const timing = step.timing || {};
    const duration = timing.end_time && timing.start_time ? timing.end_time - timing.start_time : null;
    block.querySelector(".step-meta").textContent = `${fmtTokens(tokensOf(step.usage))} · ${fmtDuration(duration)}`;
    block.classList.add("done");
  }

  onFinalAnswer(ev) {
    if (this.depth(ev) === 0) {
      this.hooks.final(ev.output);
      return;
    }
    const sub = this.containers[this.depth(ev)];
    if (sub) sub.append(el("div", { class: "sub-answer", "data-testid": "sub-answer", text: `Answer: ${asText(ev.output)}` }));
  }

  onRunFinished(ev) {
    const d = this.depth(ev);
    const container = d === 0 ? this.root : this.containers[d];
    if (container) {
      for (const open of container.querySelectorAll(`.step[data-depth="${d}"]:not(.done)`)) {
        open.querySelector(".step-meta").textContent = unfinished(ev.result.state);
        open.classList.add("done");
      }
    }
    if (d === 0) this.hooks.finished(ev.result);
    else if (container) container.append(el("div", { class: "subrun-end", text: `${ev.agent} ended: ${ev.result.state}` }));
  }

  onServerError(ev) {
    this.root.append(el("div", { class: "step-error error", role: "alert", text: `The server stopped following the run: ${ev.error}` }));
  }
}

function unfinished(state) {
  if (state === "running") return "running…";
  if (state === "awaiting_approval") return "waiting for approval";
  if (state === "cancelled") return "cancelled";
  return "did not finish";
}

// ---- the waterfall ---------------------------------------------------------------------------

function drawWaterfall(box, trace, state) {
  const spans = trace.spans || [];
  if (!spans.length) {
    box.replaceChildren(el("p", { class: "muted", text: "No steps yet." }));
    return;
  }
  const t0 = trace.start;
  const total = Math.max(trace.end - t0, 1e-6);
  const levels = {};
  const axis = el("div", { class: "wf-row wf-axis" }, el("div", { class: "wf-label", text: "" }),
    el("div", { class: "wf-track" }, el("span", { class: "wf-tick-start", text: "0" }), el("span", { class: "wf-tick-end", text: fmtDuration(total) })),
    el("div", { class: "wf-value", text: "" }));
  const rows = [axis];
  for (const span of spans) {
    const level = span.parent === null ? 0 : (levels[span.parent] ?? 0) + 1;
    levels[span.id] = level;
    rows.push(waterfallRow(span, level, t0, total, trace.end, state));
  }
  box.replaceChildren(...rows);
}

function waterfallRow(span, level, t0, total, tEnd, state) {
  const start = span.start ?? span.end ?? t0;
  const end = span.end ?? tEnd;
  const left = ((start - t0) / total) * 100;
  const width = Math.max(((end - start) / total) * 100, 0.5);
  const open = span.end === null;
  const bar = el("div", {
    class: `wf-bar kind-${span.kind}${span.error ? " error" : ""}${open ? " open" : ""}`, "data-testid": "wf-bar",
    style: { left: `${Math.min(left, 99.5).toFixed(3)}%`, width: `${Math.min(width, 100 - Math.min(left, 99.5)).toFixed(3)}%` },
  });
  const parts = [open ? unfinished(state) : fmtDuration(span.duration)];
  if (span.input_tokens !== null || span.output_tokens !== null) parts.push(fmtTokens((span.input_tokens || 0) + (span.output_tokens || 0)));
  if (span.error) parts.push("error");
  const value = parts.join(" · ");
  bar.title = `${span.label}: ${value}`;
  return el("div", { class: `wf-row wf-${span.kind}`, "data-testid": "wf-row", "data-kind": span.kind, "data-depth": span.depth, "data-level": level },
    el("div", { class: "wf-label", style: { paddingLeft: `${level * 1.1}em` }, text: span.label }),
    el("div", { class: "wf-track" }, bar),
    el("div", { class: "wf-value", "data-testid": "wf-value", text: value }));
}

// ---- views -----------------------------------------------------------------------------------

async function showNew() {
  const main = view("tpl-new");
  const form = main.querySelector("#new-run-form");
  const input = main.querySelector("#task-input");
  const error = main.querySelector("#new-run-error");
  const button = main.querySelector("#start-run");
  describeAgent(main.querySelector("#new-run-agent"));
  input.focus();
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    show(error, "");
    if (!input.value.trim()) {
      show(error, "The task is empty: say what the agent should do.");
      return;
    }
    button.disabled = true;
    try {
      const { run_id } = await api("/api/runs", { json: { task: input.value } });
      location.hash = `#/runs/${run_id}`;
    } catch (err) {
      show(error, err.message);
    } finally {
      button.disabled = false;
    }
  });
}

let agentInfo = null;

async function describeAgent(node) {
  try {
    agentInfo = agentInfo || (await api("/api/info"));
  } catch (err) {
    setAppError(err.message);
    return;
  }
  const tools = agentInfo.tools.length ? agentInfo.tools.join(", ") : "none";
  const team = agentInfo.managed_agents.length ? `; team: ${agentInfo.managed_agents.join(", ")}` : "";
  if (node) node.textContent = `${agentInfo.kind} ${agentInfo.agent} on ${agentInfo.model}, at most ${agentInfo.max_steps} steps; tools: ${tools}${team}. Runs are kept in ${agentInfo.store}.`;
  document.getElementById("agent-info").textContent = `${agentInfo.agent} · ${agentInfo.model}`;
}

function dayStart(text, addDays = 0) {
  const [y, m, d] = text.split("-").map(Number);
  return new Date(y, m - 1, d + addDays).getTime() / 1000;
}

async function showHistory(params) {
  const main = view("tpl-history");
  const fields = { state: "#filter-state", since: "#filter-since", until: "#filter-until", q: "#filter-q" };
  for (const [name, selector] of Object.entries(fields)) main.querySelector(selector).value = params.get(name) || "";
  let timer = null;
  const reload = () => {
    const query = new URLSearchParams();
    for (const [name, selector] of Object.entries(fields)) {
      const value = main.querySelector(selector).value;
      if (value) query.set(name, value);
    }
    history.replaceState(null, "", `#/runs${query.toString() ? "?" + query : ""}`);
    loadRuns(main, query);
  };
  main.querySelector("#history-filters").addEventListener("change", reload);
  main.querySelector("#filter-q").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(reload, 250);
  });
  main.querySelector("#history-filters").addEventListener("submit", (e) => { e.preventDefault(); reload(); });
  loadRuns(main, params);
  return () => clearTimeout(timer);
}

let historyLoads = 0;

async function loadRuns(main, params) {
  const error = main.querySelector("#history-error");
  const load = ++historyLoads; // a newer load's answer wins, whatever order they come in
  const query = new URLSearchParams();
  if (params.get("state")) query.set("state", params.get("state"));
  if (params.get("q")) query.set("q", params.get("q"));
  const since = params.get("since");
  const until = params.get("until");
  if (since && until && since > until) {
    show(error, "The From date is after the To date: no run can match.");
    main.querySelector("#runs-table tbody").replaceChildren();
    show(main.querySelector("#runs-empty"), "");
    return;
  }
  if (since) query.set("since", dayStart(since));
  if (until) query.set("until", dayStart(until, 1));
  let data;
  try {
    data = await api(`/api/runs?${query}`);
  } catch (err) {
    if (load === historyLoads) show(error, err.message);
    return;
  }
  if (load !== historyLoads) return;
  show(error, "");
  main.querySelector("#history-where").textContent = `Runs kept in ${data.store}, newest first.`;
  const rows = data.runs.map(runRow);
  main.querySelector("#runs-table tbody").replaceChildren(...rows);
  const filtered = [...params.keys()].some((k) => params.get(k));
  show(main.querySelector("#runs-empty"), rows.length ? "" : filtered ? "No runs match these filters." : "No runs yet: start one from New run.");
}

function runRow(run) {
  const link = el("a", { href: `#/runs/${run.run_id}`, text: run.task.length > 140 ? run.task.slice(0, 139) + "…" : run.task });
  const row = el("tr", { "data-testid": "run-row", "data-run-id": run.run_id, "data-state": run.state },
    el("td", {}, stateBadge(run.state)),
    el("td", { text: run.agent }),
    el("td", { class: "task" }, link),
    el("td", { class: "when", text: fmtWhen(run.created_at) }),
    el("td", { class: "num", text: run.steps }),
    el("td", { class: "num", text: run.tokens.toLocaleString("en") }));
  row.addEventListener("click", (e) => {
    if (e.target.tagName !== "A") location.hash = `#/runs/${run.run_id}`;
  });
  return row;
}

async function showApprovals() {
  const main = view("tpl-approvals");
  const error = main.querySelector("#approvals-error");
  let data;
  try {
    data = await api("/api/approvals");
  } catch (err) {
    show(error, err.message);
    return;
  }
  const cards = data.pending.map((call) => approvalCard(call, true));
  main.querySelector("#approvals-list").replaceChildren(...cards);
  main.querySelector("#approvals-empty").hidden = cards.length > 0;
  setBadge(cards.length);
}

function approvalCard(call, withRun) {
  const reason = el("input", { class: "deny-reason", "data-testid": "deny-reason", type: "text", placeholder: "Reason (the model is told)", "aria-label": "Reason for denying" });
  const approve = el("button", { "data-action": "approve", text: "Approve" });
  const deny = el("button", { "data-action": "deny", class: "danger", text: "Deny" });
  const problem = el("p", { class: "approval-error error", role: "alert", hidden: true });
  const where = withRun ? el("span", { class: "muted" }, " in ", el("a", { href: `#/runs/${call.run_id}`, text: call.task }), ` · ${call.agent}`) : null;
  const card = el("article", { class: "approval", "data-testid": "approval", "data-call-id": call.call_id, "data-run-id": call.run_id },
    el("header", {}, el("span", { class: "approval-tool", "data-testid": "approval-tool", text: call.tool }), where),
    el("pre", { class: "approval-args", "data-testid": "approval-args", text: JSON.stringify(call.arguments, null, 2) }),
    el("div", { class: "approval-actions" }, approve, reason, deny),
    problem);
  const answer = async (value) => {
    approve.disabled = deny.disabled = true;
    try {
      await api(`/api/runs/${call.run_id}/approvals`, { json: { answers: { [call.call_id]: value } } });
      if (location.hash === `#/runs/${call.run_id}`) route();
      else location.hash = `#/runs/${call.run_id}`;
    } catch (err) {
      show(problem, err.message);
      approve.disabled = deny.disabled = false;
    }
  };
  approve.addEventListener("click", () => answer(true));
  deny.addEventListener("click", () => answer(reason.value.trim() || false));
  return card;
}

function setBadge(count) {
  const badge = document.getElementById("approvals-count");
  badge.textContent = count ? String(count) : "";
  badge.hidden = !count;
}

async function refreshBadge() {
  try {
    const data = await api("/api/approvals");
    setBadge(data.pending.length);
  } catch (err) {
    // the page that needs it says so; the badge just stays as it was
  }
}

// ---- the run view (live or stored) -------------------------------------------------------------

async function showRun(runId, params) {
  const main = view("tpl-run");
  const $ = (selector) => main.querySelector(selector);
  const source = params.get("source") === "store" ? "?source=store" : "";
  let stream = null;
  let traceTimer = null;
  const page = { main, $, runId, source };
  page.renderer = new RunRenderer($("#run-steps"), {
    final: (output) => { show($("#final-answer"), `Final answer: ${asText(output)}`); },
    finished: (result) => {
      page.state = result.state;
      showSummary($("#run-summary"), result);
    },
  });
  page.drawTrace = () => {
    clearTimeout(traceTimer);
    traceTimer = setTimeout(() => loadTrace(page), 150);
  };
  $("#cancel-run").addEventListener("click", () => act(page, "cancel", {}));
  $("#resume-run").addEventListener("click", () => {
    const limit = $("#resume-max-steps").value;
    act(page, "resume", limit ? { max_steps: Number(limit) } : {});
  });
  let data;
  try {
    data = await api(`/api/runs/${runId}${source}`);
  } catch (err) {
    show($("#run-error"), err.message);
    return () => {};
  }
  await describeAgent(null); // its step limit: the Resume box's suggestion
  showHead(page, data.run, data.source);
  if (data.source === "live" && data.run.live) {
    stream = follow(page);
  } else {
    for (const ev of data.events) page.renderer.add(ev);
    loadTrace(page);
  }
  return () => {
    if (stream) stream.close();
    clearTimeout(traceTimer);
  };
}

function follow(page) {
  const { $, runId } = page;
  const stream = new EventSource(`/api/runs/${runId}/events`);
  const ticking = setInterval(() => loadTrace(page), 1000); // open bars grow while nothing else happens
  const close = stream.close.bind(stream);
  stream.close = () => {
    clearInterval(ticking);
    close();
  };
  stream.onmessage = (message) => {
    const ev = JSON.parse(message.data);
    page.renderer.add(ev);
    if (ev.type === "StepFinished" || ev.type === "ModelCallFinished" || ev.type === "ToolCallFinished" || ev.type === "RunFinished" || ev.type === "ModelCallStarted") page.drawTrace();
    show($("#run-error"), "");
  };
  stream.addEventListener("end", () => {
    stream.close();
    refreshRun(page);
    refreshBadge();
  });
  stream.onerror = () => {
    if (stream.readyState === EventSource.CLOSED) show($("#run-error"), "Lost the connection to the server: reload the page to see the run.");
    else show($("#run-error"), "The connection to the server broke; reconnecting…");
  };
  return stream;
}

async function refreshRun(page) {
  try {
    const data = await api(`/api/runs/${page.runId}${page.source}`);
    showHead(page, data.run, data.source);
  } catch (err) {
    show(page.$("#run-error"), err.message);
  }
  loadTrace(page);
}

async function loadTrace(page) {
  try {
    const trace = await api(`/api/runs/${page.runId}/trace${page.source}`);
    drawWaterfall(page.$("#waterfall"), trace, page.state);
  } catch (err) {
    show(page.$("#run-error"), err.message);
  }
}

function showHead(page, run, source) {
  const { $ } = page;
  page.state = run.state;
  $("#run-task").textContent = run.task || "(a run)";
  $("#run-state").replaceChildren(stateBadge(run.state));
  $("#run-agent").textContent = run.agent || "";
  $("#run-id").textContent = run.run_id;
  $("#run-source").textContent = source === "live" ? "as this server ran it" : "from the run store";
  $("#cancel-run").hidden = !run.live;
  $("#resume-box").hidden = !run.resumable;
  if (run.resumable && run.state === "max_steps_exceeded" && agentInfo && run.max_steps) {
    $("#resume-max-steps").value = run.max_steps + agentInfo.max_steps;
  }
  const pending = run.state === "awaiting_approval" && !run.live ? run.pending || [] : [];
  const cards = pending.map((call) => approvalCard({ ...call, run_id: run.run_id, task: run.task, agent: run.agent }, false));
  $("#run-approvals").replaceChildren(...(cards.length ? [el("h2", { text: "Waiting for your answer" }), ...cards] : []));
}

function showSummary(node, result) {
  const parts = [`State: ${result.state.replaceAll("_", " ")}`];
  if (result.steps !== null && result.steps !== undefined) parts.push(`${result.steps} step${result.steps === 1 ? "" : "s"}`);
  parts.push(fmtTokens(tokensOf(result.usage)));
  parts.push(fmtDuration(result.duration));
  node.replaceChildren(el("div", { class: "summary-line", text: parts.join(" · ") }));
  if (result.error) node.append(el("div", { class: "summary-error", text: result.error }));
  node.dataset.state = result.state;
  node.className = STATES_DONE_OK.has(result.state) ? "summary ok" : result.state === "awaiting_approval" ? "summary waiting" : "summary failed";
  node.hidden = false;
}

async function act(page, what, body) {
  const { $, runId } = page;
  show($("#run-error"), "");
  for (const id of ["#cancel-run", "#resume-run"]) $(id).disabled = true;
  try {
    await api(`/api/runs/${runId}/${what}`, { json: body });
    if (what === "resume") route();
  } catch (err) {
    show($("#run-error"), err.message);
  } finally {
    for (const id of ["#cancel-run", "#resume-run"]) $(id).disabled = false;
  }
}

// ---- routing -----------------------------------------------------------------------------------

async function route() {
  cleanup();
  cleanup = () => {};
  setAppError("");
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, queryText] = hash.split("?");
  const params = new URLSearchParams(queryText || "");
  const parts = path.split("/").filter(Boolean);
  const current = parts[0] === "runs" ? (parts[1] ? "" : "history") : parts[0] === "approvals" ? "approvals" : parts.length ? "" : "new";
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.view === current);
  let done;
  if (parts.length === 0) done = await showNew();
  else if (parts[0] === "runs" && parts[1]) done = await showRun(decodeURIComponent(parts[1]), params);
  else if (parts[0] === "runs") done = await showHistory(params);
  else if (parts[0] === "approvals") done = await showApprovals();
  else {
    done = await showNew();
    setAppError(`There is no page ${location.hash}: showing New run.`);
  }
  if (typeof done === "function") cleanup = done;
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  describeAgent(null);
  refreshBadge();
  setInterval(refreshBadge, 15000); // calls paused by runs elsewhere (another process, the CLI)
  route();
});
window.addEventListener("unhandledrejection", (e) => setAppError(`Something failed in the page: ${e.reason && e.reason.message ? e.reason.message : e.reason}`));
