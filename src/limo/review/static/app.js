// limo review: the page behind `limo review RUN`. Plain JS, no build step, no network beyond this server.
// Routes (in the URL hash, so a reload keeps the place): #/?filters  (list)   #/p/<id>?filters  (one problem).
"use strict";

const FEATURE_COLORS = {
  self_verification: "#ffd54f",
  exploration: "#81d4fa",
  adaptive_granularity: "#c5e1a5",
  elaboration: "#f8bbd0",
  length: "#d1c4e9",
  structure: "#b2dfdb",
  language_consistency: "#ffccbc",
  truncation: "#e0e0e0",
};
const FILTERS = ["subject", "level", "difficulty_tier", "quality_level", "reviewed", "q"];
const state = { list: null, filters: {}, cursor: 0, problem: null, route: null };

// ---- small helpers ---------------------------------------------------------------------------------------
const $ = (sel, root = document) => root.querySelector(sel);
function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
function fmt(x, digits = 2) {
  if (x === null || x === undefined) return "—";
  if (typeof x === "number") return Number.isInteger(x) ? String(x) : x.toFixed(digits);
  return esc(x);
}
function featureColor(name) {
  if (FEATURE_COLORS[name]) return FEATURE_COLORS[name];
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return `hsl(${h} 70% 82%)`;
}
function toast(msg, kind = "ok") {
  const t = $("#toast");
  t.textContent = msg;
  t.className = `show ${kind}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.className = ""), 2600);
}
function banner(html) {
  const b = $("#banner");
  b.innerHTML = html || "";
  b.hidden = !html;
}
async function api(path, options) {
  const res = await fetch(path, options);
  const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  return body;
}

// ---- routing ---------------------------------------------------------------------------------------------
function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  const params = new URLSearchParams(query);
  const filters = {};
  for (const f of FILTERS) if (params.get(f)) filters[f] = params.get(f);
  if (path.startsWith("/p/")) return { view: "problem", id: decodeURIComponent(path.slice(3)), filters };
  return { view: "list", filters };
}
function filterQuery(filters = state.filters) {
  const params = new URLSearchParams();
  for (const f of FILTERS) if (filters[f]) params.set(f, filters[f]);
  const s = params.toString();
  return s ? `?${s}` : "";
}
function listHash() { return `#/${filterQuery()}`; }
function problemHash(id) { return `#/p/${encodeURIComponent(id)}${filterQuery()}`; }

async function route() {
  const r = parseHash();
  state.route = r;
  state.filters = r.filters;
  try {
    await loadList();
    if (r.view === "problem") await showProblem(r.id);
    else showList();
  } catch (e) {
    $("#app").innerHTML = `<div class="error-box"><h2>Cannot show this page</h2><p>${esc(e.message)}</p></div>`;
  }
}

// ---- list ------------------------------------------------------------------------------------------------
async function loadList() {
  state.list = await api("/api/problems");
  const L = state.list;
  $("#run-name").textContent = L.run;
  $("#progress-text").textContent = `${L.reviewed} / ${L.total} reviewed`;
  $("#progress-bar").style.width = `${L.total ? (100 * L.reviewed) / L.total : 0}%`;
  const notes = L.warnings.map((w) => esc(w));
  if (L.broken_lines.length) {
    notes.push(
      `<b>${L.broken_lines.length} unreadable line(s) in the decisions file</b> were skipped; they stay in the file ` +
        `untouched, and every other decision is used. Fix or delete them by hand:<ul>` +
        L.broken_lines.map((b) => `<li><code>${esc(b.message)}</code></li>`).join("") + "</ul>"
    );
  }
  if (L.unknown_problems.length) {
    notes.push(`${L.unknown_problems.length} decision(s) name problems that are not in this run ` +
      `(kept in the file): <code>${esc(L.unknown_problems.slice(0, 5).join(", "))}</code>`);
  }
  banner(notes.join("<br>"));
}

function matches(p, f) {
  if (f.subject && String(p.subject) !== f.subject) return false;
  if (f.level && String(p.level) !== f.level) return false;
  if (f.difficulty_tier && String(p.difficulty_tier) !== f.difficulty_tier) return false;
  if (f.quality_level && String(p.quality_level) !== f.quality_level) return false;
  const action = p.decision ? p.decision.action : null;
  const reviewed = action === "accept" || action === "reject";
  if (f.reviewed === "yes" && !reviewed) return false;
  if (f.reviewed === "no" && reviewed) return false;
  if (f.reviewed === "accepted" && action !== "accept") return false;
  if (f.reviewed === "rejected" && action !== "reject") return false;
  if (f.reviewed === "noted" && !(p.decision && p.decision.notes.length)) return false;
  if (f.q) {
    const hay = `${p.id} ${p.preview} ${p.models.join(" ")}`.toLowerCase();
    if (!hay.includes(f.q.toLowerCase())) return false;
  }
  return true;
}
function filtered() { return state.list.problems.filter((p) => matches(p, state.filters)); }

function statusCell(p) {
  const d = p.decision;
  const notes = d && d.notes.length ? ` <span class="pill note" title="${d.notes.length} note(s)">✎${d.notes.length}</span>` : "";
  if (!d || d.action === "annotate" || d.action === "clear") return `<span class="pill todo">to review</span>${notes}`;
  if (d.action === "reject") return `<span class="pill rejected">rejected</span>${notes}`;
  const which = p.accepted_index ? `#${p.accepted_index}` : "(unknown candidate)";
  return `<span class="pill accepted">accepted ${esc(which)}</span>${notes}`;
}

function selectHtml(key, label, values, extra = []) {
  const cur = state.filters[key] || "";
  const opts = [`<option value="">${esc(label)}: all</option>`]
    .concat(extra.map(([v, t]) => `<option value="${esc(v)}"${cur === v ? " selected" : ""}>${esc(t)}</option>`))
    .concat(values.map((v) => `<option value="${esc(v)}"${cur === String(v) ? " selected" : ""}>${esc(label)}: ${esc(v)}</option>`));
  return `<select id="f-${key}" data-filter="${key}" aria-label="${esc(label)}">${opts.join("")}</select>`;
}

function showList() {
  const L = state.list;
  const rows = filtered();
  state.cursor = Math.min(state.cursor, Math.max(0, rows.length - 1));
  const qualityValues = L.facets.quality_level.map(String);
  $("#app").innerHTML = `
    <section class="filters">
      ${selectHtml("subject", "subject", L.facets.subject)}
      ${selectHtml("level", "level", L.facets.level)}
      ${selectHtml("difficulty_tier", "tier", L.facets.difficulty_tier)}
      ${selectHtml("quality_level", "quality", qualityValues.map((v) => v))}
      ${selectHtml("reviewed", "status", [], [["no", "not reviewed"], ["yes", "reviewed"], ["accepted", "accepted"], ["rejected", "rejected"], ["noted", "with notes"]])}
      <input id="f-q" data-filter="q" type="search" placeholder="search id / text / model  (/)" value="${esc(state.filters.q || "")}">
      <span class="muted" id="shown">${rows.length} of ${L.total} shown</span>
    </section>
    <table class="problems">
      <thead><tr><th>#</th><th>problem</th><th>subject</th><th>level</th><th>tier</th><th>best quality</th>
        <th>candidates</th><th>status</th></tr></thead>
      <tbody>${rows.map((p, i) => `
        <tr data-id="${esc(p.id)}" class="${i === state.cursor ? "cursor" : ""}">
          <td class="muted">${L.problems.indexOf(p) + 1}</td>
          <td><a href="${problemHash(p.id)}"><code>${esc(p.id)}</code></a><div class="preview">${esc(p.preview)}</div></td>
          <td>${fmt(p.subject)}</td><td>${fmt(p.level)}</td><td>${fmt(p.difficulty_tier)}</td>
          <td>${p.quality_level ? `<span class="ql ql${p.quality_level}">L${p.quality_level}</span>` : "—"}
              <span class="muted">${fmt(p.best_score)}</span></td>
          <td>${p.n_candidates}</td><td>${statusCell(p)}</td>
        </tr>`).join("")}
      </tbody>
    </table>
    ${rows.length ? "" : `<p class="muted empty">No problem matches these filters.</p>`}`;
  for (const el of document.querySelectorAll("[data-filter]")) {
    el.addEventListener(el.tagName === "INPUT" ? "input" : "change", () => {
      state.filters[el.dataset.filter] = el.value;
      state.cursor = 0;
      const focusId = el.id;
      history.replaceState(null, "", listHash());
      showList();
      const again = document.getElementById(focusId);
      if (again && again.tagName === "INPUT") { again.focus(); again.setSelectionRange(again.value.length, again.value.length); }
    });
  }
  for (const el of document.querySelectorAll(".preview")) renderMathIn(el, true);
  for (const tr of document.querySelectorAll("tr[data-id]")) {
    tr.addEventListener("click", (ev) => { if (ev.target.tagName !== "A") location.hash = problemHash(tr.dataset.id); });
  }
  document.title = `limo review — ${L.reviewed}/${L.total}`;
}

function moveCursor(delta) {
  const rows = document.querySelectorAll("tr[data-id]");
  if (!rows.length) return;
  state.cursor = Math.max(0, Math.min(rows.length - 1, state.cursor + delta));
  rows.forEach((r, i) => r.classList.toggle("cursor", i === state.cursor));
  rows[state.cursor].scrollIntoView({ block: "nearest" });
}

// ---- math + highlights -----------------------------------------------------------------------------------
const ENVS = "align\\*?|aligned|equation\\*?|gather\\*?|multline\\*?|eqnarray\\*?|cases|array|matrix|pmatrix|bmatrix";
const MATH_RE = new RegExp(
  String.raw`\$\$([\s\S]+?)\$\$|\\\[([\s\S]+?)\\\]|\\\(([\s\S]+?)\\\)|(?<![\\$])\$(?!\s)([^$\n]+?)(?<![\s\\])\$(?!\d)` +
    String.raw`|(\\begin\{(${ENVS})\}[\s\S]+?\\end\{\6\})`,
  "g"
);

function mathSegments(text) {
  const segs = [];
  for (const m of text.matchAll(MATH_RE)) {
    const tex = m[1] ?? m[2] ?? m[3] ?? m[4] ?? m[5];
    const display = m[1] !== undefined || m[2] !== undefined || m[5] !== undefined;
    segs.push({ s: m.index, e: m.index + m[0].length, tex, display });
  }
  return segs;
}
function renderTex(tex, display, raw) {
  if (!window.katex) return esc(raw);
  try {
    return katex.renderToString(tex, { displayMode: display, throwOnError: false, strict: "ignore", output: "html" });
  } catch (e) {
    return esc(raw);
  }
}

// Text with $math$ rendered by KaTeX and evidence spans wrapped in <mark>. A span that touches a formula marks
// the whole formula, so highlights never cut a formula in two.
function renderResponse(text, evidence) {
  const segs = mathSegments(text);
  const spans = [];
  const wide = new Set();  // features whose spans cover much of the text (e.g. whole steps): coloured on focus only
  for (const [feature, list] of Object.entries(evidence || {})) {
    let covered = 0;
    for (const [s, e] of list) { spans.push({ s, e, feature }); covered += e - s; }
    if (text.length && covered / text.length > 0.25) wide.add(feature);
  }
  const cuts = new Set([0, text.length]);
  for (const g of segs) { cuts.add(g.s); cuts.add(g.e); }
  const insideMath = (x) => segs.some((g) => x > g.s && x < g.e);
  for (const sp of spans) {
    if (!insideMath(sp.s)) cuts.add(sp.s);
    if (!insideMath(sp.e)) cuts.add(sp.e);
  }
  const points = [...cuts].filter((x) => x >= 0 && x <= text.length).sort((a, b) => a - b);
  const segAt = new Map(segs.map((g) => [g.s, g]));
  let html = "";
  for (let i = 0; i < points.length - 1; i++) {
    const a = points[i], b = points[i + 1];
    if (a === b) continue;
    const seg = segAt.get(a);
    const piece = seg && seg.e === b ? renderTex(seg.tex, seg.display, text.slice(a, b)) : esc(text.slice(a, b));
    const feats = [...new Set(spans.filter((sp) => sp.s < b && sp.e > a).map((sp) => sp.feature))];
    const colour = feats.find((f) => !wide.has(f));
    html += feats.length
      ? `<mark class="hl ${feats.map((f) => `f-${f}`).join(" ")}${colour ? ` c-${colour}` : ""}" title="${esc(feats.join(", "))}">${piece}</mark>`
      : piece;
  }
  return html;
}

function renderMathIn(el, inlineOnly = false) {
  // inlineOnly: one-line previews in the list render display formulas inline
  if (window.renderMathInElement) {
    renderMathInElement(el, {
      delimiters: [
        { left: "$$", right: "$$", display: !inlineOnly },
        { left: "\\[", right: "\\]", display: !inlineOnly },
        { left: "\\(", right: "\\)", display: false },
        { left: "$", right: "$", display: false },
        ...["align", "align*", "aligned", "equation", "equation*", "gather", "gather*", "eqnarray", "eqnarray*"].map(
          (env) => ({ left: `\\begin{${env}}`, right: `\\end{${env}}`, display: true })
        ),
      ],
      throwOnError: false,
      strict: "ignore",
    });
  }
}

function featureStyles(names) {
  // background per feature; when a card focuses one feature, only that one stays coloured
  return names.map((f) => {
    const c = featureColor(f);
    return `.resp:not([data-focus]) mark.hl.c-${f}{background:${c}}\n.resp[data-focus="${f}"] mark.hl.f-${f}{background:${c};outline:1px solid #e65100}`;
  }).join("\n");
}

// ---- one problem -----------------------------------------------------------------------------------------
async function showProblem(id) {
  const P = await api(`/api/problem/${encodeURIComponent(id)}`);
  state.problem = P;
  const prob = P.problem;
  const d = P.decision;
  const action = d ? d.action : null;
  const rows = filtered();
  const pos = rows.findIndex((p) => p.id === id);
  const names = [...new Set(P.candidates.flatMap((c) => Object.keys(c.features || {}).concat(Object.keys(c.evidence || {}))))];
  let style = document.getElementById("feature-style");
  if (!style) { style = document.createElement("style"); style.id = "feature-style"; document.head.appendChild(style); }
  style.textContent = featureStyles(names);

  const meta = [
    ["source", prob.source], ["subject", prob.subject], ["level", prob.level], ["tier", prob.difficulty_tier],
    ["weak pass rate", prob.weak_pass_rate], ["strong pass rate", prob.strong_pass_rate],
  ].filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `<span class="chip"><span class="muted">${k}</span> ${fmt(v)}</span>`).join("");

  let status;
  if (action === "accept") {
    const c = P.candidates.find((c) => c.candidate_id === d.candidate_id);
    status = `<span class="pill accepted">accepted ${c ? `#${c.index} · ${esc(c.candidate_model)}` : esc(d.candidate_id)}</span>`;
  } else if (action === "reject") status = `<span class="pill rejected">rejected: dropped from the dataset</span>`;
  else status = `<span class="pill todo">not reviewed: select keeps the best-scored candidate</span>`;
  const who = d && (action === "accept" || action === "reject")
    ? `<span class="muted">by ${esc(d.reviewer || "anonymous")}, ${new Date(d.ts * 1000).toLocaleString()}</span>` : "";
  const notes = d && d.notes.length
    ? `<ul class="notes">${d.notes.map((n) => `<li>${esc(n.text)} <span class="muted">— ${esc(n.reviewer || "anonymous")}, ${new Date(n.ts * 1000).toLocaleString()}</span></li>`).join("")}</ul>` : "";

  $("#app").innerHTML = `
    <nav class="pnav">
      <a href="${listHash()}">← list <kbd>g</kbd></a>
      <button type="button" id="prev">‹ prev <kbd>k</kbd></button>
      <span class="muted">${pos >= 0 ? `${pos + 1} of ${rows.length} in the filtered list` : `no longer matches the filters (${rows.length} left)`}</span>
      <button type="button" id="next">next <kbd>j</kbd> ›</button>
    </nav>
    <section class="problem">
      <h1><code>${esc(prob.id)}</code></h1>
      <div class="meta">${meta}</div>
      <div class="statement" id="statement">${esc(prob.problem)}</div>
      <div class="gold"><span class="muted">gold answer</span> <span id="gold">${prob.answer == null ? "—" : renderTex(String(prob.answer), false, String(prob.answer))}</span></div>
      ${prob.solution ? `<details><summary>reference solution</summary><div class="statement" id="solution">${esc(prob.solution)}</div></details>` : ""}
    </section>
    <section class="decision ${action || "none"}" id="decision">
      ${status} ${who}
      <span class="spacer"></span>
      <button type="button" id="reject" class="danger">reject problem <kbd>x</kbd></button>
      <button type="button" id="clear" ${action === "accept" || action === "reject" ? "" : "disabled"}>clear <kbd>u</kbd></button>
      <button type="button" id="note-btn">note <kbd>n</kbd></button>
      ${notes}
    </section>
    <section class="candidates" style="--n:${Math.min(P.candidates.length, 3)}">
      ${P.candidates.map((c) => candidateHtml(c, d)).join("")}
    </section>`;
  renderMathIn($("#statement"));
  if ($("#solution")) renderMathIn($("#solution"));
  $("#prev").onclick = () => step(-1);
  $("#next").onclick = () => step(1);
  $("#reject").onclick = () => decide("reject");
  $("#clear").onclick = () => decide("clear");
  $("#note-btn").onclick = openNote;
  for (const btn of document.querySelectorAll("button[data-accept]")) btn.onclick = () => accept(Number(btn.dataset.accept));
  for (const row of document.querySelectorAll("tr[data-feature]")) {
    row.onclick = () => {
      const resp = row.closest(".cand").querySelector(".resp");
      const f = row.dataset.feature;
      const on = resp.dataset.focus === f;
      row.closest("table").querySelectorAll("tr").forEach((r) => r.classList.remove("focus"));
      if (on) { delete resp.dataset.focus; return; }
      resp.dataset.focus = f;
      row.classList.add("focus");
      const first = resp.querySelector(`mark.f-${f}`);
      if (first) first.scrollIntoView({ block: "center", behavior: "smooth" });
    };
  }
  document.title = `${prob.id} — limo review`;
  window.scrollTo(0, 0);
}

