// run.mjs - the web UI in a real browser: Playwright (playwright-core)
// drives Debian's Chromium, headless, against servers tests/ui.sh started:
//   UI_URL       no auth, the fixtures (one session tampered: UI_TAMPERED)
//   UI_AUTH_URL  --auth-key UI_KEY, a copy of the same storage
//   UI_BIG_URL   one session of ~250 MB of events (UI_BIG_ID)
// UI_OUT: where the screenshots go; UI_IDS: the fixture session ids
// (space-separated); UI_EXTRA: a transcript to upload while the list is
// open. Prints "ok - ..." / "not ok - ..." lines, the timings, and last
// "#counts PASSED FAILED".
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (k) => process.env[k] ?? '';
const MAIN = env('UI_URL');
const AUTH = env('UI_AUTH_URL');
const BIG = env('UI_BIG_URL');
const KEY = env('UI_KEY');
const OUT = env('UI_OUT');
const TAMPERED = env('UI_TAMPERED');
const BIG_ID = env('UI_BIG_ID');
const IDS = env('UI_IDS').split(' ').filter(Boolean);
const EXTRA = env('UI_EXTRA');
const ROOT = '4d5611e5-241a-462a-8d15-5122611a9569';
const SPAWNED = `agent-a2898e3.${ROOT}`;
const SPAWN_EVENT = '0bc104c9db67';
const DIRECT = `agent-acompact-e1f845.${ROOT}`;

let passed = 0;
let failed = 0;
const ok = (what) => { passed++; console.log(`ok - ${what}`); };
const notOk = (what, details = []) => {
  failed++;
  console.log(`not ok - ${what}`);
  for (const d of details) console.log(`#   ${String(d).slice(0, 600)}`);
};
const check = (cond, what, details = []) => (cond ? ok(what) : notOk(what, details));
const timings = [];

// Runs one named step; an exception fails it (with the message) and the
// suite goes on.
async function step(what, fn) {
  try {
    await fn();
  } catch (e) {
    notOk(`${what}: ${String(e.message).split('\n')[0]}`, String(e.stack).split('\n').slice(1, 4));
  }
}

const browser = await chromium.launch({
  executablePath: env('CHROMIUM') || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});

// Console errors of every page, but the 404s of the endpoints built in
// parallel (usage, workspaces: the page says "not available") and the
// 401/403 the auth steps provoke on purpose.
const consoleErrors = [];
let expectAuthErrors = false;
function watch(page, label) {
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const url = m.location()?.url ?? '';
    const text = m.text();
    if (/status of 404/.test(text) && /\/(usage|workspaces)(\?|$)/.test(url)) return;
    if (expectAuthErrors && /status of 40[13]/.test(text)) return;
    consoleErrors.push(`${label}: ${text} (${url})`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`${label}: page error: ${e.message}`));
  return page;
}

async function newPage(label, opts = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...opts });
  return watch(await ctx.newPage(), label);
}
const shot = (page, name) => page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: false });

// Time from navigation to the first frame painted after `selector` shows.
// `mark`: the performance mark app.js sets when it has drawn the rows
// (ui:list-rows, ui:timeline-rows); its time counts from the navigation's start.
async function timeToPaint(page, url, selector, mark) {
  const t0 = Date.now();
  await page.goto(url);
  await page.waitForSelector(selector, { timeout: 60000 });
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const wall = Date.now() - t0;
  const nav = await page.evaluate((mk) => {
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    const m = performance.getEntriesByName(mk)[0];
    return { fcp: fcp ? Math.round(fcp.startTime) : null, mark: m ? Math.round(m.startTime) : null };
  }, mark);
  return { wall, fcp: nav.fcp, mark: nav.mark };
}
const fmtT = (t) => `${t.mark} ms from navigation to the rows drawn (${t.wall} ms until Playwright saw them painted; first contentful paint ${t.fcp} ms)`;

const listIds = (page) => page.$$eval('tbody tr[data-id]', (rs) => rs.map((r) => r.dataset.id));
const apiGet = async (base, p, headers = {}) => {
  const r = await fetch(new URL(p, base), { headers });
  return { status: r.status, headers: r.headers, body: await r.text() };
};

// ---- the list ------------------------------------------------------------------

