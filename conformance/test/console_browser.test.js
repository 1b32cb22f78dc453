// The debug console (issue 21, docs/console.md) in a real browser: Debian's
// headless Chromium (playwright-core) opens /console on the real binary,
// logs in with an admin token, and then, against the page's own DOM:
//
//   - a REST write appears in the live log within 1 s, with its request id;
//   - the request-id, event and project filters hide it and show it again;
//     pause holds new lines back until resume;
//   - a pusher-js client's connection shows in the overview (connections,
//     channels) and in the log (connect, subscribe);
//   - "Send a test event" reaches that pusher-js client through the outbox,
//     x-triggered-by included;
//   - a wrong login (a member's token, a wrong app secret) is refused.
//
// It keeps a screenshot in conformance/artifacts/console.png.
//
// Run: cd conformance && SWITCHBOARD_BIN=../bin/switchboard node --test test/console_browser.test.js
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import WebSocket from 'ws';

import { test, startServer, apiCall, expectStatus, connected, waitFor, sleep, Collector, APP_ID, APP_KEY, APP_SECRET, CONFORMANCE_DIR } from '../lib/server.js';
import { launchChromium, openPage } from '../lib/browser.js';
import { clusterSkipReason, startCluster, pusherSubscribed } from '../lib/cluster.js';

const ARTIFACTS = path.join(CONFORMANCE_DIR, 'artifacts');
const CHANNEL = 'console-test'; // a public Pusher channel
const HUB = `pusher:${APP_ID}:${CHANNEL}`; // its name in the hub, as the console lists it

let srv, browser, page, admin, member, pusher;
const received = new Collector('console-hello on the pusher-js client');

before(async () => {
  srv = await startServer({ env: { DATABASE_URL: '' } });
  admin = await srv.token({ sub: '1', name: 'Ops', admin: true });
  member = await srv.token({ sub: '42', projects: ['demo'] });
  expectStatus(await srv.api('POST', '/api/v1/projects', { slug: 'demo', name: 'Demo' }, { token: admin }), 201, 'project');
  browser = await launchChromium();
});

after(async () => {
  try {
    if (page) {
      await mkdir(ARTIFACTS, { recursive: true });
      await page.evaluate(() => { document.querySelector('.side').scrollTop = 0; });
      await page.screenshot({ path: path.join(ARTIFACTS, 'console.png') });
    }
  } finally {
    pusher?.close();
    await browser?.close().catch(() => {});
    await srv?.stop();
  }
});

async function login(p, credential) {
  await p.fill('#credential', credential);
  await p.click('#login-button');
}

const rows = (sel = '') => page.locator(`#log-body tr.row${sel}`);

async function attendee(requestId, first) {
  const res = await srv.api('POST', '/api/v1/projects/demo/attendees',
    { first_name: first, last_name: 'Smith', email: `${requestId}@example.com`, attendee_type_id: 1 }, { token: member, requestId });
  expectStatus(res, 201, 'attendee');
  return res.body;
}

test('a wrong login is refused: a member token, a wrong app secret, garbage', async () => {
  const p = await openPage(browser, `${srv.baseURL}/console`);
  try {
    for (const [credential, why] of [[member, /admin token/], ['not-the-app-secret', /not the secret/], ['a.b.c', /invalid bearer token/]]) {
      await login(p, credential);
      await p.waitForFunction(() => document.querySelector('#login-error').textContent.startsWith('Refused'), null, { timeout: 5000 });
      assert.match(await p.textContent('#login-error'), why);
      assert.equal(await p.isVisible('#app'), false, 'the console stays closed');
    }
    // The API refuses the same with the error body.
    for (const [body, status] of [[{ secret: 'nope' }, 401], [{ token: member }, 403], [{}, 401]]) {
      const res = await apiCall(srv.baseURL, 'POST', '/console/api/session', body);
      assert.equal(res.status, status, res.text);
      assert.ok(res.body.error.code && res.body.error.message, res.text);
    }
    const res = await apiCall(srv.baseURL, 'GET', '/console/api/overview', undefined, { token: member });
    assert.equal(res.status, 403, res.text);
    // The refusals are the only resources that failed; nothing threw.
    assert.deepEqual(p.problems.filter((x) => !/status of 40[13]/.test(x)), []);
  } finally {
    await p.context().close();
  }
});

