// agent-traced web UI: plain modern JavaScript, no framework, no build
// step, nothing fetched but this server's API (see docs/ui.md). The page
// is served without a key; every API call carries the key the user typed
// once (kept in sessionStorage: this tab only).
'use strict';

const KEY_STORE = 'agent-traced.key';
const WS_STORE = 'agent-traced.workspace';
const PAGE_SIZE = 50;        // sessions per list page
const EVENT_PAGE = 1000;     // events per /page request
const ROW_H = 34;            // a timeline row, collapsed (px; app.css --row)
const DETAIL_H = 301;        // an expanded row's detail (app.css .ev-detail + border)
const POLL_MS = 5000;

const $ = (sel, root = document) => root.querySelector(sel);

// el('tag.class', {attr: value, onclick: fn}, child...): a DOM element.
// Text is always set as text, never parsed as HTML.
function el(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const e = document.createElement(tag);
  if (classes.length) e.className = classes.join(' ');
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// ---- formatting ------------------------------------------------------------

const nf = new Intl.NumberFormat('en-US');
const fmtInt = (n) => (typeof n === 'number' && isFinite(n) ? nf.format(Math.round(n)) : '–');
const fmtCost = (c) => (typeof c === 'number' && isFinite(c) ? `$${c < 10 ? c.toFixed(4) : c.toFixed(2)}` : '–');
function fmtTokens(n) {
  if (typeof n !== 'number' || !isFinite(n)) return '–';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return nf.format(n);
}
function fmtDur(s) {
  if (typeof s !== 'number' || !isFinite(s) || s < 0) return '–';
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
function fmtTime(ts) {
  if (typeof ts !== 'number' || !isFinite(ts)) return '–';
  const d = new Date(ts * 1000);
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)}`;
}
const fmtClock = (ts) => (typeof ts === 'number' ? new Date(ts * 1000).toISOString().slice(11, 19) : '');
const fmtBytes = (b) => (b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MB` : b >= 1024 ? `${(b / 1024).toFixed(1)} kB` : `${b} B`);
function sessionDuration(m) {
  if (m.total_duration_ms) return m.total_duration_ms / 1000;
  if (m.started_at && m.ended_at) return Math.max(0, m.ended_at - m.started_at);
  return undefined;
}
const shortId = (id) => (id.length > 24 ? `${id.slice(0, 22)}…` : id);
const sessionUrl = (id, ev) => `/ui/sessions/${encodeURIComponent(id)}${ev ? `#${encodeURIComponent(ev)}` : ''}`;
const apiSession = (id) => `/sessions/${encodeURIComponent(id)}`;

// ---- the API ---------------------------------------------------------------

class AuthError extends Error {}
class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

const auth = {
  get key() { return sessionStorage.getItem(KEY_STORE) || ''; },
  set key(v) { if (v) sessionStorage.setItem(KEY_STORE, v); else sessionStorage.removeItem(KEY_STORE); },
  get workspace() { return sessionStorage.getItem(WS_STORE) || ''; },
  set workspace(v) { if (v) sessionStorage.setItem(WS_STORE, v); else sessionStorage.removeItem(WS_STORE); },
};

let renderGen = 0; // bumped by every navigation: late answers of an old page are dropped

// fetch with the key; 401/403 lead to the key prompt with the server's words.
async function api(path, { raw = false, optional = false, signal } = {}) {
  const headers = {};
  if (auth.key) headers.Authorization = `Bearer ${auth.key}`;
  if (auth.workspace) headers['X-Agent-Traced-Workspace'] = auth.workspace;
  const res = await fetch(path, { headers, signal, cache: 'no-store' });
  if (res.status === 401 || res.status === 403) {
    let msg = `${res.status} ${res.statusText}`;
    try { msg = (await res.json()).error || msg; } catch { /* not JSON */ }
    showKeyPrompt(res.status, msg);
    throw new AuthError(msg);
  }
  if (optional && (res.status === 404 || res.status === 405 || res.status === 501)) return null;
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try { msg = (await res.json()).error || msg; } catch { /* not JSON */ }
    throw new HttpError(res.status, msg);
  }
  return raw ? res : res.json();
}

// Runs fn over items, `n` at a time.
async function pool(items, n, fn) {
  let i = 0;
  const worker = async () => { while (i < items.length) { const k = i++; await fn(items[k], k); } };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

// Optional endpoints (built in parallel: a 404 means "not available here").
let usageAvailable = null; // null: not asked yet
async function sessionUsage(id, tree = false) {
  if (usageAvailable === false) return null;
  const u = await api(`${apiSession(id)}/usage${tree ? '?tree=1' : ''}`, { optional: true });
  if (u === null && usageAvailable === null) usageAvailable = false;
  else if (u) usageAvailable = true;
  return u;
}

// ---- the key prompt and the workspaces --------------------------------------

function showKeyPrompt(status, message) {
  renderGen++;
  stopPolling();
  const main = $('#main');
  const input = el('input', { id: 'key', type: 'password', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'ast_…', required: true, 'aria-describedby': 'key-why' });
  const form = el('form.keyform', {
    'aria-labelledby': 'key-title',
    onsubmit: (e) => {
      e.preventDefault();
      auth.key = input.value.trim();
      firstRoute = true; // the workspaces this key can see
      route();
    },
  },
  el('h1', { id: 'key-title', text: 'This server needs an API key' }),
  el('div.error-box', { id: 'key-why', role: 'alert' },
    el('strong', { text: `${status}: ` }), message),
  el('label', { for: 'key', text: 'API key (Bearer)' }), input,
  el('p.muted', { text: 'Kept in this tab only (sessionStorage) and sent with every API call as Authorization: Bearer.' }),
  el('div.row', null, el('button', { type: 'submit', text: 'Use this key' })));
  main.replaceChildren(form);
  $('#forget').hidden = !auth.key;
  input.focus();
}

async function loadWorkspaces() {
  const label = $('#ws-label');
  let w = null;
  try { w = await api('/workspaces', { optional: true }); } catch (e) { if (e instanceof AuthError) throw e; }
  const list = w && Array.isArray(w.workspaces) ? w.workspaces : [];
  if (list.length < 2) { label.hidden = true; return; }
  const sel = $('#ws');
  sel.replaceChildren(...list.map((x) => el('option', { value: x, text: x, selected: x === auth.workspace })));
  if (!list.includes(auth.workspace)) auth.workspace = list[0];
  sel.value = auth.workspace;
  sel.onchange = () => { auth.workspace = sel.value; route(); };
  label.hidden = false;
}

// ---- routing ---------------------------------------------------------------

let pollTimer = null;
function stopPolling() { if (pollTimer) clearInterval(pollTimer); pollTimer = null; }

function navigate(url, replace = false) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target || a.hasAttribute('download')) return;
  const u = new URL(a.href, location.href);
  if (u.origin !== location.origin || !u.pathname.startsWith('/ui')) return;
  if (u.pathname === location.pathname && u.search === location.search && u.hash) return; // hashchange handles it
  e.preventDefault();
  navigate(u.pathname + u.search + u.hash);
});
window.addEventListener('popstate', () => route());

