extension DashboardPage {
    static let javascript = #"""
"use strict";
// The dashboard: renders each snapshot of /v1/events; when the master it listens to goes away it
// tries the next master it knows (every master serves the same events).
const state = { endpoints: [location.origin], index: 0, source: null, snapshot: null };
const $ = (id) => document.getElementById(id);
const text = (id, value) => { const el = $(id); if (el) el.textContent = value; };
const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const pill = (value) => `<span class="pill ${esc(value)}">${esc(value)}</span>`;
const time = (ms) => (ms == null || ms < 0 ? "-" : new Date(ms).toISOString().replace("T", " ").replace("Z", ""));
const iso = (s) => (s ? s.replace("T", " ").replace("Z", "") : "-");
const millis = (ms) => (ms == null ? "-" : ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`);
const bytes = (n) => (n == null ? "-" : n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`);
const duration = (ms) => { if (ms == null || ms < 0) return "-"; const s = Math.floor(ms / 1000); return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`; };
const rows = (id, html) => { const body = document.querySelector(`#${id} tbody`); if (body) body.innerHTML = html.join("") || `<tr><td colspan="9" class="note">none</td></tr>`; };

function connect() {
  if (state.source) state.source.close();
  const base = state.endpoints[state.index % state.endpoints.length];
  text("endpoint", base);
  // Off loopback the events need the REST token: open the dashboard as /#token=TOKEN.
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const source = new EventSource(`${base}/v1/events${token ? `?access_token=${encodeURIComponent(token)}` : ""}`);
  state.source = source;
  source.addEventListener("snapshot", (event) => {
    $("connection").className = "pill live";
    $("connection").textContent = "live";
    render(JSON.parse(event.data));
  });
  source.onerror = () => {
    source.close();
    if (state.source !== source) return;
    $("connection").className = "pill down";
    $("connection").textContent = "reconnecting";
    state.index += 1;
    setTimeout(connect, 500);
  };
}

function learnEndpoints(snapshot) {
  const masters = snapshot.leadership?.masters ?? [];
  const known = new Set(state.endpoints);
  for (const master of masters) {
    const url = `${location.protocol}//${master.rest}`;
    if (!known.has(url)) { state.endpoints.push(url); known.add(url); }
  }
}

function render(snapshot) {
  state.snapshot = snapshot;
  learnEndpoints(snapshot);
  text("served-by", snapshot.servedBy);
  const errors = $("errors");
  errors.hidden = snapshot.errors.length === 0;
  errors.textContent = snapshot.errors.join("; ");
  const leadership = snapshot.leadership;
  const leader = leadership?.leader;
  text("leader-id", leader ? leader.id : "no leader");
  text("leader-epoch", leader ? String(leader.epoch) : String(leadership?.epoch ?? "-"));
  text("leader-since", iso(leader?.since));
  text("leader-lease", iso(leader?.leaseExpiresAt));
  rows("masters", (leadership?.masters ?? []).map((m) => `<tr><td>${esc(m.id)}</td><td>${pill(m.role)}</td><td>${esc(m.pid ?? "-")}</td><td>${esc(m.address)}</td><td><a href="${location.protocol}//${esc(m.rest)}/">${esc(m.rest)}</a></td></tr>`));
  const overview = snapshot.overview;
  text("overview-taskmanagers", overview ? overview.taskmanagers : "-");
  text("overview-slots", overview ? `${overview["slots-available"]} / ${overview["slots-total"]}` : "-");
  text("overview-running", overview ? overview["jobs-running"] : "-");
  text("overview-ended", overview ? `${overview["jobs-finished"]} / ${overview["jobs-cancelled"]} / ${overview["jobs-failed"]}` : "-");
  rows("taskmanagers", snapshot.taskmanagers.map((t) => `<tr><td>${esc(t.id)}</td><td>${t.slotsNumber}</td><td>${t.freeSlots}</td><td>${t.registeredEpoch}</td><td>${esc(t.dataPort)}</td></tr>`));
  rows("jobs", snapshot.jobs.map(({ detail: j, checkpoints: c }) => {
    const counts = Object.entries(j.vertices.reduce((sum, v) => { for (const [k, n] of Object.entries(v.tasks)) if (k !== "total" && n > 0) sum[k] = (sum[k] ?? 0) + n; return sum; }, {})).map(([k, n]) => `${n} ${k}`).join(", ");
    const latest = c.latest.completed;
    return `<tr><td><a href="#/jobs/${encodeURIComponent(j.jid)}">${esc(j.jid)}</a></td><td>${esc(j.name)}</td><td>${pill(j.state)}</td><td>${duration(j.duration)}</td><td>${j.restarts}</td><td>${esc(counts)}</td><td>${latest ? `#${latest.id}, ${millis(latest.end_to_end_duration)}` : "-"}</td></tr>`;
  }));
  renderJob();
  renderFailovers(snapshot.failovers);
}

function renderJob() {
  const match = location.hash.match(/^#\/jobs\/(.+)$/);
  if (!match || !state.snapshot) return;
  const page = state.snapshot.jobs.find((j) => j.detail.jid === decodeURIComponent(match[1]));
  if (!page) { text("job-title", `No job ${decodeURIComponent(match[1])} (yet)`); return; }
  const j = page.detail;
  text("job-title", `${j.name} (${j.jid})`);
  $("job-facts").innerHTML = `<dt>state</dt><dd>${pill(j.state)}</dd><dt>started</dt><dd>${time(j["start-time"])}</dd><dt>duration</dt><dd>${duration(j.duration)}</dd><dt>restarts</dt><dd id="job-restarts">${j.restarts}</dd>${j.failure ? `<dt>failure</dt><dd>${esc(j.failure)}</dd>` : ""}`;
  $("job-vertices").innerHTML = page.vertices.map((v) => `<h4>${esc(v.name)} <span class="note">parallelism ${v.parallelism}</span></h4><table class="subtasks"><thead><tr><th>subtask</th><th>attempt</th><th>state</th><th>task executor</th></tr></thead><tbody>${v.subtasks.map((s) => `<tr><td>${s.subtask}</td><td>${s.attempt}</td><td>${pill(s.status)}</td><td>${esc(s["taskmanager-id"] ?? "-")}</td></tr>`).join("")}</tbody></table>`).join("");
  const c = page.checkpoints;
  $("job-checkpoint-counts").innerHTML = `<dt>completed</dt><dd>${c.counts.completed}</dd><dt>failed</dt><dd>${c.counts.failed}</dd><dt>in progress</dt><dd>${c.counts.in_progress}</dd><dt>duration min / avg / max</dt><dd>${millis(c.summary.end_to_end_duration.min)} / ${millis(c.summary.end_to_end_duration.avg)} / ${millis(c.summary.end_to_end_duration.max)}</dd><dt>size avg</dt><dd>${bytes(Math.round(c.summary.state_size.avg))}</dd>`;
  rows("job-checkpoints", c.history.map((h) => `<tr><td>${h.id}</td><td>${pill(h.status)}</td><td>${h.is_savepoint ? "yes" : ""}</td><td>${time(h.trigger_timestamp)}</td><td>${millis(h.end_to_end_duration)}</td><td>${bytes(h.state_size)}</td><td>${esc(h.failure_message ?? "")}</td></tr>`));
  rows("job-exceptions", page.exceptions.exceptionHistory.entries.map((e) => `<tr><td>${time(e.timestamp)}</td><td>${esc(e.taskName)}</td><td>${e.attempt}</td><td>${esc(e.location ?? "-")}</td><td>${esc(e.stacktrace)}</td></tr>`));
}

function renderFailovers(failovers) {
  const scale = Math.max(1, ...failovers.map((f) => (f.detectMillis ?? 0) + (f.reconcileMillis ?? 0) + Math.max(0, (f.nextCheckpointMillis ?? 0) - (f.reconcileMillis ?? 0))));
  const width = (ms) => `${Math.max(0.5, (100 * (ms ?? 0)) / scale)}%`;
  const legend = `<p class="legend"><span><i style="background:#e8a33d"></i>detect</span><span><i style="background:#2f5fd0"></i>reconcile</span><span><i style="background:#1f8a4c"></i>to the next checkpoint</span></p>`;
  $("failovers").innerHTML = failovers.length === 0 ? `<p class="note">No failover yet.</p>` : legend + failovers.slice().reverse().map((f) => {
    const toCheckpoint = f.nextCheckpointMillis != null ? Math.max(0, f.nextCheckpointMillis - (f.reconcileMillis ?? 0)) : null;
    return `<div class="timeline failover"><strong>epoch ${f.fromEpoch ?? "-"} → ${f.toEpoch}</strong>, new leader ${esc(f.leader)} at ${iso(f.electedAt)}
      <div class="bar"><span class="detect" style="width:${width(f.detectMillis)}"></span><span class="reconcile" style="width:${width(f.reconcileMillis)}"></span>${toCheckpoint != null ? `<span class="checkpoint" style="width:${width(toCheckpoint)}"></span>` : ""}</div>
      <dl class="inline"><dt>detect</dt><dd>${millis(f.detectMillis)}</dd><dt>reconcile</dt><dd>${millis(f.reconcileMillis)}</dd><dt>next checkpoint</dt><dd>${millis(f.nextCheckpointMillis)}</dd><dt>adopted</dt><dd>${f.adopted}</dd><dt>restarted</dt><dd>${f.restarted}</dd><dt>cancelled</dt><dd>${f.cancelled}</dd></dl></div>`;
  }).join("");
}

function route() {
  const hash = location.hash;
  $("page-overview").hidden = !(hash === "" || hash === "#/" || hash === "#");
  $("page-job").hidden = !hash.startsWith("#/jobs/");
  $("page-failovers").hidden = hash !== "#/failovers";
  renderJob();
}

window.addEventListener("hashchange", route);
route();
connect();
"""#
}
