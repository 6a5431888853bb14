// soundwatch monitoring page: polls the JSON API and draws one card and timeline per machine.
// Plain JavaScript, no library: the page must work on machines without internet access.
"use strict";

const params = new URLSearchParams(location.search);
const PERIOD_S = Math.max(0.5, parseFloat(params.get("refresh") || "2"));
const POINTS = 300;
const state = { token: sessionStorage.getItem("soundwatch-token") || "", histories: {},
                selected: null, blobs: [] };

document.getElementById("period").textContent = String(PERIOD_S);

async function api(path, asBlob) {
  const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
  const res = await fetch(path, { headers, cache: "no-store" });
  if (res.status === 401) {
    document.getElementById("token-form").hidden = false;
    throw new Error("this service needs a bearer token");
  }
  if (!res.ok) {
    let message = res.status + " " + res.statusText;
    try { message = (await res.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return asBlob ? res.blob() : res.json();
}

function fmt(x, digits) {
  return x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(digits);
}

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const child of children || []) node.appendChild(child);
  return node;
}

function card(machine) {
  let node = document.querySelector(`.card[data-machine="${CSS.escape(machine.machine)}"]`);
  if (!node) {
    node = el("article", { class: "card", "data-machine": machine.machine }, [
      el("h2", {}, [el("span", { class: "name", text: machine.machine }),
                    el("span", { class: "badge" })]),
      el("div", { class: "facts" }),
      el("canvas", { class: "timeline", "aria-label": `score timeline of ${machine.machine}` }),
    ]);
    node.querySelector("canvas").addEventListener("click", (ev) => pick(machine.machine, ev));
    document.getElementById("cards").appendChild(node);
  }
  node.className = "card state-" + machine.state;
  node.querySelector(".badge").textContent = machine.state;
  const last = machine.last;
  const facts = node.querySelector(".facts");
  facts.innerHTML = "";
  const parts = [
    ["detector", machine.detector], ["threshold", fmt(machine.threshold, 3)],
    ["clips", machine.clips], ["anomalies", machine.anomalies], ["errors", machine.errors],
    ["last score", last && last.score !== null ? fmt(last.score, 3) : "–"],
    ["percentile", last && last.percentile !== null ? fmt(last.percentile, 1) : "–"],
  ];
  parts.forEach(([k, v], i) => {
    facts.appendChild(document.createTextNode((i ? " · " : "") + k + " "));
    facts.appendChild(el("b", { text: String(v) }));
  });
  return node;
}

function layout(canvas, clips, threshold) {
  const scored = clips.filter((c) => c.status === "ok" && c.score !== null);
  const values = scored.map((c) => c.score).concat([threshold]);
  let lo = Math.min(...values), hi = Math.max(...values);
  // a log axis when scores are positive and span decades: anomalies far above the threshold
  // would otherwise flatten every normal clip onto one line
  const log = lo > 0 && hi / lo > 20;
  const f = log ? Math.log10 : (v) => v;
  let a = f(lo), b = f(hi);
  if (!(b > a)) { a -= 1; b += 1; }
  const pad = (b - a) * 0.08;
  a -= pad; b += pad;
  const t0 = clips.length ? clips[0].ts : 0, t1 = clips.length ? clips[clips.length - 1].ts : 1;
  const w = canvas.clientWidth, h = canvas.clientHeight, left = 44, right = 8, top = 8, bottom = 18;
  const x = (ts) => left + (t1 > t0 ? (ts - t0) / (t1 - t0) : 0.5) * (w - left - right);
  const y = (v) => top + (1 - (f(v) - a) / (b - a)) * (h - top - bottom);
  const inv = (u) => (log ? Math.pow(10, u) : u);
  const ticks = [inv(a), inv((a + b) / 2), inv(b)];
  return { scored, log, ticks, x, y, w, h, left, right, top, bottom, t0, t1 };
}

function draw(canvas, clips, threshold) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(canvas.clientWidth * ratio);
  canvas.height = Math.round(canvas.clientHeight * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const L = layout(canvas, clips, threshold);
  ctx.clearRect(0, 0, L.w, L.h);
  ctx.font = "10px system-ui, sans-serif";
  ctx.fillStyle = "#6b7385";
  ctx.strokeStyle = "#dde1e8";
  ctx.lineWidth = 1;
  for (const v of L.ticks) {
    ctx.beginPath(); ctx.moveTo(L.left, L.y(v)); ctx.lineTo(L.w - L.right, L.y(v)); ctx.stroke();
    ctx.fillText(Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1)
                 : fmt(v, Math.abs(v) >= 100 ? 0 : 1), 2, L.y(v) + 3);
  }
  if (L.log) ctx.fillText("log", 2, L.h - 4);
  if (clips.length) {
    const when = (ts) => new Date(ts * 1000).toISOString().slice(11, 19);
    ctx.fillText(when(L.t0), L.left, L.h - 4);
    const text = when(L.t1);
    ctx.fillText(text, L.w - L.right - ctx.measureText(text).width, L.h - 4);
  } else {
    ctx.fillText("no clip yet", L.left + 8, L.h / 2);
  }
  // threshold
  ctx.strokeStyle = "#c62828"; ctx.setLineDash([5, 4]);
  ctx.beginPath(); ctx.moveTo(L.left, L.y(threshold)); ctx.lineTo(L.w - L.right, L.y(threshold));
  ctx.stroke(); ctx.setLineDash([]);
  ctx.fillStyle = "#c62828"; ctx.fillText("threshold", L.w - L.right - 50, L.y(threshold) - 3);
  // scores
  ctx.strokeStyle = "#9fb3d9";
  ctx.beginPath();
  L.scored.forEach((c, i) => (i ? ctx.lineTo(L.x(c.ts), L.y(c.score))
                                : ctx.moveTo(L.x(c.ts), L.y(c.score))));
  ctx.stroke();
  for (const c of L.scored) {
    const sel = state.selected && state.selected.id === c.id;
    ctx.fillStyle = c.decision === 1 ? "#c62828" : "#2962ff";
    ctx.beginPath(); ctx.arc(L.x(c.ts), L.y(c.score), sel ? 5 : 2.5, 0, 2 * Math.PI); ctx.fill();
  }
  ctx.fillStyle = "#b26a00";
  for (const c of clips.filter((c) => c.status === "error")) {
    ctx.fillRect(L.x(c.ts) - 1, L.h - L.bottom - 6, 2, 6);
  }
}