let firstRoute = true;
async function route() {
  const gen = ++renderGen;
  stopPolling();
  timeline = null;
  $('#forget').hidden = !auth.key;
  const p = location.pathname.replace(/\/+$/, '');
  const m = p.match(/^\/ui\/sessions\/([^/]+)$/);
  for (const a of document.querySelectorAll('[data-nav]'))
    a.toggleAttribute('aria-current', false);
  const nav = m ? null : p === '/ui/usage' ? 'usage' : 'list';
  if (nav) $(`[data-nav="${nav}"]`).setAttribute('aria-current', 'page');
  try {
    if (firstRoute) { firstRoute = false; loadWorkspaces().catch(() => {}); } // beside the page, not before it
    if (m) await renderSession(decodeURIComponent(m[1]), gen);
    else if (nav === 'usage') await renderUsage(gen);
    else await renderList(gen);
  } catch (e) {
    if (e instanceof AuthError || gen !== renderGen) return;
    $('#main').replaceChildren(el('div.error-box', { role: 'alert' }, el('strong', { text: 'Error: ' }), e.message));
  }
}

$('#forget').addEventListener('click', () => { auth.key = ''; auth.workspace = ''; firstRoute = true; route(); });

// ---- the session list ------------------------------------------------------

const listState = { cursors: [''], page: 0 }; // cursors[i]: the cursor of page i
const rowInfo = new Map(); // session id -> {verify, cost, costEstimated}

function listQuery() {
  const q = new URLSearchParams(location.search);
  const out = new URLSearchParams();
  for (const k of ['agent', 'since', 'until', 'q']) if (q.get(k)) out.set(k, q.get(k));
  return out;
}

function verifyBadge(v) {
  if (v === undefined) return el('span.badge.pending', { text: '… checking' });
  if (v === null) return el('span.badge.na', { text: 'not available' });
  if (v.error) return el('span.badge.bad', { text: `✗ ${v.error}` });
  const logBad = v.log && v.log.included === false;
  if (v.ok && v.object_ok && !logBad) return el('span.badge.ok', { text: '✓ verified', title: 'hash chain intact, content address matches' + (v.log ? ', in the transparency log' : '') });
  const what = !v.ok ? 'chain broken' : !v.object_ok ? 'digest mismatch' : 'not in log';
  return el('span.badge.bad', { text: `✗ ${what}` });
}

async function renderList(gen) {
  const main = $('#main');
  const q = listQuery();
  const input = (name, type, label, extra = {}) =>
    el('label', null, label, el('input', { name, type, value: q.get(name) || '', ...extra }));
  const form = el('form.filters', {
    role: 'search',
    onsubmit: (e) => {
      e.preventDefault();
      const f = new FormData(form);
      const u = new URLSearchParams();
      for (const [k, v] of f) if (String(v).trim()) u.set(k, String(v).trim());
      listState.cursors = [''];
      listState.page = 0;
      navigate(`/ui/${u.toString() ? `?${u}` : ''}`);
    },
  },
  input('q', 'search', 'Search (id, agent, command)', { placeholder: 'text' }),
  input('agent', 'text', 'Agent', { placeholder: 'claude-code', size: 14 }),
  input('since', 'date', 'From'),
  input('until', 'date', 'Until'),
  el('button', { type: 'submit', text: 'Filter' }),
  q.toString() ? el('a.button', { href: '/ui/', text: 'Clear' }) : null);

  const tbody = el('tbody');
  const status = el('p.muted', { 'aria-live': 'polite' });
  const prev = el('button', { type: 'button', text: '← Newer' });
  const next = el('button', { type: 'button', text: 'Older →' });
  const pageLabel = el('span.muted');
  main.replaceChildren(
    el('h1', { text: 'Sessions' }), form,
    el('div.table-wrap', null, el('table.cards', { 'aria-label': 'Sessions, newest first' },
      el('thead', null, el('tr', null,
        el('th', { scope: 'col', text: 'Session' }), el('th', { scope: 'col', text: 'Agent' }),
        el('th', { scope: 'col', text: 'Started (UTC)' }), el('th.num', { scope: 'col', text: 'Duration' }),
        el('th.num', { scope: 'col', text: 'Tool calls' }), el('th.num', { scope: 'col', text: 'Tokens' }),
        el('th.num', { scope: 'col', text: 'Cost' }), el('th', { scope: 'col', text: 'Status' }),
        el('th', { scope: 'col', text: 'Verified' }))),
      tbody)),
    el('div.pager', null, prev, next, pageLabel), status);

  let nextCursor = null;
  let shown = [];
  const fetchPage = async () => {
    const u = new URLSearchParams(q);
    const lim = Number(new URLSearchParams(location.search).get('limit'));
    u.set('limit', String(lim >= 1 && lim <= 500 ? Math.floor(lim) : PAGE_SIZE));
    const cur = listState.cursors[listState.page];
    if (cur) u.set('cursor', cur);
    const res = await api(`/sessions?${u}`, { raw: true });
    const link = res.headers.get('Link') || '';
    const mm = link.match(/<([^>]*)>;\s*rel="next"/);
    const list = await res.json();
    return { list, next: mm ? new URL(mm[1], location.href).searchParams.get('cursor') : null };
  };
  const draw = (list, fresh = new Set()) => {
    tbody.replaceChildren(...list.map((m) => sessionRow(m, fresh.has(m.session_id))));
    if (!list.length)
      tbody.append(el('tr', null, el('td', { colspan: 9, text: q.toString() ? 'No session matches these filters.' : 'No sessions yet. Upload one: curl -T session.jsonl /import' })));
    if (list.length && !performance.getEntriesByName('ui:list-rows').length) performance.mark('ui:list-rows');
    prev.disabled = listState.page === 0;
    next.disabled = !nextCursor;
    pageLabel.textContent = `Page ${listState.page + 1}`;
  };
  const fillRows = (list) => pool(list.filter((m) => !rowInfo.has(m.session_id)), 3, async (m) => {
    if (gen !== renderGen) return;
    const info = { verify: undefined };
    rowInfo.set(m.session_id, info);
    const [v, c] = await Promise.allSettled([
      api(`${apiSession(m.session_id)}/verify`),
      sessionCost(m.session_id),
    ]);
    info.verify = v.status === 'fulfilled' ? v.value : v.reason instanceof HttpError && v.reason.status === 404 ? null : { error: v.reason.message };
    if (c.status === 'fulfilled' && c.value) Object.assign(info, c.value);
    const tr = tbody.querySelector(`tr[data-id="${CSS.escape(m.session_id)}"]`);
    if (tr && gen === renderGen) tr.replaceWith(sessionRow(m, tr.classList.contains('new')));
  });

  const load = async () => {
    status.textContent = 'Loading…';
    const r = await fetchPage();
    if (gen !== renderGen) return;
    nextCursor = r.next;
    shown = r.list;
    draw(shown);
    status.textContent = `${r.list.length} session${r.list.length === 1 ? '' : 's'} on this page` + (listState.page === 0 ? ' · new uploads appear here by themselves' : '');
    fillRows(shown).catch(() => {});
  };
  prev.onclick = () => { if (listState.page > 0) { listState.page--; load().catch(showErr); } };
  next.onclick = () => {
    if (!nextCursor) return;
    listState.cursors[listState.page + 1] = nextCursor;
    listState.page++;
    load().catch(showErr);
  };
  const showErr = (e) => { if (!(e instanceof AuthError)) status.textContent = `Error: ${e.message}`; };
  await load();
  // new uploads appear without a reload: poll the first page
  pollTimer = setInterval(async () => {
    if (gen !== renderGen || listState.page !== 0 || document.hidden) return;
    try {
      const r = await fetchPage();
      if (gen !== renderGen) return;
      const known = new Set(shown.map((m) => m.session_id));
      const fresh = new Set(r.list.filter((m) => !known.has(m.session_id)).map((m) => m.session_id));
      const changed = fresh.size || JSON.stringify(r.list) !== JSON.stringify(shown);
      if (!changed) return;
      for (const m of r.list) {
        const old = shown.find((o) => o.session_id === m.session_id);
        if (old && JSON.stringify(old) !== JSON.stringify(m)) rowInfo.delete(m.session_id); // grew: check again
      }
      nextCursor = r.next;
      shown = r.list;
      draw(shown, fresh);
      if (fresh.size) status.textContent = `${fresh.size} new session${fresh.size === 1 ? '' : 's'} arrived`;
      fillRows(shown).catch(() => {});
    } catch { /* the next poll tries again */ }
  }, POLL_MS);
}

