// gridsentry console: open orders by colour with SLA countdowns and action buttons, an order's
// timeline, and the devices with small charts. Simplified Chinese by default (English on a
// click; one message catalogue, no build step). Orders are pushed (Server-Sent Events read with
// fetch with the session cookie; people log in with their own name and password, and the
// buttons shown are the ones their role may use); an unacknowledged order sounds (a tone per colour,
// repeating until someone acknowledges it, muted by a click), a red one raises a browser
// notification and flashes the tab title.
"use strict";

const COLOURS = ["red", "orange", "yellow", "blue"];
const MESSAGES = {
  zh: {
    console: "gridsentry 指挥台", password: "密码", name: "姓名", login: "登录", logout: "退出",
    wrong_login: "姓名或密码错误（连续失败 5 次将锁定 15 分钟）。",
    enable_sound: "点击启用警报声音", sound_off: "声音未开启",
    viewer: "查看员", field: "网格员", operator: "值班员", admin: "管理员", auditor: "审计员", machine: "机器",
    mute: "静音", unmute: "取消静音", open_orders: "待处理工单", to_close: "已处置，待关闭",
    devices: "设备", device: "设备", last_seen: "最近上报", recent: "近期数值", lang: "English",
    red: "红色", orange: "橙色", yellow: "黄色", blue: "蓝色",
    dispatch: "派遣", ack: "确认", "on-site": "到场", resolve: "处置完毕", close: "关闭",
    raised: "待派遣", dispatched: "已派遣", acknowledged: "已确认", on_site: "已到场", resolved: "已处置", closed: "已关闭",
    token_refused: "登录已失效，请重新登录。", what_done: "采取了哪些措施？", could_not: "无法执行操作：",
    overdue: "已超时：", in: "剩余", late_by: "已超时", deadline_dispatch: "派遣时限", "deadline_on-site": "到场时限",
    deadline_reinforcement: "增援时限", raised_ago: "发起于", backfill: "补传数据", cleared: "条件已解除",
    forecast: "预测失稳时间", points: "个点", order: "工单", by: "操作人", offline: "离线",
    s_ago: "秒前", min_ago: "分钟前", h_ago: "小时前", map: "地图", all_streets: "全部街道", alarm_title: "【红色警报】", live: "实时", reconnecting: "重连中",
    red_order: "红色工单", system: "系统", rule_by: "规则", still_active: "条件仍在持续",
    resolve_active: "该工单的条件仍在持续（例如边坡仍在位移、心率仍然异常）。确认处置完毕？若条件持续，系统将重新发起工单。",
    follows: "接续工单", my_orders: "我的工单", none_for_you: "暂无派给您的工单", other_person: "其他人员（姓名）", cancel: "取消",
    red_and_overdue: "红色与超时工单", on_duty: "值班中", off_hours: "非值班时段", dispatch_title: "派遣工单", assigned: "派给",
    note_required: "请填写处置说明（闭环记录），未提交。", navigate: "导航", rota: "值班安排", all_day: "全天",
    ev_raised: "发起", ev_reactivated: "再次触发", ev_flapping: "频繁波动", ev_confirmed: "实时确认", ev_escalated: "升级",
    ev_forecast: "预测更新", ev_condition_cleared: "条件解除", ev_reminder: "提醒", ev_dispatched: "派遣",
    ev_acknowledged: "确认接收", ev_on_site: "到场", ev_resolved: "处置完毕", ev_closed: "关闭",
    silences: "静默（维护时段）", m_site: "站点", m_street: "街道", m_rule: "规则", m_device: "设备", hours: "小时",
    include_red: "含红色工单", silence_add: "静默", silence_end: "结束", until: "至",
    incidents: "事件（同源工单合并通知）", mass_offline: "大面积离线", incident: "事件", orders_n: "个工单", open_n: "未关闭",
    show_all: "显示全部", only_this: "只看此事件", inhibited: "已抑制：网关离线", ev_inhibited: "抑制（网关离线）", ev_released: "抑制解除",
    warn: "一键预警", warn_confirm: "向该隐患点的居民发送撤离预警（短信、广播）？撤离路线：", warned: "已发送预警",
    rollouts: "固件升级", r_active: "进行中", r_paused: "已暂停", r_done: "已完成", r_cancelled: "已取消", wave: "批次",
    r_pause: "暂停", r_resume: "继续", r_cancel: "取消升级", o_confirmed: "已确认", o_failed: "失败", o_rolled_back: "已回退",
    o_pending: "待推送", o_busy: "升级中",
  },
  en: {
    console: "gridsentry console", password: "Password", name: "Name", login: "Log in", logout: "Log out",
    wrong_login: "Wrong name or password (5 failures in a row lock a name for 15 minutes).",
    enable_sound: "Click to turn the alarm sound on", sound_off: "Sound off",
    viewer: "viewer", field: "grid worker", operator: "operator", admin: "admin", auditor: "auditor", machine: "machine",
    mute: "Mute", unmute: "Unmute", open_orders: "Open orders", to_close: "Resolved, to close",
    devices: "Devices", device: "Device", last_seen: "Last seen", recent: "Recent values", lang: "中文",
    red: "Red", orange: "Orange", yellow: "Yellow", blue: "Blue",
    dispatch: "Dispatch", ack: "Acknowledge", "on-site": "On site", resolve: "Resolve", close: "Close",
    raised: "raised", dispatched: "dispatched", acknowledged: "acknowledged", on_site: "on site", resolved: "resolved", closed: "closed",
    token_refused: "Your session ended; log in again.", what_done: "What was done?", could_not: "Could not act: ",
    overdue: "OVERDUE: ", in: "in", late_by: "late by", deadline_dispatch: "dispatch", "deadline_on-site": "on-site",
    deadline_reinforcement: "reinforcement", raised_ago: "raised", backfill: "from backfill", cleared: "condition cleared",
    forecast: "failure forecast", points: "points", order: "Order", by: "by", offline: "offline",
    s_ago: "s ago", min_ago: "min ago", h_ago: "h ago", map: "Map", all_streets: "All streets", alarm_title: "[RED ALARM] ", live: "live", reconnecting: "reconnecting",
    red_order: "Red order", system: "system", rule_by: "rule", still_active: "condition still active",
    resolve_active: "This order's condition is still active (the slope still moving, the heart rate still abnormal). Resolve it anyway? If the condition continues, a new order is raised.",
    follows: "follows order", my_orders: "My orders", none_for_you: "No orders for you", other_person: "Someone else (name)", cancel: "Cancel",
    red_and_overdue: "Red and overdue orders", on_duty: "on duty", off_hours: "off duty now", dispatch_title: "Dispatch order", assigned: "to",
    note_required: "Say what was done (the record closes the loop); not sent.", navigate: "Map", rota: "Duty rota", all_day: "all day",
    ev_raised: "raised", ev_reactivated: "reactivated", ev_flapping: "flapping", ev_confirmed: "confirmed", ev_escalated: "escalated",
    ev_forecast: "forecast", ev_condition_cleared: "condition cleared", ev_reminder: "reminder", ev_dispatched: "dispatched",
    ev_acknowledged: "acknowledged", ev_on_site: "on site", ev_resolved: "resolved", ev_closed: "closed",
    silences: "Silences (maintenance)", m_site: "site", m_street: "street", m_rule: "rule", m_device: "device", hours: "hours",
    include_red: "red orders too", silence_add: "Silence", silence_end: "End", until: "until",
    incidents: "Incidents (orders with one cause)", mass_offline: "Mass offline", incident: "incident", orders_n: "orders", open_n: "open",
    show_all: "Show all", only_this: "Only this", inhibited: "held back: gateway offline", ev_inhibited: "inhibited (gateway offline)", ev_released: "released",
    warn: "Warn residents", warn_confirm: "Send the evacuation warning to this hazard site's residents (SMS, loudspeakers)? Route: ", warned: "Warning sent",
    rollouts: "Firmware roll-outs", r_active: "active", r_paused: "paused", r_done: "done", r_cancelled: "cancelled", wave: "wave",
    r_pause: "Pause", r_resume: "Resume", r_cancel: "Cancel", o_confirmed: "confirmed", o_failed: "failed", o_rolled_back: "rolled back",
    o_pending: "not offered yet", o_busy: "updating",
  },
};
let lang = localStorage.getItem("gridsentry-lang") || "zh";
const t = (k) => (MESSAGES[lang] && MESSAGES[lang][k]) || MESSAGES.en[k] || k;
const ACTIONS = {
  raised: ["dispatch", "ack", "on-site", "resolve"],
  dispatched: ["ack", "on-site", "resolve"],
  acknowledged: ["on-site", "resolve"],
  on_site: ["resolve"],
  resolved: ["close"],
};
// Tones: red high and fast, orange lower, yellow low and slow; blue (maintenance) is silent.
const TONES = { red: { hz: 880, every: 3000 }, orange: { hz: 660, every: 6000 }, yellow: { hz: 440, every: 15000 } };
const $ = (id) => document.getElementById(id);
let state = { orders: [], resolved: [], devices: [], skew: 0, timeline: null, sites: [], street: "", silences: [], incidents: [], incident: 0 };
let timer = null;
// What the test (and a curious operator in devtools) can look at.
const gs = (window.gridsentry = { audio: null, alarm: null, beeps: 0, muted: false, events: 0, notified: [], opened: 0, view: "desk" });
let lastBeep = 0;
let stream = null;

