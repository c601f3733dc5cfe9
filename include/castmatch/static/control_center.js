// The Control Center: fetches api/snapshot and redraws each panel in place every
// refresh_seconds (no full reload: open rows, focus and scroll stay). Every text from the store is
// escaped: deliverables and reasons are data, never markup.
"use strict";

const params = new URLSearchParams(location.search);
const state = { runKey: params.get("run_key") || "", open: new Set(), timer: null, every: null };
// The seed's 🟢 🟡 🔴 ⚪, drawn as a coloured dot (emoji fonts are not everywhere) beside the word.
const ICONS = { ACTIVE: "●", WAITING: "●", BLOCKED: "●", STANDBY: "○" };

function theme() {
  // The Airflow UI marks its <html> "dark" or "light" (same origin: readable from this frame).
  let mode = null;
  try {
    const root = window.parent.document.documentElement;
    mode = root.classList.contains("dark") ? "dark" : root.classList.contains("light") ? "light" : null;
    if (!mode) mode = { dark: "dark", light: "light" }[window.parent.localStorage.getItem("theme")] || null;
  } catch (e) { /* opened on its own */ }
  if (!mode) mode = window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  document.documentElement.dataset.theme = mode;
}

function followTheme() {
  try {
    new MutationObserver(theme).observe(window.parent.document.documentElement, { attributes: true, attributeFilter: ["class"] });
  } catch (e) { /* opened on its own */ }
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", theme);
}

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
const cls = (s) => "s-" + String(s ?? "").replace(/[^A-Za-z0-9]+/g, "_");
const status = (s, icon) => `<span class="status ${cls(s)}">${icon ? `<span class="dot" aria-hidden="true">${icon}</span> ` : ""}${esc(String(s).replace(/_/g, " "))}</span>`;
const empty = (text) => `<p class="empty">${esc(text)}</p>`;
const bar = (pct) => `<span class="bar" aria-hidden="true"><span style="width:${Math.max(0, Math.min(100, Number(pct) || 0))}%"></span></span>${esc(pct)}%`;

function setBody(id, html) {
  const el = document.querySelector(`#${id} .body`);
  if (el.innerHTML !== html) el.innerHTML = html;
}

function trend(values) {
  if (!values || values.length < 2) return "";
  const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
  const pts = values.map((v, i) => `${(i * 80 / (values.length - 1)).toFixed(1)},${(18 - (v - lo) * 16 / span).toFixed(1)}`).join(" ");
  return `<svg class="trend" width="82" height="20" role="img" aria-label="trend of the last ${values.length} values"><polyline points="${pts}"/></svg>`;
}

function renderMatrix(snap) {
  const body = document.querySelector("#matrix tbody");
  const focused = document.activeElement && document.activeElement.dataset.toggle;
  const rows = snap.matrix.agents.map((a) => {
    const open = state.open.has(a.id);
    const units = (snap.matrix.units[a.id] || []).map((u) =>
      `<li>W${esc(u.week)} ${esc(u.days)} <code>${esc(u.id)}</code> ${esc(u.title)}: ${status(u.state)}</li>`).join("");
    return `<tr data-agent="${esc(a.id)}">
      <td class="agent"><button type="button" data-toggle="${esc(a.id)}" aria-expanded="${open}" title="Show ${esc(a.short_name)}'s work units">${open ? "▾" : "▸"} ${esc(a.short_name)}</button></td>
      <td class="status-cell">${status(a.status, ICONS[a.status])}</td>
      <td class="progress">${bar(a.progress)}</td>
      <td class="task">${esc(a.current_task)}</td></tr>` +
      (open ? `<tr class="units" data-agent-units="${esc(a.id)}"><td colspan="4"><ul>${units || "<li>no work units</li>"}</ul></td></tr>` : "");
  }).join("");
  if (body.innerHTML !== rows) body.innerHTML = rows || `<tr><td colspan="4">${empty("no agents in team.yaml")}</td></tr>`;
  if (focused) { const again = body.querySelector(`[data-toggle="${CSS.escape(focused)}"]`); if (again) again.focus(); }
}

function renderProgress(snap) {
  const p = snap.progress;
  const weeks = p.weeks.map((w) => `<span class="week ${w.state === "running" ? "running" : ""}" title="week ${w.week}: ${esc(w.state)}">W${String(w.week).padStart(2, "0")} ${w.done}/${w.total}${w.state === "running" ? " (running)" : ""}</span>`).join("");
  const phases = p.phases.map((ph) => `<li>${esc(ph.name)} (weeks ${ph.weeks.join(", ")}): ${ph.done}/${ph.total} units</li>`).join("");
  const html = `<p>${esc(snap.clock.label)}${p.running ? `; week ${p.running} running` : ""}</p><div class="weeks">${weeks}</div><ul class="plain">${phases}</ul>`;
  const el = document.getElementById("progress");
  if (el.innerHTML !== html) el.innerHTML = html;
}