// The cost of one session: /usage when the server has it, else the tree's
// estimate (agent-strace's, marked as such).
async function sessionCost(id) {
  const u = await sessionUsage(id);
  if (u && u.total) return { cost: u.total.cost_usd, costEstimated: false };
  const t = await api(`${apiSession(id)}/tree`);
  return { cost: t.tree ? t.tree.cost_usd : undefined, costEstimated: true };
}

function sessionRow(m, isNew) {
  const info = rowInfo.get(m.session_id) || {};
  const agent = m.agent_name || m.command || '';
  const parent = m.parent_session_id ? el('div.sub', null, '↳ subagent of ', shortId(m.parent_session_id)) : null;
  const st = m.errors ? el('span.badge.bad', { text: `✗ ${m.errors} error${m.errors === 1 ? '' : 's'}` })
    : m.ended_at ? el('span.badge.ok', { text: '✓ ok' }) : el('span.badge.warn', { text: '● open' });
  return el(`tr${isNew ? '.new' : ''}`, { 'data-id': m.session_id },
    el('td.sid', null, el('a', { href: sessionUrl(m.session_id), title: m.session_id, text: shortId(m.session_id) }), parent),
    el('td', { 'data-label': 'Agent', text: agent.length > 40 ? `${agent.slice(0, 38)}…` : agent, title: m.command || '' }),
    el('td', { 'data-label': 'Started', text: fmtTime(m.started_at) }),
    el('td.num', { 'data-label': 'Duration', text: fmtDur(sessionDuration(m)) }),
    el('td.num', { 'data-label': 'Tool calls', text: fmtInt(m.tool_calls || 0) }),
    el('td.num', { 'data-label': 'Tokens', text: fmtTokens(m.total_tokens || 0), title: `${fmtInt(m.total_tokens || 0)} tokens` }),
    el('td.num', { 'data-label': 'Cost', text: info.cost === undefined ? '…' : fmtCost(info.cost) + (info.costEstimated ? ' est.' : ''),
      title: info.costEstimated ? "agent-strace's estimate from event sizes" : 'from the usage the transcript recorded' }),
    el('td', { 'data-label': 'Status' }, st),
    el('td', { 'data-label': 'Verified' }, verifyBadge(info.verify)));
}

// ---- the session page ------------------------------------------------------

let timeline = null; // the current page's timeline (for hash changes)

async function renderSession(id, gen) {
  const main = $('#main');
  main.replaceChildren(el('p.muted', { text: 'Loading session…' }));
  // the first page of events is asked for beside the meta, before anything heavier
  const firstPage = api(`${apiSession(id)}/page?offset=0&limit=${EVENT_PAGE}`, { raw: true, optional: true });
  firstPage.catch(() => {});
  const meta = await api(apiSession(id));
  if (gen !== renderGen) return;
  const sid = meta.session_id;
  document.title = `${shortId(sid)} · agent-traced`;
  const verifyBox = el('section.panel.verify', { 'aria-labelledby': 'v-title' },
    el('h2', { id: 'v-title', text: 'Verification' }), el('p.muted', { text: 'Checking the hash chain, the content address and the log…' }));
  const treeBox = el('section.panel.tree', { 'aria-labelledby': 't-title' },
    el('h2', { id: 't-title', text: 'Subagents' }), el('p.muted', { text: 'Loading…' }));
  const usageBox = el('section.panel', { 'aria-labelledby': 'u-title' }, el('h2', { id: 'u-title', text: 'Usage by model' }),
    el('p.muted', { text: 'Loading…' }));
  const costDd = el('dd', { text: '…' });
  const download = el('a.button', { href: `${apiSession(sid)}/events`, download: `${sid}.ndjson`, text: '⬇ Raw NDJSON' });
  download.addEventListener('click', (e) => downloadRaw(e, sid, download));
  const fact = (k, v) => el('div', null, el('dt', { text: k }), v instanceof Node ? v : el('dd', { text: v }));
  const tlBox = el('section', { 'aria-labelledby': 'tl-title' });
  main.replaceChildren(
    el('p', null, el('a', { href: '/ui/', text: '← Sessions' }),
      meta.parent_session_id ? [' · subagent of ', el('a.mono', { href: sessionUrl(meta.parent_session_id, meta.parent_event_id || ''), text: meta.parent_session_id })] : null),
    el('h1', { text: sid }),
    el('dl.facts', null,
      fact('Agent', meta.agent_name || '–'), fact('Started (UTC)', fmtTime(meta.started_at)),
      fact('Duration', fmtDur(sessionDuration(meta))), fact('Tool calls', fmtInt(meta.tool_calls || 0)),
      fact('LLM requests', fmtInt(meta.llm_requests || 0)), fact('Tokens', fmtInt(meta.total_tokens || 0)),
      fact('Cost', costDd), fact('Errors', fmtInt(meta.errors || 0))),
    meta.command ? el('p.muted.mono', { text: meta.command }) : null,
    el('p', null, download),
    el('div.cols', null, el('div.stack', null, verifyBox, usageBox), treeBox),
    tlBox);

  timeline = new Timeline(sid, tlBox, gen, firstPage);
  const tl = timeline;
  // the verify (hashes every byte) and the tree (its cost estimate reads every
  // event) of a large session are slow: asked for once the first rows show
  await Promise.race([tl.start(), new Promise((r) => setTimeout(r, 1500))]).catch(() => {});
  if (gen !== renderGen) return;
  const tasks = [
    Promise.all([api(`${apiSession(sid)}/verify`), api(`${apiSession(sid)}/versions`, { optional: true }).catch(() => null)]).then(
      ([v, h]) => { if (gen === renderGen) { showVerify(verifyBox, v, h); tl.markBroken(v); } },
      (e) => gen === renderGen && !(e instanceof AuthError) && showVerify(verifyBox, { error: e.message, status: e.status })),
    loadFamily(meta).then((t) => { if (gen === renderGen) { showTree(treeBox, t, sid, meta); tl.setSpawns(t.spawns); } }),
    sessionUsage(sid, true).then((u) => gen === renderGen && showUsage(usageBox, costDd, u, sid)),
    tl.started,
  ];
  await Promise.allSettled(tasks);
}

