// Ratewarden dashboard: polls the admin API every 2 s with same-origin
// relative fetches ("../zones" from /rate_limit/v1/ui/) and updates the page
// in place. No inline code (the page's CSP forbids it) and no HTML
// parsing: keys are client-controlled strings, so every value goes in as
// text (textContent, text nodes, attributes).
//
// Element contract, relied on by the browser tests; keep it stable:
//   table#zones tbody tr[data-zone=NAME]   one row per zone
//     td.rate       decisions/s between the last two polls; data-value is the
//                   number ("" until two polls have been seen)
//     td.denial     (denied + shadow_denied) / decisions over the same
//                   interval; data-value is the ratio, 0..1
//     td.effective  effective limit and mode; class "overridden" when a live
//                   override is in force
//   svg#chart       data-points = samples plotted (one per poll, 5 minutes);
//                   path.rate-line / path.denial-line [data-zone] per zone
//                   (drawn by chart.js)
//   #top-keys tr[data-zone][data-key-hash]   a zone's most-denied keys, each
//                   with button.reset-key (DELETE ../zones/Z/keys?key_hash=H)
//   #health[data-status]    ok | unavailable; tr[data-store] rows, td.breaker
//   #health-status          header badge, same data-status
//   #overrides tr[data-zone] in table#zone-overrides, with
//                   button.remove-zone-override; tr[data-zone][data-key-hash]
//                   in table#key-overrides, with button.remove-key-override
//   table#keys tr[data-key-id]   API keys (metadata only), each with
//                   button.revoke-key (POST ../keys/ID/revoke) while it
//                   works, or button.delete-key (DELETE ../keys/ID) once
//                   revoked or expired
//   form#reset-form: select#reset-zone, input#reset-key, button#reset-submit
//   #status[data-kind]      ok | error | info: the last action's result
//                   (for an error, the problem+json title: detail)
//   #poll-status[data-kind] info | error: polling state or its errors
//   #updated        time of the last complete poll
// Every destructive action asks window.confirm() first.

import { drawChart } from "./chart.js";

const POLL_MS = 2000;
const MIN_INTERVAL_MS = 1000;
const HISTORY_MS = 5 * 60 * 1000;
// GET /keys counts against the admin API's per-client limit (30/min).
const KEYS_POLL_MS = 30000;
const PALETTE_SIZE = 8;

const state = {
  prev: new Map(),    // zone -> {t, c}: the counts rates are measured from
  last: new Map(),    // zone -> {rate, denial}: the latest measurement
  history: [],        // [{t, zones: Map zone -> {rate, denial}}]
  colors: new Map(),  // zone -> palette index, stable for the page's life
  keysAt: -Infinity,  // when /keys was last fetched
  polling: false,
  again: false,       // an action asked for a refresh while polling
};

const $ = (sel) => document.querySelector(sel);

// el builds an element; attrs "class" and "text" are special, null skips.
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

// ---- admin API ----

// api sends method to ../path and reads the JSON body, if any. It never
// throws: a network failure is status 0.
async function api(method, path) {
  let resp;
  try {
    resp = await fetch("../" + path, { method, cache: "no-store", credentials: "same-origin" });
  } catch (err) {
    return { status: 0, ok: false, body: null, error: "admin API unreachable: " + err.message };
  }
  const text = await resp.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  return { status: resp.status, ok: resp.ok, body, error: resp.ok ? "" : problemText(resp.status, body, text) };
}

// problemText is what an error response says: a problem+json body's title
// and detail, Caddy's own {"error": ...}, or the status.
function problemText(status, body, text) {
  if (body && typeof body === "object") {
    if (body.title) return body.detail ? `${body.title}: ${body.detail}` : body.title;
    if (body.error) return `${status}: ${body.error}`;
  }
  return `HTTP ${status}` + (text ? `: ${text.slice(0, 200)}` : "");
}

const enc = encodeURIComponent;

// showStatus reports an action's result in #status (or, with id, another
// status element).
function showStatus(kind, text, id = "#status") {
  const s = $(id);
  s.textContent = text;
  s.dataset.kind = kind;
}

// ---- formatting ----

const pad = (n) => String(n).padStart(2, "0");

// fmtDate is a timestamp's local date, YYYY-MM-DD.
function fmtDate(iso) {
  return fmtTime(iso).slice(0, 10);
}

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtRate(r) {
  if (r === null) return "…";
  return r >= 100 ? Math.round(r).toLocaleString("en") : r.toFixed(1);
}

function fmtRatio(r) {
  return r === null ? "…" : (r * 100).toFixed(1) + "%";
}

