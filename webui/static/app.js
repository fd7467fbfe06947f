"use strict";
// hostmesh dashboard: reads the same public API as meshctl. A blocking read
// of /v1/status (?index=&wait=) returns as soon as the mesh's state moves;
// the page then re-reads the listings and redraws what changed. No
// framework, no build step, nothing loaded from elsewhere.

// ---------- small helpers ----------

const $ = (sel, root = document) => root.querySelector(sel);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// el builds an element; strings become text nodes (never HTML), so names
// read from hypervisors cannot inject markup.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function gib(mib) {
  return (mib / 1024).toFixed(1) + " GiB";
}

function mib(bytes) {
  const m = bytes / (1 << 20);
  return m >= 10240 ? (m / 1024).toFixed(1) + " GiB" : m.toFixed(0) + " MiB";
}

function dur(ms) {
  if (ms === undefined || ms === null || ms < 0) return "—";
  if (ms < 1000) return Math.round(ms) + " ms";
  const s = ms / 1000;
  if (s < 120) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60);
  if (m < 120) return m + " min " + Math.round(s - m * 60) + " s";
  return Math.floor(m / 60) + " h " + (m % 60) + " min";
}

function when(iso) {
  const t = Date.parse(iso);
  return !iso || isNaN(t) || t <= 0 ? null : t;
}

function ago(iso) {
  const t = when(iso);
  return t === null ? "—" : dur(Date.now() - t) + " ago";
}

const stateClass = {
  Up: "ok", PreparingForMaintenance: "warn", Maintenance: "info", NonOperational: "bad", Down: "bad", Left: "",
  running: "ok", paused: "warn", shutoff: "", unknown: "bad",
  Queued: "info", Running: "info", Succeeded: "ok", Failed: "bad", Cancelled: "warn",
  active: "info", done: "ok", stuck: "bad", cancelled: "warn",
};

function badge(text, title) {
  return el("span", { class: "badge " + (stateClass[text] || ""), title }, text);
}

// ---------- the API ----------

let token = localStorage.getItem("hostmesh.token") || "";

class ApiError extends Error {
  constructor(status, body, text) {
    super((body && body.error) || `${status}: ${text || "no answer"}`);
    this.status = status;
    this.kind = body && body.kind;
    this.checks = (body && body.checks) || [];
  }
}

async function api(method, path, body, signal) {
  const headers = {};
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
  });
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (_) {
      data = null;
    }
  }
  if (!resp.ok) throw new ApiError(resp.status, data, text);
  return { data, index: Number(resp.headers.get("X-Raft-Index") || 0) };
}

// ---------- live state ----------

const view = {
  status: null,
  hosts: [],
  vms: [],
  active: [], // Queued and Running migrations
  recent: [], // the latest migrations, any state
  drains: [],
  clusters: {},
};

let index = 0;
let loopAbort = null;

function setConn(state, title) {
  const c = $("#conn");
  c.className = "conn " + (state === "live" ? "live" : state === "down" ? "down" : "");
  c.textContent = state === "live" ? "live" : state === "down" ? "disconnected" : state;
  c.title = title || "";
}

async function refresh(signal) {
  const [hosts, vms, active, recent, drains] = await Promise.all([
    api("GET", "/v1/hosts", undefined, signal),
    api("GET", "/v1/vms", undefined, signal),
    api("GET", "/v1/migrations?state=Queued,Running", undefined, signal),
    api("GET", "/v1/migrations?limit=20", undefined, signal),
    api("GET", "/v1/drains", undefined, signal),
  ]);
  view.hosts = hosts.data || [];
  view.vms = vms.data || [];
  view.active = active.data || [];
  view.recent = recent.data || [];
  view.drains = drains.data || [];
  const names = [...new Set(view.hosts.map((h) => h.cluster))];
  const cls = await Promise.all(
    names.map((n) => api("GET", "/v1/clusters/" + encodeURIComponent(n), undefined, signal)),
  );
  view.clusters = {};
  names.forEach((n, i) => (view.clusters[n] = cls[i].data));
  render();
}

