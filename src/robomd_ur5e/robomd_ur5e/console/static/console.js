// RoboMD console page: renders the state pushed on /ws and sends the operator's answers.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const withToken = (path) => token ? `${path}?token=${encodeURIComponent(token)}` : path;
const $ = (id) => document.getElementById(id);
let state = null;

function text(el, value) { el.textContent = value; }

function fmtDuration(s) {
  if (s === null || s === undefined) return "?";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? `${h}:` : "") + `${mm}:${String(sec).padStart(2, "0")}`;
}

function pct(x) { return x === null || x === undefined ? "–" : `${(100 * x).toFixed(0)}%`; }

function list(el, items, render) {
  el.replaceChildren(...items.map((item) => {
    const li = document.createElement("li");
    render(li, item);
    return li;
  }));
}

function renderSafety(ex) {
  const el = $("safety");
  let cls = "unknown", msg = state.read_only ? "simulation: no robot" : "executor state unknown";
  if (ex) {
    if (ex.emergency_stop) { cls = "estop"; msg = "EMERGENCY STOP"; }
    else if (ex.protective_stop) { cls = "pstop"; msg = "PROTECTIVE STOP"; }
    else if (ex.fault) { cls = "pstop"; msg = `ROBOT CANNOT MOVE: ${ex.fault}`; }
    else if (ex.armed) { cls = "armed"; msg = "ARMED: the arm moves" + (ex.busy ? " (running)" : ""); }
    else { cls = "disarmed"; msg = "DISARMED: nothing moves"; }
    if ((ex.emergency_stop || ex.protective_stop) && !["emergency stop", "protective stop"].includes(ex.fault)) {
      msg += ` (${ex.fault})`;
    }
    if (ex.fault || ex.emergency_stop || ex.protective_stop) msg += ex.armed ? " · armed" : " · disarmed";
  }
  el.className = `safety ${cls}`;
  text(el, msg);
  $("btn-arm").disabled = !ex || ex.armed;
  $("btn-disarm").disabled = !ex || !ex.armed;
}

function renderPrompt(p) {
  const card = $("prompt");
  card.dataset.promptId = p ? p.id : "";
  card.className = p ? `card ${p.kind}` : "card idle";
  text($("prompt-kind"), p ? (p.kind === "apply" ? "CHANGE THE SCENE" : "RESET THE SCENE")
                              + ` (prompt ${p.id})` : "No action needed");
  text($("prompt-text"), p ? p.instruction : "");
  list($("prompt-perturbations"), p ? p.perturbations : [], (li, q) => text(li, `${q.name}: ${q.text}`));
  for (const id of ["btn-done", "btn-skip", "btn-abort"]) $(id).disabled = !p;
  const previews = state.previews || {};
  const shown = p && ["preview_requested", "preview_nominal"].every(
    (n) => previews[n] && previews[n].prompt_id === p.id);
  $("previews").hidden = !shown;
}

function renderProgress(st) {
  if (!st) return;
  text($("campaign"), `${st.campaign_id} · ${st.state}`);
  const frac = st.budget ? Math.min(1, st.judged / st.budget) : 0;
  $("progress-fill").style.width = `${(100 * frac).toFixed(1)}%`;
  text($("progress-text"), `${st.judged} / ${st.budget} rollouts judged · ${st.failures} failures · `
       + `${st.aborted} aborted (retried, never failures) · `
       + `ETA ${st.state === "running" ? fmtDuration(st.eta_s) : "–"}`);
  text($("status-message"), st.message);
}

function renderRanking(s) {
  const head = $("ranking").tHead, body = $("ranking").tBodies[0];
  const row = (cells, tag) => {
    const tr = document.createElement("tr");
    tr.replaceChildren(...cells.map((c) => { const td = document.createElement(tag); td.textContent = c; return td; }));
    return tr;
  };
  if (s.report) {
    text($("ranking-title"), "Ranking (final report: P_fail, observed rate, 95% Wilson interval)");
    head.replaceChildren(row(["#", "perturbation", "P_fail", "rate", "interval", "trials"], "th"));
    body.replaceChildren(...s.report.rows.map((r) => row([r.rank, r.name, r.probability.toFixed(3),
      pct(r.rate), `${pct(r.lo)}–${pct(r.hi)}`, `${r.failures}/${r.trials}`], "td")));
  } else {
    text($("ranking-title"), "Ranking so far (observed failure rate, 95% Wilson interval)");
    head.replaceChildren(row(["scene", "rate", "interval", "failed/judged", "aborted"], "th"));
    body.replaceChildren(...s.ranking.map((r) => row([r.set, pct(r.rate), `${pct(r.lo)}–${pct(r.hi)}`,
      `${r.failures}/${r.n}`, r.excluded], "td")));
  }
}