function fmtLatency(ns) {
  if (!ns) return "—";
  return ns >= 1e6 ? (ns / 1e6).toFixed(1) + " ms" : (ns / 1e3).toFixed(0) + " µs";
}

const dash = (v) => (v === null || v === undefined || v === "" ? "—" : String(v));
const shortHash = (h) => (h.length > 12 ? h.slice(0, 12) + "…" : h);

function color(zone) {
  if (!state.colors.has(zone)) state.colors.set(zone, state.colors.size % PALETTE_SIZE);
  return "series-" + state.colors.get(zone);
}

// ---- tables ----

// syncRows makes tbody's rows match items, in order, reusing the row of an
// item already shown (found by key) so that its buttons stay the same
// elements across polls. render(tr, item) returns the cell specs.
function syncRows(tbody, items, keyOf, render) {
  const old = new Map();
  for (const tr of tbody.rows) old.set(tr.dataset.rowKey, tr);
  items.forEach((item, i) => {
    const key = keyOf(item);
    let tr = old.get(key);
    old.delete(key);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.rowKey = key;
    }
    setCells(tr, render(tr, item));
    if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
  });
  for (const tr of old.values()) tr.remove();
}

// A cell spec: {text, cls, title, value, kids: () => [nodes]}. kids are
// rebuilt only when text changes; so is a cell's button, whose text is
// then its signature (no text: built once).
function setCells(tr, specs) {
  while (tr.cells.length > specs.length) tr.deleteCell(-1);
  specs.forEach((s, i) => {
    const td = tr.cells[i] || tr.insertCell(-1);
    if (td.className !== (s.cls || "")) td.className = s.cls || "";
    setAttr(td, "title", s.title);
    setAttr(td, "data-value", s.value);
    const text = s.text === undefined ? "" : String(s.text);
    if (s.button) {
      if (td.dataset.sig !== text || !td.firstChild) {
        td.dataset.sig = text;
        td.replaceChildren(s.button());
      }
      return;
    }
    if (td.dataset.sig === text && td.firstChild) return;
    td.dataset.sig = text;
    if (s.kids) td.replaceChildren(...s.kids().filter((k) => k !== null && k !== undefined));
    else td.textContent = text;
  });
}

function setAttr(e, name, v) {
  if (v === undefined || v === null) e.removeAttribute(name);
  else if (e.getAttribute(name) !== String(v)) e.setAttribute(name, String(v));
}

function setEmpty(id, empty) {
  $("#" + id).hidden = !empty;
}

function badge(text, cls) {
  return el("span", { class: "badge " + (cls || ""), text });
}

function actionButton(cls, label, onClick) {
  return () => {
    const b = el("button", { type: "button", class: cls, text: label });
    b.addEventListener("click", onClick);
    return b;
  };
}

// ---- zones ----

function renderZones(zones, t) {
  const sample = { t, zones: new Map() };
  for (const z of zones) {
    const c = z.counts || { allowed: 0, denied: 0, shadow_denied: 0 };
    const p = state.prev.get(z.name);
    z.counts = c;
    // A poll right after another (an action's refresh) measures nothing:
    // over so short an interval the rate is mostly noise.
    if (p && t - p.t < MIN_INTERVAL_MS) {
      Object.assign(z, state.last.get(z.name) || { rate: null, denial: null });
      continue;
    }
    let m = { rate: null, denial: null };
    const da = p && c.allowed - p.c.allowed, dd = p && c.denied - p.c.denied, ds = p && c.shadow_denied - p.c.shadow_denied;
    if (p && da >= 0 && dd >= 0 && ds >= 0) { // a decrease is a restart: start over
      const total = da + dd + ds;
      m = { rate: total / ((t - p.t) / 1000), denial: total > 0 ? (dd + ds) / total : 0, shadowOnly: dd === 0 && ds > 0 };
      sample.zones.set(z.name, m);
    }
    state.prev.set(z.name, { t, c });
    state.last.set(z.name, m);
    Object.assign(z, m);
  }
  if (sample.zones.size > 0) state.history.push(sample);
  while (state.history.length && state.history[0].t < t - HISTORY_MS) state.history.shift();

  syncRows($("#zones tbody"), zones, (z) => z.name, (tr, z) => {
    tr.dataset.zone = z.name;
    const eff = z.effective || {};
    const overridden = !!z.override || eff.limit !== z.limit || eff.mode !== z.mode || eff.enabled === false;
    const configured = `${z.limit} / ${z.window || "concurrent"}` + (z.burst ? ` (burst ${z.burst})` : "");
    const effText = `${eff.limit} · ${eff.mode}` + (eff.enabled === false ? " · disabled" : "");
    const o = z.override;
    return [
      { text: z.name, cls: "name", kids: () => [el("span", { class: "swatch " + color(z.name) }), z.name] },
      { text: (z.servers || []).join(", ") || "—" },
      { text: z.algorithm },
      { text: configured + "|" + z.mode, kids: () => [configured, " ", z.mode === "shadow" ? badge("shadow", "warn") : null] },
      {
        text: effText, cls: "effective" + (overridden ? " overridden" : ""),
        title: o ? `live override, updated ${fmtTime(o.updated_at)}` + (o.expires_at ? `, expires ${fmtTime(o.expires_at)}` : "") : undefined,
      },
      { text: fmtRate(z.rate), cls: "num rate", value: z.rate === null ? "" : z.rate.toFixed(3) },
      {
        text: fmtRatio(z.denial), cls: "num denial" + (z.shadowOnly ? " shadow" : z.denial > 0 ? " hot" : ""),
        value: z.denial === null ? "" : z.denial.toFixed(4),
        title: `since start: ${z.counts.allowed} allowed, ${z.counts.denied} denied, ${z.counts.shadow_denied} shadow-denied`,
      },
      { text: z.key_overrides, cls: "num key-overrides" },
    ];
  });
  setEmpty("zones-empty", zones.length === 0);
  syncZoneSelect(zones);
  drawChart({ chart: $("#chart"), legend: $("#chart-legend"), history: state.history, colorOf: color, now: t, spanMs: HISTORY_MS });
}

