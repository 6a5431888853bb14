// soundwatch monitoring page: polls the JSON API and draws one card, timeline and trend per
// machine. Plain JavaScript, no library: the page must work on machines without internet access.
//
// The score axis is linear and centred on the threshold (?log=1 asks for a log axis): the
// distance to the threshold is what an engineer reads. The time axis is an ordinal one: each
// clip gets the same width, in arrival order, so a burst of clips in a few seconds is as
// readable as clips spread over a day; where time jumps (a gap much longer than the usual
// spacing between clips) a dashed break line carries the time the clips resume.
"use strict";

const params = new URLSearchParams(location.search);
const PERIOD_S = Math.max(0.5, parseFloat(params.get("refresh") || "2"));
const POINTS = Math.max(10, Math.min(2000, parseInt(params.get("points") || "200", 10)));
const WINDOW = Math.max(1, parseInt(params.get("window") || "20", 10));
const state = { token: sessionStorage.getItem("soundwatch-token") || "", histories: {},
                trends: {}, selected: null, blobs: [], log: params.get("log") === "1",
                lastTrend: 0 };
const COLORS = { normal: "#2962ff", anomaly: "#c62828", sensor: "#b26a00", error: "#7a8294" };

document.getElementById("period").textContent = String(PERIOD_S);
document.getElementById("log-axis").checked = state.log;

async function api(path, asBlob, init) {
  const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
  if (init && init.json !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { headers, cache: "no-store", method: (init && init.method) || "GET",
                                  body: init && init.json !== undefined ? JSON.stringify(init.json) : undefined });
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

function num(v) {  // a short label for an axis value
  const a = Math.abs(v);
  if (a >= 10000 || (a < 0.01 && v !== 0)) return v.toExponential(1);
  return fmt(v, a >= 100 ? 0 : a >= 10 ? 1 : 2);
}

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const child of children || []) node.appendChild(child);
  return node;
}

// a clip's kind: a machine anomaly only when scored (status ok) and flagged
function kind(c) {
  if (c.status === "sensor") return "sensor";
  if (c.status === "error") return "error";
  return c.decision === 1 ? "anomaly" : "normal";
}

const STATE_TEXT = { idle: "idle", normal: "normal", watch: "watch", anomaly: "anomaly",
                     sensor: "sensor fault", error: "error" };

function card(machine) {
  let node = document.querySelector(`.card[data-machine="${CSS.escape(machine.machine)}"]`);
  if (!node) {
    node = el("article", { class: "card", "data-machine": machine.machine }, [
      el("h2", {}, [el("span", { class: "name", text: machine.machine }),
                    el("span", { class: "badge" })]),
      el("div", { class: "window" }),
      el("div", { class: "rule" }),
      el("div", { class: "facts" }),
      el("canvas", { class: "timeline", "aria-label": `score timeline of ${machine.machine}` }),
      el("div", { class: "legend" }),
      el("h3", { text: "Daily trend" }),
      el("canvas", { class: "trend", "aria-label": `daily score trend of ${machine.machine}` }),
    ]);
    node.querySelector("canvas.timeline").addEventListener("click", (ev) => pick(machine.machine, ev));
    const legend = node.querySelector(".legend");
    for (const [k, text] of [["normal", "normal"], ["anomaly", "anomaly"],
                             ["sensor", "sensor fault"], ["error", "error"],
                             ["beyond", "beyond the axis"]]) {
      legend.appendChild(el("span", { class: "key key-" + k, text }));
    }
    document.getElementById("cards").appendChild(node);
  }
  node.className = "card state-" + machine.state;
  node.querySelector(".badge").textContent = STATE_TEXT[machine.state] || machine.state;
  const n = machine.window_clips;
  const win = node.querySelector(".window");
  win.textContent = n ? `${machine.window_anomalies} of the last ${n} clips anomalous` +
      (machine.window_sensor ? ` · ${machine.window_sensor} sensor fault(s)` : "") +
      (machine.window_errors ? ` · ${machine.window_errors} error(s)` : "") : "no clip yet";
  const rule = machine.rule || {};
  node.querySelector(".rule").textContent = `alert rule: ${rule.text || "–"}` +
      (n ? (machine.rule_holds ? " — met now" : " — not met") : "");
  const last = machine.last;
  const facts = node.querySelector(".facts");
  facts.innerHTML = "";
  const parts = [
    ["detector", machine.detector], ["threshold", fmt(machine.threshold, 3)],
    ["clips", machine.clips], ["anomalies", machine.anomalies],
    ["sensor", machine.sensor || 0], ["errors", machine.errors],
    ["last score", last && last.score !== null && last.status === "ok" ? fmt(last.score, 3) : "–"],
  ];
  parts.forEach(([k, v], i) => {
    facts.appendChild(document.createTextNode((i ? " · " : "") + k + " "));
    facts.appendChild(el("b", { text: String(v) }));
  });
  return node;
}