// liveLoop waits on the mesh's state and redraws after each change, at
// most four times a second.
async function liveLoop() {
  let backoff = 500;
  let last = 0;
  for (;;) {
    const gap = 250 - (Date.now() - last);
    if (gap > 0) await sleep(gap);
    last = Date.now();
    loopAbort = new AbortController();
    try {
      const q = index ? `?index=${index}&wait=30s` : "";
      const r = await api("GET", "/v1/status" + q, undefined, loopAbort.signal);
      view.status = r.data;
      await refresh(loopAbort.signal);
      index = r.index;
      setConn("live", "following Raft index " + index);
      backoff = 500;
    } catch (e) {
      if (e.name === "AbortError") {
        index = 0;
        continue;
      }
      if (e.status === 401 || e.status === 403) {
        setConn("down", e.message);
        $("#summary").textContent = "access refused: enter a token (" + e.message + ")";
      } else {
        setConn("down", e.message);
      }
      index = 0;
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 5000);
    }
  }
}

// ---------- rendering ----------

// drawn remembers what each section last showed, so an unchanged section
// keeps its DOM (and the button under the pointer).
const drawn = {};

function changed(key, value) {
  const s = JSON.stringify(value);
  if (drawn[key] === s) return false;
  drawn[key] = s;
  return true;
}

function render() {
  renderSummary();
  renderAlarms();
  renderHosts();
  renderRunning();
  renderQueue();
  renderRecent();
  renderDrains();
  renderVMs();
}

function renderSummary() {
  const st = view.status;
  if (!st) return;
  const parts = [
    "leader " + (st.leader || "none"),
    st.hosts + " hosts",
    st.vms + " VMs",
    st.running + " running",
    st.queued + " queued",
    "served by " + st.self,
  ];
  $("#summary").textContent = parts.join(" · ");
}

// renderAlarms shows what the mesh cannot resolve alone, above all else:
// a VM running on two hosts (split brain) is not moved until one copy stops.
function renderAlarms() {
  const alarms = view.vms.filter((v) => v.alarm).map((v) => v.alarm);
  if (!changed("alarms", alarms)) return;
  const box = $("#alarms");
  box.hidden = alarms.length === 0;
  box.replaceChildren(
    el("h2", {}, alarms.length === 1 ? "1 alarm" : alarms.length + " alarms"),
    el("ul", {}, alarms.map((a) =>
      el("li", { dataset: { alarm: a.kind, vm: a.vm } },
        el("b", {}, a.kind), ` since ${ago(a.since)}: `, a.message || `${a.vm} runs on ${(a.hosts || []).join(" and ")}`))),
  );
}

function slotUse() {
  const out = {};
  const inc = {};
  for (const m of view.active) {
    if (m.state !== "Running") continue;
    out[m.source] = (out[m.source] || 0) + 1;
    inc[m.dest] = (inc[m.dest] || 0) + 1;
  }
  return { out, inc };
}

function activeDrain(host) {
  return view.drains.find((d) => d.host === host && d.state === "active");
}

function renderHosts() {
  const slots = slotUse();
  const rows = view.hosts.map((h) => {
    const cl = view.clusters[h.cluster] || {};
    return { h, out: slots.out[h.name] || 0, inc: slots.inc[h.name] || 0, cl, drain: !!activeDrain(h.name) };
  });
  if (!changed("hosts", rows)) return;
  const tbody = $("#hosts-table tbody");
  tbody.replaceChildren(
    ...rows.map(({ h, out, inc, cl, drain }) => {
      const memUsed = h.mem_total_mib - h.mem_free_mib;
      const cpuUsed = h.cpus - h.cpus_free;
      return el(
        "tr",
        { dataset: { host: h.name, state: h.state } },
        el("td", {}, el("b", {}, h.name), h.raft_role === "leader" ? el("span", { class: "badge info leader" }, "leader") : el("span", { class: "muted leader" }, h.raft_role)),
        el("td", {}, badge(h.state, h.state_reason), h.state_reason ? el("div", { class: "muted" }, h.state_reason) : null),
        el("td", {}, el("div", { class: "cap" },
          el("meter", { min: 0, max: h.mem_total_mib || 1, value: memUsed, high: (h.mem_total_mib || 1) * 0.9 }),
          `${gib(memUsed)} / ${gib(h.mem_total_mib)}`)),
        el("td", {}, el("div", { class: "cap" },
          el("meter", { min: 0, max: h.cpus || 1, value: cpuUsed, high: (h.cpus || 1) * 0.9 }),
          `${cpuUsed} / ${h.cpus}`)),
        el("td", { class: "num" }, h.vms),
        el("td", {}, `${out}/${cl.max_outgoing ?? "?"} · ${inc}/${cl.max_incoming ?? "?"}`),
        el("td", {}, hostActions(h, drain)),
      );
    }),
  );
}