// Who is logged in (`GET /api/v1/me`), or null.
let me = null;
// What a role's buttons are (the API checks again; a field worker sees only their orders).
const MAY = {
  operator: ["dispatch", "ack", "on-site", "resolve", "close"], machine: ["dispatch", "ack", "on-site", "resolve", "close"],
  field: ["ack", "on-site", "resolve"],
};

async function api(path, options = {}) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
  if (r.status === 401) { logout(t("token_refused")); throw new Error("unauthorised"); }
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
  if (s < 60) return s + " " + t("s_ago");
  if (s < 3600) return Math.floor(s / 60) + " " + t("min_ago");
  return Math.floor(s / 3600) + " " + t("h_ago");
}

function clock(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  const m = Math.floor(s / 60), r = s % 60;
  return (m >= 60 ? Math.floor(m / 60) + ":" + String(m % 60).padStart(2, "0") : m) + ":" + String(r).padStart(2, "0");
}

function now() { return Date.now() + state.skew; }

// Times as people here read them: in the daemon's `[daemon] timezone` (Asia/Shanghai by
// default), whatever zone the browser is in; the clock says which offset it is.
function zoned(opts) {
  try {
    return new Intl.DateTimeFormat(lang === "zh" ? "zh-CN" : "en-GB", Object.assign({ timeZone: (me && me.timezone) || undefined }, opts));
  } catch (e) {
    return new Intl.DateTimeFormat(lang === "zh" ? "zh-CN" : "en-GB", opts);
  }
}
const timeOf = (ms) => zoned({ hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(ms);
const dateTimeOf = (ms) => zoned({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }).format(ms);
function offsetOf(ms) {
  const part = zoned({ timeZoneName: "shortOffset" }).formatToParts(ms).find((p) => p.type === "timeZoneName");
  return part ? part.value : "";
}

// The deadline lines of an order: what was missed, and the next one with its countdown.
function sla(o) {
  if (!o.due) return null;
  const parts = [];
  const name = (d) => t("deadline_" + d);
  if (o.due.overdue.length) parts.push({ cls: "sla overdue", text: t("overdue") + o.due.overdue.map(name).join(", ") + " " });
  if (o.due.next) {
    const left = o.due.at_ms - now();
    parts.push({ cls: left < 0 ? "sla overdue" : "sla", due: String(o.due.at_ms),
      text: name(o.due.next) + " " + (left >= 0 ? t("in") : t("late_by")) + " " + clock(left) });
  }
  return parts;
}

// Cards are kept by order id and updated in place: a card (and its buttons) is built once and
// only its text changes, so a press on a button is never lost to a rebuild under the pointer.
const cards = new Map();

function setText(node, text) { if (node.textContent !== text) node.textContent = text; }
function setData(node, key, value) { if (node.getAttribute(key) !== value) node.setAttribute(key, value); }

// What people read: the title from the server (rule name · site（street）), the summary in the
// console's language, who acted (the deadline clock and rules are 系统, not a person).
const titleOf = (o) => o.title || (o.rule + " · " + o.subject);
const summaryOf = (o) => (lang === "zh" && o.summary_zh) ? o.summary_zh : o.summary;
const whyOf = (e) => (lang === "zh" && e.why_zh) ? e.why_zh : e.why;
function whoOf(who) {
  if (who === "sla") return t("system");
  if (who.startsWith("rule:")) return t("system") + "（" + t("rule_by") + " " + who.slice(5) + "）";
  return who;
}

function card(o) {
  let c = cards.get(o.id);
  if (!c) {
    const p = {
      title: el("div", { class: "title" }), summary: el("div", { class: "summary" }), state: el("span", { class: "state" }),
      meta: el("span"), forecast: el("div", { class: "meta" }), sla: el("div", { class: "meta" }), actions: el("div", { class: "actions" }),
      where: el("div", { class: "meta where" }),
    };
    // Where it is: the site's name and street, and a `geo:` link the phone's map app opens.
    const site = state.sites.find((x) => x.id === o.site);
    if (site) {
      p.where.append(site.name || site.id, site.street ? " · " + site.street : "",
        el("a", { href: "geo:" + site.lat + "," + site.lon + "?q=" + site.lat + "," + site.lon + "(" + encodeURIComponent(site.name || site.id) + ")" }, t("navigate")));
    }
    p.title.addEventListener("click", () => openTimeline(o.id));
    const root = el("div", { "data-order-id": String(o.id) }, p.title, p.summary, p.where, el("div", { class: "meta" }, p.state, p.meta), p.forecast, p.sla, p.actions);
    c = { root, p, buttons: null, sla: null };
    cards.set(o.id, c);
  }
  c.o = o;
  const { root, p } = c;
  if (root.className !== "order " + o.colour) root.className = "order " + o.colour;
  setData(root, "data-rule", o.rule); setData(root, "data-colour", o.colour); setData(root, "data-state", o.state);
  setData(root, "data-active", String(!!o.active));
  setData(root, "data-assignee", o.assignee || "");
  setText(p.title, titleOf(o));
  setText(p.summary, summaryOf(o));
  setText(p.state, t(o.state));
  setText(p.meta, " #" + o.id + " · " + t("raised_ago") + " " + ago(now() - o.created_ms) + (o.late ? " · " + t("backfill") : "") +
    (o.active ? (o.state === "resolved" ? " · " + t("still_active") : "") : " · " + t("cleared")) +
    (o.reraised_from ? " · " + t("follows") + " #" + o.reraised_from : "") + (o.assignee ? " · " + t("assigned") + " " + o.assignee : "") +
    (o.incident ? " · " + t("incident") + " #" + o.incident : "") + (o.inhibited_by ? " · " + t("inhibited") + " #" + o.inhibited_by : ""));
  setData(root, "data-incident", o.incident ? String(o.incident) : "");
  const forecast = o.forecast ? t("forecast") + " " + dateTimeOf(o.forecast.failure_ms) + " " + offsetOf(o.forecast.failure_ms) +
    " (R² " + o.forecast.r2.toFixed(2) + ", " + o.forecast.points + " " + t("points") + ")" : "";
  setText(p.forecast, forecast); p.forecast.hidden = !forecast;
  const deadlines = sla(o);
  const key = deadlines ? deadlines.map((d) => d.cls + "|" + d.text).join("\n") : "";
  if (key !== c.sla) { c.sla = key; p.sla.replaceChildren(...(deadlines || []).map((d) => el("span", { class: d.cls, "data-due": d.due || "" }, d.text))); }
  // Buttons are rebuilt only when what may be done changes (state, role, language).
  const actions = (ACTIONS[o.state] || []).filter((a) => me && (MAY[me.role] || []).includes(a));
  // 一键预警: a red order of a hazard site ([[warning]]), for those who may warn; asks first.
  const hazard = state.sites.find((x) => x.id === o.site && x.warning_route);
  const warn = !!(hazard && o.colour === "red" && me && MAY_WARN.includes(me.role) && !["resolved", "closed"].includes(o.state));
  const bkey = actions.join(",") + "|" + warn + "|" + lang;
  if (bkey !== c.buttons) {
    c.buttons = bkey;
    p.actions.replaceChildren(...actions.map((action) => {
      const b = el("button", { type: "button", "data-action": action }, t(action));
      b.addEventListener("click", () => act(c.o, action, b));
      return b;
    }), ...(warn ? [el("button", { type: "button", "data-action": "warn", class: "warn", onclick: (ev) => warnResidents(c.o, hazard, ev.target) }, t("warn"))] : []));
  }
  return root;
}

// Puts `nodes` into `parent` in order, moving only what is out of place.
function place(parent, nodes) {
  nodes.forEach((n, i) => { if (parent.children[i] !== n) parent.insertBefore(n, parent.children[i] || null); });
  while (parent.children.length > nodes.length) parent.lastElementChild.remove();
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

// The chosen street's sites (all sites when none is chosen or no site is configured).
function inStreet(site) {
  if (!state.street) return true;
  return state.sites.some((s) => s.id === site && s.street === state.street);
}

// The sites on a plain SVG map (no tiles: it works offline), each coloured by its most severe
// open order, ringed red when a device there is offline.
function drawMap() {
  const ns = "http://www.w3.org/2000/svg", svg = $("map");
  const sites = state.sites.filter((s) => inStreet(s.id));
  svg.replaceChildren();
  const heading = svg.parentElement.querySelector("h2");
  if (heading) heading.hidden = !state.sites.length;
  svg.hidden = !state.sites.length;
  if (!sites.length) return;
  const lats = sites.map((s) => s.lat), lons = sites.map((s) => s.lon);
  const [la0, la1, lo0, lo1] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
  const x = (lon) => 30 + (lo1 > lo0 ? (lon - lo0) / (lo1 - lo0) : 0.5) * 340;
  const y = (lat) => 210 - (la1 > la0 ? (lat - la0) / (la1 - la0) : 0.5) * 180;
  for (const s of sites) {
    const worst = COLOURS.find((c) => state.orders.some((o) => o.site === s.id && o.colour === c));
    const offline = state.devices.some((d) => d.site === s.id && d.online === false);
    const dot = document.createElementNS(ns, "circle");
    dot.setAttribute("cx", x(s.lon).toFixed(1)); dot.setAttribute("cy", y(s.lat).toFixed(1)); dot.setAttribute("r", "8");
    dot.setAttribute("fill", worst ? getComputedStyle(document.documentElement).getPropertyValue("--" + worst) : "#5b6b7b");
    dot.setAttribute("data-site", s.id); dot.setAttribute("data-colour", worst || "none");
    if (offline) dot.setAttribute("class", "offline");
    const title = document.createElementNS(ns, "title");
    title.textContent = s.name + " (" + s.id + ") · " + s.street;
    dot.append(title);
    const label = document.createElementNS(ns, "text");
    // Labels of sites on the right-hand side go to the left of their dot (never cut off).
    const right = x(s.lon) > 250;
    label.setAttribute("x", (x(s.lon) + (right ? -11 : 11)).toFixed(1)); label.setAttribute("y", (y(s.lat) + 4).toFixed(1));
    if (right) label.setAttribute("text-anchor", "end");
    label.textContent = s.name || s.id;
    svg.append(dot, label);
  }
}

function streets() {
  const select = $("street");
  const names = [...new Set(state.sites.map((s) => s.street).filter(Boolean))].sort();
  select.hidden = !names.length;
  select.replaceChildren(el("option", { value: "" }, t("all_streets")), ...names.map((n) => el("option", { value: n }, n)));
  select.value = state.street;
}

// Lanes and cards, every second (countdowns): text updated in place, nothing rebuilt.
const heads = {};
const RANK = { red: 0, orange: 1, yellow: 2, blue: 3 };
const byColour = (a, b) => RANK[a.colour] - RANK[b.colour] || a.id - b.id;
const overdue = (o) => !!(o.due && (o.due.overdue.length || (o.due.next && o.due.at_ms < now())));

function render() {
  const seen = new Set();
  if (gs.view === "field") {
    // A grid worker: the orders dispatched to them (the API lists only those), most severe first.
    const mine = state.orders.slice().sort(byColour);
    place($("mine-list"), mine.map((o) => { seen.add(o.id); return card(o); }));
    $("mine-empty").hidden = mine.length > 0;
  } else if (gs.view === "wall") {
    const list = state.orders.filter((o) => inStreet(o.site) && (o.colour === "red" || overdue(o))).sort(byColour);
    place($("wall-list"), list.map((o) => { seen.add(o.id); return card(o); }));
    for (const c of COLOURS) setText($("w-" + c), String(state.orders.filter((o) => o.colour === c && inStreet(o.site)).length));
    setText($("wall-clock"), timeOf(now()) + " " + offsetOf(now()));
  }
  for (const c of gs.view === "desk" ? COLOURS : []) {
    const mine = state.orders.filter((o) => o.colour === c && inStreet(o.site) && (!state.incident || o.incident === state.incident));
    heads[c] = heads[c] || el("h3");
    setText(heads[c], t(c) + " (" + mine.length + ")");
    place($("lane-" + c), [heads[c], ...mine.map((o) => { seen.add(o.id); return card(o); })]);
    setText($("n-" + c), String(mine.length));
  }
  const resolved = gs.view === "desk" ? state.resolved.filter((o) => inStreet(o.site)).slice(0, 20) : [];
  place($("resolved"), resolved.map((o) => { seen.add(o.id); return card(o); }));
  for (const id of cards.keys()) if (!seen.has(id)) cards.delete(id);
  for (const td of document.querySelectorAll("#devices [data-seen]")) setText(td, ago(now() - Number(td.getAttribute("data-seen"))));
  setText($("clock"), timeOf(now()) + " " + offsetOf(now()));
  alarm();
}

// Operators' rota and dispatchable people (`GET /api/v1/duty`), re-read every minute.
async function readDuty() {
  if (!me || !(MAY[me.role] || []).includes("dispatch")) return;
  state.duty = await api("/api/v1/duty").catch(() => state.duty);
  drawRota();
}

// The rota (`[[duty]]`) of the chosen street, who is on duty now marked (operators only).
function drawRota() {
  const rota = (state.duty ? state.duty.rota : []).filter((r) => !state.street || r.street === state.street);
  $("rota-box").hidden = !rota.length;
  $("rota").replaceChildren(...rota.map((r) => el("li", { class: r.on_now ? "now" : "", "data-street": r.street },
    r.street + " · " + (r.hours || t("all_day")) + " · " + r.people.join("、") + (r.on_now ? " · " + t("on_duty") : ""))));
}

// Silences in force (`GET /api/v1/silences`): what each holds, until when, who made it and why.
// Operators and admins add and end them; only an admin may include red orders (the API says
// the same). Orders raised meanwhile still appear here; only their pages are held.
const MAY_SILENCE = ["operator", "admin", "machine"];
async function readSilences() {
  if (!me) return;
  const r = await api("/api/v1/silences").catch(() => null);
  if (!r) return;
  state.silences = r.silences.filter((x) => x.active).map((x) => x.silence);
  drawSilences();
}

function drawSilences() {
  const may = !!me && MAY_SILENCE.includes(me.role);
  const list = state.silences || [];
  $("silences-box").hidden = !may && !list.length;
  $("silence-form").hidden = !may;
  $("silence-red-label").hidden = !me || me.role !== "admin";
  $("silences").replaceChildren(...list.map((x) => {
    const what = x.matcher.field + "=" + x.matcher.value;
    const end = may ? el("button", { type: "button", "data-end": String(x.id), onclick: () => endSilence(x.id) }, t("silence_end")) : null;
    return el("li", { "data-silence": String(x.id), "data-match": what },
      what + (x.include_red ? " · " + t("include_red") : "") + " · " + t("until") + " " + dateTimeOf(x.ends_ms) + " · " + x.who + " · " + x.reason, end);
  }));
}

async function addSilence(ev) {
  ev.preventDefault();
  const hours = parseFloat($("silence-hours").value);
  const body = {
    match: $("silence-field").value + "=" + $("silence-value").value.trim(),
    until: new Date(now() + hours * 3600e3).toISOString(),
    reason: $("silence-reason").value.trim(),
    include_red: $("silence-red").checked,
  };
  try {
    await api("/api/v1/silences", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    $("silence-value").value = ""; $("silence-reason").value = ""; $("silence-red").checked = false;
    $("silence-error").textContent = "";
  } catch (e) { $("silence-error").textContent = t("could_not") + e.message; }
  readSilences();
}

async function endSilence(id) {
  try { await api("/api/v1/silences/" + id + "/expire", { method: "POST" }); $("silence-error").textContent = ""; }
  catch (e) { $("silence-error").textContent = t("could_not") + e.message; }
  readSilences();
}

// 一键预警 (`POST /api/v1/orders/{id}/warn`): after a confirmation naming the route; the server
// sends once per order (a second press is told it was sent) and audits who did it.
const MAY_WARN = ["operator", "machine"];
async function warnResidents(o, hazard, button) {
  if (!confirm(t("warn_confirm") + hazard.warning_route)) return;
  button.disabled = true;
  try {
    const r = await fetch("/api/v1/orders/" + o.id + "/warn", { method: "POST", credentials: "same-origin" });
    const body = await r.json().catch(() => ({}));
    if (r.status === 201 || r.status === 409 && body.warning) { button.textContent = t("warned") + " #" + body.warning; return; }
    alert(t("could_not") + (body.error || r.status));
  } catch (e) { alert(t("could_not") + e.message); }
  button.disabled = false;
}

// Incidents (`GET /api/v1/incidents`): orders with one cause (a street's power cut), counted;
// choosing one shows only its orders in the lanes, choosing it again shows all.
async function readIncidents() {
  if (!me || me.role === "field") return;
  const r = await api("/api/v1/incidents").catch(() => null);
  if (!r) return;
  state.incidents = r.incidents.filter((i) => i.open > 0 || i.id === state.incident);
  drawIncidents();
}

function drawIncidents() {
  const list = (state.incidents || []).filter((i) => !state.street || i.street === state.street);
  $("incidents-box").hidden = !list.length;
  $("incidents").replaceChildren(...list.map((i) => {
    const name = (i.mass_offline ? t("mass_offline") + " · " : "") + i.name;
    const line = "#" + i.id + " " + name + " · " + i.orders + " " + t("orders_n") + " (" + t("open_n") + " " + i.open +
      (i.red ? ", " + t("red") + " " + i.red : "") + ") · " + dateTimeOf(i.opened_ms);
    const pick = el("button", { type: "button", "data-incident": String(i.id), class: i.id === state.incident ? "chosen" : "",
      onclick: () => { state.incident = state.incident === i.id ? 0 : i.id; drawIncidents(); render(); } },
      state.incident === i.id ? t("show_all") : t("only_this"));
    return el("li", { "data-incident": String(i.id), "data-mass": String(!!i.mass_offline) }, line, pick);
  }));
}

// Firmware roll-outs (`GET /api/v1/rollouts`): the recent ones with their devices counted by
// state; admins pause, resume or cancel one (audited). Hidden while there are none.
async function readRollouts() {
  if (!me || me.role === "field") return;
  const r = await api("/api/v1/rollouts").catch(() => null);
  if (!r) return;
  const may = me.role === "admin" || me.role === "machine";
  const list = r.rollouts.filter((x) => x.rollout.status !== "cancelled").slice(0, 5);
  $("rollouts-box").hidden = !list.length;
  $("rollouts").replaceChildren(...list.map(({ rollout: x, devices, by_state: n }) => {
    const busy = n.offered + n.downloading + n.verifying + n.rebooting;
    const line = "#" + x.id + " " + x.firmware.board + " " + x.firmware.version + " · " + t("r_" + x.status) + " · " +
      t("wave") + " " + x.wave + "/" + x.waves.length + " · " + devices + " · " + t("o_confirmed") + " " + n.confirmed +
      ", " + t("o_busy") + " " + busy + ", " + t("o_failed") + " " + (n.failed + n.rolled_back) + ", " + t("o_pending") + " " + n.pending +
      (x.reason && x.status === "paused" ? " · " + x.reason : "");
    const act = (a) => el("button", { type: "button", "data-rollout-action": a, onclick: async () => {
      try { await api("/api/v1/rollouts/" + x.id + "/" + a, { method: "POST" }); } catch (e) { /* shown on the next read */ }
      readRollouts();
    } }, t("r_" + a));
    const buttons = !may ? [] : x.status === "active" ? [act("pause")] : x.status === "paused" ? [act("resume"), act("cancel")] : [];
    return el("li", { "data-rollout": String(x.id), "data-status": x.status }, line, ...buttons);
  }));
}

// The map and the devices' table: redrawn when new data arrives (no buttons there).
function drawData() {
  drawMap();
  drawRota();
  $("devices").replaceChildren(...state.devices.filter((d) => inStreet(d.site)).map((d) => {
    const series = Object.entries(d.series).map(([name, s]) => {
      const last = s.points.length ? s.points[s.points.length - 1][1] : null;
      return el("span", { class: "spark", title: name }, spark(s.points), " " + name.replace(/^(deform|hr):/, "") + " " + (last === null ? "" : (+last.toFixed(2))));
    });
    const status = d.online === false ? el("span", { class: "offline" }, " " + t("offline")) : null;
    return el("tr", { "data-device": d.site + "/" + d.device },
      el("td", {}, d.site + "/" + d.device, status), el("td", { class: "dim", "data-seen": String(d.last_seen_ms) }, ago(now() - d.last_seen_ms)), el("td", {}, ...series));
  }));
}

// Not acknowledged yet: raised, or dispatched and not confirmed by whoever got it.
const waiting = (o) => o.state === "raised" || o.state === "dispatched";

// The most severe colour with an order nobody has acknowledged yet.
function unacknowledged() {
  return COLOURS.find((c) => TONES[c] && state.orders.some((o) => o.colour === c && waiting(o))) || null;
}

// Whether sound can play now (browsers start audio only after a click on the page).
const audible = () => !!gs.audio && gs.audio.state === "running";

// The banner across the page while an order would sound (or a red one is open) and cannot; the
// mute button tells the real state (静音 / 取消静音 / 声音未开启).
function soundState() {
  const needed = !gs.muted && (gs.alarm || state.orders.some((o) => o.colour === "red"));
  $("sound-banner").hidden = !(needed && !audible());
  gs.banner = !$("sound-banner").hidden;
  $("mute").textContent = gs.muted ? t("unmute") : (audible() ? t("mute") : t("sound_off"));
  $("mute").classList.toggle("on", gs.muted);
  $("mute").classList.toggle("off", !gs.muted && !audible());
}

function beep(colour) {
  const ctx = gs.audio;
  if (!ctx || gs.muted) return;
  const tone = TONES[colour];
  for (const start of [0, 0.3]) {
    const osc = ctx.createOscillator(), gain = ctx.createGain();
    osc.frequency.value = tone.hz; osc.type = "square";
    gain.gain.setValueAtTime(0.15, ctx.currentTime + start);
    gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + start + 0.25);
    osc.connect(gain).connect(ctx.destination);
    osc.start(ctx.currentTime + start); osc.stop(ctx.currentTime + start + 0.25);
  }
  gs.beeps += 1;
}

// Sounds and flashes while an order waits for acknowledgement; a new red one is also a
// browser notification.
function alarm() {
  gs.alarm = unacknowledged();
  if (gs.alarm && audible() && !gs.muted && Date.now() - lastBeep >= TONES[gs.alarm].every) { lastBeep = Date.now(); beep(gs.alarm); }
  soundState();
  const reds = state.orders.filter((o) => o.colour === "red" && waiting(o));
  document.title = reds.length && Math.floor(Date.now() / 1000) % 2 ? t("alarm_title") + reds.length : t("console");
  for (const o of reds) {
    if (gs.notified.includes(o.id)) continue;
    gs.notified.push(o.id);
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification(t("red_order") + " #" + o.id, { body: titleOf(o) + " · " + summaryOf(o), tag: "gridsentry-" + o.id });
    }
  }
}

function translate() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.getAttribute("data-i18n"));
  for (const b of document.querySelectorAll(".lang")) b.textContent = t("lang");
  if (state.sites.length) streets();
  soundState();
  $("live").textContent = gs.live === undefined ? "" : (gs.live ? "● " + t("live") : "○ " + t("reconnecting"));
  $("who-am-i").textContent = me ? me.name + " · " + t(me.role) : "";
  if (!$("app").hidden) {
    drawData();
    drawSilences();
    drawIncidents();
    render();
    if (state.timeline) openTimeline(state.timeline, true);
  }
}