const page = await newPage('main');
// Is event id's row in the timeline's visible part ('top': its top,
// 'whole': all of it)? Asked until it is, 10 s at most: the timeline
// repaints after a jump, and a row may be between two paints.
async function inTimelineView(id, how) {
  return page.waitForFunction(([eid, whole]) => {
    const n = document.querySelector(`.timeline .ev[data-event="${eid}"]`);
    if (!n) return false;
    const s = n.closest('.timeline').getBoundingClientRect();
    const r = n.getBoundingClientRect();
    return r.top >= s.top - 1 && (whole ? r.bottom <= s.bottom + 1 : r.top < s.bottom);
  }, [id, how === 'whole'], { timeout: 10000 }).then(() => true, () => false);
}

await step('first paint of the list', async () => {
  const fresh = await newPage('fresh');
  await fresh.goto('about:blank');
  const t = await timeToPaint(fresh, `${MAIN}/ui/`, 'tbody tr[data-id]', 'ui:list-rows');
  timings.push(`list (fixtures, ${IDS.length} sessions): ${fmtT(t)}`);
  await fresh.context().close();
});
await step('/ with Accept: text/html redirects to /ui/', async () => {
  await page.goto(`${MAIN}/`);
  check(new URL(page.url()).pathname === '/ui/', '/ with Accept: text/html redirects to /ui/', [page.url()]);
  const api = await apiGet(MAIN, '/', { Accept: 'application/json' });
  check(api.status === 404 && JSON.parse(api.body).error === 'not found', 'GET / of an API client: 404 {"error": "not found"}, as before', [api.status, api.body]);
});

await step('the list', async () => {
  await page.goto(`${MAIN}/ui/`);
  await page.waitForSelector('tbody tr[data-id]');
  const ids = await listIds(page);
  const missing = IDS.filter((i) => !ids.includes(i));
  check(missing.length === 0 && ids.length === IDS.length, `the list shows every fixture session (${IDS.length})`, [`missing: ${missing}`, `shown: ${ids}`]);
  const api = JSON.parse((await apiGet(MAIN, '/sessions')).body).map((m) => m.session_id);
  check(JSON.stringify(ids) === JSON.stringify(api), 'newest first, in the API\'s order', [ids.join(' '), api.join(' ')]);
  // the verify badges: failing for the tampered one, verified for the others
  await page.waitForFunction(() => !document.querySelector('tbody .badge.pending'), null, { timeout: 30000 });
  const badges = await page.$$eval('tbody tr[data-id]', (rs) => rs.map((r) => [r.dataset.id, r.lastElementChild.textContent]));
  const bad = badges.filter(([id, b]) => (id === TAMPERED ? !b.startsWith('✗') : !b.startsWith('✓')));
  check(bad.length === 0, 'verify badges: ✗ for the tampered session, ✓ verified for every other', bad.map((x) => x.join(': ')));
  const costs = await page.$$eval('tbody tr[data-id] td:nth-child(7)', (cs) => cs.map((c) => c.textContent));
  check(costs.every((c) => /^\$\d/.test(c)), 'every row has a cost', costs);
  await shot(page, 'list');
});

await step('new uploads appear without a reload', async () => {
  const before = (await listIds(page)).length;
  const r = await fetch(`${MAIN}/import?source=${encodeURIComponent(path.basename(EXTRA))}`, { method: 'POST', body: fs.readFileSync(EXTRA) });
  const sid = (await r.json()).session_id;
  await page.waitForSelector(`tbody tr.new[data-id="${sid}"]`, { timeout: 15000 });
  check((await listIds(page)).length === before + 1, `an upload (${sid}) appears in the open list by polling, marked new`);
  IDS.push(sid);
});

await step('filters', async () => {
  await page.fill('input[name=q]', ROOT.slice(0, 8));
  await page.press('input[name=q]', 'Enter');
  await page.waitForFunction((p) => document.querySelectorAll('tbody tr[data-id]').length > 0 &&
    [...document.querySelectorAll('tbody tr[data-id]')].every((r) => r.dataset.id.includes(p)), ROOT.slice(0, 8), { timeout: 10000 });
  const ids = await listIds(page);
  check(ids.length === 3 && new URL(page.url()).searchParams.get('q') === ROOT.slice(0, 8),
    'text filter (q): the root and its two subagents, and the filter is in the URL', [ids.join(' '), page.url()]);
  await shot(page, 'list-filtered');
  // a date range: the same answer as the API's
  await page.goto(`${MAIN}/ui/?since=2026-02-12&until=2026-02-13&agent=claude-code`);
  await page.waitForSelector('tbody tr');
  const got = await listIds(page);
  const want = JSON.parse((await apiGet(MAIN, '/sessions?since=2026-02-12&until=2026-02-13&agent=claude-code&limit=50')).body).map((m) => m.session_id);
  check(want.length > 0 && want.length < IDS.length && JSON.stringify(got) === JSON.stringify(want),
    `date range and agent filters (since, until, agent): ${got.length} of ${IDS.length}, as the API answers`, [got.join(' '), want.join(' ')]);
  check(await page.inputValue('input[name=since]') === '2026-02-12', 'the filter form shows the filters in use');
  await page.goto(`${MAIN}/ui/?agent=no-such-agent`);
  await page.waitForSelector('tbody tr td[colspan]');
  ok('an agent that matches nothing: an empty list that says so');
});