async function downloadRaw(e, sid, a) {
  if (!auth.key && !auth.workspace) return; // a plain link does it
  e.preventDefault();
  a.textContent = '⬇ Downloading…';
  try {
    const res = await api(`${apiSession(sid)}/events`, { raw: true });
    const url = URL.createObjectURL(await res.blob());
    const tmp = el('a', { href: url, download: `${sid}.ndjson` });
    document.body.append(tmp);
    tmp.click();
    tmp.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } finally {
    a.textContent = '⬇ Raw NDJSON';
  }
}

function showVerify(box, v, history) {
  const items = [];
  const li = (good, title, text) => el(`li.${good ? 'ok' : 'bad'}`, null,
    el('span.mark', { 'aria-hidden': 'true', text: good ? '✓' : '✗' }), el('strong', { text: `${title}: ` }), text);
  let allOk;
  if (v.error && v.status === 404) { // a session made by POST /sessions without events
    box.classList.remove('bad');
    box.replaceChildren(el('h2', { id: 'v-title' }, 'Verification ', el('span.badge.na', { 'data-verify': 'none', text: '– no events' })),
      el('p.muted', { text: 'This session has no events yet: there is nothing to verify.' }));
    return;
  }
  if (v.error) {
    allOk = false;
    items.push(li(false, 'Not verified', v.status === 404 ? 'this session has no events to check' : v.error));
  } else {
    items.push(li(v.ok, 'Hash chain', v.ok
      ? `intact: each of the ${fmtInt(v.total_events)} events carries the SHA-256 of the one before it.`
      : `BROKEN at event ${typeof v.broken_at === 'number' ? fmtInt(v.broken_at + 1) : '?'}${v.broken_event_id ? ` (${v.broken_event_id})` : ''}: its prev_hash is not the SHA-256 of the event before it, so an event before it was changed, removed or inserted after it was written.`));
    items.push(li(v.object_ok, 'Content address', v.object_ok
      ? `the events still hash to their stored digest sha256:${v.events_sha256}.`
      : `MISMATCH: the events no longer hash to their stored digest (now sha256:${v.events_sha256}).`));
    if (v.log) {
      items.push(li(v.log.included, 'Transparency log', v.log.included
        ? `this version is entry ${v.log.index} of the signed log (checkpoint of ${v.log.checkpoint_size} entries).`
        : 'this version is NOT included in the signed log.'));
    } else {
      items.push(el('li', null, el('span.mark', { text: '–' }), el('strong', { text: 'Transparency log: ' }), 'not kept by this server.'));
    }
    allOk = v.ok && v.object_ok && (!v.log || v.log.included);
    const vs = history && Array.isArray(history.versions) ? history.versions : [];
    const ext = vs.filter((x) => x.cause === 'external');
    if (ext.length) {
      const last = ext[ext.length - 1];
      items.push(el('li.warn', null, el('span.mark', { 'aria-hidden': 'true', text: '!' }), el('strong', { text: 'History: ' }),
        `version ${last.version} of ${vs.length} was not written through this server: events.ndjson changed on disk (${fmtTime(last.time)} UTC). `,
        'Earlier versions stay readable by their digest.'));
    } else if (vs.length) {
      items.push(li(true, 'History', `${vs.length} version${vs.length === 1 ? '' : 's'}, all written through this server (${[...new Set(vs.map((x) => x.cause))].join(', ')}).`));
    }
  }
  box.classList.toggle('bad', !allOk);
  box.replaceChildren(el('h2', { id: 'v-title' }, 'Verification ',
    allOk ? el('span.badge.ok', { 'data-verify': 'ok', text: '✓ verified' }) : el('span.badge.bad', { 'data-verify': 'failed', text: '✗ FAILED' })),
  el('ul', null, items),
  v.head ? el('p.muted.mono', { text: `head ${v.head}` }) : null);
}

// The tree of the session's family: from its root (walking up
// parent_session_id), so that a subagent's page shows its siblings too.
async function loadFamily(meta) {
  let rootId = meta.session_id;
  let m = meta;
  for (let i = 0; i < 6 && m.parent_session_id; i++) {
    try { m = await api(apiSession(m.parent_session_id)); rootId = m.session_id; } catch (e) { if (e instanceof AuthError) throw e; break; }
  }
  const t = await api(`${apiSession(rootId)}/tree`);
  const spawns = new Map(); // parent_event_id -> child nodes
  const walk = (n) => { for (const c of n.children || []) { if (c.parent_event_id) { if (!spawns.has(c.parent_event_id)) spawns.set(c.parent_event_id, []); spawns.get(c.parent_event_id).push(c); } walk(c); } };
  if (t.tree) walk(t.tree);
  return { ...t, spawns };
}