async function refresh() {
  try {
    const [open, resolved, devices] = await Promise.all([
      api("/api/v1/orders?open=true"), api("/api/v1/orders?state=resolved"), api("/api/v1/devices")]);
    state.skew = open.now_ms - Date.now();
    state.orders = open.orders; state.resolved = resolved.orders; state.devices = devices.devices;
    $("error").textContent = "";
    drawData();
    render();
    if (state.timeline) openTimeline(state.timeline, true);
  } catch (e) { if (e.message !== "unauthorised") console.warn("refresh failed", e); }
}

// Reads the pushed order transitions (`GET /api/v1/events`): each one re-reads the orders at
// once. On a broken stream it reconnects after 2 s (and re-reads, in case it missed some).
async function listen() {
  const mine = {};
  stream = mine;
  while (stream === mine) {
    try {
      const r = await fetch("/api/v1/events", { credentials: "same-origin" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      gs.live = true; translate();
      const reader = r.body.getReader();
      const text = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done || stream !== mine) break;
        buf += text.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const frame = buf.slice(0, cut); buf = buf.slice(cut + 2);
          if (/^event: (order|lagged)$/m.test(frame)) { gs.events += 1; refresh(); }
        }
      }
    } catch (e) { console.warn("event stream", e); }
    gs.live = false; translate();
    await new Promise((ok) => setTimeout(ok, 2000));
    refresh();
  }
}