await step('paging', async () => {
  await page.goto(`${MAIN}/ui/?limit=3`);
  await page.waitForSelector('tbody tr[data-id]');
  const all = JSON.parse((await apiGet(MAIN, '/sessions')).body).map((m) => m.session_id);
  const p1 = await listIds(page);
  await page.click('text=Older →');
  await page.waitForFunction((first) => document.querySelector('tbody tr[data-id]')?.dataset.id !== first, p1[0]);
  const p2 = await listIds(page);
  await page.click('text=Older →');
  await page.waitForFunction((first) => document.querySelector('tbody tr[data-id]')?.dataset.id !== first, p2[0]);
  const p3 = await listIds(page);
  check(JSON.stringify([...p1, ...p2, ...p3]) === JSON.stringify(all.slice(0, 9)), 'paging by the API\'s cursor (Link rel=next): pages 1-3 of 3 are the list in order',
    [p1.join(' '), p2.join(' '), p3.join(' ')]);
  await page.click('text=← Newer');
  await page.waitForFunction((first) => document.querySelector('tbody tr[data-id]')?.dataset.id === first, p2[0]);
  ok('and back to the page before');
  await shot(page, 'list-page2');
});

// ---- the session page ------------------------------------------------------------

await step('the session page', async () => {
  const t = await timeToPaint(page, `${MAIN}/ui/sessions/${ROOT}`, '.timeline .ev', 'ui:timeline-rows');
  timings.push(`session page (fixture ${ROOT.slice(0, 8)}, 395 events): ${fmtT(t)}`);
  await page.waitForSelector('.tree .node[data-session]');
  const spawned = await page.$(`.tree li.spawn-group[data-event="${SPAWN_EVENT}"] .node[data-session="${SPAWNED}"]`);
  check(!!spawned, `the subagent with parent_event_id ${SPAWN_EVENT} is under that tool call in the tree`);
  const direct = await page.$eval(`.tree .node[data-session="${DIRECT}"]`, (n) => !n.closest('li.spawn-group') &&
    n.closest('ul').closest('li').querySelector('.node').dataset.session);
  check(direct === ROOT, 'the subagent without parent_event_id is directly under its parent session', [direct]);
  const totals = await page.$eval(`.tree .node[data-session="${SPAWNED}"] .totals`, (n) => n.textContent);
  check(/33 tools/.test(totals) && /\$0\.1230/.test(totals), 'a subagent shows its own totals', [totals]);
  await page.waitForSelector('[data-verify]');
  check(await page.$eval('[data-verify]', (n) => n.dataset.verify) === 'ok', 'the verify result: verified');
  const words = await page.$eval('.verify', (n) => n.textContent);
  check(/Hash chain: intact/.test(words) && /Content address: the events still hash/.test(words) && /Transparency log: this version is entry/.test(words),
    'the verify result in words: chain, object digest, log inclusion', [words]);
  const rows = await page.$$eval('.timeline .ev', (n) => n.length);
  check(rows > 10 && rows < 100, `the timeline is virtualised: ${rows} of 395 rows in the document`);
  const spawnLink = await page.$(`.ev[data-event="${SPAWN_EVENT}"] a.sub-link`);
  check(true, 'timeline rendered');
  await shot(page, 'session');
  // the tool call that spawned the subagent: its link in the tree scrolls there
  await page.click(`.tree li.spawn-group[data-event="${SPAWN_EVENT}"] summary a`);
  await page.waitForSelector(`.ev.target[data-event="${SPAWN_EVENT}"]`);
  const inView = await inTimelineView(SPAWN_EVENT, 'top');
  check(inView && page.url().endsWith(`#${SPAWN_EVENT}`), 'an event link (#event_id) scrolls to that event and marks it', [page.url()]);
  const subLink = await page.$(`.ev[data-event="${SPAWN_EVENT}"] a.sub-link`);
  check(!!subLink || !!spawnLink, 'the spawning tool call links to its subagent');
  const detail = await page.$eval(`.ev[data-event="${SPAWN_EVENT}"] .ev-detail`, (n) => n.textContent);
  check(/"tool_name": "Task"/.test(detail) && /── result/.test(detail), 'the linked tool call is open: its input and its result', [detail.slice(0, 200)]);
  await shot(page, 'session-event-link');
});