// ------------------------------------------------------------------- timeline
function layout(canvas, clips, threshold) {
  const w = canvas.clientWidth, h = canvas.clientHeight;
  const left = 52, right = 10, top = 10, bottom = 30;
  const scored = clips.filter((c) => c.score !== null && c.status !== "error");
  const plotH = h - top - bottom;
  let y, ticks, clipped;
  if (state.log && threshold > 0 && scored.every((c) => c.score > 0)) {
    // log axis (on request): decades around the threshold
    const vals = scored.map((c) => Math.log10(c.score)).concat([Math.log10(threshold)]);
    let a = Math.min(...vals), b = Math.max(...vals);
    const t = Math.log10(threshold), d = Math.max(t - a, b - t, 0.3) * 1.1;
    a = t - d; b = t + d;
    y = (v) => top + (1 - (Math.log10(v) - a) / (b - a)) * plotH;
    ticks = [a, (a + t) / 2, t, (t + b) / 2, b].map((u) => Math.pow(10, u));
    clipped = () => 0;
  } else {
    // linear, centred on the threshold; the half-range is three times the clips' median
    // distance to it (at least a quarter of the threshold), so a few huge scores do not
    // flatten the others onto one line: beyond the range a point sits on the edge as a
    // triangle pointing out (its value is in the clip's details)
    const dist = scored.map((c) => Math.abs(c.score - threshold)).sort((p, q) => p - q);
    const med = dist.length ? dist[Math.floor(dist.length / 2)] : 0;
    const d = Math.max(med * 3, Math.abs(threshold) * 0.25, 1e-6);
    const a = threshold - d, b = threshold + d;
    const raw = (v) => top + (1 - (v - a) / (b - a)) * plotH;
    y = (v) => Math.min(top + plotH, Math.max(top, raw(v)));
    clipped = (v) => (v > b ? 1 : v < a ? -1 : 0);
    ticks = [a, (a + threshold) / 2, threshold, (threshold + b) / 2, b];
  }
  // ordinal time axis with breaks where the gap between clips is far longer than usual
  const n = clips.length;
  const x = (i) => left + (n > 1 ? i / (n - 1) : 0.5) * (w - left - right);
  const gaps = [];
  for (let i = 1; i < n; i++) gaps.push(clips[i].ts - clips[i - 1].ts);
  const sorted = gaps.slice().sort((p, q) => p - q);
  const median = sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
  const breaks = [];
  gaps.forEach((g, k) => { if (g > Math.max(10 * median, 60)) breaks.push({ i: k + 1, gap: g }); });
  return { scored, ticks, x, y, clipped, w, h, left, right, top, bottom, breaks };
}

function duration(s) {
  if (s < 120) return Math.round(s) + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  if (s < 172800) return Math.round(s / 3600) + " h";
  return Math.round(s / 86400) + " d";
}

function when(ts) { return new Date(ts * 1000).toISOString().slice(11, 19); }