function hostActions(h, drain) {
  const out = [];
  if (h.state === "Up" || h.state === "NonOperational") {
    out.push(armed("Drain", "Confirm drain of " + h.name, () => act("POST", `/v1/hosts/${enc(h.name)}/drain`, {}, `draining ${h.name}`), "drain"));
  }
  if (drain) {
    out.push(armed("Cancel drain", "Confirm cancel", () => act("POST", `/v1/hosts/${enc(h.name)}/drain/cancel`, undefined, `drain of ${h.name} cancelled`), "drain-cancel"));
  }
  if (h.state === "Maintenance" || h.state === "PreparingForMaintenance" || h.state === "NonOperational") {
    out.push(el("button", { type: "button", dataset: { action: "activate" }, onclick: () => act("POST", `/v1/hosts/${enc(h.name)}/activate`, {}, `${h.name} activated`) }, "Activate"));
    out.push(el("button", { type: "button", dataset: { action: "activate-return" }, title: "activate and bring back the VMs its drain moved away", onclick: () => act("POST", `/v1/hosts/${enc(h.name)}/activate`, { return: true }, `${h.name} activated; its VMs come back`) }, "Activate + return VMs"));
  }
  return out;
}

const enc = encodeURIComponent;

// armed is a button that asks for a second click before acting: no modal
// confirm() for a drain, and no accidental one either.
function armed(label, confirmLabel, action, name) {
  const b = el("button", { type: "button", class: "danger", dataset: { action: name } }, label);
  let timer = null;
  b.addEventListener("click", () => {
    if (!timer) {
      b.textContent = confirmLabel;
      timer = setTimeout(() => {
        b.textContent = label;
        timer = null;
      }, 5000);
      return;
    }
    clearTimeout(timer);
    timer = null;
    b.textContent = label;
    action();
  });
  return b;
}

async function act(method, path, body, okText) {
  try {
    const r = await api(method, path, body);
    const ids = r.data && r.data.migrations && r.data.migrations.length ? ": " + r.data.migrations.join(", ") : "";
    toast(okText + ids);
  } catch (e) {
    toast(e.message, true);
  }
}

let toastTimer = null;
function toast(text, bad) {
  const t = $("#toast");
  t.textContent = text;
  t.className = bad ? "bad" : "";
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), bad ? 10000 : 5000);
}

// Running migrations are updated in place (keyed by ID): their progress
// moves several times a second and their Cancel button must stay put.
const cards = new Map();

function renderRunning() {
  const running = view.active.filter((m) => m.state === "Running");
  const box = $("#running");
  const seen = new Set();
  for (const m of running) {
    seen.add(m.id);
    let c = cards.get(m.id);
    if (!c) {
      c = newCard(m);
      cards.set(m.id, c);
    }
    updateCard(c, m);
  }
  for (const [id, c] of cards) {
    if (!seen.has(id)) {
      c.root.remove();
      cards.delete(id);
    }
  }
  const order = running.map((m) => cards.get(m.id).root);
  const empty = running.length === 0 ? [el("p", { class: "empty" }, "none")] : [];
  const current = [...box.children];
  const want = order.length ? order : empty;
  if (current.length !== want.length || current.some((n, i) => n !== want[i])) box.replaceChildren(...want);
}