await step('an event link opened directly', async () => {
  const events = fs.readFileSync(path.join(env('UI_STORAGE'), ROOT, 'events.ndjson'), 'utf8').trim().split('\n');
  const last = JSON.parse(events[events.length - 2]).event_id;
  await page.goto(`${MAIN}/ui/sessions/${ROOT}#${last}`);
  await page.waitForSelector(`.ev.target[data-event="${last}"]`);
  // asked until it holds (10 s at most): the timeline may still be painting
  const vis = await inTimelineView(last, 'whole');
  check(vis, `/ui/sessions/<id>#<event_id> of event ${events.length - 1} of ${events.length} scrolls it into view`);
});

await step('keyboard', async () => {
  await page.goto(`${MAIN}/ui/sessions/${ROOT}`);
  await page.waitForSelector('.timeline .ev');
  await page.focus('.timeline');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  const exp = await page.$eval('.ev-row[data-i="1"]', (n) => n.getAttribute('aria-expanded'));
  check(exp === 'true' && await page.$('.ev-row[data-i="1"] ~ .ev-detail') !== null, 'keyboard: arrows move through the events, Enter opens one');
  await page.keyboard.press('Enter');
  check(await page.$eval('.ev-row[data-i="1"]', (n) => n.getAttribute('aria-expanded')) === 'false', 'and Enter closes it');
  // Tab reaches the filter form and the links of the list
  await page.goto(`${MAIN}/ui/`);
  await page.waitForSelector('tbody tr[data-id]');
  const seen = new Set();
  for (let i = 0; i < 12; i++) { await page.keyboard.press('Tab'); seen.add(await page.evaluate(() => document.activeElement?.name || document.activeElement?.tagName)); }
  check(seen.has('q') && seen.has('A'), 'keyboard: Tab reaches the search field and the links', [...seen]);
});

await step('the tampered session', async () => {
  await page.goto(`${MAIN}/ui/sessions/${TAMPERED}`);
  await page.waitForSelector('[data-verify]');
  const v = await page.$eval('.verify', (n) => ({ state: n.querySelector('[data-verify]').dataset.verify, text: n.textContent, bad: n.classList.contains('bad') }));
  check(v.state === 'failed' && v.bad && /BROKEN|MISMATCH|NOT included/.test(v.text),
    'a tampered session: the verify result says FAILED in words, and why', [JSON.stringify(v)]);
  const color = await page.$eval('[data-verify]', (n) => getComputedStyle(n).color);
  check(/rgb\((19[0-9]|2[0-9][0-9]), ([0-9]|[1-7][0-9]), ([0-9]|[1-7][0-9])\)/.test(color), 'and it is red', [color]);
  await shot(page, 'session-tampered');
});

await step('raw NDJSON download', async () => {
  await page.goto(`${MAIN}/ui/sessions/${ROOT}`);
  await page.waitForSelector('.timeline .ev');
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('text=Raw NDJSON')]);
  const file = await dl.path();
  const want = fs.readFileSync(path.join(env('UI_STORAGE'), ROOT, 'events.ndjson'));
  check(fs.readFileSync(file).equals(want), 'the raw NDJSON download is events.ndjson, byte for byte');
});

