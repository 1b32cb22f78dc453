// Browsers on other origins (issue 20, point 1), in real headless Chromium
// (Debian's chromium driven by playwright-core, lib/browser.js).
//
// switchboard runs with SWITCHBOARD_ALLOWED_ORIGINS set to the origin of a
// small Node static server (lib/static.js) that serves a dashboard page
// (lib/pages/cross_origin.html) and the browser builds of laravel-echo,
// pusher-js, centrifuge-js and @rails/actioncable from node_modules. The page
// differs from switchboard by port, so every call it makes is cross-origin: the
// Pusher channel auth (POST /broadcasting/auth with Authorization: Bearer), the
// centrifuge-js getToken (POST /api/v1/realtime/token), REST, and the three
// WebSockets (/app/{key}, /connection/websocket, /cable). A second static
// server on another port serves the same page from a DISALLOWED origin.
//
//   1. allowed origin: the three clients subscribe to the attendees dashboard
//      and all receive the AttendeeCreated of an attendee created from Node;
//      cross-origin REST fetches (GET, and a PATCH with a JSON body) work.
//   2. disallowed origin: fetch rejects (TypeError), pusher-js channel auth fails
//      with status 0, no client ever connects or receives anything; from Node a
//      WebSocket upgrade with that Origin gets HTTP 403 on each endpoint, one
//      without Origin, with the allowed one or with switchboard's own origin
//      (its own /examples pages) is upgraded.
//   3. from Node: preflights from the allowed origin answer 204 with the CORS
//      headers and need no auth; actual responses (errors too) carry
//      Access-Control-Allow-Origin and Vary: Origin; a disallowed origin gets
//      no Access-Control-Allow-Origin.
//   4. the default list in embedded mode: http://localhost:* and
//      http://127.0.0.1:*, nothing else.
//
// Screenshots: artifacts/cross-origin.png (allowed page after the event),
// artifacts/cross-origin-refused.png (disallowed page).
//
// Run: cd conformance && SWITCHBOARD_BIN=../bin/switchboard node --test test/cross_origin_browser.test.js
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import WebSocket from 'ws';

import {
  test, startServer, launchServer, freePort, mintToken, apiCall, expectStatus, sleep, CONFORMANCE_DIR, APP_KEY,
} from '../lib/server.js';
import { launchChromium, openPage } from '../lib/browser.js';
import { startStaticServer } from '../lib/static.js';

const ARTIFACTS = path.join(CONFORMANCE_DIR, 'artifacts');
const CHANNEL = 'dashboard.project.demo.attendees';
const SUBSCRIBE_TIMEOUT_MS = 10_000;
const EVENT_TIMEOUT_MS = 5_000;
const REFUSED_WATCH_MS = 3_000; // how long the disallowed page is watched for a connection that must never come

const require = createRequire(import.meta.url);
const nm = (p) => path.join(CONFORMANCE_DIR, 'node_modules', p);
const ROUTES = {
  '/': { file: path.join(CONFORMANCE_DIR, 'lib', 'pages', 'cross_origin.html') },
  '/vendor/pusher.js': { file: nm('pusher-js/dist/web/pusher.js') },
  '/vendor/echo.js': { file: nm('laravel-echo/dist/echo.iife.js') },
  '/vendor/centrifuge.js': { file: nm('centrifuge/dist/centrifuge.js') },
  '/vendor/actioncable.js': { file: nm('@rails/actioncable/app/assets/javascripts/actioncable.js') },
  '/favicon.ico': { body: '', type: 'image/x-icon' },
};
const PUSHER_VERSION = require('pusher-js/package.json').version;

let site; // the allowed origin
let evil; // the disallowed origin
let srv;
let browser;
let jane;
let allowedPage;

function cfg() {
  return { base: srv.baseURL, host: srv.host, port: srv.port, appKey: APP_KEY, jwt: jane, channel: CHANNEL };
}

// Endpoints a browser calls over HTTP, with the method it would use.
const HTTP_ROUTES = [
  ['POST', '/broadcasting/auth'],
  ['POST', '/pusher/user-auth'],
  ['POST', '/api/v1/realtime/token'],
  ['GET', '/api/v1/projects/demo/attendees'],
  ['POST', '/api/v1/projects/demo/attendees'],
  ['PATCH', '/api/v1/projects/demo/attendees/1'],
  ['DELETE', '/api/v1/projects/demo/attendees/1'],
];