function renderGates(snap) {
  setBody("gates", snap.gates.map((g) => `<div class="gate" data-gate="${esc(g.id)}"><strong>${esc(g.name)}</strong> (week ${g.week}${g.veto ? ", veto" : ""}): ${status(g.status)}
    ${g.decided_by ? `<span class="muted">by ${esc(g.decided_by)}${g.reason ? ": " + esc(g.reason) : ""}</span>` : ""}
    ${g.criteria.map((c) => `<p class="crit">${c.ok === true ? "✔ met" : c.ok === false ? "✘ not met" : "… open"} [${esc(c.kind)}] ${esc(c.text)}: <span class="reason">${esc(c.reason)}</span></p>`).join("")}</div>`).join("") || empty("no gates in gates.yaml"));
  setBody("decisions", snap.decisions.map((d) => `<div data-decision="${esc(d.id)}"><strong>${esc(d.name)}</strong> (day ${d.day}): ${status(d.decision === "pending" ? "pending" : d.decision)}
    ${d.reason ? `<p class="crit">${esc(d.reason)}</p>` : ""}
    ${d.great_expectations ? `<p class="crit">Great Expectations: ${d.great_expectations.success ? "✔ all expectations met" : "✘ expectations failed"} (${(d.great_expectations.results || []).length} checked)</p>` : ""}
    ${d.extensions.map((x) => `<p class="crit">extension ${x.number}: +${x.days} day(s) until ${esc(x.ends_at)}: ${esc(x.outcome)}</p>`).join("")}</div>`).join("") || empty("no decision points in gates.yaml"));
  setBody("blocked", snap.blocked.length ? `<ul class="plain">${snap.blocked.map((b) => `<li data-unit="${esc(b.unit)}"><code>${esc(b.unit)}</code> ${esc(b.title)} (${esc(b.agent)}) is held by <strong>${esc(b.gate_name)}</strong> ${status(b.gate_status)}: <span class="reason">${esc(b.reason)}</span></li>`).join("")}</ul>`
    : empty("no unit is held back by a gate: a vetoed gate's guarded units appear here with the reason"));
}

function renderRest(snap) {
  setBody("chains", snap.chains.length ? `<ul class="plain">${snap.chains.map((c) => `<li data-chain="${esc(c.id)}">${esc(c.name)}: ${status(c.status)} <span class="muted">(${esc(c.timeline)})</span></li>`).join("")}</ul>` : empty("no dependency chains in operations.yaml"));
  setBody("kpis", snap.kpis.length ? `<table><thead><tr><th>KPI</th><th>Value</th><th>Target</th><th>Result</th><th>Trend</th></tr></thead><tbody>${snap.kpis.map((k) => `<tr data-kpi="${esc(k.id)}"><td>${esc(k.name)}</td><td>${k.value === null ? "—" : esc(Number(k.value).toFixed(2))}</td><td>${esc(k.target)}</td><td>${k.ok === true ? status("ok") : k.ok === false ? status("failed") : status(k.status)}${String(k.source).startsWith("demo") ? ' <span class="muted">[demo source]</span>' : ""}</td><td>${trend(k.trend)}</td></tr>`).join("")}</tbody></table>` : empty("no KPIs in kpis.yaml"));
  const u = snap.usage, t = u.total || {};
  const tokens = (v) => (v.input_tokens || 0) + (v.output_tokens || 0) + (v.cache_creation_input_tokens || 0) + (v.cache_read_input_tokens || 0);
  const limit = (scope) => { const b = scope || {}; return b.usd ? `$${Number(b.usd).toFixed(2)}` : b.tokens ? `${b.tokens} tokens` : "none"; };
  const b = u.budgets || {};
  const row = (name, v, budget) => `<tr><td>${esc(name)}</td><td>${v.calls}${v.failed ? ` (${v.failed} failed)` : ""}</td><td>${tokens(v)}</td><td>${Math.round((v.cache_hit_share || 0) * 100)}%</td><td>$${Number(v.cost_usd || 0).toFixed(4)}</td><td>${esc(budget)}</td></tr>`;
  const agents = (u.agents || []).map((a) => row(a.id, a, limit((b.agents || {})[a.id] || b.per_agent))).join("");
  const weeks = (u.weeks || []).map((w) => row(`week ${w.week}`, w, limit((b.weeks || {})[w.week] || b.per_week))).join("");
  setBody("usage", t.calls ? `<table><thead><tr><th>Scope</th><th>Calls</th><th>Tokens</th><th>Cache hits</th><th>USD</th><th>Budget</th></tr></thead><tbody>${row("whole run", t, limit(b.roadmap))}${agents}${weeks}</tbody></table>`
    : empty("no Claude calls in this run yet (the offline backend makes none)"));
  const r = snap.requests;
  setBody("requests", !r.available ? empty("pending requests are not readable here: " + (r.detail || "no Airflow database"))
    : r.requests.length ? `<ul class="plain">${r.requests.map((q) => `<li>${esc(q.subject)} <span class="muted">(${esc(q.dag_id)} / ${esc(q.task_id)}; default ${esc((q.defaults || []).join(", "))}${q.deadline ? " at " + esc(q.deadline) : ""})</span> <a href="${esc(uiRoot() + q.href)}" target="_top">answer in Required Actions</a></li>`).join("")}</ul>`
    : empty("nobody is asked anything: vetoes, NO-GOs and level 3 incidents wait here"));
  setBody("incidents", snap.incidents.length ? `<ul class="plain">${snap.incidents.map((i) => `<li data-incident="${i.id}">#${i.id} ${status("open")} level ${i.level} (${esc(i.level_name)}): ${esc(i.kind)} <code>${esc(i.subject)}</code>${i.next_level_in_seconds !== null ? `; next level in ${fmt(i.next_level_in_seconds)}` : ""}<br><span class="muted">${esc(i.detail.slice(0, 200))}</span></li>`).join("")}</ul>`
    : empty("no open incident: failures, vetoes, NO-GOs and failing probes open one"));
  const c = snap.checkpoint;
  setBody("checkpoint", c ? `<p>${esc(c.kind)} of ${esc(c.date)}: ${c.agents} agent report(s), ${c.blockers} with blockers</p>` : empty("no checkpoint yet: the daily standup runs at its cron time"));
  setBody("alerts", snap.alerts.length ? `<ul class="plain">${snap.alerts.map((a) => `<li>${esc(a.notification)} about <code>${esc(a.subject)}</code>: told ${esc((a.agents || []).join(", "))}; Slack ${esc(String(a.status).replace(/_/g, " "))}</li>`).join("")}</ul>` : empty("no alert raised in this run"));
}