function candidateHtml(c, d) {
  const accepted = d && d.action === "accept" && d.candidate_id === c.candidate_id;
  const feats = c.features || {};
  const names = [...new Set(Object.keys(feats).concat(Object.keys(c.evidence || {})))];
  const featRows = names.map((f) => {
    const v = feats[f];
    const n = (c.evidence[f] || []).length;
    const pct = typeof v === "number" ? Math.max(0, Math.min(1, v)) * 100 : 0;
    return `<tr data-feature="${esc(f)}" title="click: show only the passages for ${esc(f)}">
      <td><span class="swatch" style="background:${featureColor(f)}"></span>${esc(f.replace(/_/g, " "))}</td>
      <td class="num">${fmt(v)}</td><td class="barcell"><span class="fbar" style="width:${pct}%"></span></td>
      <td class="num muted">${n ? `${n}×` : ""}</td></tr>`;
  }).join("");
  return `
    <article class="cand ${accepted ? "accepted" : ""}" id="cand-${c.index}" data-candidate="${esc(c.candidate_id)}">
      <header>
        <span class="idx">${c.index}</span>
        <span class="model" title="${esc(c.candidate_id)}">${esc(c.candidate_model ?? "?")}</span>
        ${accepted ? `<span class="pill accepted">ACCEPTED</span>` : ""}
        <span class="spacer"></span>
        <button type="button" data-accept="${c.index}" ${accepted ? "disabled" : ""}>accept <kbd>${c.index <= 9 ? c.index : ""}</kbd></button>
      </header>
      <div class="stats">
        <span class="chip">${fmt(c.completion_tokens)} <span class="muted">tokens</span></span>
        <span class="chip">${c.quality_level ? `<span class="ql ql${c.quality_level}">L${c.quality_level}</span>` : "L—"} <span class="muted">quality</span> ${fmt(c.quality_score)}</span>
        <span class="chip"><span class="muted">rule</span> ${fmt(c.rule_score)}</span>
        <span class="chip"><span class="muted">judge</span> ${fmt(c.judge_score)}</span>
        ${c.finish_reason ? `<span class="chip"><span class="muted">finish</span> ${esc(c.finish_reason)}</span>` : ""}
        ${c.extracted != null ? `<span class="chip"><span class="muted">answer</span> ${renderTex(String(c.extracted), false, String(c.extracted))}</span>` : ""}
      </div>
      ${names.length ? `<table class="features">${featRows}</table>` : `<p class="muted">no rule features in this run</p>`}
      ${c.evidence_error ? `<p class="warn">${esc(c.evidence_error)}</p>` : ""}
      <div class="resp">${renderResponse(c.text, c.evidence)}</div>
    </article>`;
}