// The dispatch picker: people on duty now for the order's street first, then the rest of its
// rota, then the other grid workers; a name can be typed; empty sends to nobody in particular.
// Resolves to the name ("" for nobody) or null when cancelled.
let pickerDone = null;
async function pick(o) {
  let duty = { rota: [], field: [] };
  try { duty = await api("/api/v1/duty"); } catch (e) { if (e.message === "unauthorised") return null; }
  const street = (state.sites.find((x) => x.id === o.site) || {}).street || "";
  const here = duty.rota.filter((r) => r.street === street);
  const onDuty = new Set(here.filter((r) => r.on_now).flatMap((r) => r.people));
  const rota = new Set(here.flatMap((r) => r.people));
  const local = duty.field.filter((f) => !f.streets.length || f.streets.includes(street)).map((f) => f.name);
  const names = [...new Set([...onDuty, ...rota, ...local, ...duty.field.map((f) => f.name)])];
  $("picker-title").textContent = t("dispatch_title") + " #" + o.id + " · " + titleOf(o);
  $("picker-list").replaceChildren(...names.map((n) => {
    const b = el("button", { type: "button", "data-person": n, class: onDuty.has(n) ? "on-duty" : "" },
      n + (onDuty.has(n) ? " · " + t("on_duty") : rota.has(n) ? " · " + t("off_hours") : ""));
    b.addEventListener("click", () => pickerDone(n));
    return b;
  }));
  $("picker-name").value = "";
  return new Promise((resolve) => {
    pickerDone = (v) => { pickerDone = null; $("picker").close(); resolve(v); };
    $("picker").showModal();
  });
}
$("picker-send").addEventListener("click", () => pickerDone && pickerDone($("picker-name").value.trim()));
$("picker-cancel").addEventListener("click", () => pickerDone && pickerDone(null));
$("picker").addEventListener("cancel", () => pickerDone && pickerDone(null));