function showTree(box, t, current, meta) {
  const totals = (n) => el('span.totals', null,
    `${fmtInt(n.tool_calls)} tools · ${fmtInt(n.llm_requests)} LLM · ${fmtCost(n.cost_usd)} est. · ${fmtDur(n.duration_s)} · `,
    n.errors ? el('strong', { text: `✗ ${n.errors} errors` }) : '✓ ok');
  const nodeLabel = (n) => el(`span.node${n.session_id === current ? '.current' : ''}`, { 'data-session': n.session_id },
    el('a.mono', { href: sessionUrl(n.session_id), text: shortId(n.session_id), title: n.session_id,
      'aria-current': n.session_id === current ? 'page' : null }),
    el('span', { text: n.agent ? n.agent.slice(0, 30) : '' }), totals(n));
  const render = (n) => {
    const direct = (n.children || []).filter((c) => !c.parent_event_id);
    const byEvent = new Map();
    for (const c of n.children || []) if (c.parent_event_id) { if (!byEvent.has(c.parent_event_id)) byEvent.set(c.parent_event_id, []); byEvent.get(c.parent_event_id).push(c); }
    const kids = [];
    for (const [eid, cs] of byEvent) {
      kids.push(el('li.spawn-group', { 'data-event': eid },
        el('details', { open: true },
          el('summary.spawn', null, 'tool call ', el('a', { href: sessionUrl(n.session_id, eid), text: `#${eid}`, title: 'the tool call that spawned it' }),
            el('span.tool-desc', { 'data-event': eid })),
          el('ul', null, cs.map(render)))));
    }
    for (const c of direct) kids.push(render(c));
    if (!kids.length) return el('li', null, nodeLabel(n));
    return el('li', null, el('details', { open: true }, el('summary', null, nodeLabel(n)), el('ul', null, kids)));
  };
  const head = el('h2', { id: 't-title', text: `Subagents (${Math.max(0, (t.total_sessions || 1) - 1)})` });
  if (!t.tree) { box.replaceChildren(head, el('p.muted', { text: 'No tree.' })); return; }
  box.replaceChildren(head,
    el('p.muted', { text: `Whole tree: ${fmtInt(t.total_sessions)} sessions, ${fmtInt(t.total_tool_calls)} tool calls, ${fmtInt(t.total_llm_requests)} LLM requests, ${fmtCost(t.total_cost_usd)} (agent-strace's estimate).` }),
    el('ul', null, render(t.tree)));
  // name the spawning tool calls (their description) when the index has them
  for (const span of box.querySelectorAll('.tool-desc')) {
    const eid = span.dataset.event;
    const owner = span.closest('li.spawn-group').parentElement.closest('li').querySelector('.node').dataset.session;
    api(`${apiSession(owner)}/events/${encodeURIComponent(eid)}`, { optional: true }).then((r) => {
      const d = r && r.event && r.event.data;
      if (d) span.textContent = ` ${d.tool_name || ''}${d.arguments && d.arguments.description ? `: ${d.arguments.description}` : ''}`;
    }, () => {});
  }
}

function showUsage(box, costDd, u, sid) {
  const head = el('h2', { id: 'u-title', text: 'Usage by model' });
  if (!u) {
    box.replaceChildren(head, el('p.muted', { text: 'Per-model usage is not available on this server; the cost shown is agent-strace\'s estimate from event sizes.' }));
    api(`${apiSession(sid)}/tree`).then((t) => { costDd.textContent = t.tree ? `${fmtCost(t.tree.cost_usd)} est.` : '–'; }, () => { costDd.textContent = '–'; });
    return;
  }
  costDd.textContent = fmtCost(u.total && u.total.cost_usd);
  const rows = (u.models || []).map((m) => el('tr', null, el('td.mono', { text: m.model }),
    el('td.num', { text: fmtInt(m.input_tokens) }), el('td.num', { text: fmtInt(m.output_tokens) }),
    el('td.num.opt', { text: fmtInt(m.cache_creation_tokens) }), el('td.num.opt', { text: fmtInt(m.cache_read_tokens) }),
    el('td.num', { text: fmtCost(m.cost_usd) })));
  const t = u.total || {};
  rows.push(el('tr', null, el('th', { scope: 'row', text: 'total' }), el('td.num', { text: fmtInt(t.input_tokens) }),
    el('td.num', { text: fmtInt(t.output_tokens) }), el('td.num.opt', { text: fmtInt(t.cache_creation_tokens) }),
    el('td.num.opt', { text: fmtInt(t.cache_read_tokens) }), el('td.num', { text: fmtCost(t.cost_usd) })));
  box.replaceChildren(head, el('div.table-wrap', null, el('table', null,
    el('thead', null, el('tr', null, ['Model', 'Input', 'Output', 'Cache write', 'Cache read', 'Cost'].map((h, i) => el(`th${i ? '.num' : ''}${i === 3 || i === 4 ? '.opt' : ''}`, { scope: 'col', text: h })))),
    el('tbody', null, rows))),
  u.tree_total ? el('p.muted', { text: `With its subagents: ${fmtCost(u.tree_total.cost_usd)}, ${fmtTokens((u.tree_total.input_tokens || 0) + (u.tree_total.output_tokens || 0))} input + output tokens.` }) : null);
}

// ---- the timeline: pages of events, virtualised rows ----------------------

function summarize(line, n) {
  let e;
  try { e = JSON.parse(line); } catch (err) {
    return { n, id: '', type: 'unreadable', ts: undefined, text: line.slice(0, 200), err: true, line };
  }
  const d = e.data && typeof e.data === 'object' ? e.data : {};
  const s = { n, id: e.event_id || '', type: e.event_type || '?', ts: e.timestamp, line, dur: e.duration_ms };
  const one = (x) => String(x ?? '').replace(/\s+/g, ' ').trim().slice(0, 300);
  switch (s.type) {
    case 'user_prompt': s.text = one(d.prompt); break;
    case 'assistant_response': s.text = one(d.text) || '(no text)'; s.model = d.model; break;
    case 'tool_call': {
      s.tool = d.tool_name || '?';
      s.callId = d.request_id;
      const a = d.arguments || {};
      s.text = one(a.description || a.command || a.file_path || a.pattern || a.prompt || JSON.stringify(a));
      break;
    }
    case 'tool_result':
      s.resultOf = d.tool_use_id;
      s.text = one(d.content_preview ?? d.content ?? d.output ?? '');
      if (d.is_error || d.error) s.err = true;
      break;
    case 'error': s.err = true; s.text = one(d.message || d.error || JSON.stringify(d)); break;
    case 'session_end': s.text = `${fmtInt(d.tool_calls)} tool calls · ${fmtInt(d.total_tokens)} tokens`; if (d.duration_ms) s.dur = d.duration_ms; break;
    default: s.text = one(JSON.stringify(d));
  }
  if (d.is_error === true || d.error) s.err = true;
  return s;
}

