// gridsentry console: polls the REST API every 2 s, renders open orders by colour with SLA
// countdowns and action buttons, an order's timeline, and the devices with small charts.
"use strict";

const COLOURS = ["red", "orange", "yellow", "blue"];
const ACTIONS = {
  raised: [["dispatch", "Dispatch"], ["ack", "Acknowledge"], ["on-site", "On site"], ["resolve", "Resolve"]],
  dispatched: [["ack", "Acknowledge"], ["on-site", "On site"], ["resolve", "Resolve"]],
  acknowledged: [["on-site", "On site"], ["resolve", "Resolve"]],
  on_site: [["resolve", "Resolve"]],
  resolved: [["close", "Close"]],
};
const $ = (id) => document.getElementById(id);
let state = { orders: [], resolved: [], devices: [], skew: 0, timeline: null };
let timer = null;

function token() { return sessionStorage.getItem("gridsentry-token"); }
function operator() { return sessionStorage.getItem("gridsentry-operator") || "console"; }

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token() }, options.headers || {});
  const r = await fetch(path, Object.assign({}, options, { headers }));
  if (r.status === 401) { logout("Token refused."); throw new Error("unauthorised"); }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
  return body;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  return Math.floor(s / 3600) + " h ago";
}

function clock(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  const m = Math.floor(s / 60), r = s % 60;
  return (m >= 60 ? Math.floor(m / 60) + ":" + String(m % 60).padStart(2, "0") : m) + ":" + String(r).padStart(2, "0");
}

function now() { return Date.now() + state.skew; }

function sla(o) {
  if (!o.due) return null;
  const parts = [];
  if (o.due.overdue.length) parts.push(el("span", { class: "sla overdue" }, "OVERDUE: " + o.due.overdue.join(", ") + " "));
  if (o.due.next) {
    const left = o.due.at_ms - now();
    const cls = left < 0 ? "sla overdue" : "sla";
    parts.push(el("span", { class: cls, "data-due": String(o.due.at_ms) },
      left >= 0 ? o.due.next + " in " + clock(left) : o.due.next + " late by " + clock(left)));
  }
  return el("div", { class: "meta" }, ...parts);
}

function card(o) {
  const buttons = (ACTIONS[o.state] || []).map(([action, label]) => {
    const b = el("button", { type: "button", "data-action": action }, label);
    b.addEventListener("click", () => act(o.id, action, b));
    return b;
  });
  const title = el("div", { class: "title" }, o.rule + " · " + o.subject);
  title.addEventListener("click", () => openTimeline(o.id));
  const forecast = o.forecast
    ? el("div", { class: "meta" }, "failure forecast " + new Date(o.forecast.failure_ms).toISOString().replace(".000", "") +
        " (R² " + o.forecast.r2.toFixed(2) + ", " + o.forecast.points + " points)")
    : null;
  return el("div", { class: "order " + o.colour, "data-order-id": String(o.id), "data-rule": o.rule, "data-colour": o.colour, "data-state": o.state },
    title,
    el("div", { class: "summary" }, o.summary),
    el("div", { class: "meta" }, el("span", { class: "state" }, o.state.replace("_", " ")),
      " #" + o.id + " · raised " + ago(now() - o.created_ms) + (o.late ? " · from backfill" : "") + (o.active ? "" : " · condition cleared")),
    forecast, sla(o), el("div", { class: "actions" }, ...buttons));
}

function spark(points) {
  const w = 90, h = 24;
  if (!points.length) return el("span");
  const vs = points.map((p) => p[1]);
  const lo = Math.min(...vs), hi = Math.max(...vs), span = hi - lo || 1;
  const t0 = points[0][0], tn = points[points.length - 1][0], tspan = tn - t0 || 1;
  const d = points.map((p, i) => (i ? "L" : "M") + ((p[0] - t0) / tspan * w).toFixed(1) + "," + (h - (p[1] - lo) / span * h).toFixed(1)).join(" ");
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h);
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d); path.setAttribute("fill", "none"); path.setAttribute("stroke", "#7fb3d5"); path.setAttribute("stroke-width", "1.5");
  svg.append(path);
  return svg;
}