// preflight sends what Chromium sends before a credential-less cross-origin
// request with an Authorization header and a JSON body: no Authorization.
async function preflight(base, urlPath, origin, method = 'POST') {
  const res = await fetch(base + urlPath, {
    method: 'OPTIONS',
    headers: {
      Origin: origin,
      'Access-Control-Request-Method': method,
      'Access-Control-Request-Headers': 'authorization,content-type',
    },
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

const headerList = (h, name) => (h.get(name) ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);

function describe(res) {
  return `HTTP ${res.status} ${JSON.stringify(Object.fromEntries(res.headers))} ${res.text?.slice(0, 200) ?? ''}`;
}

function assertAllowedPreflight(res, origin, method, what) {
  assert.equal(res.status, 204, `${what}: preflight status (${describe(res)})`);
  assert.equal(res.headers.get('access-control-allow-origin'), origin, `${what}: Access-Control-Allow-Origin (${describe(res)})`);
  const allowHeaders = headerList(res.headers, 'access-control-allow-headers');
  // A literal "*" does not cover Authorization (Fetch standard): it must be named.
  for (const h of ['authorization', 'content-type']) {
    assert.ok(allowHeaders.includes(h), `${what}: Access-Control-Allow-Headers lacks ${h} (${describe(res)})`);
  }
  // GET/POST are CORS-safelisted methods; PATCH/DELETE must be listed.
  if (!['GET', 'HEAD', 'POST'].includes(method)) {
    const methods = headerList(res.headers, 'access-control-allow-methods').map((m) => m.toUpperCase());
    assert.ok(methods.includes(method), `${what}: Access-Control-Allow-Methods lacks ${method} (${describe(res)})`);
  }
}

function assertNoCors(res, what) {
  assert.equal(res.headers.get('access-control-allow-origin'), null, `${what}: no Access-Control-Allow-Origin expected (${describe(res)})`);
}

// wsProbe opens a WebSocket from Node with the `ws` package (which sends no
// Origin unless told) and reports {open: true} or {status} of the refusal.
function wsProbe(url, { origin, protocols } = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols, { ...(origin ? { origin } : {}), handshakeTimeout: 5000 });
    ws.on('open', () => {
      ws.terminate();
      resolve({ open: true });
    });
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: body.slice(0, 200) }));
      res.on('error', () => resolve({ status: res.statusCode, body }));
      req.destroy?.();
    });
    ws.on('error', (err) => resolve({ error: err.message }));
  });
}

function wsEndpoints(s, token) {
  return [
    ['Pusher', `ws://${s.host}:${s.port}/app/${APP_KEY}?protocol=7&client=js&version=${PUSHER_VERSION}&flash=false`, undefined],
    ['Centrifugo', `ws://${s.host}:${s.port}/connection/websocket`, undefined],
    ['ActionCable', `ws://${s.host}:${s.port}/cable?token=${token}`, ['actioncable-v1-json']],
  ];
}

const state = (page) => page.evaluate(() => window.__r);

async function waitPage(page, fn, arg, what, timeout) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 100 });
  } catch (err) {
    throw new Error(`${what} within ${timeout} ms; page state ${JSON.stringify(await state(page))}; page problems ${JSON.stringify(page.problems)}`, { cause: err });
  }
}

before(async () => {
  site = await startStaticServer(ROUTES);
  evil = await startStaticServer(ROUTES);
  srv = await startServer({ env: { SWITCHBOARD_ALLOWED_ORIGINS: site.origin, SWITCHBOARD_RELAY_POLL: '100ms' } });
  const admin = await mintToken({ sub: '1', admin: true }, srv.env);
  jane = await mintToken({ sub: '42', name: 'Jane Smith', projects: ['demo'] }, srv.env);
  expectStatus(await apiCall(srv.baseURL, 'POST', '/api/v1/projects', { slug: 'demo', name: 'Demo' }, { token: admin }), 201, 'create project demo');
  browser = await launchChromium();
});

after(async () => {
  try {
    await mkdir(ARTIFACTS, { recursive: true });
    if (allowedPage) await allowedPage.screenshot({ path: path.join(ARTIFACTS, 'cross-origin.png'), fullPage: true }).catch(() => {});
  } finally {
    await browser?.close().catch(() => {});
    await srv?.stop();
    await site?.close();
    await evil?.close();
  }
});