function newCard(m) {
  const c = {};
  c.what = el("span", { class: "what" });
  c.route = el("span");
  c.policy = el("span", { class: "badge" });
  c.cancel = el("button", { type: "button", class: "danger", dataset: { action: "cancel" }, onclick: () => act("POST", `/v1/migrations/${enc(m.id)}/cancel`, undefined, `cancel of ${m.id} asked`) }, "Cancel");
  c.bar = el("progress", { max: 100, value: 0 });
  c.percent = el("b");
  c.rate = el("span");
  c.remaining = el("span");
  c.iteration = el("span");
  c.downtime = el("span");
  c.elapsed = el("span");
  c.extra = el("span");
  c.root = el(
    "div",
    { class: "mig", dataset: { migration: m.id } },
    el("div", { class: "head" }, c.what, c.route, c.policy, c.cancel),
    c.bar,
    el("div", { class: "figures" }, c.percent, c.rate, c.remaining, c.iteration, c.downtime, c.elapsed, c.extra),
  );
  return c;
}

function updateCard(c, m) {
  const p = m.progress || {};
  const pct = Math.max(0, Math.min(100, p.percent || 0));
  c.what.textContent = `${m.id} ${m.vm}`;
  c.route.textContent = `${m.source} → ${m.dest}${m.attempt > 1 ? " (attempt " + m.attempt + ")" : ""}`;
  c.policy.textContent = m.policy + (m.granted_mib ? ` · ${m.granted_mib} MiB/s cap` : "");
  c.cancel.disabled = !!m.cancel_requested;
  c.cancel.textContent = m.cancel_requested ? "cancelling…" : "Cancel";
  c.bar.value = pct;
  c.root.dataset.percent = pct.toFixed(1);
  c.percent.textContent = pct.toFixed(0) + "%";
  c.rate.textContent = `${(p.mib_per_s || 0).toFixed(1)} MiB/s`;
  c.remaining.textContent = `remaining ${mib(p.remaining_bytes || 0)} of ${mib(p.total_bytes || 0)}`;
  c.iteration.textContent = `pass ${p.iteration || 0}`;
  c.downtime.textContent = p.postcopy
    ? `post-copy since ${dur(p.postcopy_at_ms)}`
    : `allowed downtime ${p.max_downtime_ms ? p.max_downtime_ms + " ms" : "—"}`;
  c.elapsed.textContent = `elapsed ${dur(p.elapsed_ms)}`;
  const extra = [];
  if (p.dirty_rate_bps) extra.push(`dirtying ${mib(p.dirty_rate_bps)}/s`);
  if (p.throttle_percent) extra.push(`guest throttled ${p.throttle_percent}%`);
  if (p.actions && p.actions.length) extra.push(p.actions.join(", "));
  c.extra.textContent = extra.join(" · ");
}

function renderQueue() {
  const queued = view.active.filter((m) => m.state === "Queued");
  if (!changed("queue", queued)) return;
  const tbody = $("#queue-table tbody");
  if (!queued.length) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "empty" }, "empty")));
    return;
  }
  tbody.replaceChildren(
    ...queued.map((m) =>
      el(
        "tr",
        { dataset: { migration: m.id } },
        el("td", {}, m.id),
        el("td", {}, m.vm),
        el("td", {}, m.source),
        el("td", {}, m.dest || el("span", { class: "muted" }, "best host")),
        el("td", {}, m.drain ? "drain of " + m.drain : m.pinned ? "operator, pinned" : "operator"),
        el("td", {}, ago(m.created_at)),
        el("td", {}, el("button", { type: "button", dataset: { action: "cancel" }, onclick: () => act("POST", `/v1/migrations/${enc(m.id)}/cancel`, undefined, `${m.id} cancelled`) }, "Cancel")),
      ),
    ),
  );
}

function renderRecent() {
  const done = view.recent.filter((m) => ["Succeeded", "Failed", "Cancelled"].includes(m.state)).reverse();
  if (!changed("recent", done)) return;
  const tbody = $("#recent-table tbody");
  if (!done.length) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "empty" }, "none yet")));
    return;
  }
  tbody.replaceChildren(
    ...done.map((m) => {
      const start = when(m.started_at);
      const end = when(m.ended_at);
      return el(
        "tr",
        { dataset: { migration: m.id, state: m.state } },
        el("td", {}, m.id),
        el("td", {}, m.vm),
        el("td", {}, `${m.source} → ${m.dest || "—"}`),
        el("td", {}, badge(m.state)),
        el("td", {}, start && end ? dur(end - start) : "—"),
        el("td", {}, m.state === "Succeeded" ? m.downtime_ms + " ms" : "—"),
        el("td", { class: m.state === "Failed" ? "reason" : "" }, m.reason || ""),
      );
    }),
  );
}