function render() {
  for (const c of COLOURS) {
    const lane = $("lane-" + c);
    const mine = state.orders.filter((o) => o.colour === c);
    lane.replaceChildren(el("h3", {}, c[0].toUpperCase() + c.slice(1) + " (" + mine.length + ")"), ...mine.map(card));
    $("n-" + c).textContent = String(mine.length);
  }
  $("resolved").replaceChildren(...state.resolved.slice(0, 20).map(card));
  $("devices").replaceChildren(...state.devices.map((d) => {
    const series = Object.entries(d.series).map(([name, s]) => {
      const last = s.points.length ? s.points[s.points.length - 1][1] : null;
      return el("span", { class: "spark", title: name }, spark(s.points), " " + name.replace(/^(deform|hr):/, "") + " " + (last === null ? "" : (+last.toFixed(2))));
    });
    const status = d.online === false ? el("span", { class: "offline" }, " offline") : null;
    return el("tr", { "data-device": d.site + "/" + d.device },
      el("td", {}, d.site + "/" + d.device, status), el("td", { class: "dim" }, ago(now() - d.last_seen_ms)), el("td", {}, ...series));
  }));
  $("clock").textContent = new Date(now()).toISOString().slice(11, 19) + " UTC";
}

async function refresh() {
  try {
    const [open, resolved, devices] = await Promise.all([
      api("/api/v1/orders?open=true"), api("/api/v1/orders?state=resolved"), api("/api/v1/devices")]);
    state.skew = open.now_ms - Date.now();
    state.orders = open.orders; state.resolved = resolved.orders; state.devices = devices.devices;
    $("error").textContent = "";
    render();
    if (state.timeline) openTimeline(state.timeline, true);
  } catch (e) { if (e.message !== "unauthorised") console.warn("refresh failed", e); }
}

async function act(id, action, button) {
  const why = action === "resolve" || action === "close" ? (prompt("What was done?") || "") : "";
  button.disabled = true;
  try {
    await api("/api/v1/orders/" + id + "/" + action, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ who: operator(), why }),
    });
  } catch (e) { alert("Could not " + action + " order " + id + ": " + e.message); }
  await refresh();
}

async function openTimeline(id, quiet) {
  state.timeline = id;
  try {
    const r = await api("/api/v1/orders/" + id);
    $("timeline").hidden = false;
    $("timeline-title").textContent = "Order #" + id + " · " + r.order.rule + " · " + r.order.subject;
    $("timeline-events").replaceChildren(...r.events.map((e) => el("li", { "data-kind": e.kind },
      new Date(e.at_ms).toISOString().slice(11, 19) + " " + e.kind + " → " + e.state + " (" + e.colour + ") by " + e.who + (e.why ? ": " + e.why : ""))));
  } catch (e) { if (!quiet) alert(e.message); }
}

function logout(message) {
  sessionStorage.removeItem("gridsentry-token");
  clearInterval(timer);
  $("app").hidden = true; $("login").hidden = false;
  $("error").textContent = message || "";
}

async function start() {
  $("login").hidden = true; $("app").hidden = false;
  $("who-am-i").textContent = operator();
  await refresh();
  timer = setInterval(refresh, 2000);
  setInterval(render, 1000);
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  sessionStorage.setItem("gridsentry-token", $("token").value.trim());
  sessionStorage.setItem("gridsentry-operator", $("operator").value.trim() || "console");
  try { await api("/api/v1/orders?open=true"); start(); } catch (e) { if (e.message !== "unauthorised") $("error").textContent = e.message; }
});
$("logout").addEventListener("click", () => logout());
if (token()) start();