test('preflights from the allowed origin answer 204 with the CORS headers and need no auth; a disallowed origin gets none', async () => {
  for (const [method, p] of HTTP_ROUTES) {
    const what = `OPTIONS ${p} (${method}) from ${site.origin}`;
    assertAllowedPreflight(await preflight(srv.baseURL, p, site.origin, method), site.origin, method, what);
    assertAllowedPreflight(await preflight(srv.baseURL, p, srv.baseURL, method), srv.baseURL, method, `OPTIONS ${p} (${method}) from switchboard's own origin`);
    const refused = await preflight(srv.baseURL, p, evil.origin, method);
    assertNoCors(refused, `OPTIONS ${p} (${method}) from ${evil.origin}`);
  }
});

test('actual responses carry Access-Control-Allow-Origin and Vary: Origin for the allowed origin (errors too), nothing for a disallowed one', async () => {
  const cases = [
    ['POST', '/api/v1/realtime/token', jane, 200],
    ['GET', '/api/v1/projects/demo/attendees', jane, 200],
    ['POST', '/api/v1/realtime/token', undefined, 401], // a refusal the page must be able to read
    ['POST', '/broadcasting/auth', undefined, 401],
  ];
  for (const [method, p, token, status] of cases) {
    const what = `${method} ${p} ${token ? 'with' : 'without'} bearer`;
    const ok = await apiCall(srv.baseURL, method, p, undefined, { token, headers: { Origin: site.origin } });
    assert.equal(ok.status, status, `${what} from ${site.origin}: ${describe(ok)}`);
    assert.equal(ok.headers.get('access-control-allow-origin'), site.origin, `${what} from ${site.origin}: ${describe(ok)}`);
    assert.ok(headerList(ok.headers, 'vary').includes('origin'), `${what} from ${site.origin}: Vary lacks Origin: ${describe(ok)}`);
    const bad = await apiCall(srv.baseURL, method, p, undefined, { token, headers: { Origin: evil.origin } });
    assertNoCors(bad, `${what} from ${evil.origin}`);
  }
});

test('WebSocket upgrades: no Origin, the allowed one or switchboard\'s own is upgraded, a disallowed Origin gets HTTP 403, on all three endpoints', async () => {
  for (const [name, url, protocols] of wsEndpoints(srv, jane)) {
    assert.deepEqual(await wsProbe(url, { protocols }), { open: true }, `${name} ${url} without Origin`);
    assert.deepEqual(await wsProbe(url, { protocols, origin: site.origin }), { open: true }, `${name} ${url} with Origin ${site.origin}`);
    // A page the binary serves itself (/examples/...) is same-origin: never refused.
    assert.deepEqual(await wsProbe(url, { protocols, origin: srv.baseURL }), { open: true }, `${name} ${url} with its own Origin ${srv.baseURL}`);
    const refused = await wsProbe(url, { protocols, origin: evil.origin });
    assert.equal(refused.status, 403, `${name} ${url} with Origin ${evil.origin}: ${JSON.stringify(refused)}`);
  }
});