class Timeline {
  constructor(sid, box, gen, firstPage) {
    this.sid = sid;
    this.firstPage = firstPage; // a promise of the response for offset 0 (or undefined)
    this.gen = gen;
    this.events = [];
    this.byId = new Map();
    this.calls = new Map(); // tool request id -> index of the call
    this.spawns = new Map();
    this.expanded = new Set(); // indexes, kept sorted when read
    this.offset = 0;
    this.total = null;
    this.done = false;
    this.loading = null;
    this.target = -1;
    this.focusIdx = -1;
    this.info = el('span.muted', { 'aria-live': 'polite' });
    this.more = el('button', { type: 'button', text: 'Load all', onclick: () => this.loadAll() });
    this.scroller = el('div.timeline', { role: 'list', 'aria-label': 'Events', tabindex: '0' });
    this.spacer = el('div.tl-spacer');
    this.scroller.append(this.spacer);
    box.replaceChildren(el('div.tl-head', null, el('h2', { id: 'tl-title', text: 'Events' }), this.info, this.more), this.scroller);
    this.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    this.scroller.addEventListener('keydown', (e) => this.onKey(e));
    this.pending = false;
    this.rendered = new Map();
  }

  start() {
    this.started = this.started || (async () => {
      await this.loadPage();
      this.paint();
      if (location.hash.length > 1) await this.goTo(decodeURIComponent(location.hash.slice(1)));
    })();
    return this.started;
  }

  // One more page of events (sequential: the next offset comes from the last page).
  loadPage() {
    if (this.done) return Promise.resolve();
    if (this.loading) return this.loading;
    this.loading = (async () => {
      const pre = this.offset === 0 && this.firstPage;
      this.firstPage = undefined;
      const res = await (pre || api(`${apiSession(this.sid)}/page?offset=${this.offset}&limit=${EVENT_PAGE}`, { raw: true, optional: true }));
      if (res === null) { this.done = true; this.total = 0; return; } // no events
      const text = await res.text();
      if (this.gen !== renderGen) return;
      this.total = Number(res.headers.get('X-Total-Bytes'));
      const next = Number(res.headers.get('X-Next-Offset'));
      let start = 0;
      while (start < text.length) {
        let end = text.indexOf('\n', start);
        if (end < 0) end = text.length;
        if (end > start) this.add(summarize(text.slice(start, end), this.events.length));
        start = end + 1;
      }
      this.offset = next;
      this.done = !(next < this.total);
      this.status();
    })().finally(() => { this.loading = null; });
    return this.loading;
  }

  add(s) {
    const i = this.events.length;
    this.events.push(s);
    if (s.id) this.byId.set(s.id, i);
    if (s.type === 'tool_call' && s.callId) this.calls.set(s.callId, i);
    if (s.type === 'tool_result' && s.resultOf && this.calls.has(s.resultOf)) {
      const c = this.events[this.calls.get(s.resultOf)];
      s.tool = c.tool;
      s.callIdx = this.calls.get(s.resultOf);
      if (s.dur === undefined && typeof s.ts === 'number' && typeof c.ts === 'number') s.dur = Math.max(0, (s.ts - c.ts) * 1000);
      c.resultIdx = i;
      c.dur = s.dur;
      if (s.err) c.err = true;
    }
  }

  async loadAll() {
    this.more.disabled = true;
    while (!this.done && this.gen === renderGen) { await this.loadPage(); this.paint(); }
  }

  status() {
    const n = fmtInt(this.events.length);
    this.info.textContent = this.done
      ? `${n} events${this.total ? ` · ${fmtBytes(this.total)}` : ''}`
      : `${n} events loaded · ${fmtBytes(this.offset)} of ${fmtBytes(this.total)} · more load as you scroll`;
    this.more.hidden = this.done;
  }

  markBroken(v) {
    if (!v || v.ok || typeof v.broken_at !== 'number') return;
    this.brokenAt = v.broken_at;
    this.rendered.get(v.broken_at)?.remove();
    this.rendered.delete(v.broken_at);
    this.paint();
  }

  setSpawns(spawns) { this.spawns = spawns; this.redraw(); }

  // Drops every drawn row (their content changed) and draws again.
  redraw() {
    const had = document.activeElement && document.activeElement.closest('.ev-row');
    for (const node of this.rendered.values()) node.remove();
    this.rendered.clear();
    this.paint();
    if (had) this.focusRow(Number(had.dataset.i));
  }

  expandedBefore(i) { let k = 0; for (const x of this.expanded) if (x < i) k++; return k; }
  top(i) { return i * ROW_H + this.expandedBefore(i) * DETAIL_H; }
  height() { return this.top(this.events.length); }
  indexAt(y) { // the row at pixel y
    const ex = [...this.expanded].sort((a, b) => a - b);
    let extra = 0;
    for (const x of ex) {
      const rowTop = x * ROW_H + extra;
      if (y < rowTop) break;
      if (y < rowTop + ROW_H + DETAIL_H) return x;
      extra += DETAIL_H;
    }
    return Math.max(0, Math.floor((y - extra) / ROW_H));
  }