// ---- actions ---------------------------------------------------------------------------------------------
async function decide(action, extra = {}) {
  const P = state.problem;
  if (!P) return;
  try {
    const res = await api("/api/decision", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ problem_id: P.problem.id, action, ...extra }),
    });
    const words = { accept: "accepted", reject: "rejected", clear: "cleared", annotate: "note saved" }[action];
    const c = extra.candidate_id ? P.candidates.find((x) => x.candidate_id === extra.candidate_id) : null;
    toast(`Saved: ${words}${c ? ` candidate ${c.index} (${c.candidate_model})` : ""}`);
    await loadList();
    await showProblem(P.problem.id);
    return res;
  } catch (e) {
    toast(`Not saved: ${e.message}`, "err");
  }
}
function accept(n) {
  const c = state.problem && state.problem.candidates[n - 1];
  if (!c) { toast(`There is no candidate ${n}`, "err"); return; }
  decide("accept", { candidate_id: c.candidate_id });
}
function step(delta) {
  // next/previous in the filtered list; if this problem left the list (e.g. "not reviewed" and it was just
  // reviewed), go to the nearest filtered problem after/before it in run order
  const all = state.list.problems.map((p) => p.id);
  const here = all.indexOf(state.problem.problem.id);
  const rows = filtered();
  const pos = rows.findIndex((p) => p.id === state.problem.problem.id);
  let next = pos >= 0 ? rows[pos + delta] : null;
  if (pos < 0) {
    const after = rows.filter((p) => (delta > 0 ? all.indexOf(p.id) > here : all.indexOf(p.id) < here));
    next = delta > 0 ? after[0] : after[after.length - 1];
  }
  if (next) location.hash = problemHash(next.id);
  else toast(delta > 0 ? "Last problem in this list" : "First problem in this list");
}
function openNote() {
  if (!state.problem) return;
  $("#note-problem").textContent = state.problem.problem.id;
  $("#note").hidden = false;
  $("#note-text").value = "";
  $("#note-text").focus();
}
function closeOverlays() {
  let closed = false;
  for (const o of document.querySelectorAll(".overlay")) if (!o.hidden) { o.hidden = true; closed = true; }
  return closed;
}