function draw(canvas, clips, threshold) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(canvas.clientWidth * ratio);
  canvas.height = Math.round(canvas.clientHeight * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const L = layout(canvas, clips, threshold);
  const index = new Map(clips.map((c, i) => [c.id, i]));
  ctx.clearRect(0, 0, L.w, L.h);
  ctx.font = "10px system-ui, sans-serif";
  ctx.lineWidth = 1;
  for (const v of L.ticks) {  // horizontal grid and score labels
    ctx.strokeStyle = "#e3e6ec"; ctx.fillStyle = "#6b7385";
    ctx.beginPath(); ctx.moveTo(L.left, L.y(v)); ctx.lineTo(L.w - L.right, L.y(v)); ctx.stroke();
    ctx.fillText(num(v), 2, L.y(v) + 3);
  }
  ctx.fillStyle = "#6b7385";
  ctx.fillText(state.log ? "score (log)" : "score", 2, L.h - 4);
  if (!clips.length) {
    ctx.fillText("no clip yet", L.left + 8, L.h / 2);
  } else {
    // time labels: the first clip, each resumption after a break, the last clip
    const base = L.h - L.bottom + 12;
    const labels = [{ i: 0, text: when(clips[0].ts) }];
    for (const b of L.breaks) labels.push({ i: b.i, text: when(clips[b.i].ts) });
    const lastText = when(clips[clips.length - 1].ts);
    let lastEnd = -Infinity;
    for (const lab of labels) {
      const px = Math.max(L.left, L.x(lab.i) - 2);
      if (px > lastEnd + 4 && px + 50 < L.w - L.right - ctx.measureText(lastText).width - 4) {
        ctx.fillText(lab.text, px, base); lastEnd = px + ctx.measureText(lab.text).width;
      }
    }
    ctx.fillText(lastText, L.w - L.right - ctx.measureText(lastText).width, base);
    ctx.fillText(`clips in arrival order (${clips.length}); dashed line: a pause`,
                 L.left + 60, L.h - 4);
    // breaks: a dashed vertical line between the two clips, with the pause's length
    ctx.strokeStyle = "#9aa3b5"; ctx.setLineDash([3, 3]);
    for (const b of L.breaks) {
      const px = (L.x(b.i - 1) + L.x(b.i)) / 2;
      ctx.beginPath(); ctx.moveTo(px, L.top); ctx.lineTo(px, L.h - L.bottom); ctx.stroke();
      ctx.fillStyle = "#6b7385"; ctx.fillText("+" + duration(b.gap), px + 2, L.top + 9);
    }
    ctx.setLineDash([]);
  }
  // threshold (the axis's centre)
  ctx.strokeStyle = "#c62828"; ctx.setLineDash([6, 4]);
  ctx.beginPath(); ctx.moveTo(L.left, L.y(threshold)); ctx.lineTo(L.w - L.right, L.y(threshold));
  ctx.stroke(); ctx.setLineDash([]);
  ctx.fillStyle = "#c62828"; ctx.fillText("threshold", L.w - L.right - 48, L.y(threshold) - 3);
  // scores
  ctx.strokeStyle = "#b8c6e3";
  ctx.beginPath();
  L.scored.forEach((c, k) => {
    const px = L.x(index.get(c.id)), py = L.y(c.score);
    if (k) ctx.lineTo(px, py); else ctx.moveTo(px, py);
  });
  ctx.stroke();
  for (const c of L.scored) {
    const sel = state.selected && state.selected.id === c.id;
    const px = L.x(index.get(c.id)), py = L.y(c.score), r = sel ? 5 : 3;
    ctx.fillStyle = COLORS[kind(c)];
    ctx.beginPath();
    const over = L.clipped(c.score);
    if (kind(c) === "sensor") {  // a diamond: the score says nothing about the machine
      ctx.moveTo(px, py - r - 1); ctx.lineTo(px + r + 1, py); ctx.lineTo(px, py + r + 1);
      ctx.lineTo(px - r - 1, py);
    } else if (over) {  // beyond the axis: a triangle on the edge, pointing out
      ctx.moveTo(px - r, py + over * r); ctx.lineTo(px + r, py + over * r); ctx.lineTo(px, py - over * r);
    } else {
      ctx.arc(px, py, r, 0, 2 * Math.PI);
    }
    ctx.fill();
    if (sel) { ctx.strokeStyle = "#1d2330"; ctx.stroke(); }
  }
  clips.forEach((c, i) => {  // not scored: errors as ticks, sensor faults as diamonds, on the axis
    const px = L.x(i), py = L.h - L.bottom - 4;
    if (c.status === "error") {
      ctx.fillStyle = COLORS.error; ctx.fillRect(px - 1, py - 2, 2, 6);
    } else if (c.status === "sensor" && c.score === null) {
      ctx.fillStyle = COLORS.sensor; ctx.beginPath();
      ctx.moveTo(px, py - 4); ctx.lineTo(px + 4, py); ctx.lineTo(px, py + 4); ctx.lineTo(px - 4, py);
      ctx.fill();
    }
  });
}