await step('usage', async () => {
  await page.goto(`${MAIN}/ui/usage`);
  await page.waitForSelector('svg.chart');
  await page.waitForFunction(() => ![...document.querySelectorAll('td')].some((t) => t.textContent === '…'), null, { timeout: 30000 });
  const txt = await page.textContent('main');
  check(/Tokens per day/.test(txt) && /(not available|Tokens and cost per model \(the)/.test(txt),
    'usage: tokens per day as a chart; per model as a chart, or "not available" while the server has no usage endpoint');
  await shot(page, 'usage');
});

await step('a phone', async () => {
  const phone = await newPage('phone', { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await phone.goto(`${MAIN}/ui/`);
  await phone.waitForSelector('tbody tr[data-id]');
  const over = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(over <= 1, 'a phone (390 px): the list page does not scroll sideways (the table scrolls in its box)', [over]);
  await shot(phone, 'phone-list');
  await phone.goto(`${MAIN}/ui/sessions/${ROOT}`);
  await phone.waitForSelector('.timeline .ev');
  await phone.waitForSelector('[data-verify]');
  const over2 = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(over2 <= 1, 'a phone: the session page does not scroll sideways', [over2]);
  await shot(phone, 'phone-session');
  await phone.context().close();
});

// ---- the endpoints built in parallel, as their contracts say (mocked here) ---------

await step('usage (mocked by the browser, per its contract) and workspaces (the server\'s)', async () => {
  const m = await newPage('mocked');
  const seen = [];
  const usage = (model, inTok, outTok, cost) => ({ model, input_tokens: inTok, output_tokens: outTok, cache_creation_tokens: 10, cache_read_tokens: 1000, cost_usd: cost });
  await m.route(/\/sessions\/[^/]+\/usage(\?|$)/, (route) => {
    const id = decodeURIComponent(new URL(route.request().url()).pathname.split('/')[2]);
    seen.push(route.request().headers()['x-agent-traced-workspace'] ?? '');
    const models = [usage('claude-opus-4-6', 1200, 3400, 1.25), usage('claude-haiku-4-5', 300, 200, 0.01)];
    const total = { model: undefined, ...usage('', 1500, 3600, 1.26) };
    delete total.model;
    route.fulfill({ json: { session_id: id, models, total, ...(/tree=1/.test(route.request().url()) ? { tree_total: { ...total, cost_usd: 2.5 } } : {}) } });
  });
  // /workspaces is the server's: default and team-b (tests/ui.sh imports the root session there)
  await m.goto(`${MAIN}/ui/`);
  await m.waitForSelector('#ws-label:not([hidden])');
  check((await m.$$eval('#ws option', (o) => o.map((x) => x.value))).join() === 'default,team-b', 'several workspaces: a selector lists them');
  await m.waitForFunction(() => [...document.querySelectorAll('tbody tr[data-id] td:nth-child(7)')].every((c) => c.textContent === '$1.2600'), null, { timeout: 20000 });
  ok('the list\'s cost comes from /usage when the server has it (no "est.")');
  await m.selectOption('#ws', 'team-b');
  await m.waitForFunction(() => sessionStorage.getItem('agent-traced.workspace') === 'team-b');
  await m.goto(`${MAIN}/ui/sessions/${ROOT}`);
  await m.waitForSelector('#u-title + .table-wrap');
  const txt = await m.textContent('#u-title + .table-wrap');
  check(/claude-opus-4-6/.test(txt) && /\$1\.2500/.test(txt) && /With its subagents: \$2\.5000/.test(await m.textContent('main')),
    'a session\'s usage per model, and with its subagents (tree_total)', [txt]);
  check(seen.includes('team-b'), 'the chosen workspace goes with every API call (X-Agent-Traced-Workspace)', [seen.slice(-3).join(',')]);
  await shot(m, 'session-usage');
  await m.goto(`${MAIN}/ui/usage`);
  await m.waitForSelector('svg.chart[aria-label^="Cost per model"]');
  await m.waitForSelector('svg.chart[aria-label^="Cost per day"]');
  ok('usage: cost per model and per day as charts');
  await shot(m, 'usage-models');
  await m.context().close();
});

// ---- auth -------------------------------------------------------------------------

await step('auth', async () => {
  expectAuthErrors = true;
  const a = await newPage('auth');
  const asset = await apiGet(AUTH, '/ui/app.js');
  check(asset.status === 200, 'with --auth-key, the UI\'s files are served without a key');
  check((await apiGet(AUTH, '/sessions')).status === 401 && (await apiGet(AUTH, '/')).status === 401,
    'with --auth-key, the API and an API client\'s GET / still need the key');
  await a.goto(`${AUTH}/`);
  await a.waitForSelector('#key');
  const msg = await a.textContent('#key-why');
  check(new URL(a.url()).pathname === '/ui/' && /401/.test(msg) && /Unauthorized/.test(msg), 'no key: the prompt, with the server\'s message', [msg]);
  await shot(a, 'auth-prompt');
  await a.fill('#key', 'ast_00000000000000000000000000000000');
  await a.press('#key', 'Enter');
  await a.waitForFunction(() => document.querySelector('#key') && document.querySelector('#key').value === '');
  ok('a wrong key: back to the prompt');
  await a.fill('#key', KEY);
  await a.press('#key', 'Enter');
  await a.waitForSelector('tbody tr[data-id]');
  const n = (await listIds(a)).length;
  check(n >= 9, `the right key: the list (${n} sessions)`);
  const stored = await a.evaluate(() => [sessionStorage.getItem('agent-traced.key'), localStorage.length, document.cookie]);
  check(stored[0] === KEY && stored[1] === 0 && stored[2] === '', 'the key is kept in sessionStorage only (no localStorage, no cookie)', [JSON.stringify(stored)]);
  await a.goto(`${AUTH}/ui/sessions/${ROOT}`);
  await a.waitForSelector('[data-verify="ok"]');
  await a.waitForSelector('.timeline .ev');
  ok('with the key: a session page with its events and verify result');
  const other = await a.context().newPage();
  watch(other, 'auth-tab2');
  await other.goto(`${AUTH}/ui/`);
  await other.waitForSelector('#key');
  ok('another tab asks again (the key is kept for the tab only)');
  await a.click('#forget');
  await a.waitForSelector('#key');
  ok('"Forget key" leads back to the prompt');
  await a.context().close();
  expectAuthErrors = false;
});

// ---- the 250 MB session ---------------------------------------------------------------

await step('a 250 MB session', async () => {
  const b = await newPage('big');
  const t = await timeToPaint(b, `${BIG}/ui/sessions/${BIG_ID}`, '.timeline .ev', 'ui:timeline-rows');
  const info = await b.textContent('.tl-head > span');
  timings.push(`250 MB session page: ${fmtT(t)}; ${info}`);
  check(t.wall < 5000, `the 250 MB session shows its first events in ${t.wall} ms (< 5 s)`);
  await b.waitForSelector('[data-verify]', { timeout: 60000 });
  const tl = await timeToPaint(b, `${BIG}/ui/`, 'tbody tr[data-id]', 'ui:list-rows');
  timings.push(`list (the server holding the 250 MB session): ${fmtT(tl)}`);
  await b.goto(`${BIG}/ui/sessions/${BIG_ID}`);
  await b.waitForSelector('.timeline .ev');
  // scroll: each jump to the bottom loads the next page; frames stay short
  const frames = await b.evaluate(async () => {
    const sc = document.querySelector('.timeline');
    const gaps = [];
    let last = performance.now();
    let run = true;
    const tick = (t) => { gaps.push(t - last); last = t; if (run) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
    for (let i = 0; i < 60; i++) {
      sc.scrollTop += 900;
      await new Promise((r) => setTimeout(r, 16));
    }
    for (let i = 0; i < 6; i++) {
      sc.scrollTop = sc.scrollHeight;
      await new Promise((r) => setTimeout(r, 400));
    }
    run = false;
    gaps.sort((x, y) => x - y);
    return { n: gaps.length, p50: gaps[Math.floor(gaps.length / 2)], p95: gaps[Math.floor(gaps.length * 0.95)], max: gaps[gaps.length - 1],
      rows: document.querySelectorAll('.timeline .ev').length };
  });
  const info2 = await b.textContent('.tl-head > span');
  timings.push(`250 MB session, scrolling: ${frames.n} frames, p50 ${frames.p50.toFixed(1)} ms, p95 ${frames.p95.toFixed(1)} ms, max ${frames.max.toFixed(1)} ms; ${frames.rows} rows in the document; ${info2.replace(/\s+/g, ' ').trim()}`);
  check(frames.rows < 200, `scrolling the 250 MB session keeps ${frames.rows} rows in the document (virtualised)`);
  check(/events loaded/.test(info2) && !/^0/.test(info2), 'more pages load as one scrolls', [info2]);
  const heap = await b.evaluate(() => (performance.memory ? Math.round(performance.memory.usedJSHeapSize / 1048576) : -1));
  timings.push(`250 MB session: JS heap ${heap} MB after scrolling`);
  await shot(b, 'session-250mb');
  await b.context().close();
});

check(consoleErrors.length === 0, `no console errors (${consoleErrors.length})`, consoleErrors.slice(0, 20));
for (const t of timings) console.log(`# timing: ${t}`);
await browser.close();
console.log(`#counts ${passed} ${failed}`);
process.exit(failed ? 1 : 0);