async function act(o, action, button) {
  const id = o.id;
  // Resolving while the rule still sees the condition: say so first (it is raised again after
  // `[sla] reraise_s` if it goes on).
  if (action === "resolve" && o.active && !confirm(t("resolve_active"))) return;
  let why = "";
  if (action === "resolve" || action === "close") {
    const note = prompt(t("what_done"));
    if (note === null) return;
    why = note.trim();
    // A grid worker's 处置完毕 is the record that closes the loop: a note is required.
    if (!why && me && me.role === "field" && action === "resolve") { alert(t("note_required")); return; }
  }
  const body = { why };
  if (action === "dispatch") {
    const to = await pick(o);
    if (to === null) return;
    if (to) body.to = to;
  }
  button.disabled = true;
  try {
    await api("/api/v1/orders/" + id + "/" + action, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
  } catch (e) { alert(t("could_not") + t(action) + " #" + id + ": " + e.message); }
  await refresh();
}

async function openTimeline(id, quiet) {
  state.timeline = id;
  if (!quiet) gs.opened += 1;
  try {
    const r = await api("/api/v1/orders/" + id);
    $("timeline").hidden = false;
    $("timeline-title").textContent = t("order") + " #" + id + " · " + titleOf(r.order) + " · " + r.order.subject;
    $("timeline-events").replaceChildren(...r.events.map((e) => el("li", { "data-kind": e.kind, "data-who": e.who },
      timeOf(e.at_ms) + " " + t("ev_" + e.kind) + " → " + t(e.state) + " (" + t(e.colour) + ") " + t("by") + " " + whoOf(e.who) + (whyOf(e) ? "：" + whyOf(e) : ""))));
  } catch (e) { if (!quiet) alert(e.message); }
}

function logout(message) {
  me = null;
  clearInterval(timer);
  stream = null;
  $("app").hidden = true; $("login").hidden = false;
  $("error").textContent = message || "";
}

// Which page: a grid worker's own orders, the big screen (`/?wall`), or the operators' desk.
function chooseView() {
  gs.view = me && me.role === "field" ? "field" : (new URLSearchParams(location.search).has("wall") ? "wall" : "desk");
  document.body.classList.toggle("field", gs.view === "field");
  document.body.classList.toggle("wall", gs.view === "wall");
  $("mine").hidden = gs.view !== "field";
  $("wall").hidden = gs.view !== "wall";
  if (gs.view === "wall") $("wall-map").append($("map"));
}

async function start() {
  $("login").hidden = true; $("app").hidden = false;
  chooseView();
  translate();
  try { state.sites = (await api("/api/v1/sites")).sites; } catch (e) { state.sites = []; }
  streets();
  await refresh();
  listen();
  // Orders come pushed; the devices' charts are re-read every 10 s.
  timer = setInterval(refresh, 10000);
  setInterval(render, 1000);
  // The rota (who is on duty now) changes by the minute, not with every order event.
  readDuty();
  setInterval(readDuty, 60000);
  // Silences end by themselves: re-read every 30 s (and after each change made here).
  readSilences();
  setInterval(readSilences, 30000);
  readIncidents();
  setInterval(readIncidents, 10000);
  readRollouts();
  setInterval(readRollouts, 15000);
}

// Sound needs a user gesture to start: the login click (or any click later) provides it.
function startAudio() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  if (!gs.audio) gs.audio = new Ctx();
  if (gs.audio.state === "suspended") gs.audio.resume();
  if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
}
document.addEventListener("click", startAudio);

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = JSON.stringify({ name: $("name").value.trim(), password: $("password").value });
  $("password").value = "";
  const r = await fetch("/api/v1/login", { method: "POST", headers: { "Content-Type": "application/json" }, body, credentials: "same-origin" });
  if (r.ok) { me = await r.json(); $("error").textContent = ""; start(); }
  else $("error").textContent = r.status === 401 ? t("wrong_login") : ((await r.json().catch(() => ({}))).error || ("HTTP " + r.status));
});
$("logout").addEventListener("click", async () => {
  await fetch("/api/v1/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
  logout();
});
$("silence-form").addEventListener("submit", addSilence);
$("street").addEventListener("change", () => { state.street = $("street").value; drawData(); drawIncidents(); render(); });
$("mute").addEventListener("click", () => {
  // A click while sound is off turns it on (the document's click handler starts it) rather than
  // muting what cannot be heard.
  if (gs.muted || audible()) gs.muted = !gs.muted;
  translate();
});
$("sound-banner").addEventListener("click", () => { startAudio(); setTimeout(render, 100); });
for (const b of document.querySelectorAll(".lang")) {
  b.addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("gridsentry-lang", lang); translate(); });
}
translate();
// Still logged in from before (the session cookie)? Then straight in.
fetch("/api/v1/me", { credentials: "same-origin" }).then(async (r) => { if (r.ok) { me = await r.json(); start(); } }).catch(() => {});