test('the Pusher app secret logs in too', async () => {
  const res = await apiCall(srv.baseURL, 'POST', '/console/api/session', { secret: APP_SECRET });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.who, `app ${APP_ID}`);
  const o = await apiCall(srv.baseURL, 'GET', '/console/api/overview', undefined, { token: res.body.token });
  assert.equal(o.status, 200, o.text);
  // The session opens the console only: the REST API refuses it.
  const rest = await apiCall(srv.baseURL, 'GET', '/api/v1/projects/demo/attendees', undefined, { token: res.body.token });
  assert.equal(rest.status, 401, rest.text);
});

test('log in with an admin token; a REST write appears in the live log within 1 s with its request id', async () => {
  page = await openPage(browser, `${srv.baseURL}/console`);
  await login(page, admin);
  await page.waitForSelector('#app:not([hidden])', { timeout: 5000 });
  await page.waitForFunction(() => document.querySelector('#status').dataset.state === 'live', null, { timeout: 5000 });
  assert.match(await page.textContent('#who'), /Ops/);

  const rid = `console-req-${Date.now()}`;
  await attendee(rid, 'Jane');
  const committed = Date.now();
  await page.waitForSelector(`#log-body tr.row[data-request-id="${rid}"]`, { timeout: 1000 })
    .catch((e) => { throw new Error(`the write was not in the log within 1 s (${page.problems.join('; ')}): ${e.message}`); });
  const ms = Date.now() - committed;
  const row = rows(`[data-request-id="${rid}"]`);
  assert.equal(await row.count(), 1);
  const text = await row.innerText();
  for (const want of ['AttendeeCreated', 'dashboard.project.demo.attendees', rid, 'v1.project.attendees.store', 'demo']) {
    assert.ok(text.includes(want), `row shows ${want}: ${text}`);
  }
  console.log(`# REST write in the console's log ${ms} ms after its commit`);

  // The payload expands.
  await row.click();
  const detail = await page.locator('#log-body tr.detail pre').first().textContent();
  const shown = JSON.parse(detail);
  assert.equal(shown.data.first_name, 'Jane');
  assert.deepEqual(shown.data['x-triggered-by'], { operation_id: 'v1.project.attendees.store', request_id: rid });
  await row.click(); // collapse
});

test('filters hide the line and show it again; pause holds new lines until resume', async () => {
  const rid = `console-filter-${Date.now()}`;
  await attendee(rid, 'Filter');
  const row = () => rows(`[data-request-id="${rid}"]`);
  await page.waitForSelector(`#log-body tr.row[data-request-id="${rid}"]`, { timeout: 2000 });
  for (const [input, away, back] of [
    ['#f-request', 'no-such-request', rid],
    ['#f-event', 'AttendeeDeleted', 'attendeecreated'],
    ['#f-project', 'expo', 'demo'],
    ['#f-channel', 'chat-', 'dashboard.project.demo.'],
  ]) {
    await page.fill(input, away);
    assert.equal(await row().count(), 0, `${input}=${away} hides it`);
    await page.fill(input, back);
    assert.equal(await row().count(), 1, `${input}=${back} shows it`);
    await page.fill(input, '');
  }
  // Kinds: unticking "event" hides it.
  await page.uncheck('#kind-event');
  assert.equal(await row().count(), 0, 'kind filter hides it');
  await page.check('#kind-event');
  assert.equal(await row().count(), 1, 'kind filter shows it');

  await page.click('#pause');
  assert.equal(await page.getAttribute('#status', 'data-state'), 'paused');
  const held = `console-paused-${Date.now()}`;
  await attendee(held, 'Paused');
  await page.waitForFunction(() => /paused, [1-9]\d* new/.test(document.querySelector('#log-info').textContent), null, { timeout: 2000 });
  assert.equal(await rows(`[data-request-id="${held}"]`).count(), 0, 'not shown while paused');
  await page.click('#pause');
  await page.waitForSelector(`#log-body tr.row[data-request-id="${held}"]`, { timeout: 1000 });
});

