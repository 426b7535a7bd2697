// FinSentinel dashboard: draws the JSON of /api/* with the DOM and inline SVG.
// No charting library: the page must work offline with no CDN, and the project ships no JS build;
// two bar series and shaded windows are a few dozen lines. Text from the index is only ever set
// with textContent (news titles are untrusted), and links come from the server already checked
// to be http(s).
"use strict";

// live: the range is "the latest week", re-read every REFRESH_MS while the page is visible
const state = { start: null, end: null, scope: "overall", key: null, label: "Everything", live: true };
const REFRESH_MS = 60_000;
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c ?? ""));
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function link(title, url) {
  return url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, title) : el("span", {}, title);
}

const fmtTime = (iso) => iso.replace("T", " ").slice(0, 16) + " UTC";
const pct = (x) => (100 * x).toFixed(1) + "%";

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  return q.toString();
}

async function api(path, params) {
  const resp = await fetch(`/api/${path}?${query({ start: state.start, end: state.end, ...params })}`);
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? resp.statusText);
    throw new Error(`${path}: ${detail}`);
  }
  return body;
}

function showError(err) { $("status").textContent = String(err.message ?? err); }

function setRange(range) {
  state.start = range.start; state.end = range.end;
  $("bucket-note").textContent = `· bars of ${range.bucket_minutes} minutes`;
  if ([$("start"), $("end")].includes(document.activeElement)) return;  // a refresh leaves a date being typed
  $("start").value = range.start.slice(0, 10);
  $("end").value = new Date(Date.parse(range.end) - 1).toISOString().slice(0, 10);
}

function kpis(t) {
  const box = $("kpis");
  box.replaceChildren(
    ...[["items", t.items], ["negative", `${t.negative} (${pct(t.share)})`],
        ["positive", `${t.positive} (${pct(t.positive_share)})`], ["net sentiment", signed(t.net)],
        ["alerts", `${t.alerts} (${t.open_alerts} open)`]]
      .map(([name, value]) => el("div", { class: "kpi" }, el("b", {}, value), el("span", {}, name))));
}

let lastChart = null;  // drawn again at the new width when the window is resized

function chart(series, alerts, bucketMinutes) {
  const box = $("chart");
  lastChart = [series, alerts, bucketMinutes];
  if (!series.length) { box.replaceChildren(el("p", { class: "muted" }, "no buckets in this range")); return; }
  // one user unit per CSS pixel, so the stretched drawing does not stretch its text
  const W = Math.max(300, box.clientWidth || 1000), H = 220, left = 40, bottom = 20, top = 8;
  const max = Math.max(1, ...series.map((b) => b.total));
  const bw = (W - left) / series.length;
  const y = (v) => H - bottom - (v / max) * (H - bottom - top);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
  const t0 = Date.parse(series[0].start), step = bucketMinutes * 60e3;
  for (const a of alerts) {  // alert windows behind the bars
    const x0 = left + ((Date.parse(a.start) - t0) / step) * bw, x1 = left + ((Date.parse(a.end) - t0) / step) * bw;
    const x = Math.max(left, x0), w = Math.min(W, x1) - x;
    if (w > 0) root.append(svg("rect", { x, y: top, width: w, height: H - bottom - top, fill: "rgba(231,76,60,.12)", stroke: "#c0392b" }));
  }
  series.forEach((b, i) => {
    const x = left + i * bw, w = Math.max(1, bw - 1);
    const g = svg("g");
    const tip = svg("title");
    tip.textContent = `${fmtTime(b.start)}: ${b.total} items, ${b.negative} negative, ${b.positive} positive`;
    // stacked from the axis: negative, neutral, positive on top
    const stack = b.negative + (b.total - b.negative - b.positive);
    g.append(tip,
      svg("rect", { x, y: y(b.total), width: w, height: H - bottom - y(b.total), fill: "#27ae60" }),
      svg("rect", { x, y: y(stack), width: w, height: H - bottom - y(stack), fill: "#b8c4d0" }),
      svg("rect", { x, y: y(b.negative), width: w, height: H - bottom - y(b.negative), fill: "#c0392b" }));
    root.append(g);
  });
  const label = (x, yy, text, anchor = "start") => {
    const t = svg("text", { x, y: yy, "text-anchor": anchor }); t.textContent = text; root.append(t);
  };
  label(left - 4, top + 10, String(max), "end");
  label(left - 4, H - bottom, "0", "end");
  const ticks = Math.min(6, series.length);
  // bars of a day or more: the date with its year (a range of them can span years), else month, day and time
  const when = (iso) => (bucketMinutes >= 1440 ? iso.slice(0, 10) : iso.slice(5, 16).replace("T", " "));
  for (let k = 0; k < ticks; k++) {
    const i = Math.floor((k * (series.length - 1)) / Math.max(1, ticks - 1));
    label(left + i * bw, H - 5, when(series[i].start), k > 0 && k === ticks - 1 ? "end" : "start");
  }
  box.replaceChildren(root);
}