function syncZoneSelect(zones) {
  const sel = $("#reset-zone");
  const names = zones.map((z) => z.name);
  const have = Array.from(sel.options, (o) => o.value);
  if (have.join("\n") === names.join("\n")) return;
  const keep = sel.value;
  sel.replaceChildren(...names.map((n) => el("option", { value: n, text: n })));
  if (names.includes(keep)) sel.value = keep;
}

// ---- top keys ----

function renderTopKeys(results) {
  const box = $("#top-keys-zones");
  const old = new Map(Array.from(box.children, (c) => [c.dataset.zone, c]));
  results.forEach(({ zone, top, error }, i) => {
    let card = old.get(zone);
    old.delete(zone);
    if (!card) {
      card = el("div", { class: "top-zone", "data-zone": zone },
        el("h3", {}, el("span", { class: "swatch " + color(zone) }), zone, el("span", { class: "hint total" })),
        el("table", { class: "top-table" }, el("thead", {}, el("tr", {},
          el("th", { text: "Key" }), el("th", { text: "Hash" }), el("th", { class: "num", text: "Denials" }),
          el("th", { class: "num", text: "Share" }), el("th"))), el("tbody")),
        el("p", { class: "empty", text: "No denials yet." }));
    }
    if (box.children[i] !== card) box.insertBefore(card, box.children[i] || null);
    const keys = top ? top.keys || [] : [];
    const total = top ? top.total : 0;
    card.querySelector(".total").textContent = error ? ` — ${error}` : ` — ${total.toLocaleString("en")} denials`;
    card.querySelector("p.empty").hidden = keys.length > 0 || !!error;
    card.querySelector("table").hidden = keys.length === 0;
    syncRows(card.querySelector("tbody"), keys, (k) => k.key_hash, (tr, k) => {
      tr.dataset.zone = zone;
      tr.dataset.keyHash = k.key_hash;
      const label = k.key ? k.key : k.api_key ? "API key " + k.api_key : "";
      return [
        { text: label || "—", cls: "key", kids: () => [label ? el("code", { text: label }) : "—"] },
        { text: shortHash(k.key_hash), cls: "hash", title: k.key_hash },
        { text: k.count.toLocaleString("en") + (k.error ? ` ±${k.error}` : ""), cls: "num count" },
        { text: total ? ((k.count / total) * 100).toFixed(1) + "%" : "—", cls: "num" },
        { button: actionButton("reset-key danger small", "reset", () => resetByHash(zone, k.key_hash, label)) },
      ];
    });
  });
  for (const c of old.values()) c.remove();
  setEmpty("top-keys-empty", results.length === 0);
}

// ---- health ----