test('a pusher-js connection appears in the overview and the log; a test event from the console reaches it', async () => {
  pusher = srv.pusherClient(null);
  const socketId = await connected(pusher);
  const ch = pusher.subscribe(CHANNEL);
  await waitFor((resolve) => ch.bind('pusher:subscription_succeeded', resolve), 5000, 'subscription');
  ch.bind('console-hello', received.push);

  await page.waitForFunction(() => Number(document.querySelector('#conn-pusher').textContent) >= 1, null, { timeout: 5000 });
  await page.waitForSelector(`#channels-body tr[data-channel="${HUB}"]`, { timeout: 5000 });
  const subs = await page.locator(`#channels-body tr[data-channel="${HUB}"] td`).nth(1).textContent();
  assert.equal(subs, '1');
  await page.waitForSelector(`#log-body tr.row[data-kind="connect"]`, { timeout: 2000 });
  const connect = await rows('[data-kind="connect"]').first().innerText();
  assert.ok(connect.includes(socketId), `connect row names the socket ${socketId}: ${connect}`);
  await page.waitForSelector(`#log-body tr.row[data-kind="subscribe"][data-channel="${HUB}"]`, { timeout: 2000 });

  // Pick the channel in the list, then send.
  await page.click(`#channels-body tr[data-channel="${HUB}"]`);
  assert.equal(await page.inputValue('#t-channel'), HUB);
  await page.fill('#t-event', 'console-hello');
  await page.fill('#t-data', '{"message":"hello from the console","n":1}');
  await page.click('#t-send');
  await page.waitForFunction(() => document.querySelector('#t-result').dataset.requestId, null, { timeout: 5000 });
  const rid = await page.getAttribute('#t-result', 'data-request-id');
  const got = await received.next(5000);
  assert.equal(got.message, 'hello from the console');
  assert.equal(got.n, 1);
  assert.deepEqual(got['x-triggered-by'], { operation_id: 'console.events.store', request_id: rid });
  // ... and the console shows it with its fan-out: one pusher connection.
  await page.waitForSelector(`#log-body tr.row[data-request-id="${rid}"]`, { timeout: 2000 });
  const fan = await rows(`[data-request-id="${rid}"]`).locator('td.c-fan').getAttribute('title');
  assert.match(fan, /pusher: 1/);
  assert.deepEqual(page.problems, []);
});

test('a refused subscription and a closed socket show as auth failure and disconnect lines', async () => {
  // A raw Pusher socket asks for a private channel with a forged signature.
  const ws = new WebSocket(`${srv.wsURL}?protocol=7`);
  const established = await waitFor((resolve) => ws.on('message', (m) => {
    const f = JSON.parse(m.toString());
    if (f.event === 'pusher:connection_established') resolve(JSON.parse(f.data).socket_id);
  }), 5000, 'connection_established');
  ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'private-x', auth: `${APP_KEY}:forged` } }));
  await page.waitForSelector('#log-body tr.row[data-kind="auth_failure"]', { timeout: 2000 });
  const failure = await rows('[data-kind="auth_failure"]').first().innerText();
  assert.ok(failure.includes('subscribe') && failure.includes(established), failure);
  ws.close(1000);
  await page.waitForFunction((id) => [...document.querySelectorAll('#log-body tr.row[data-kind="disconnect"]')]
    .some((r) => r.innerText.includes(id) && r.innerText.includes('closed 1000')), established, { timeout: 3000 });

  // One more write, then the picture.
  await attendee(`console-shot-${Date.now()}`, 'Ada');
  await sleep(300);
  // A laptop's screen (the suite's pages are 1100 px wide; the console
  // works there too, with narrower columns).
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.evaluate(() => { document.querySelector('.side').scrollTop = 0; });
  await sleep(100);
  await page.screenshot({ path: path.join(ARTIFACTS, 'console.png') });
});

