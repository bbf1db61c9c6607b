"use strict";
// The learnchain explorer: a view of one node over its own JSON-RPC (POST / and the
// WebSocket head subscription on /). Everything shown is built with createElement and
// textContent, never parsed as markup; links are made only from checked hex hashes.
(() => {
  const RECENT_BLOCKS = 20; // rows of the blocks table
  const CHART_HEIGHTS = 500; // heights the chart loads at most
  const BATCH = 32; // calls per JSON-RPC batch (the server's limit)
  const MAX_ROWS = 500; // rows of the members and peers tables
  const MAX_TEXT = 300; // characters of one string shown
  const UNAVAILABLE = -32002;
  const SUBSCRIBE_ID = 0;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const HEX64 = /^[0-9a-f]{64}$/;
  const HEX = /^[0-9a-f]+$/;

  const body = document.body;
  const $ = (id) => document.getElementById(id);

  // ---- errors of the page itself: shown, counted on <body data-errors>, and in the console.
  const pageErrors = [];
  function recordError(message) {
    pageErrors.push(message);
    body.dataset.errors = String(pageErrors.length);
    const list = $("errors");
    if (list) {
      list.hidden = false;
      if (list.childElementCount < 20) list.append(el("li", {}, "page error: " + clip(message)));
    }
  }
  window.addEventListener("error", (e) => recordError(String((e && e.message) || "script error")));
  window.addEventListener("unhandledrejection", (e) => recordError("unhandled rejection: " + describe(e && e.reason)));

  // ---- DOM, built from nodes and text only.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    for (const c of children) add(e, c);
    return e;
  }
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    for (const c of children) add(e, c);
    return e;
  }
  function setAttrs(e, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      e.setAttribute(k, String(v));
    }
  }
  function add(parent, c) {
    if (c === null || c === undefined || c === false) return;
    parent.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  function clear(e) {
    e.replaceChildren();
    return e;
  }
  function clip(s) {
    s = String(s);
    return s.length > MAX_TEXT ? s.slice(0, MAX_TEXT) + "…" : s;
  }
  function describe(x) {
    if (x instanceof Error) return x.message;
    try {
      return clip(typeof x === "string" ? x : JSON.stringify(x));
    } catch (_) {
      return String(x);
    }
  }
  /// A hash or key: shortened when it is long hex, the whole text (clipped) otherwise.
  function hexSpan(s) {
    s = String(s);
    const shown = HEX.test(s) && s.length > 16 ? s.slice(0, 8) + "…" + s.slice(-6) : clip(s);
    return el("span", { class: "hex", title: clip(s) }, shown);
  }
  /// `content` (a node or text) as a link to a block's detail when `hash` is a block hash,
  /// as it is otherwise.
  function blockLink(hash, content) {
    const s = String(hash);
    const inner = content instanceof Node ? content : clip(content);
    if (!HEX64.test(s)) return el("span", {}, inner);
    return el("a", { href: "#block=" + s, title: s }, inner);
  }
  function fields(dl, rows) {
    clear(dl);
    for (const [k, v] of rows) {
      if (v === undefined) continue;
      dl.append(el("dt", {}, k), el("dd", {}, v === null ? "—" : v));
    }
  }
  function table(headers, rows, numeric) {
    const num = new Set(numeric || []);
    const head = el("tr", {}, ...headers.map((h, i) => el("th", { class: num.has(i) ? "num" : null }, h)));
    const tbody = el("tbody", {});
    for (const row of rows) {
      tbody.append(el("tr", {}, ...row.map((c, i) => el("td", { class: num.has(i) ? "num" : null }, c === null ? "—" : c))));
    }
    return el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), tbody));
  }

  // ---- formatting
  function time(ms) {
    const d = new Date(ms);
    if (!Number.isFinite(d.getTime())) return String(ms);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }
  function ago(ms) {
    const s = Math.round((Date.now() - ms) / 1000);
    if (!Number.isFinite(s)) return "";
    if (s < 0) return "in the future";
    if (s < 120) return `${s} s ago`;
    if (s < 7200) return `${Math.round(s / 60)} min ago`;
    if (s < 172800) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} days ago`;
  }
  function work(hex) {
    const s = String(hex);
    if (!HEX.test(s) || s.length > 64) return clip(s);
    return BigInt("0x" + s).toLocaleString("en-US");
  }
  function pct(x) {
    return typeof x === "number" && Number.isFinite(x) ? (x * 100).toFixed(2) + "%" : "—";
  }
  function num(x, digits) {
    if (typeof x !== "number" || !Number.isFinite(x)) return "—";
    return Math.abs(x) >= 1e5 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(digits - 1) : String(Number(x.toPrecision(digits)));
  }
  function score(s) {
    const t = String(s);
    return /^[0-9]{1,60}$/.test(t) && t.length > 6 ? Number(t).toExponential(3) : clip(t);
  }
  function outcomes(report) {
    if (!report || !Array.isArray(report.submissions)) return null;
    if (report.submissions.length === 0) return "—";
    const counts = new Map();
    for (const s of report.submissions) counts.set(s.outcome, (counts.get(s.outcome) || 0) + 1);
    const order = ["selected", "trimmed", "weighted", "rejected"];
    const names = [...counts.keys()].sort((a, b) => rank(order, a) - rank(order, b));
    return names.map((n) => `${counts.get(n)} ${clip(n)}`).join(" / ");
  }
  function rank(order, x) {
    const i = order.indexOf(x);
    return i < 0 ? order.length : i;
  }

  // ---- JSON-RPC over HTTP
  class RpcError extends Error {
    constructor(code, message) {
      super(String(message));
      this.code = code;
    }
  }
  function toError(e) {
    if (e && typeof e === "object") return new RpcError(e.code, e.message);
    return new RpcError(0, "malformed answer");
  }
  let nextId = 1;
  async function post(payload) {
    const res = await fetch("/", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(payload),
      cache: "no-store",
    });
    const text = await res.text();
    try {
      return JSON.parse(text);
    } catch (_) {
      throw new RpcError(0, `HTTP ${res.status}: ${clip(text)}`);
    }
  }
  /// Calls `[[method, params], …]` in batches of at most BATCH, one batch after another, and
  /// returns one `{result}` or `{error}` per call, in order.
  async function batch(calls) {
    const out = [];
    for (let i = 0; i < calls.length; i += BATCH) {
      const chunk = calls.slice(i, i + BATCH);
      const first = nextId;
      nextId += chunk.length;
      const json = await post(chunk.map(([method, params], j) => ({ jsonrpc: "2.0", id: first + j, method, params: params || [] })));
      if (!Array.isArray(json)) {
        const e = toError(json && json.error);
        for (const _ of chunk) out.push({ error: e });
        continue;
      }
      const byId = new Map();
      for (const r of json) if (r && typeof r.id === "number") byId.set(r.id, r);
      chunk.forEach((_, j) => {
        const r = byId.get(first + j);
        if (!r) out.push({ error: new RpcError(0, "no answer in the batch") });
        else if (r.error) out.push({ error: toError(r.error) });
        else out.push({ result: r.result });
      });
    }
    return out;
  }
  async function call(method, params) {
    const [r] = await batch([[method, params]]);
    if (r.error) throw r.error;
    return r.result;
  }
  /// An answer the node refused or failed: shown where the data would be, and counted.
  let rpcErrors = 0;
  function failed(what, error) {
    rpcErrors += 1;
    body.dataset.rpcErrors = String(rpcErrors);
    return el("p", { class: "error" }, `${what}: ${describe(error)}`);
  }

  // ---- what the page holds
  const state = {
    head: null,
    blocks: new Map(), // height → {block, report, reportError}
    metrics: new Map(), // height → MetricsView, or {error}
    metricsUnavailable: null, // the node's message when it has no evaluation data
    rule: null,
  };

  // ---- the head
  function renderHead(head) {
    $("head").dataset.headHeight = String(head.height);
    $("head").dataset.headHash = String(head.hash);
    $("head-height").textContent = String(head.height);
    fields($("head-fields"), [
      ["hash", blockLink(head.hash, hexSpan(head.hash))],
      ["time", el("span", {}, time(head.timestamp_ms), " ", el("span", { id: "head-ago", class: "muted" }, ago(head.timestamp_ms)))],
      ["total work", el("span", { class: "hex" }, work(head.total_work))],
      ["model hash", hexSpan(head.model_hash)],
      ["state root", hexSpan(head.state_root)],
      ["updates", String(head.submissions)],
      ["registrations", String(head.registrations)],
      ["chain id", hexSpan(head.chain_id)],
    ]);
  }
  setInterval(() => {
    const a = $("head-ago");
    if (a && state.head) a.textContent = ago(state.head.timestamp_ms);
  }, 1000);

  // ---- following the chain: one update at a time, the newest wanted head last.
  let pending = null;
  let pumping = null;
  /// Asks for the page to follow `head` (from the subscription), or, with no head, to read
  /// the node's head first. Returns when the page has caught up.
  function want(head) {
    pending = head ? { head } : { refresh: true };
    return kick();
  }
  function kick() {
    if (!pumping) {
      pumping = pump().finally(() => {
        pumping = null;
        if (pending) kick();
      });
    }
    return pumping;
  }
  async function pump() {
    while (pending) {
      const p = pending;
      pending = null;
      try {
        const head = p.head || (await call("chain_head"));
        if (pending && pending.head) continue; // a newer head came meanwhile
        await syncTo(head);
      } catch (e) {
        blocksProblem(failed("cannot follow the chain", e));
      }
      try {
        await refreshPanels();
      } catch (e) {
        recordError("refreshing the panels: " + describe(e));
      }
    }
  }

  async function syncTo(head) {
    const same = (h, hash) => !state.blocks.has(h) || state.blocks.get(h).block.hash === hash;
    const older = state.head && head.height < state.head.height;
    if (older || !same(head.height, head.hash) || (head.height > 0 && !same(head.height - 1, head.parent))) {
      // Another branch: what we hold may be of the old one.
      state.blocks.clear();
      state.metrics.clear();
    }
    state.head = head;
    renderHead(head);

    const lo = Math.max(0, head.height - RECENT_BLOCKS + 1);
    for (const h of [...state.blocks.keys()]) if (h < lo || h > head.height) state.blocks.delete(h);
    const missing = [];
    for (let h = lo; h <= head.height; h++) if (!state.blocks.has(h)) missing.push(h);
    const got = await batch(missing.map((h) => ["chain_getBlock", [h]]));
    const blocks = [];
    blocksProblem(null);
    got.forEach((r, i) => {
      if (r.result) blocks.push(r.result);
      else blocksProblem(failed(`block ${missing[i]}`, r.error));
    });
    const reports = await batch(blocks.map((b) => ["aggregate_report", [b.hash]]));
    blocks.forEach((b, i) => {
      state.blocks.set(b.height, { block: b, report: reports[i].result || null, reportError: reports[i].error || null });
      if (reports[i].result) state.rule = reports[i].result.rule;
    });
    await syncMetrics(head);
    renderBlocks();
    renderChart();
  }

  /// Shows `problem` (or nothing) under the blocks table.
  function blocksProblem(problem) {
    const note = clear($("blocks-note"));
    note.hidden = !problem;
    if (problem) note.append(problem);
  }

  async function syncMetrics(head) {
    const lo = Math.max(0, head.height - CHART_HEIGHTS + 1);
    for (const [h, m] of [...state.metrics]) {
      const b = state.blocks.get(h);
      if (h < lo || h > head.height || (b && m.block_hash && m.block_hash !== b.block.hash)) state.metrics.delete(h);
    }
    if (state.metricsUnavailable !== null || state.metrics.size === 0) {
      // The head alone first: a node without evaluation data answers "unavailable" for
      // every height, and is asked only about its head until that changes.
      const [r] = await batch([["model_metrics", [head.height]]]);
      if (r.error && r.error.code === UNAVAILABLE) {
        state.metricsUnavailable = r.error.message;
        state.metrics.clear();
        return;
      }
      state.metricsUnavailable = null;
      state.metrics.set(head.height, r.result ? r.result : { error: r.error });
    }
    const missing = [];
    for (let h = head.height; h >= lo; h--) if (!state.metrics.has(h)) missing.push(h);
    const got = await batch(missing.map((h) => ["model_metrics", [h]]));
    got.forEach((r, i) => state.metrics.set(missing[i], r.result ? r.result : { error: r.error }));
  }

  // ---- the blocks table
  function renderBlocks() {
    const tbody = clear($("blocks-table").tBodies[0]);
    const heights = [...state.blocks.keys()].sort((a, b) => b - a);
    const selected = selectedHash();
    for (const h of heights) {
      const { block: b, report, reportError } = state.blocks.get(h);
      const m = state.metrics.get(h);
      const row = el(
        "tr",
        { "data-height": h, class: b.hash === selected ? "selected" : null },
        el("td", {}, blockLink(b.hash, String(b.height))),
        el("td", {}, blockLink(b.hash, hexSpan(b.hash))),
        el("td", { title: time(b.timestamp_ms) }, time(b.timestamp_ms)),
        el("td", {}, hexSpan(b.miner)),
        el("td", { class: "num" }, String(b.submissions.length)),
        el("td", { class: "num" }, String(b.registrations.length)),
        el("td", { class: "aggregation" }, report ? outcomes(report) : el("span", { class: "error", title: describe(reportError) }, "report failed")),
        el("td", { class: "num" }, m && !m.error ? pct(m.accuracy) : "—"),
      );
      tbody.append(row);
    }
    $("blocks-table").dataset.rows = String(heights.length);
    $("blocks-sub").textContent = state.rule ? `· aggregation rule ${clip(state.rule)}` : "";
  }

  // ---- the chart: test accuracy (left axis) and loss (right axis) against height
  function renderChart() {
    const box = clear($("chart"));
    const note = $("chart-note");
    const sub = $("chart-sub");
    if (state.metricsUnavailable !== null) {
      note.hidden = false;
      note.textContent = `No chart: this node does not evaluate the model (${clip(state.metricsUnavailable)}). Open the explorer of a node that holds evaluation data, such as an observer.`;
      sub.textContent = "";
      return;
    }
    const points = [...state.metrics.entries()].filter(([, m]) => !m.error).sort((a, b) => a[0] - b[0]);
    const failedHeights = [...state.metrics.entries()].filter(([, m]) => m.error);
    note.hidden = failedHeights.length === 0;
    note.textContent = failedHeights.length
      ? `${failedHeights.length} height(s) could not be evaluated, e.g. ${failedHeights[0][0]}: ${describe(failedHeights[0][1].error)}`
      : "";
    const last = points.length ? points[points.length - 1][1] : null;
    sub.textContent = last ? `· ${last.examples} examples of this node's data · at height ${last.height}: accuracy ${pct(last.accuracy)}, loss ${num(last.loss, 4)}` : "";
    if (points.length === 0) return;

    const W = 900, H = 280, L = 52, R = 58, T = 26, B = 30;
    const hs = points.map(([h]) => h);
    const x0 = hs[0];
    const x1 = Math.max(hs[hs.length - 1], x0 + 1);
    // Accuracy in percent, between whole tenths, in steps of 5, 10 or 20; loss from 0 in
    // steps of 1, 2 or 5 × 10^k.
    const accs = points.map(([, m]) => m.accuracy);
    const losses = points.map(([, m]) => m.loss);
    let top = Math.min(100, Math.max(10, 10 * Math.ceil(Math.max(...accs) * 10 - 1e-9)));
    const low = Math.max(0, Math.min(top - 10, 10 * Math.floor(Math.min(...accs) * 10 + 1e-9)));
    const aStep = top - low > 50 ? 20 : top - low > 20 ? 10 : 5;
    const aTicks = Math.ceil((top - low) / aStep);
    let bottom = top - aTicks * aStep;
    if (bottom < 0) { bottom = 0; top = aTicks * aStep; }
    const a0 = bottom / 100, a1 = top / 100;
    const lStep = niceStep(Math.max(...losses) / 4);
    const lTicks = Math.max(1, Math.ceil(Math.max(...losses) / lStep - 1e-9));
    const l1 = lTicks * lStep;
    const x = (h) => L + ((h - x0) / (x1 - x0)) * (W - L - R);
    const ya = (a) => T + (1 - (a - a0) / (a1 - a0)) * (H - T - B);
    const yl = (l) => T + (1 - l / l1) * (H - T - B);
    const f = (v) => v.toFixed(1);

    const chart = svg("svg", { id: "chart-svg", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "test accuracy and loss against height", "data-points": points.length });
    const grid = svg("g", { class: "grid" });
    const axis = svg("g", { class: "axis" });
    for (let i = 0; i <= aTicks; i++) {
      const a = (bottom + aStep * i) / 100;
      const y = ya(a);
      grid.append(svg("line", { x1: L, x2: W - R, y1: f(y), y2: f(y) }));
      axis.append(svg("text", { x: L - 6, y: f(y + 4), "text-anchor": "end" }, Math.round(a * 100) + "%"));
    }
    for (let i = 0; i <= lTicks; i++) {
      axis.append(svg("text", { x: W - R + 6, y: f(yl(lStep * i) + 4) }, num(lStep * i, 3)));
    }
    const ticks = Math.min(6, x1 - x0);
    for (let i = 0; i <= ticks; i++) {
      const h = Math.round(x0 + ((x1 - x0) * i) / ticks);
      axis.append(svg("text", { x: f(x(h)), y: H - B + 16, "text-anchor": "middle" }, String(h)));
    }
    axis.append(svg("text", { x: W - R, y: H - 2, "text-anchor": "end" }, "height"));
    chart.append(grid, axis);

    // Lines break where a height is missing.
    const segments = [];
    let seg = [];
    points.forEach(([h, m], i) => {
      if (i > 0 && h !== points[i - 1][0] + 1) { segments.push(seg); seg = []; }
      seg.push([h, m]);
    });
    segments.push(seg);
    for (const s of segments) {
      if (s.length < 2) continue;
      chart.append(svg("polyline", { class: "line-loss", points: s.map(([h, m]) => `${f(x(h))},${f(yl(m.loss))}`).join(" ") }));
      chart.append(svg("polyline", { class: "line-acc", points: s.map(([h, m]) => `${f(x(h))},${f(ya(m.accuracy))}`).join(" ") }));
    }
    const r = points.length > 150 ? 1.6 : 3;
    const dots = svg("g", { class: "points" });
    for (const [h, m] of points) {
      dots.append(svg("g", { class: "pt", "data-height": h, "data-accuracy": m.accuracy, "data-loss": m.loss },
        svg("title", {}, `height ${h}: accuracy ${pct(m.accuracy)}, loss ${num(m.loss, 4)}`),
        svg("circle", { class: "pt-loss", cx: f(x(h)), cy: f(yl(m.loss)), r }),
        svg("circle", { class: "pt-acc", cx: f(x(h)), cy: f(ya(m.accuracy)), r })));
    }
    chart.append(dots);
    chart.append(svg("g", { class: "legend" },
      svg("rect", { class: "swatch-acc", x: L, y: 6, width: 12, height: 4 }),
      svg("text", { x: L + 16, y: 12 }, "test accuracy (left)"),
      svg("rect", { class: "swatch-loss", x: L + 160, y: 6, width: 12, height: 4 }),
      svg("text", { x: L + 176, y: 12 }, "loss (right)")));
    box.append(chart);
  }

  /// The round step (1, 2 or 5 × 10^k) at or above `x`.
  function niceStep(x) {
    if (!(x > 0) || !Number.isFinite(x)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(x)));
    const m = x / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  // ---- the panels: node, members, privacy, peers
  async function refreshPanels() {
    const [info, members, privacy, peers, bans] = await batch([
      ["node_info"], ["members_list"], ["privacy_status"], ["net_peers"], ["net_bans"],
    ]);
    renderNode(info);
    renderMembers(members);
    renderPrivacy(privacy);
    renderPeers(peers, bans);
  }

  function renderNode(r) {
    const dl = $("node-fields");
    if (r.error) {
      clear(dl).append(failed("node_info", r.error));
      return;
    }
    const n = r.result;
    $("node-name").textContent = clip(n.name);
    document.title = `${clip(n.name)} · learnchain explorer`;
    fields(dl, [
      ["name", clip(n.name)],
      ["version", clip(n.version)],
      ["roles", n.roles.map(clip).join(", ") || "—"],
      ["genesis", clip(n.genesis_name)],
      ["aggregation", clip(n.aggregation)],
      ["syncing", n.syncing ? "yes, catching up with its peers" : "no"],
      ["mempool", `${n.mempool} submission(s) for the next round`],
      ["peer id", hexSpan(n.peer_id)],
      ["RPC", clip(n.rpc_addr)],
      ["listening on", n.listen_addrs.length ? el("span", {}, n.listen_addrs.map(clip).join(" ")) : "—"],
      ["adversary", n.adversary === null ? undefined : el("span", { class: "warn" }, `this node is a deliberately hostile data source (${clip(n.adversary)})`)],
    ]);
  }

  function renderMembers(r) {
    const box = clear($("members-body"));
    if (r.error) {
      box.append(failed("members_list", r.error));
      return;
    }
    const m = r.result;
    const enrolment = m.enrolment_authority !== null
      ? el("span", {}, "signed by the authority ", hexSpan(m.enrolment_authority))
      : "no enrolment authority";
    box.append(el("p", {}, `${m.active} active of ${m.members.length} key(s) · rings of up to ${m.ring_size} · ${m.groups} ring group(s) · `, enrolment,
      m.open_stamp_bits > 0 ? ` · open enrolment with ${m.open_stamp_bits}-bit stamps` : ""));
    const rows = m.members.slice(0, MAX_ROWS).map((k) => [
      hexSpan(k.key),
      String(k.registered_at),
      k.revoked_at === null ? null : String(k.revoked_at),
      el("span", { class: k.active ? "ok" : "muted" }, k.active ? "active" : "revoked"),
    ]);
    box.append(table(["key", "registered at", "revoked at", "status"], rows, [1, 2]));
    if (m.members.length > MAX_ROWS) box.append(el("p", { class: "note" }, `and ${m.members.length - MAX_ROWS} more`));
  }

  function renderPrivacy(r) {
    const box = clear($("privacy-body"));
    if (r.error) {
      box.append(failed("privacy_status", r.error));
      return;
    }
    const p = r.result;
    if (!p.data_source) {
      box.append(el("p", { class: "note" }, "This node is not a data source: it trains on no data of its own and spends no privacy budget."));
      return;
    }
    const spent = p.epsilon_spent, budget = p.budget_epsilon;
    box.append(el("p", { class: "big" }, `ε ${num(spent, 4)}`, el("span", { class: "muted" }, ` of ${num(budget, 4)} at δ = ${num(p.delta, 3)}`)));
    if (typeof spent === "number" && typeof budget === "number" && budget > 0) {
      box.append(el("meter", { min: 0, max: budget, value: Math.min(spent, budget), high: budget * 0.8, optimum: 0, title: pct(spent / budget) + " of the budget" }));
    }
    if (p.stopped) box.append(el("p", { class: "warn" }, "Stopped: the next round would pass the budget, so this node no longer trains or submits."));
    const dl = el("dl", { class: "fields" });
    fields(dl, [
      ["after the next round", `ε ${num(p.epsilon_after_next_round, 4)}`],
      ["rounds contributed", p.rounds_contributed === null ? null : String(p.rounds_contributed)],
      ["accountant", p.accountant === null ? null : clip(p.accountant) + (p.alpha !== null ? ` (best RDP order ${num(p.alpha, 3)})` : "")],
      ["DP-SGD", `q = ${num(p.sample_rate, 4)}, σ = ${num(p.noise_multiplier, 4)}, C = ${num(p.clip, 4)}, ${p.steps_per_round === null ? "—" : p.steps_per_round} step(s) per round`],
      ["ledger", p.ledger_path === null ? null : el("span", { class: "hex" }, clip(p.ledger_path))],
    ]);
    box.append(dl);
  }

  function renderPeers(r, bans) {
    const box = clear($("peers-body"));
    if (r.error) {
      box.append(failed("net_peers", r.error));
    } else {
      const peers = r.result;
      box.append(el("p", { class: "note" }, `${peers.length} connected peer(s)`));
      if (peers.length) {
        const rows = peers.slice(0, MAX_ROWS).map((p) => [
          hexSpan(p.peer_id),
          clip(p.direction),
          p.agent === null ? null : clip(p.agent),
          p.addresses.length ? clip(p.addresses.join(" ")) : null,
          num(p.score, 4),
          num(p.gossip_score, 4),
          String(p.offences),
          p.last_offence === null ? null : clip(p.last_offence),
        ]);
        box.append(table(["peer", "direction", "agent", "address", "score", "gossip score", "offences", "last offence"], rows, [4, 5, 6]));
      }
    }
    if (bans.error) {
      box.append(failed("net_bans", bans.error));
    } else if (bans.result.length) {
      box.append(el("h3", {}, `Banned (${bans.result.length})`));
      const rows = bans.result.slice(0, MAX_ROWS).map((b) => [hexSpan(b.peer_id), clip(b.reason), `${b.remaining_s} s`, num(b.score, 4), String(b.offences)]);
      box.append(table(["peer", "reason", "remaining", "score", "offences"], rows, [2, 3, 4]));
    }
  }

  // ---- a block's detail, selected by #block=<hash>
  function selectedHash() {
    const m = /^#block=([0-9a-f]{64})$/.exec(location.hash);
    return m ? m[1] : null;
  }
  let detailSeq = 0;
  async function showDetail() {
    const section = $("detail");
    const hash = selectedHash();
    for (const row of $("blocks-table").tBodies[0].rows) {
      const b = state.blocks.get(Number(row.dataset.height));
      row.classList.toggle("selected", !!b && b.block.hash === hash);
    }
    if (!hash) {
      section.hidden = true;
      delete section.dataset.blockHeight;
      return;
    }
    const seq = ++detailSeq;
    section.hidden = false;
    const box = clear($("detail-body"));
    $("detail-title").textContent = "Block …";
    const [b, rep] = await batch([["chain_getBlock", [hash]], ["aggregate_report", [hash]]]);
    if (seq !== detailSeq) return; // another block was selected meanwhile
    if (b.error) {
      box.append(failed(`block ${hash}`, b.error));
      return;
    }
    renderDetail(b.result, rep);
    section.scrollIntoView({ block: "nearest" });
  }

  function renderDetail(b, rep) {
    const section = $("detail");
    const box = clear($("detail-body"));
    $("detail-title").textContent = `Block ${b.height}`;
    const m = state.metrics.get(b.height);
    const header = el("dl", { class: "fields" });
    fields(header, [
      ["height", String(b.height)],
      ["hash", el("span", { class: "hex" }, clip(b.hash))],
      ["parent", b.height > 0 ? blockLink(b.parent, el("span", { class: "hex" }, clip(b.parent))) : el("span", { class: "hex" }, clip(b.parent))],
      ["time", `${time(b.timestamp_ms)} (${b.timestamp_ms} ms)`],
      ["miner", el("span", { class: "hex" }, clip(b.miner))],
      ["target", el("span", { class: "hex" }, clip(b.target))],
      ["nonce", String(b.nonce)],
      ["body root", el("span", { class: "hex" }, clip(b.body_root))],
      ["model hash", el("span", { class: "hex" }, clip(b.model_hash))],
      ["state root", el("span", { class: "hex" }, clip(b.state_root))],
      ["model after it", m && !m.error ? `test accuracy ${pct(m.accuracy)}, loss ${num(m.loss, 4)}` : undefined],
      ["aggregation", rep.result ? `${clip(rep.result.rule)}: ${outcomes(rep.result)}` : undefined],
    ]);
    box.append(header);

    box.append(el("h3", {}, `Submissions (${b.submissions.length})`));
    if (rep.error) box.append(failed("aggregate_report", rep.error));
    const verdicts = new Map();
    if (rep.result) for (const v of rep.result.submissions) verdicts.set(v.id, v);
    if (b.submissions.length) {
      const rows = b.submissions.map((s) => {
        const v = verdicts.get(s.id);
        let what = null;
        if (v) {
          const parts = [];
          if (v.kept_coordinates !== null && v.coordinates !== null) parts.push(`kept at ${v.kept_coordinates} of ${v.coordinates} coordinates`);
          if (v.weight_ppm !== null) parts.push(`weight ${(v.weight_ppm / 1e4).toFixed(2)}%`);
          if (v.score !== null) parts.push(`score ${score(v.score)}`);
          what = parts.join(", ") || null;
        }
        return [
          hexSpan(s.id),
          hexSpan(s.round_tag),
          String(s.num_examples),
          num(s.update_l2, 4),
          `q ${num(s.dp_sample_rate, 3)} · σ ${num(s.dp_noise_multiplier, 4)} · C ${num(s.dp_clip, 3)} · ${s.dp_steps} steps`,
          v ? el("span", { class: "outcome-" + (v.outcome === "selected" || v.outcome === "rejected" ? v.outcome : "other") }, clip(v.outcome)) : null,
          what,
        ];
      });
      box.append(table(["id", "round tag", "examples", "‖Δ‖", "declared DP-SGD", "outcome", "rule's detail"], rows, [2, 3]));
    }

    box.append(el("h3", {}, `Registrations (${b.registrations.length})`));
    if (b.registrations.length) {
      const rows = b.registrations.map((g) => [hexSpan(g.id), hexSpan(g.member), clip(g.action), clip(g.authorisation)]);
      box.append(table(["id", "member", "action", "authorisation"], rows));
    } else {
      box.append(el("p", { class: "note" }, "none"));
    }
    section.dataset.blockHeight = String(b.height);
    section.dataset.submissions = String(b.submissions.length);
  }

  // ---- the head subscription, reconnecting with backoff
  let socket = null;
  let backoff = 1000;
  let wsHeads = 0;
  function setConn(stateName, text) {
    const c = $("conn");
    c.dataset.state = stateName;
    c.textContent = text;
    body.dataset.live = stateName === "live" ? "1" : "0";
  }
  function connect() {
    setConn("connecting", "connecting…");
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/";
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      retry(describe(e));
      return;
    }
    socket = ws;
    ws.onopen = () => ws.send(JSON.stringify({ jsonrpc: "2.0", id: SUBSCRIBE_ID, method: "chain_subscribeHeads", params: [] }));
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch (_) {
        return;
      }
      if (msg && msg.id === SUBSCRIBE_ID) {
        if (msg.error) {
          retry(describe(msg.error.message));
          ws.close();
          return;
        }
        backoff = 1000;
        setConn("live", "live");
        want(null); // heads that came before the subscription
      } else if (msg && msg.method === "chain_head" && msg.params && msg.params.result) {
        wsHeads += 1;
        body.dataset.wsHeads = String(wsHeads);
        want(msg.params.result);
      }
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      retry("disconnected");
    };
  }
  let retryTimer = null;
  function retry(why) {
    if (retryTimer !== null) return;
    const wait = backoff;
    backoff = Math.min(backoff * 2, 30000);
    setConn("offline", `offline (${clip(why)}); retrying in ${wait / 1000} s`);
    retryTimer = setTimeout(() => {
      retryTimer = null;
      connect();
    }, wait);
  }

  // ---- start
  window.addEventListener("hashchange", () => {
    showDetail().catch((e) => clear($("detail-body")).append(failed("block detail", e)));
  });
  want(null).then(() => {
    body.dataset.ready = "1";
    connect();
    return showDetail();
  }).catch((e) => recordError("first load: " + describe(e)));
})();