test('a page on the allowed origin gets AttendeeCreated through laravel-echo, centrifuge-js and actioncable, and reads REST cross-origin', async () => {
  allowedPage = await openPage(browser, `${site.origin}/`);
  const page = allowedPage;
  assert.notEqual(new URL(page.url()).origin, srv.baseURL, 'the page is on another origin than switchboard');
  assert.deepEqual(await page.evaluate(() => [typeof window.Pusher, typeof window.Echo?.default, typeof window.Centrifuge, typeof window.ActionCable?.createConsumer]),
    ['function', 'function', 'function', 'function'], 'the four browser builds are loaded');

  await page.evaluate((c) => { window.startEcho(c); window.startCentrifuge(c); window.startCable(c); }, cfg());
  await waitPage(page, () => ['echo', 'centrifuge', 'cable'].every((n) => window.__r[n].subscribed || window.__r[n].rejected),
    undefined, 'all three clients did not subscribe', SUBSCRIBE_TIMEOUT_MS);
  const r0 = await state(page);
  for (const n of ['echo', 'centrifuge', 'cable']) {
    assert.equal(r0[n].rejected, null, `${n} subscription refused: ${JSON.stringify(r0[n])}; problems ${JSON.stringify(page.problems)}`);
    assert.ok(r0[n].subscribed, `${n}: ${JSON.stringify(r0[n])}`);
  }
  assert.equal(r0.echo.states.at(-1), 'connected');
  assert.equal(r0.centrifuge.states.at(-1), 'connected');

  const created = await apiCall(srv.baseURL, 'POST', '/api/v1/projects/demo/attendees',
    { first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', attendee_type_id: 1 }, { token: jane, requestId: 'cors-1' });
  const attendee = expectStatus(created, 201, 'create attendee');
  await waitPage(page, (id) => ['echo', 'centrifuge', 'cable'].every((n) => window.__r[n].events.some((e) => e.event === 'AttendeeCreated' && e.data?.attendee_id === id)),
    attendee.id, `not every client received AttendeeCreated #${attendee.id}`, EVENT_TIMEOUT_MS);
  const r1 = await state(page);
  for (const n of ['echo', 'centrifuge', 'cable']) {
    const ev = r1[n].events.find((e) => e.event === 'AttendeeCreated');
    assert.equal(ev.data.attendee_id, attendee.id, n);
    assert.equal(ev.data.email, 'ada@example.com', n);
    assert.deepEqual(ev.data['x-triggered-by'], { operation_id: 'v1.project.attendees.store', request_id: 'cors-1' }, n);
  }

  // REST from the page: a GET with the bearer, a PATCH with a JSON body (both preflighted).
  const list = await page.evaluate(([base, jwt]) => window.tryFetch(`${base}/api/v1/projects/demo/attendees`, { headers: { Authorization: `Bearer ${jwt}` } }), [srv.baseURL, jane]);
  assert.equal(list.status, 200, `cross-origin GET: ${JSON.stringify(list)}`);
  assert.ok(list.body.data.some((a) => a.id === attendee.id), `cross-origin GET: ${JSON.stringify(list)}`);
  const patch = await page.evaluate(([base, jwt, id]) => window.tryFetch(`${base}/api/v1/projects/demo/attendees/${id}`, {
    method: 'PATCH', headers: { Authorization: `Bearer ${jwt}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ last_name: 'King' }),
  }), [srv.baseURL, jane, attendee.id]);
  assert.equal(patch.status, 200, `cross-origin PATCH: ${JSON.stringify(patch)}`);
  assert.equal(patch.body.last_name, 'King');
  // The page's own cross-origin write reaches its three clients.
  await waitPage(page, (id) => ['echo', 'centrifuge', 'cable'].every((n) => window.__r[n].events.some((e) => e.event === 'AttendeeUpdated' && e.data?.attendee_id === id && e.data?.changes?.last_name === 'King')),
    attendee.id, `not every client received AttendeeUpdated #${attendee.id}`, EVENT_TIMEOUT_MS);
  // An error answer is readable too (not an opaque network error).
  const anon = await page.evaluate((base) => window.tryFetch(`${base}/api/v1/realtime/token`, { method: 'POST' }), srv.baseURL);
  assert.equal(anon.status, 401, `cross-origin POST without bearer: ${JSON.stringify(anon)}`);

  assert.deepEqual(page.problems.filter((p) => p.startsWith('uncaught')), [], 'uncaught page errors');
});

test('a page on a disallowed origin is refused: fetch rejects, pusher-js auth fails with status 0, no socket connects, nothing arrives', async () => {
  const page = await openPage(browser, `${evil.origin}/`);
  // A connection token minted from Node, so the second centrifuge-js client
  // fails on the WebSocket alone (the first fails on getToken already).
  const tok = expectStatus(await apiCall(srv.baseURL, 'POST', '/api/v1/realtime/token', undefined, { token: jane }), 200, 'realtime token from Node').token;

  const tokenFetch = await page.evaluate(([base, jwt]) => window.tryFetch(`${base}/api/v1/realtime/token`, { method: 'POST', headers: { Authorization: `Bearer ${jwt}` } }), [srv.baseURL, jane]);
  assert.match(tokenFetch.error ?? '', /^TypeError/, `POST /api/v1/realtime/token from ${evil.origin}: ${JSON.stringify(tokenFetch)}`);
  const listFetch = await page.evaluate(([base, jwt]) => window.tryFetch(`${base}/api/v1/projects/demo/attendees`, { headers: { Authorization: `Bearer ${jwt}` } }), [srv.baseURL, jane]);
  assert.match(listFetch.error ?? '', /^TypeError/, `GET /api/v1/projects/demo/attendees from ${evil.origin}: ${JSON.stringify(listFetch)}`);

  await page.evaluate(([c, token]) => {
    window.startEcho(c);
    window.startCentrifuge(c);
    window.startCentrifuge(c, { name: 'centrifugeWithToken', token });
    window.startCable(c);
  }, [cfg(), tok]);
  // pusher-js's channel authorizer, the XHR laravel-echo's private channel
  // uses, run directly (the socket never connects, so Echo never gets to it).
  const auth = await page.evaluate(() => window.echoAuthorize('private-dashboard.project.demo.attendees', '1234.5678'));
  assert.equal(auth.error?.status, 0, `pusher-js channel auth from ${evil.origin}: ${JSON.stringify(auth)}`);

  await sleep(REFUSED_WATCH_MS);
  const created = await apiCall(srv.baseURL, 'POST', '/api/v1/projects/demo/attendees',
    { first_name: 'Eve', last_name: 'Mallory', email: 'eve@example.com', attendee_type_id: 1 }, { token: jane });
  expectStatus(created, 201, 'create attendee');
  await sleep(1000);

  const r = await state(page);
  const diag = `page state ${JSON.stringify(r)}; problems ${JSON.stringify(page.problems)}`;
  assert.ok(!r.echo.states.includes('connected'), `pusher-js connected from ${evil.origin}: ${diag}`);
  for (const n of ['echo', 'centrifuge', 'centrifugeWithToken', 'cable']) {
    assert.equal(r[n].subscribed, false, `${n} subscribed from ${evil.origin}: ${diag}`);
    assert.deepEqual(r[n].events, [], `${n} received events on ${evil.origin}: ${diag}`);
  }
  for (const n of ['centrifuge', 'centrifugeWithToken']) assert.ok(!r[n].states.includes('connected'), `${n} connected from ${evil.origin}: ${diag}`);
  assert.ok(!r.cable.states.includes('connected'), `actioncable connected from ${evil.origin}: ${diag}`);
  // Chromium says why each WebSocket failed: the handshake got 403.
  for (const p of [`/app/${APP_KEY}`, '/connection/websocket', '/cable']) {
    assert.ok(page.problems.some((m) => m.includes(`${srv.host}:${srv.port}${p}`) && /403/.test(m)),
      `Chromium logs no 403 handshake for ${p}: ${JSON.stringify(page.problems)}`);
  }
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'cross-origin-refused.png'), fullPage: true });
  // Stop the retrying clients before the next test.
  await page.evaluate(() => {
    window.__clients.echo?.disconnect();
    window.__clients.centrifuge?.disconnect();
    window.__clients.centrifugeWithToken?.disconnect();
    window.__clients.cable?.disconnect();
  });
});

test('the default list in embedded mode allows http://localhost:<any port> and http://127.0.0.1:<any port>, refuses others', async () => {
  const port = await freePort();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'switchboard-cors-default-'));
  // launchServer: DATABASE_URL undefined = embedded SQLite even under CONFORMANCE_DATABASE_URL.
  const def = launchServer({ port, dataDir, env: { DATABASE_URL: undefined } });
  try {
    await def.waitReady();
    const token = await mintToken({ sub: '42', projects: ['demo'] }, def.env);
    const allowed = [`http://localhost:${5173}`, `http://localhost:${await freePort()}`, `http://127.0.0.1:${await freePort()}`, 'http://127.0.0.1:8080'];
    const refused = ['http://evil.example', 'http://evil.example:5173', 'http://localhost.evil.example:5173', 'http://127.0.0.2:5173'];
    for (const origin of allowed) {
      for (const [method, p] of [['POST', '/api/v1/realtime/token'], ['POST', '/broadcasting/auth']]) {
        assertAllowedPreflight(await preflight(def.baseURL, p, origin, method), origin, method, `default list: OPTIONS ${p} from ${origin}`);
      }
    }
    for (const origin of refused) assertNoCors(await preflight(def.baseURL, '/api/v1/realtime/token', origin), `default list: OPTIONS from ${origin}`);
    const [, url] = wsEndpoints(def, token)[1];
    assert.deepEqual(await wsProbe(url, { origin: allowed[1] }), { open: true }, `default list: WebSocket from ${allowed[1]}`);
    const bad = await wsProbe(url, { origin: 'http://evil.example' });
    assert.equal(bad.status, 403, `default list: WebSocket from http://evil.example: ${JSON.stringify(bad)}`);
  } finally {
    await def.stop();
    if (!process.env.KEEP_DATA) await rm(dataDir, { recursive: true, force: true });
  }
});