function pick(machine, ev) {
  const entry = state.histories[machine];
  if (!entry) return;
  const canvas = ev.currentTarget;
  const rect = canvas.getBoundingClientRect();
  const L = layout(canvas, entry.clips, entry.threshold);
  let best = null, bestD = Infinity;
  entry.clips.forEach((c, i) => {
    const py = c.score !== null && c.status !== "error" ? L.y(c.score) : L.h - L.bottom - 4;
    const d = Math.hypot(L.x(i) - (ev.clientX - rect.left), py - (ev.clientY - rect.top));
    if (d < bestD) { best = c; bestD = d; }
  });
  if (best) select(best);
}

// ---------------------------------------------------------------------- trend
function drawTrend(canvas, trend) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(canvas.clientWidth * ratio);
  canvas.height = Math.round(canvas.clientHeight * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const w = canvas.clientWidth, h = canvas.clientHeight, left = 52, right = 10, top = 8, bottom = 16;
  ctx.clearRect(0, 0, w, h);
  ctx.font = "10px system-ui, sans-serif";
  const days = (trend && trend.days) || [];
  const thr = trend ? trend.threshold : 0;
  const vals = days.flatMap((d) => [d.median, d.p90]).filter((v) => v !== null).concat([thr]);
  if (!days.length) { ctx.fillStyle = "#6b7385"; ctx.fillText("no day recorded yet", left, h / 2); return; }
  const d = Math.max(...vals.map((v) => Math.abs(v - thr)), Math.abs(thr) * 0.05, 1e-6) * 1.15;
  const y = (v) => top + (1 - (v - (thr - d)) / (2 * d)) * (h - top - bottom);
  const x = (i) => left + (days.length > 1 ? i / (days.length - 1) : 0.5) * (w - left - right);
  ctx.fillStyle = "#6b7385";
  for (const v of [thr - d, thr, thr + d]) ctx.fillText(num(v), 2, y(v) + 3);
  ctx.fillText(days[0].day, left, h - 3);
  if (days.length > 1) {
    const t = days[days.length - 1].day;
    ctx.fillText(t, w - right - ctx.measureText(t).width, h - 3);
  }
  ctx.strokeStyle = "#c62828"; ctx.setLineDash([6, 4]);
  ctx.beginPath(); ctx.moveTo(left, y(thr)); ctx.lineTo(w - right, y(thr)); ctx.stroke();
  ctx.setLineDash([]);
  for (const [key, color] of [["p90", "#ff8f00"], ["median", "#2962ff"]]) {
    ctx.strokeStyle = color; ctx.fillStyle = color; ctx.beginPath();
    let started = false;
    days.forEach((day, i) => {
      if (day[key] === null) return;
      if (started) ctx.lineTo(x(i), y(day[key])); else ctx.moveTo(x(i), y(day[key]));
      started = true;
    });
    ctx.stroke();
    days.forEach((day, i) => { if (day[key] !== null) { ctx.beginPath(); ctx.arc(x(i), y(day[key]), 2.5, 0, 7); ctx.fill(); } });
  }
  ctx.fillStyle = "#2962ff"; ctx.fillText("median", w - right - 90, top + 8);
  ctx.fillStyle = "#ff8f00"; ctx.fillText("p90", w - right - 40, top + 8);
}