function render() {
  const s = state;
  document.body.classList.toggle("read-only", s.read_only);
  renderSafety(s.executor);
  renderPrompt(s.prompt);
  renderProgress(s.status);
  renderRanking(s);
  list($("aborted"), s.aborted.slice().reverse(), (li, a) => text(li,
    `${a.key} (${a.status}; ${a.perturbations.join(" + ") || "nominal"}): ${a.reason}`));
  list($("outcomes"), s.outcomes.slice().reverse(), (li, o) => text(li,
    `${o.rollout_id}: ${o.success ? "SUCCESS" : "FAILURE"} by ${o.judge} (${o.confidence.toFixed(2)}): ${o.reason}`));
  list($("log"), s.log.slice().reverse(), (li, l) => text(li, `${l.time} ${l.text}`));
  const video = $("video");
  if (s.video) {
    const src = withToken(`video/${encodeURIComponent(s.video)}`);
    if (video.getAttribute("src") !== src) video.setAttribute("src", src);
  }
  video.hidden = !s.video;
  $("no-video").hidden = !!s.video;
}

let lastCamera = 0;

function onFrame(msg) {
  const img = $(msg.name);
  if (!img) return;
  img.src = `data:image/jpeg;base64,${msg.data}`;
  img.dataset.seq = msg.seq;
  img.dataset.tag = msg.tag;
  if (msg.name === "camera") lastCamera = Date.now();
}

setInterval(() => {  // a stale camera is worth seeing at a glance
  if (!lastCamera) return;
  const age = (Date.now() - lastCamera) / 1000;
  text($("camera-age"), age < 2 ? "live" : `last frame ${age.toFixed(0)} s ago`);
}, 500);

async function post(path, body) {
  try {
    const res = await fetch(withToken(path), {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    const data = await res.json();
    if (!res.ok) text($("status-message"), data.detail || `HTTP ${res.status}`);
    return data;
  } catch (err) {
    text($("status-message"), `request failed: ${err}`);
    return null;
  }
}

function confirmThen(message, action) {
  const dialog = $("confirm");
  text($("confirm-text"), message);
  dialog.onclose = () => { if (dialog.returnValue === "ok") action(); };
  dialog.returnValue = "";
  dialog.showModal();
}

function answer(kind) {
  const id = $("prompt").dataset.promptId;
  if (!id) return;
  const send = () => {
    for (const b of ["btn-done", "btn-skip", "btn-abort"]) $(b).disabled = true;
    post("api/respond", {prompt_id: id, answer: kind, note: $("note").value}).then(() => { $("note").value = ""; });
  };
  if (kind === "abort") confirmThen("Abort the campaign? The executor is disarmed and the campaign stops (rerun to resume).", send);
  else send();
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}${withToken("/ws")}`);
  ws.onopen = () => { $("connection").className = "badge on"; text($("connection"), "live"); };
  ws.onclose = () => {
    $("connection").className = "badge off";
    text($("connection"), "disconnected: retrying");
    setTimeout(connect, 1000);
  };
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "frame") onFrame(msg);
    else if (msg.type === "state") { state = msg; render(); }
  };
}

$("btn-done").onclick = () => answer("done");
$("btn-skip").onclick = () => answer("skip");
$("btn-abort").onclick = () => answer("abort");
$("btn-arm").onclick = () => confirmThen("Arm the executor? THE ARM WILL MOVE at the next homing or rollout. Keep a hand on the emergency stop.",
                                         () => post("api/arm", {armed: true}));
$("btn-disarm").onclick = () => post("api/arm", {armed: false});  // stopping never waits for a dialog
connect();