function renderDrains() {
  const byName = {};
  for (const v of view.vms) byName[v.name] = v;
  const migs = {};
  for (const m of view.active) migs[m.id] = m;
  const rank = { active: 0, stuck: 1, done: 2, cancelled: 3 };
  const drains = [...view.drains]
    .sort((a, b) => rank[a.state] - rank[b.state] || (when(b.created_at) || 0) - (when(a.created_at) || 0))
    .slice(0, 8);
  const model = drains.map((d) => {
    const onHost = view.vms.filter((v) => v.host === d.host).map((v) => {
      const m = v.migration ? migs[v.migration] : null;
      return { name: v.name, unmovable: (d.unmovable || {})[v.name] || "", mig: m ? { id: m.id, state: m.state, dest: m.dest, pct: (m.progress || {}).percent || 0 } : null };
    });
    const moved = Object.keys(d.moved || {}).sort().map((n) => ({ name: n, now: byName[n] ? byName[n].host : "?" }));
    return { d, onHost, moved };
  });
  if (!changed("drains", model)) return;
  const box = $("#drains");
  if (!model.length) {
    box.replaceChildren(el("p", { class: "empty" }, "no host was drained"));
    return;
  }
  box.replaceChildren(...model.map(drainCard));
}

function drainCard({ d, onHost, moved }) {
  const live = d.state === "active" || d.state === "stuck";
  const migrating = onHost.filter((v) => v.mig && v.mig.state === "Running").length;
  const unmovable = live ? onHost.filter((v) => v.unmovable).length : Object.keys(d.unmovable || {}).length;
  const pending = live ? onHost.length - migrating - onHost.filter((v) => v.unmovable).length : 0;
  const total = moved.length + migrating + pending + unmovable;
  const items = [];
  if (live) {
    for (const v of onHost) {
      let text;
      let cls = "";
      if (v.unmovable) {
        text = "cannot move: " + v.unmovable;
        cls = "reason";
      } else if (v.mig && v.mig.state === "Running") {
        text = `migrating to ${v.mig.dest}, ${v.mig.pct.toFixed(0)}% (${v.mig.id})`;
      } else if (v.mig) {
        text = `queued (${v.mig.id}), waiting for a slot`;
      } else {
        text = "waiting to be queued";
      }
      items.push(el("li", { dataset: { vm: v.name } }, el("b", {}, v.name), " — ", el("span", { class: cls }, text)));
    }
  } else {
    for (const [name, why] of Object.entries(d.unmovable || {})) {
      items.push(el("li", { dataset: { vm: name } }, el("b", {}, name), " — ", el("span", { class: "reason" }, "could not move: " + why)));
    }
  }
  for (const v of moved) {
    items.push(el("li", { dataset: { vm: v.name } }, el("b", {}, v.name), " — ", el("span", { class: "muted" }, "moved, now on " + v.now)));
  }
  return el(
    "div",
    { class: "drain", dataset: { drain: d.host, state: d.state } },
    el("div", { class: "head" },
      el("b", {}, d.host), badge(d.state), el("span", { class: "muted" }, `${d.reason || "operator"}, started ${ago(d.created_at)}`),
      el("span", {}, `moved ${moved.length} of ${total}`, migrating ? ` · ${migrating} migrating` : "", pending ? ` · ${pending} pending` : "", unmovable ? ` · ${unmovable} cannot move` : ""),
    ),
    el("progress", { max: total || 1, value: moved.length }),
    items.length ? el("ul", {}, items) : null,
  );
}