// ---- keyboard --------------------------------------------------------------------------------------------
document.addEventListener("keydown", (ev) => {
  const tag = (ev.target.tagName || "").toLowerCase();
  if (ev.key === "Escape") {
    if (closeOverlays()) return;
    if (tag === "input" || tag === "select" || tag === "textarea") { ev.target.blur(); return; }
    if (state.route && state.route.view === "problem") location.hash = listHash();
    return;
  }
  if (tag === "input" || tag === "select" || tag === "textarea" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (!$("#note").hidden) return;
  const onProblem = state.route && state.route.view === "problem" && state.problem;
  if (ev.key === "?") { $("#help").hidden = !$("#help").hidden; ev.preventDefault(); return; }
  if (!$("#help").hidden) return;
  if (onProblem) {
    if (ev.key === "j") step(1);
    else if (ev.key === "k") step(-1);
    else if (/^[1-9]$/.test(ev.key)) accept(Number(ev.key));
    else if (ev.key === "x") decide("reject");
    else if (ev.key === "u") decide("clear");
    else if (ev.key === "n") { ev.preventDefault(); openNote(); }
    else if (ev.key === "g") location.hash = listHash();
    else return;
    ev.preventDefault();
  } else if (state.route && state.route.view === "list") {
    const rows = document.querySelectorAll("tr[data-id]");
    if (ev.key === "j") moveCursor(1);
    else if (ev.key === "k") moveCursor(-1);
    else if ((ev.key === "Enter" || ev.key === "o") && rows[state.cursor]) location.hash = problemHash(rows[state.cursor].dataset.id);
    else if (ev.key === "/") { ev.preventDefault(); $("#f-q").focus(); }
    else return;
    ev.preventDefault();
  }
});

document.addEventListener("DOMContentLoaded", () => {
  $("#help-btn").onclick = () => ($("#help").hidden = !$("#help").hidden);
  for (const b of document.querySelectorAll("[data-close]")) b.onclick = closeOverlays;
  $("#note-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("#note-text").value.trim();
    if (!text) { toast("Empty note not saved", "err"); return; }
    $("#note").hidden = true;
    await decide("annotate", { note: text });
  });
  $("#note-text").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("#note-form").requestSubmit();
  });
  window.addEventListener("hashchange", route);
  route();
});