  onScroll() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.paint(); });
  }

  // Draws the rows in view (and a few more), reusing the ones drawn before.
  paint() {
    if (this.gen !== renderGen) return;
    this.spacer.style.height = `${this.height()}px`;
    const st = this.scroller.scrollTop;
    const h = this.scroller.clientHeight || 600;
    const first = Math.max(0, this.indexAt(st) - 10);
    const last = Math.min(this.events.length - 1, this.indexAt(st + h) + 10);
    const keep = new Map();
    for (let i = first; i <= last; i++) {
      let node = this.rendered.get(i);
      if (!node) node = this.row(i);
      node.style.top = `${this.top(i)}px`;
      keep.set(i, node);
      if (!node.isConnected) this.spacer.append(node);
    }
    for (const [i, node] of this.rendered) if (!keep.has(i)) node.remove();
    this.rendered = keep;
    if (keep.size && !performance.getEntriesByName('ui:timeline-rows').length) performance.mark('ui:timeline-rows');
    if (!this.done && last >= this.events.length - 50) this.loadPage().then(() => this.paint(), () => {});
  }

  row(i) {
    const s = this.events[i];
    const open = this.expanded.has(i);
    const kids = s.type === 'tool_call' && this.spawns.get(s.id);
    const broken = i === this.brokenAt;
    const cls = `ev t-${s.type}${s.err || broken ? ' err' : ''}${i === this.target ? ' target' : ''}`;
    const sum = el('span.ev-sum', null,
      s.tool ? el('span.tool', { text: `${s.tool} ` }) : null,
      s.type === 'tool_result' && s.callIdx !== undefined ? '↩ ' : '',
      s.text || '',
      s.err ? el('strong', { text: ' (error)' }) : null);
    if (broken) sum.prepend(el('strong.chain-broken', { text: '✗ hash chain broken here · ' }));
    const row = el('div.ev-row', { role: 'button', tabindex: '-1', 'aria-expanded': open ? 'true' : 'false', 'data-i': i,
      onclick: (e) => { if (!e.target.closest('a')) this.toggle(i); } },
    el('span.ev-tog', { 'aria-hidden': 'true', text: open ? '▾' : '▸' }),
    el('span.ev-num', { text: `${i + 1}` }),
    el('span.ev-time', { text: fmtClock(s.ts) }),
    el('span.ev-type', { text: s.err ? `✗ ${s.type}` : s.type }),
    sum,
    kids ? kids.map((c) => el('a.sub-link', { href: sessionUrl(c.session_id), text: `⤷ subagent ${shortId(c.session_id)}` })) : null,
    s.dur !== undefined ? el('span.ev-dur', { text: fmtDur(s.dur / 1000) }) : null,
    s.id ? el('a.ev-link', { href: sessionUrl(this.sid, s.id), title: `link to event ${s.id}`, 'aria-label': `link to event ${s.id}`, text: '#' }) : null);
    const node = el('div', { class: cls, role: 'listitem', id: s.id ? `ev-${s.id}` : null, 'data-event': s.id || null }, row);
    if (open) node.append(el('pre.ev-detail', { tabindex: '0', 'aria-label': `event ${s.id} in full` }, this.detail(s)));
    return node;
  }

  detail(s) {
    let pretty = s.line;
    try { pretty = JSON.stringify(JSON.parse(s.line), null, 2); } catch { /* shown as stored */ }
    if (s.type === 'tool_call' && s.resultIdx !== undefined) {
      const r = this.events[s.resultIdx];
      let rp = r.line;
      try { rp = JSON.stringify(JSON.parse(r.line).data, null, 2); } catch { /* as stored */ }
      return `${pretty}\n\n── result (event ${r.id}, ${fmtDur((r.dur || 0) / 1000)}) ──\n${rp}`;
    }
    return pretty;
  }

  toggle(i, focus = true) {
    if (this.expanded.has(i)) this.expanded.delete(i); else this.expanded.add(i);
    for (const [k, node] of this.rendered) if (k >= i) { node.remove(); this.rendered.delete(k); }
    this.paint();
    if (focus) this.focusRow(i);
  }

  focusRow(i) {
    this.focusIdx = i;
    const node = this.rendered.get(i);
    const r = node && node.querySelector('.ev-row');
    if (r) r.focus({ preventScroll: true });
  }

  scrollToRow(i) {
    const y = this.top(i);
    const st = this.scroller.scrollTop;
    const h = this.scroller.clientHeight;
    if (y < st || y + ROW_H > st + h) this.scroller.scrollTop = Math.max(0, y - ROW_H * 2);
    this.paint();
  }

  onKey(e) {
    const cur = document.activeElement && document.activeElement.closest('.ev-row');
    let i = cur ? Number(cur.dataset.i) : this.focusIdx;
    if (e.key === 'ArrowDown' || e.key === 'j') i = Math.min(this.events.length - 1, i + 1);
    else if (e.key === 'ArrowUp' || e.key === 'k') i = Math.max(0, i - 1);
    else if (e.key === 'Home') i = 0;
    else if (e.key === 'End') i = this.events.length - 1;
    else if (e.key === 'PageDown') i = Math.min(this.events.length - 1, i + 15);
    else if (e.key === 'PageUp') i = Math.max(0, i - 15);
    else if ((e.key === 'Enter' || e.key === ' ') && cur && !e.target.closest('a')) { e.preventDefault(); this.toggle(i); return; } else return;
    e.preventDefault();
    if (i < 0) i = 0;
    this.scrollToRow(i);
    this.focusRow(i);
  }

  // Scrolls to an event (loading pages until it is there) and opens it.
  async goTo(eid) {
    while (!this.byId.has(eid) && !this.done && this.gen === renderGen) { await this.loadPage(); }
    if (this.gen !== renderGen) return;
    const i = this.byId.get(eid);
    if (i === undefined) { this.info.textContent = `Event ${eid} is not in this session.`; return; }
    const old = this.target;
    this.target = i;
    this.rendered.get(old)?.remove(); this.rendered.delete(old);
    if (!this.expanded.has(i)) this.toggle(i, false);
    this.rendered.get(i)?.remove(); this.rendered.delete(i);
    this.paint();
    this.scroller.scrollTop = Math.max(0, this.top(i) - ROW_H);
    this.paint();
    this.scroller.scrollIntoView({ block: 'nearest' });
    this.focusRow(i);
  }
}

window.addEventListener('hashchange', () => {
  if (timeline && location.hash.length > 1) timeline.goTo(decodeURIComponent(location.hash.slice(1)));
});

// ---- usage -------------------------------------------------------------------

// A bar chart (SVG, no library): values by label, one or two series.
function barChart(labels, series, { title, fmt }) {
  const W = 720, H = 220, L = 64, B = 36, T = 12;
  const max = Math.max(1e-9, ...series.flatMap((s) => s.values));
  const n = labels.length;
  const bw = (W - L - 8) / Math.max(1, n);
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  const mk = (tag, attrs, text) => { const e = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); if (text !== undefined) e.textContent = text; return e; };
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', title);
  svg.append(mk('title', {}, title));
  for (const f of [0, 0.5, 1]) {
    const y = T + (H - T - B) * (1 - f);
    svg.append(mk('line', { x1: L, x2: W, y1: y, y2: y, class: 'axis' }), mk('text', { x: L - 6, y: y + 4, 'text-anchor': 'end' }, fmt(max * f)));
  }
  series.forEach((s, k) => s.values.forEach((v, i) => {
    const h = (H - T - B) * (v / max);
    const w = Math.max(1, bw / series.length - 2);
    const r = mk('rect', { x: L + i * bw + k * (bw / series.length) + 1, y: T + (H - T - B) - h, width: w, height: Math.max(0, h), class: k ? 'bar2' : 'bar' });
    r.append(mk('title', {}, `${labels[i]}: ${s.name} ${fmt(v)}`));
    svg.append(r);
  }));
  const step = Math.max(1, Math.ceil(n / 10));
  labels.forEach((lb, i) => { if (i % step === 0) svg.append(mk('text', { x: L + i * bw + bw / 2, y: H - B + 16, 'text-anchor': 'middle' }, lb)); });
  return svg;
}