function fmt(seconds) {
  if (seconds < 90) return `${seconds} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function uiRoot() {
  // the Airflow UI's root: this page is served at <root>castmatch/control-center
  return location.pathname.replace(/castmatch\/control-center.*$/, "");
}

function renderRuns(snap) {
  const select = document.getElementById("run-select");
  const html = `<option value="">newest roadmap run</option>` + snap.runs.map((r) => `<option value="${esc(r.run_key)}"${r.run_key === state.runKey ? " selected" : ""}>${esc(r.kind)}: ${esc(r.run_id)}</option>`).join("");
  if (select.innerHTML !== html && document.activeElement !== select) select.innerHTML = html;
}

async function load() {
  const query = new URLSearchParams();
  if (state.runKey) query.set("run_key", state.runKey);
  else if (params.get("dag_id") && params.get("run_id")) { query.set("dag_id", params.get("dag_id")); query.set("run_id", params.get("run_id")); }
  const error = document.getElementById("error");
  try {
    const resp = await fetch("api/snapshot?" + query.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(data.detail || `the server answered ${resp.status}`);
    error.hidden = true;
    draw(data);
  } catch (e) {
    error.textContent = "Could not refresh: " + e.message + " (the panels show the last data received)";
    error.hidden = false;
  }
  schedule();
}

function draw(snap) {
  document.getElementById("title").textContent = `${snap.roadmap.name}: Orchestrator Control Center`;
  document.getElementById("run-label").textContent = snap.run
    ? `Run ${snap.run.run_key} (${snap.run.kind}, ${snap.run.clock} clock)`
    : `No roadmap run yet: trigger ${snap.roadmap.driver_dag} in Airflow (the panels fill as it runs)`;
  document.getElementById("updated-at").textContent = new Date(snap.generated_at).toLocaleTimeString();
  if (state.every === null) state.every = Number(params.get("refresh")) || snap.refresh_seconds;
  document.getElementById("refresh-every").textContent = state.every;
  renderRuns(snap);
  renderProgress(snap);
  renderMatrix(snap);
  renderGates(snap);
  renderRest(snap);
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(load, 1000 * (state.every || 15));
}

document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-toggle]");
  if (!toggle) return;
  const id = toggle.dataset.toggle;
  state.open.has(id) ? state.open.delete(id) : state.open.add(id);
  load();
});
document.getElementById("refresh-now").addEventListener("click", load);
document.getElementById("run-select").addEventListener("change", (event) => { state.runKey = event.target.value; load(); });
theme();
followTheme();
load();