// sseLines reads a console event stream from Node, collecting its lines.
function sseLines(url) {
  const ctl = new AbortController();
  const lines = [];
  const done = (async () => {
    const res = await fetch(url, { signal: ctl.signal });
    assert.equal(res.status, 200, `stream ${url}`);
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += dec.decode(chunk, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const msg = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = msg.split('\n').find((l) => l.startsWith('data: '));
          if (data && !msg.includes('event: ')) lines.push(JSON.parse(data.slice(6)));
        }
      }
    } catch { /* aborted */ }
  })();
  return { lines, close: () => { ctl.abort(); return done; } };
}

async function until(what, fn, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

test('cluster mode: a console on one node shows every node\'s lines, with the node that delivered them', { skip: clusterSkipReason() ?? false, timeout: 90_000 }, async () => {
  const { cluster, nodes: [a, b], admin: adm, token, slug } = await startCluster({ nodes: 2 });
  let stream, client;
  try {
    const session = async (n) => expectStatus(await apiCall(n.baseURL, 'POST', '/console/api/session', { token: adm }), 201, `login on ${n.name}`);
    const sa = await session(a);
    const idB = (await session(b)).node;
    assert.ok(sa.node && idB && sa.node !== idB, `node ids ${sa.node} ${idB}`);
    stream = sseLines(`${a.baseURL}/console/api/stream?token=${encodeURIComponent(sa.token)}`);
    // B learns at once that a page watches; the overview on A lists it.
    const deadline = Date.now() + 5000;
    let o;
    do {
      o = (await apiCall(a.baseURL, 'GET', '/console/api/overview', undefined, { token: sa.token })).body;
      if (o.nodes.length === 2) break;
      await sleep(100);
    } while (Date.now() < deadline);
    assert.deepEqual(o.nodes.map((n) => n.id), [sa.node, idB], JSON.stringify(o.nodes));
    assert.equal(o.cluster, true);

    // A pusher-js client on B, and a write through B.
    client = b.pusherClient(token);
    await connected(client);
    await pusherSubscribed(client, `private-dashboard.project.${slug}.attendees`);
    const rid = `console-cluster-${Date.now()}`;
    expectStatus(await apiCall(b.baseURL, 'POST', `/api/v1/projects/${slug}/attendees`,
      { first_name: 'Clu', last_name: 'Ster', email: `${rid}@example.com`, attendee_type_id: 1 }, { token, requestId: rid }), 201, 'write');
    const byNode = await until('the event from both nodes', () => {
      const ev = stream.lines.filter((l) => l.kind === 'event' && l.triggered_by?.request_id === rid);
      return ev.length >= 2 ? Object.fromEntries(ev.map((l) => [l.node, l])) : null;
    });
    assert.deepEqual(Object.keys(byNode).sort(), [sa.node, idB].sort());
    assert.equal(byNode[idB].fanout.pusher, 1, 'B delivered it to its pusher-js client');
    assert.equal(byNode[sa.node].reached, 0, 'A has nobody on the channel');
    const connectB = stream.lines.find((l) => l.kind === 'connect' && l.node === idB && l.proto === 'pusher');
    assert.ok(connectB, `the connect on B is in A's log: ${JSON.stringify(stream.lines.map((l) => [l.kind, l.node]))}`);
  } finally {
    client?.close();
    await stream?.close();
    await cluster.close();
  }
});