async function renderUsage(gen) {
  const main = $('#main');
  main.replaceChildren(el('h1', { text: 'Usage' }), el('p.muted', { text: 'Loading sessions…' }));
  // every session (in pages of 500, up to 5,000)
  const all = [];
  let cursor = '';
  for (let i = 0; i < 10; i++) {
    const res = await api(`/sessions?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { raw: true });
    all.push(...(await res.json()));
    const mm = (res.headers.get('Link') || '').match(/<([^>]*)>;\s*rel="next"/);
    if (!mm) break;
    cursor = new URL(mm[1], location.href).searchParams.get('cursor');
  }
  if (gen !== renderGen) return;
  const byDay = new Map();
  for (const m of all) {
    const day = typeof m.started_at === 'number' ? new Date(m.started_at * 1000).toISOString().slice(0, 10) : 'unknown';
    const d = byDay.get(day) || { tokens: 0, sessions: 0, cost: 0 };
    d.tokens += m.total_tokens || 0;
    d.sessions++;
    byDay.set(day, d);
  }
  const days = [...byDay.keys()].sort();
  const perModel = new Map();
  const costs = new Map();
  const recent = all.slice(0, 200);
  const status = el('p.muted', { 'aria-live': 'polite', text: `${fmtInt(all.length)} sessions.` });
  const modelBox = el('section', null, el('h2', { text: 'Tokens and cost per model' }), el('p.muted', { text: 'Loading…' }));
  const dayBox = el('section', null, el('h2', { text: 'Tokens per day' }),
    days.length ? barChart(days, [{ name: 'tokens', values: days.map((d) => byDay.get(d).tokens) }], { title: 'Tokens per day (UTC)', fmt: fmtTokens }) : el('p.muted', { text: 'No sessions.' }),
    el('p.legend', { text: days.map((d) => `${d}: ${fmtTokens(byDay.get(d).tokens)} tokens in ${byDay.get(d).sessions} session${byDay.get(d).sessions === 1 ? '' : 's'}`).join(' · ') }));
  const costDayBox = el('section', null, el('h2', { text: 'Cost per day' }), el('p.muted', { text: 'Loading…' }));
  const sessBox = el('section', null, el('h2', { text: 'Tokens per session (the 20 largest)' }));
  const top = [...all].sort((a, b) => (b.total_tokens || 0) - (a.total_tokens || 0)).slice(0, 20);
  const maxTok = Math.max(1, ...top.map((m) => m.total_tokens || 0));
  const costCells = new Map();
  sessBox.append(el('div.table-wrap', null, el('table.bars', null,
    el('thead', null, el('tr', null, el('th', { scope: 'col', text: 'Session' }), el('th.num', { scope: 'col', text: 'Tokens' }),
      el('th.num', { scope: 'col', text: 'Cost' }), el('th.opt', { scope: 'col', text: '' }))),
    el('tbody', null, top.map((m) => {
      const bar = el('span.hbar');
      bar.style.width = `${(100 * (m.total_tokens || 0)) / maxTok}%`;
      const cc = el('td.num', { text: '…' });
      costCells.set(m.session_id, cc);
      return el('tr', null, el('td.sid', null, el('a', { href: sessionUrl(m.session_id), text: shortId(m.session_id), title: m.session_id })),
        el('td.num', { text: fmtInt(m.total_tokens || 0) }), cc, el('td.barcell.opt', null, bar));
    })))));
  main.replaceChildren(el('h1', { text: 'Usage' }), status, dayBox, costDayBox, modelBox, sessBox);

  // per-model figures need /sessions/{id}/usage (recorded usage); without it,
  // agent-strace's estimate per session from the tree
  await pool(recent, 4, async (m) => {
    if (gen !== renderGen) return;
    const u = await sessionUsage(m.session_id).catch((e) => { if (e instanceof AuthError) throw e; return null; });
    if (u && u.models) {
      for (const x of u.models) {
        const a = perModel.get(x.model) || { input: 0, output: 0, cache: 0, cost: 0 };
        a.input += x.input_tokens || 0; a.output += x.output_tokens || 0;
        a.cache += (x.cache_creation_tokens || 0) + (x.cache_read_tokens || 0); a.cost += x.cost_usd || 0;
        perModel.set(x.model, a);
      }
      costs.set(m.session_id, { cost: u.total && u.total.cost_usd, est: false });
    } else if (costCells.has(m.session_id)) {
      const t = await api(`${apiSession(m.session_id)}/tree`).catch(() => null);
      costs.set(m.session_id, { cost: t && t.tree ? t.tree.cost_usd : undefined, est: true });
    }
    const c = costCells.get(m.session_id);
    if (c && costs.has(m.session_id)) { const x = costs.get(m.session_id); c.textContent = fmtCost(x.cost) + (x.est ? ' est.' : ''); }
  });
  if (gen !== renderGen) return;
  for (const [id, c] of costCells) if (c.textContent === '…') c.textContent = '–';
  const costByDay = new Map();
  for (const m of recent) {
    const c = costs.get(m.session_id);
    if (!c || c.est || typeof c.cost !== 'number') continue;
    const day = typeof m.started_at === 'number' ? new Date(m.started_at * 1000).toISOString().slice(0, 10) : 'unknown';
    costByDay.set(day, (costByDay.get(day) || 0) + c.cost);
  }
  const cdays = [...costByDay.keys()].sort();
  costDayBox.replaceChildren(el('h2', { text: 'Cost per day' }), cdays.length
    ? barChart(cdays, [{ name: 'cost', values: cdays.map((d) => costByDay.get(d)) }], { title: 'Cost per day (USD, recorded usage)', fmt: (v) => `$${v.toFixed(2)}` })
    : el('p.muted', { text: 'Not available: the cost per day needs the recorded usage (/sessions/{id}/usage), which this server does not have.' }));
  if (!perModel.size) {
    modelBox.replaceChildren(el('h2', { text: 'Tokens and cost per model' }),
      el('p.muted', { text: usageAvailable === false ? 'Per-model usage is not available on this server (no /sessions/{id}/usage).' : 'No per-model usage recorded.' }));
    return;
  }
  const models = [...perModel.keys()].sort((a, b) => perModel.get(b).cost - perModel.get(a).cost);
  modelBox.replaceChildren(el('h2', { text: `Tokens and cost per model (the ${recent.length} newest sessions)` }),
    barChart(models, [{ name: 'cost', values: models.map((k) => perModel.get(k).cost) }], { title: 'Cost per model (USD)', fmt: (v) => `$${v.toFixed(2)}` }),
    el('div.table-wrap', null, el('table', null,
      el('thead', null, el('tr', null, ['Model', 'Input', 'Output', 'Cache', 'Cost'].map((h, i) => el(`th${i ? '.num' : ''}`, { scope: 'col', text: h })))),
      el('tbody', null, models.map((k) => { const a = perModel.get(k); return el('tr', null, el('td.mono', { text: k }), el('td.num', { text: fmtInt(a.input) }), el('td.num', { text: fmtInt(a.output) }), el('td.num', { text: fmtInt(a.cache) }), el('td.num', { text: fmtCost(a.cost) })); })))));
}

route();