const signed = (x) => (x > 0 ? "+" : "") + x.toFixed(2);

function shareBar(r) {  // negative | neutral | positive, 90px in all; CSSOM, as the CSP allows no inline styles
  const part = (cls, share) => {
    const bar = el("span", { class: `bar ${cls}` });
    bar.style.width = `${Math.round(90 * share)}px`;
    return bar;
  };
  return el("span", { class: "bars", title: `negative ${pct(r.share)}, positive ${pct(r.positive_share)}` },
    part("neg", r.share), part("neu", Math.max(0, 1 - r.share - r.positive_share)), part("pos", r.positive_share));
}

function leaderTable(table, rows, scope) {
  const head = el("tr", {}, el("th", {}, scope === "entity" ? "company" : "topic"), el("th", { class: "num" }, "items"),
    el("th", { class: "num" }, "negative"), el("th", { class: "num" }, "positive"), el("th", {}, "sentiment"),
    el("th", { class: "num" }, "net"));
  const body = rows.map((r) => {
    const tr = el("tr", { class: "pick", title: "show only this" }, el("td", {}, r.name), el("td", { class: "num" }, r.total),
      el("td", { class: "num" }, r.negative), el("td", { class: "num" }, r.positive),
      el("td", {}, shareBar(r)), el("td", { class: "num" }, signed(r.net)));
    tr.addEventListener("click", () => select(scope, r.key, `${scope === "entity" ? "Company" : "Topic"}: ${r.name}`));
    return tr;
  });
  table.replaceChildren(head, ...(body.length ? body : [el("tr", {}, el("td", { class: "muted" }, "none in this range"))]));
}

function alertCards(alerts) {
  const box = $("alerts");
  if (!alerts.length) { box.replaceChildren(el("p", { class: "muted" }, "no alerts in this range")); return; }
  box.replaceChildren(...alerts.map((a) => el("div", { class: "alert-card" },
    el("span", { class: `badge ${a.severity}` }, a.severity), " ",
    el("b", {}, a.scope === "entity" ? a.entity_name : a.scope === "topic" ? `topic ${a.topic}` : "all news"),
    ` · ${fmtTime(a.start)} – ${fmtTime(a.end)} · ${a.observed} negative of ${a.total} against ${a.expected} expected` +
      ` · p=${a.p_value.toExponential(1)} · ${a.status}`,
    el("ul", {}, ...a.headlines.map((h) => el("li", {}, link(h.title, h.url), el("span", { class: "muted" }, ` ${h.source}`)))))));
}