function renderVMs() {
  const migs = {};
  for (const m of view.active) migs[m.id] = m;
  const rows = view.vms.map((v) => ({ v, m: v.migration ? migs[v.migration] || { id: v.migration } : null }));
  const key = rows.map(({ v, m }) => [v.name, v.uuid, v.host, v.state, v.memory_mib, v.vcpus, m && m.id, m && m.state, v.alarm && v.alarm.kind]);
  if (!changed("vms", key)) return;
  const tbody = $("#vms-table tbody");
  tbody.replaceChildren(
    ...rows.map(({ v, m }) =>
      el(
        "tr",
        { dataset: { vm: v.name, host: v.host, state: v.state } },
        el("td", { title: v.uuid ? "UUID " + v.uuid : "" }, el("b", {}, v.name)),
        el("td", { class: "vm-host" }, v.host),
        el("td", {}, badge(v.state), v.alarm ? [" ", el("span", { class: "badge bad", title: v.alarm.message }, v.alarm.kind)] : null),
        el("td", { class: "num" }, gib(v.memory_mib)),
        el("td", { class: "num" }, v.vcpus),
        el("td", {}, m ? `${m.id} ${m.state || ""}` : ""),
        el("td", {}, el("button", {
          type: "button",
          dataset: { action: "migrate" },
          disabled: !!m || v.state !== "running" || !!v.alarm,
          onclick: () => openMigrate(v),
        }, "Migrate…")),
      ),
    ),
  );
}

// ---------- the migrate dialog: dry run first, then confirm ----------

let dlgVM = null;

// vmRef names a VM to the API: its UUID when it has one (two VMs may share
// a name), else its name.
function vmRef(vm) {
  return vm.uuid || vm.name;
}

async function openMigrate(vm) {
  dlgVM = vm;
  const dlg = $("#migrate-dialog");
  $("#mig-vm").textContent = vm.name;
  $("#mig-from").textContent = `now on ${vm.host} · ${gib(vm.memory_mib)} · ${vm.vcpus} vCPUs`;
  const dest = $("#mig-dest");
  dest.replaceChildren(
    el("option", { value: "" }, "best host (placement)"),
    ...view.hosts.filter((h) => h.name !== vm.host).map((h) => el("option", { value: h.name }, h.name)),
  );
  $("#mig-policy").value = "";
  $("#mig-bw").value = "";
  $("#mig-error").hidden = true;
  $("#mig-confirm").disabled = true;
  $("#mig-checks tbody").replaceChildren(el("tr", {}, el("td", { colspan: 3, class: "empty" }, "checking…")));
  if (!dlg.open) dlg.showModal();
  try {
    const r = await api("POST", "/v1/migrations", { vm: vmRef(vm), dry_run: true });
    if (dlgVM !== vm) return;
    showChecks(r.data.candidates || []);
    $("#mig-confirm").disabled = false;
  } catch (e) {
    showError(e);
  }
}

function showChecks(cands) {
  const tbody = $("#mig-checks tbody");
  if (!cands.length) {
    tbody.replaceChildren(el("tr", {}, el("td", { colspan: 3, class: "empty" }, "no other host in the VM's cluster")));
    return;
  }
  tbody.replaceChildren(
    ...cands.map((c) => {
      const failed = (c.results || []).filter((r) => !r.ok);
      const row = el(
        "tr",
        { class: "pick", dataset: { host: c.host, ok: c.ok ? "true" : "false" }, title: "choose " + c.host },
        el("td", {}, el("b", {}, c.host)),
        el("td", { class: "num" }, c.score.toFixed(1)),
        el("td", {}, c.ok
          ? el("span", { class: "badge ok" }, "all checks pass")
          : el("ul", {}, failed.map((r) => el("li", {}, el("b", {}, r.name), ": ", r.message)))),
      );
      row.addEventListener("click", () => {
        $("#mig-dest").value = c.host;
        markChosen();
      });
      return row;
    }),
  );
  markChosen();
}

function markChosen() {
  const dest = $("#mig-dest").value;
  for (const tr of document.querySelectorAll("#mig-checks tr.pick")) tr.classList.toggle("chosen", tr.dataset.host === dest);
  $("#mig-confirm").textContent = dest ? "Migrate to " + dest : "Migrate to the best host";
}

function showError(e) {
  const box = $("#mig-error");
  const refused = e.checks && e.checks.length;
  box.replaceChildren(
    el("div", {}, refused ? "Refused by the mesh: these checks failed" : e.message),
    e.checks && e.checks.length ? el("ul", {}, e.checks.map((c) => el("li", { dataset: { check: c.name } }, el("b", {}, c.name), ": ", c.message))) : null,
  );
  box.hidden = false;
}