// ---------------------------------------------------------------------- detail
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
  const k = kind(clip);
  const verdict = { anomaly: "ANOMALY", normal: "normal", sensor: "SENSOR FAULT (not a machine anomaly)",
                    error: "ERROR (not scored)" }[k];
  const rows = [["clip", "#" + clip.id], ["machine", clip.machine], ["time", clip.time],
                ["file", clip.name || clip.path || "–"], ["verdict", verdict]];
  if (clip.status !== "ok") rows.push(["reason", clip.status_reason || clip.error || "–"]);
  if (clip.score !== null && clip.status !== "error") {
    rows.push(["score", fmt(clip.score, 4)], ["threshold", fmt(clip.threshold, 4)],
              ["percentile", clip.percentile === null ? "–" : fmt(clip.percentile, 1) +
               " (share of normal training clips scoring lower)"]);
  }
  for (const [key, v] of rows) {
    facts.appendChild(el("dt", { text: key }));
    facts.appendChild(el("dd", { text: String(v), class: "verdict-" + (key === "verdict" ? k : "") }));
  }
  const button = document.getElementById("mark-normal");
  const msg = document.getElementById("feedback-msg");
  button.hidden = !(clip.has_audio && clip.status === "ok");
  button.disabled = false;
  msg.textContent = "";
  if (clip.has_audio) {
    image("spectrogram", "spectrogram-msg", `/v1/clips/${clip.id}/spectrogram.png`);
    image("explanation", "explanation-msg", `/v1/clips/${clip.id}/explanation.png`);
  } else {
    for (const [id, msgId] of [["spectrogram", "spectrogram-msg"], ["explanation", "explanation-msg"]]) {
      document.getElementById(id).hidden = true;
      const m = document.getElementById(msgId);
      m.hidden = false; m.textContent = "the clip's audio is no longer kept";
    }
  }
  redraw();
}

async function markNormal() {
  const clip = state.selected;
  if (!clip) return;
  const button = document.getElementById("mark-normal");
  const msg = document.getElementById("feedback-msg");
  if (!window.confirm(`Add clip #${clip.id} (${clip.name || "no name"}) to the normal data of ` +
                      `${clip.machine}? The scorer and threshold are refitted.`)) return;
  button.disabled = true;
  msg.className = "muted"; msg.textContent = "refitting…";
  try {
    const r = await api(`/v1/machines/${encodeURIComponent(clip.machine)}/normal`, false,
                        { method: "POST", json: { clips: [clip.id] } });
    msg.textContent = r.files.length
      ? `added to ${clip.machine}'s normal data (${r.train_clips} clips); threshold ` +
        `${fmt(r.threshold_before, 3)} → ${fmt(r.threshold_after, 3)}`
      : "already in the normal data: nothing changed";
    refresh();
  } catch (e) {
    msg.className = "err"; msg.textContent = "not added: " + e.message;
    button.disabled = false;
  }
}

function redraw() {
  for (const [machine, entry] of Object.entries(state.histories)) {
    const node = document.querySelector(`.card[data-machine="${CSS.escape(machine)}"]`);
    if (!node) continue;
    draw(node.querySelector("canvas.timeline"), entry.clips, entry.threshold);
    drawTrend(node.querySelector("canvas.trend"), state.trends[machine]);
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
    const machines = await api(`/v1/machines?window=${WINDOW}`);
    const histories = await Promise.all(machines.map(
      (m) => api(`/v1/machines/${encodeURIComponent(m.machine)}/history?limit=${POINTS}`)));
    // daily summaries change slowly: every 30 s is enough
    if (Date.now() - state.lastTrend > 30000 || !Object.keys(state.trends).length) {
      const trends = await Promise.all(machines.map(
        (m) => api(`/v1/machines/${encodeURIComponent(m.machine)}/trend?days=30`)));
      machines.forEach((m, i) => { state.trends[m.machine] = trends[i]; });
      state.lastTrend = Date.now();
    }
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
document.getElementById("log-axis").addEventListener("change", (ev) => {
  state.log = ev.target.checked;
  redraw();
});
document.getElementById("mark-normal").addEventListener("click", markNormal);
window.addEventListener("resize", redraw);

refresh();
setInterval(refresh, PERIOD_S * 1000);