function renderHealth(h) {
  const status = h.status || "unavailable";
  $("#health").dataset.status = status;
  const b = $("#health-status");
  b.dataset.status = status;
  b.textContent = status === "ok" ? "stores: ok" : "stores: unavailable";
  const stores = Object.values(h.stores || {}).sort((a, c) => a.name.localeCompare(c.name));
  syncRows($("#stores tbody"), stores, (s) => s.name, (tr, s) => {
    tr.dataset.store = s.name;
    const details = [];
    if (s.topology) details.push(s.topology);
    if (s.keys !== undefined && s.keys !== null) details.push(`${s.keys} keys`);
    if (s.pool) details.push(`conns ${s.pool.total_conns} (${s.pool.idle_conns} idle)`);
    if (s.scripts) details.push(`scripts ${s.scripts}`);
    if (s.zones && s.zones.length) details.push("zones: " + s.zones.join(", "));
    if (!s.needed) details.push("unused");
    const breaker = s.breaker || "—";
    return [
      { text: s.name, cls: "name" },
      { text: s.backend },
      { text: s.ok ? "ok" : "failing", kids: () => [badge(s.ok ? "ok" : "failing", s.ok ? "good" : "bad")], title: s.error || undefined },
      { text: breaker, cls: "breaker", kids: () => [s.breaker ? badge(breaker, "breaker-" + breaker) : "—"] },
      { text: dash(s.on_failure) },
      { text: fmtLatency(s.latency_ns), cls: "num" },
      { text: details.join(" · ") + (s.error ? ` · ${s.error}` : ""), cls: s.error ? "details bad-text" : "details" },
    ];
  });
}

// ---- overrides ----

function renderOverrides(o) {
  const zs = o.zone_overrides || [], ks = o.key_overrides || [];
  syncRows($("#zone-overrides tbody"), zs, (z) => z.zone, (tr, z) => {
    tr.dataset.zone = z.zone;
    return [
      { text: z.zone, cls: "name" },
      { text: dash(z.limit), cls: "num" },
      { text: dash(z.burst), cls: "num" },
      { text: dash(z.mode) },
      { text: z.enabled === undefined ? "—" : z.enabled ? "yes" : "no" },
      { text: z.expires_at ? fmtTime(z.expires_at) : "never" },
      { button: actionButton("remove-zone-override danger small", "remove", () => removeZoneOverride(z.zone)) },
    ];
  });
  syncRows($("#key-overrides tbody"), ks, (k) => k.zone + "\n" + k.key_hash, (tr, k) => {
    tr.dataset.zone = k.zone;
    tr.dataset.keyHash = k.key_hash;
    const limit = k.limit !== undefined ? String(k.limit) : k.multiplier !== undefined ? `×${k.multiplier}` : "—";
    return [
      { text: k.zone, cls: "name" },
      { text: shortHash(k.key_hash), cls: "hash", title: k.key_hash },
      { text: limit, cls: "num" },
      { text: dash(k.burst), cls: "num" },
      { text: k.expires_at ? fmtTime(k.expires_at) : "never" },
      { button: actionButton("remove-key-override danger small", "remove", () => removeKeyOverride(k.zone, k.key_hash)) },
    ];
  });
  setEmpty("zone-overrides-empty", zs.length === 0);
  setEmpty("key-overrides-empty", ks.length === 0);
}

// ---- API keys ----

function renderKeys(keys) {
  syncRows($("#keys tbody"), keys, (k) => k.id, (tr, k) => {
    tr.dataset.keyId = k.id;
    const statusCls = k.status === "active" ? "good" : k.status === "revoked" ? "bad" : "warn";
    return [
      { text: k.id, cls: "hash" },
      { text: k.name, cls: "name" },
      { text: dash(k.owner) },
      { text: dash(k.tier) },
      { text: k.status + (k.grace_until ? " (grace)" : ""), kids: () => [badge(k.status, statusCls), k.grace_until ? " grace" : null] },
      { text: fmtDate(k.created_at), title: fmtTime(k.created_at) },
      { text: k.expires_at ? fmtDate(k.expires_at) : "never", title: k.expires_at ? fmtTime(k.expires_at) : undefined },
      k.status === "active"
        ? { text: "revoke", button: actionButton("revoke-key danger small", "revoke", () => revokeKey(k)) }
        : { text: "delete", button: actionButton("delete-key danger small", "delete", () => deleteKey(k)) },
    ];
  });
  setEmpty("keys-empty", keys.length === 0);
}

// ---- polling ----

async function poll() {
  if (state.polling) {
    state.again = true;
    return;
  }
  state.polling = true;
  try {
    const errors = await pollOnce();
    if (errors.length) showStatus("error", errors.join(" · "), "#poll-status");
    else showStatus("info", "Live: refreshing every 2 s.", "#poll-status");
  } finally {
    state.polling = false;
  }
  if (state.again) {
    state.again = false;
    await poll();
  }
}