function pick(machine, ev) {
  const entry = state.histories[machine];
  if (!entry) return;
  const canvas = ev.currentTarget;
  const rect = canvas.getBoundingClientRect();
  const L = layout(canvas, entry.clips, entry.threshold);
  let best = null, bestD = Infinity;
  for (const c of L.scored) {
    const d = Math.hypot(L.x(c.ts) - (ev.clientX - rect.left), L.y(c.score) - (ev.clientY - rect.top));
    if (d < bestD) { best = c; bestD = d; }
  }
  if (best) select(best);
}

async function image(id, msgId, path) {
  const img = document.getElementById(id), msg = document.getElementById(msgId);
  img.hidden = true; msg.hidden = false; msg.textContent = "loading…";
  try {
    const url = URL.createObjectURL(await api(path, true));
    state.blobs.push(url);
    img.src = url; img.hidden = false; msg.hidden = true;
  } catch (e) {
    msg.textContent = e.message;
  }
}

function select(clip) {
  state.selected = clip;
  for (const url of state.blobs.splice(0)) URL.revokeObjectURL(url);
  document.getElementById("detail-empty").hidden = true;
  document.getElementById("detail-body").hidden = false;
  const facts = document.getElementById("detail-facts");
  facts.innerHTML = "";
  const rows = [["clip", "#" + clip.id], ["machine", clip.machine], ["time", clip.time],
                ["file", clip.name || clip.path || "–"], ["status", clip.status]];
  if (clip.status === "ok") {
    rows.push(["score", fmt(clip.score, 4)], ["threshold", fmt(clip.threshold, 4)],
              ["percentile", fmt(clip.percentile, 1)],
              ["decision", clip.decision === 1 ? "ANOMALY" : "normal"]);
  } else {
    rows.push(["error", clip.error || "–"]);
  }
  for (const [k, v] of rows) {
    facts.appendChild(el("dt", { text: k }));
    facts.appendChild(el("dd", { text: String(v), class: v === "ANOMALY" ? "anomaly" : "" }));
  }
  if (clip.has_audio) {
    image("spectrogram", "spectrogram-msg", `/v1/clips/${clip.id}/spectrogram.png`);
    image("explanation", "explanation-msg", `/v1/clips/${clip.id}/explanation.png`);
  } else {
    for (const [id, msgId] of [["spectrogram", "spectrogram-msg"], ["explanation", "explanation-msg"]]) {
      document.getElementById(id).hidden = true;
      const msg = document.getElementById(msgId);
      msg.hidden = false; msg.textContent = "the clip's audio is no longer kept";
    }
  }
  redraw();
}

function redraw() {
  for (const [machine, entry] of Object.entries(state.histories)) {
    const node = document.querySelector(`.card[data-machine="${CSS.escape(machine)}"] canvas`);
    if (node) draw(node, entry.clips, entry.threshold);
  }
}

function anomalies(events) {
  const body = document.querySelector("#anomalies tbody");
  body.innerHTML = "";
  document.getElementById("no-anomalies").hidden = events.length > 0;
  for (const e of events) {
    const row = el("tr", {}, [
      el("td", { text: e.time.slice(0, 19).replace("T", " ") }), el("td", { text: e.machine }),
      el("td", { text: fmt(e.score, 3) }), el("td", { text: fmt(e.percentile, 1) }),
      el("td", { text: e.name || e.path || "#" + e.id, title: e.path || e.name || "" }),
    ]);
    row.addEventListener("click", () => select(e));
    body.appendChild(row);
  }
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const machines = await api("/v1/machines");
    const histories = await Promise.all(machines.map(
      (m) => api(`/v1/machines/${encodeURIComponent(m.machine)}/history?limit=${POINTS}`)));
    machines.forEach((m, i) => {
      card(m);
      state.histories[m.machine] = histories[i];
    });
    anomalies((await api("/v1/events?limit=15")).events);
    redraw();
    const total = machines.reduce((n, m) => n + m.clips, 0);
    status.className = "status";
    status.textContent = `${machines.length} machine(s), ${total} clip(s) · updated ` +
      new Date().toLocaleTimeString();
  } catch (e) {
    status.className = "status err";
    status.textContent = "cannot refresh: " + e.message;
  }
}

document.getElementById("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.token = document.getElementById("token").value.trim();
  sessionStorage.setItem("soundwatch-token", state.token);
  document.getElementById("token-form").hidden = true;
  refresh();
});
window.addEventListener("resize", redraw);

refresh();
setInterval(refresh, PERIOD_S * 1000);