async function confirmMigrate() {
  const vm = dlgVM;
  if (!vm) return;
  const req = { vm: vmRef(vm) };
  const to = $("#mig-dest").value;
  const policy = $("#mig-policy").value;
  const bw = Number($("#mig-bw").value);
  if (to) req.to = to;
  if (policy) req.policy = policy;
  if (bw > 0) req.bandwidth_mib = bw;
  $("#mig-confirm").disabled = true;
  $("#mig-error").hidden = true;
  try {
    const r = await api("POST", "/v1/migrations", req);
    $("#migrate-dialog").close();
    toast(to ? `${r.data.id} queued: ${vm.name} → ${to}` : `${r.data.id} queued: ${vm.name}, placed: ${r.data.placement || "best host"}`);
  } catch (e) {
    showError(e);
    $("#mig-confirm").disabled = false;
  }
}

// ---------- the event log ----------

// The replicated event log (who did what, when) is read on its own: a
// blocking read of /v1/events?after=SEQ answers with each new event as it
// is applied. A meshd without the log (404) leaves the pane hidden.
const events = [];
const maxShown = 300;

function eventClass(kind) {
  if (/failed|stuck|unmovable|alarm\.raised/.test(kind)) return "bad";
  if (/succeeded|done|cleared|joined|elected/.test(kind)) return "ok";
  if (/cancel|retried/.test(kind)) return "warn";
  return "info";
}

function renderEvents() {
  const filter = $("#events-filter").value.trim().toLowerCase();
  const shown = [];
  for (let i = events.length - 1; i >= 0 && shown.length < maxShown; i--) {
    const e = events[i];
    const text = [e.kind, e.message, e.actor, e.vm, e.vm_uuid, e.migration, e.drain, ...(e.hosts || [])].join(" ").toLowerCase();
    if (filter && !text.includes(filter)) continue;
    const t = when(e.time);
    shown.push(el("li", { dataset: { seq: e.seq, kind: e.kind } },
      el("time", { datetime: e.time, title: e.time }, t ? new Date(t).toLocaleTimeString() : ""),
      el("span", { class: "badge kind " + eventClass(e.kind) }, e.kind),
      e.message,
      e.actor ? el("span", { class: "actor" }, "by " + e.actor) : null));
  }
  $("#events").replaceChildren(...shown);
}

async function eventsLoop() {
  let after = 0;
  let first = true;
  let backoff = 1000;
  for (;;) {
    try {
      // The first read takes the newest events the pane shows, then each
      // read waits for the next ones.
      const q = first ? `?last=${maxShown}` : `?after=${after}&limit=500&wait=30s`;
      const r = await api("GET", "/v1/events" + q);
      const page = r.data || {};
      $("#events-section").hidden = false;
      if (page.oldest && after && page.oldest > after + 1) {
        events.length = 0; // the ring moved past what we held
      }
      for (const e of page.events || []) events.push(e);
      if (events.length > 2000) events.splice(0, events.length - 2000);
      after = Math.max(after, page.next || 0);
      first = false;
      backoff = 1000;
      renderEvents();
      if (!(page.events || []).length) await sleep(250);
    } catch (e) {
      if (e.status === 404) {
        $("#events-section").hidden = true;
        return; // this meshd has no event log
      }
      if (e.status === 401 || e.status === 403) {
        // No token yet, or one without the read right: try again soon,
        // the operator is about to enter one.
        await sleep(1000);
        continue;
      }
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 10000);
    }
  }
}

// ---------- start ----------

function start() {
  $("#token").value = token;
  $("#token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("#token").value.trim();
    if (token) localStorage.setItem("hostmesh.token", token);
    else localStorage.removeItem("hostmesh.token");
    toast(token ? "token set: every call sends it" : "token cleared");
    if (loopAbort) loopAbort.abort();
  });
  $("#mig-dest").addEventListener("change", markChosen);
  $("#mig-confirm").addEventListener("click", confirmMigrate);
  $("#mig-close").addEventListener("click", () => $("#migrate-dialog").close());
  $("#migrate-dialog").addEventListener("close", () => (dlgVM = null));
  $("#events-filter").addEventListener("input", renderEvents);
  liveLoop();
  eventsLoop();
}

start();