// pollOnce fetches and renders everything, returning what failed.
async function pollOnce() {
  const errors = [];
  const fetchKeys = performance.now() - state.keysAt >= KEYS_POLL_MS;
  const [zones, health, overrides, keys] = await Promise.all([
    api("GET", "zones"), api("GET", "health"), api("GET", "overrides"),
    fetchKeys ? api("GET", "keys") : null,
  ]);
  const t = performance.now();
  if (zones.ok && Array.isArray(zones.body)) {
    renderZones(zones.body, t);
    const tops = await Promise.all(zones.body.map(async (z) => {
      const r = await api("GET", `zones/${enc(z.name)}/top?n=10`);
      if (!r.ok) errors.push(`top keys of ${z.name}: ${r.error}`);
      return { zone: z.name, top: r.ok ? r.body : null, error: r.ok ? "" : r.error };
    }));
    renderTopKeys(tops);
  } else {
    errors.push("zones: " + (zones.error || "unexpected response"));
  }
  // 503 with a Health body is an answer, not a failure.
  if (health.body && health.body.stores) renderHealth(health.body);
  else errors.push("health: " + health.error);
  if (overrides.ok && overrides.body) renderOverrides(overrides.body);
  else errors.push("overrides: " + overrides.error);
  if (keys) {
    if (keys.ok && Array.isArray(keys.body)) {
      renderKeys(keys.body);
      state.keysAt = t;
    } else {
      errors.push("API keys: " + keys.error);
      state.keysAt = t; // retry at the next slot, not at every poll
    }
  }
  if (!errors.length) {
    const u = $("#updated");
    u.textContent = fmtTime(new Date().toISOString());
    u.dateTime = new Date().toISOString();
  }
  return errors;
}

// ---- actions ----

// act confirms, sends, reports and refreshes.
async function act(question, method, path, done) {
  if (!window.confirm(question)) {
    showStatus("info", "Cancelled.");
    return;
  }
  const r = await api(method, path);
  if (r.ok) showStatus("ok", done(r.body));
  else showStatus("error", r.error);
  await poll();
}

function stateText(st) {
  return st && st.limit !== undefined ? ` (it had ${st.remaining} of ${st.limit} left)` : "";
}

function resetByHash(zone, hash, label) {
  const what = label ? `key ${label}` : `key ${shortHash(hash)}`;
  return act(`Reset ${what} in zone "${zone}"?\n\nIts counters are forgotten: it gets its full limit back.`,
    "DELETE", `zones/${enc(zone)}/keys?key_hash=${enc(hash)}`,
    (st) => `Reset ${what} in zone ${zone}${stateText(st)}.`);
}

function removeZoneOverride(zone) {
  return act(`Remove the live override of zone "${zone}"?\n\nThe zone goes back to its configured policy.`,
    "DELETE", `zones/${enc(zone)}/override`, () => `Removed the override of zone ${zone}.`);
}

function removeKeyOverride(zone, hash) {
  return act(`Remove the override of key ${shortHash(hash)} in zone "${zone}"?`,
    "DELETE", `zones/${enc(zone)}/keys/override?key_hash=${enc(hash)}`,
    () => `Removed the override of key ${shortHash(hash)} in zone ${zone}.`);
}

// keyChanged makes the next poll fetch the keys again, and says what
// happened.
function keyChanged(text) {
  state.keysAt = -Infinity;
  return text;
}

function revokeKey(k) {
  return act(`Revoke API key ${k.id} ("${k.name}")?\n\nEvery secret of it stops working at once. This cannot be undone.`,
    "POST", `keys/${enc(k.id)}/revoke`, () => keyChanged(`Revoked API key ${k.id} (${k.name}).`));
}

function deleteKey(k) {
  return act(`Delete API key ${k.id} ("${k.name}") for good?\n\nIt is ${k.status}; it will no longer be listed or exported.`,
    "DELETE", `keys/${enc(k.id)}`, () => keyChanged(`Deleted API key ${k.id} (${k.name}).`));
}

$("#reset-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const zone = $("#reset-zone").value, key = $("#reset-key").value;
  if (!zone || !key) return;
  act(`Reset key "${key}" in zone "${zone}"?\n\nIts counters are forgotten: it gets its full limit back.`,
    "DELETE", `zones/${enc(zone)}/keys?key=${enc(key)}`,
    (st) => {
      $("#reset-key").value = "";
      return `Reset key "${key}" in zone ${zone}${stateText(st)}.`;
    });
});

poll();
setInterval(poll, POLL_MS);