function itemTable(items) {
  const head = el("tr", {}, el("th", {}, "published"), el("th", {}, "sentiment"), el("th", {}, "title"),
    el("th", {}, "source"), el("th", {}, "topic"), el("th", {}, "companies"));
  // the id on the row: what `finsentinel label ID --sentiment ...` needs to correct the item
  const rows = items.map((i) => el("tr", { title: `id ${i.id}` }, el("td", {}, fmtTime(i.published_at)),
    el("td", {}, el("span", { class: `badge ${i.sentiment}` }, i.sentiment)),
    el("td", {}, link(i.title, i.url), i.copies > 1 ? el("span", { class: "muted" }, ` ×${i.copies}`) : ""),
    el("td", {}, i.source), el("td", {}, i.topic), el("td", {}, i.entities.map((e) => e.name).join(", "))));
  $("items").replaceChildren(head, ...(rows.length ? rows : [el("tr", {}, el("td", { class: "muted" }, "no items"))]));
}

function scopeFilter() {
  return state.scope === "entity" ? { entity: state.key } : state.scope === "topic" ? { topic: state.key } : {};
}

async function loadItems() {
  const found = await api("items", { ...scopeFilter(), q: $("q").value, sentiment: $("sentiment").value, limit: 100 });
  itemTable(found.items);
}

async function loadScope() {
  $("scope-label").textContent = state.label;
  $("clear-scope").hidden = state.scope === "overall";
  const key = state.scope === "overall" ? null : state.key;
  // everything: every alert of the range, whatever its scope
  const alertScope = state.scope === "overall" ? {} : { scope: state.scope, key };
  const [s, a] = await Promise.all([api("series", { scope: state.scope, key }),
    api("alerts", { ...alertScope, limit: 50 })]);
  chart(s.series, a.alerts, s.range.bucket_minutes);
  alertCards(a.alerts);
  await loadItems();
}

async function select(scope, key, label) {
  Object.assign(state, { scope, key, label });
  // a link to this view: #entity=<id> or #topic=<name>
  history.replaceState(null, "", scope === "overall" ? location.pathname : `#${query({ [scope]: key })}`);
  try { $("status").textContent = ""; await loadScope(); } catch (err) { showError(err); }
}

// #entity=<id> or #topic=<name>: the view a link (or the address bar) asks for
function scopeFromHash() {
  const linked = new URLSearchParams(location.hash.slice(1));
  for (const scope of ["entity", "topic"]) {
    const key = linked.get(scope);
    if (key) {
      const row = (state.leaders?.[scope] ?? []).find((r) => r.key === key);
      Object.assign(state, { scope, key, label: `${scope === "entity" ? "Company" : "Topic"}: ${row ? row.name : key}` });
      return;
    }
  }
  Object.assign(state, { scope: "overall", key: null, label: "Everything" });
}

async function load() {
  $("status").textContent = "";
  try {
    const o = await api("overview", {});
    setRange(o.range);
    kpis(o.totals);
    if (!o.totals.items) $("status").textContent = "No items in this range. Run `finsentinel alert` (or `make demo`) to index some.";
    leaderTable($("companies"), o.companies, "entity");
    leaderTable($("topics"), o.topics, "topic");
    state.leaders = { entity: o.companies, topic: o.topics };
    scopeFromHash();
    await loadScope();
    $("updated").textContent = `${state.live ? "live, " : ""}read ${new Date().toLocaleTimeString()}`;
  } catch (err) { showError(err); }
}

document.addEventListener("DOMContentLoaded", () => {
  $("range").addEventListener("submit", (e) => {
    e.preventDefault();
    state.live = false;
    state.start = $("start").value || null;
    // the end date is inclusive on the page, exclusive in the API
    state.end = $("end").value ? new Date(Date.parse($("end").value) + 86400e3).toISOString().slice(0, 10) : null;
    load();
  });
  $("latest").addEventListener("click", () => { Object.assign(state, { start: null, end: null, live: true }); load(); });
  setInterval(() => {
    if (state.live && !document.hidden) { state.start = state.end = null; load(); }
  }, REFRESH_MS);
  $("clear-scope").addEventListener("click", () => select("overall", null, "Everything"));
  $("item-filter").addEventListener("submit", (e) => { e.preventDefault(); loadItems().catch(showError); });
  window.addEventListener("hashchange", () => { scopeFromHash(); loadScope().catch(showError); });
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => { if (lastChart) chart(...lastChart); }, 150);
  });
  load();
});
