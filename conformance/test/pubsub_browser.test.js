// Scoped PubSub (issue 19, seed 004) in a real browser: Debian's headless
// Chromium (playwright-core) opens the example plugin page served by the
// binary (/examples/pubsub/, which loads /sdk/pubsub.js from the same
// origin) five times, each in its own browser context, with room tokens
// minted over REST by two organizations' API tokens:
//
//   A1, A2  acme   / ev1 / s1      (two participants of one room)
//   B       acme   / ev1 / s2      (same event, other session)
//   C       acme   / ev2 / s3      (same organization, other event)
//   D       globex / ev1 / s1      (same ids as A, other organization)
//
// Every check is positive AND negative: wait until the pages that must get
// an event have it, let ~500 ms settle, then assert that each of them got
// exactly that and that every other page got nothing at all.
//
// Run: cd conformance && SWITCHBOARD_BIN=../bin/switchboard node --test test/pubsub_browser.test.js
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { test, launchServer, freePort, mintToken, apiCall, expectStatus, sleep, CONFORMANCE_DIR } from '../lib/server.js';
import { launchChromium, openPage } from '../lib/browser.js';

const SETTLE_MS = 500;
const ARTIFACTS = path.join(CONFORMANCE_DIR, 'artifacts');

let port, dataDir, env, srv, base, browser;
const api = {}; // organization → API token
const pages = {}; // name → playwright Page
const ROOMS = {
  A1: { org: 'acme', event_id: 'ev1', session_id: 's1', participant: { id: 'p1', name: 'Ann' } },
  A2: { org: 'acme', event_id: 'ev1', session_id: 's1', participant: { id: 'p2', name: 'Bob' } },
  B: { org: 'acme', event_id: 'ev1', session_id: 's2', participant: { id: 'p3', name: 'Cid' } },
  C: { org: 'acme', event_id: 'ev2', session_id: 's3', participant: { id: 'p4', name: 'Dee' } },
  D: { org: 'globex', event_id: 'ev1', session_id: 's1', participant: { id: 'p1', name: 'Eve' } },
};
const NAMES = Object.keys(ROOMS);

async function startSwitchboard() {
  srv = launchServer({ port, dataDir, env });
  await srv.waitReady();
}

async function createApiToken(org, name) {
  const res = await apiCall(base, 'POST', '/api/v1/pubsub/api_tokens', { organization_id: org, name }, { token: await mintToken({ sub: 'admin', admin: true }, srv.env) });
  const body = expectStatus(res, 201, `create API token for ${org}`);
  assert.equal(body.organization_id, org);
  assert.ok(body.id && body.token, `API token response: ${res.text}`);
  return body;
}

// httpPublish is the seed's HTTP call: the bare API token in Authorization
// (bearer: true sends "Bearer <token>").
function httpPublish(token, scope, eventName, data, { path: urlPath = '/api/v1/pub_subs', bearer = false, requestId } = {}) {
  const body = { scope, payload: { event: { eventName, data } } };
  return apiCall(base, 'POST', urlPath, body, { headers: token ? { Authorization: bearer ? `Bearer ${token}` : token } : {}, requestId });
}

async function published(res, what) {
  assert.ok(res.status >= 200 && res.status < 300, `${what}: expected 2xx, got ${res.status}: ${res.text}`);
}

async function clearAll() {
  await Promise.all(NAMES.map((n) => pages[n].evaluate(() => { window.__got.length = 0; })));
}

const got = (name) => pages[name].evaluate(() => window.__got);

// waitGot waits until page `name` has received `count` events named eventName.
async function waitGot(name, eventName, count = 1, timeout = 5000) {
  try {
    await pages[name].waitForFunction(([e, n]) => window.__got.filter((g) => g.meta.eventName === e).length >= n, [eventName, count], { timeout });
  } catch (err) {
    throw new Error(`page ${name} did not receive ${count} × "${eventName}" within ${timeout} ms; it has ${JSON.stringify(await got(name))}; ` +
      `state ${await pages[name].evaluate(() => PubSub.state)}; page problems: ${JSON.stringify(pages[name].problems)}`, { cause: err });
  }
}

// delivered asserts that exactly the pages in `yes` got `count` × eventName
// (and nothing else) and the others got nothing, then returns what each
// `yes` page got.
async function delivered(eventName, yes, count = 1) {
  await Promise.all(yes.map((n) => waitGot(n, eventName, count)));
  await sleep(SETTLE_MS);
  const out = {};
  for (const n of NAMES) {
    const events = await got(n);
    if (yes.includes(n)) {
      assert.equal(events.length, count, `page ${n} should have exactly ${count} event(s), got ${JSON.stringify(events)}`);
      assert.ok(events.every((g) => g.meta.eventName === eventName), `page ${n}: ${JSON.stringify(events)}`);
      out[n] = events;
    } else {
      assert.deepEqual(events, [], `page ${n} must receive nothing for "${eventName}"`);
    }
  }
  return out;
}

async function nothingReached(what) {
  await sleep(SETTLE_MS);
  for (const n of NAMES) assert.deepEqual(await got(n), [], `page ${n} must receive nothing (${what})`);
}

async function roomToken(name) {
  const r = ROOMS[name];
  const res = await apiCall(base, 'POST', '/api/v1/pubsub/room_tokens',
    { event_id: r.event_id, session_id: r.session_id, participant: r.participant, ttl: 3600 }, { headers: { Authorization: api[r.org].token } });
  const body = expectStatus(res, 201, `room token for ${name}`);
  assert.equal(body.organization_id, r.org);
  assert.deepEqual(body.channels, [`pubsub.${r.org}`, `pubsub.${r.org}.${r.event_id}`, `pubsub.${r.org}.${r.event_id}.${r.session_id}`]);
  return body.token;
}

before(async () => {
  port = await freePort();
  dataDir = await mkdtemp(path.join(tmpdir(), 'switchboard-pubsub-'));
  env = { SWITCHBOARD_RELAY_POLL: '100ms' };
  await startSwitchboard();
  base = srv.baseURL;
  api.acme = await createApiToken('acme', 'acme plugin');
  api.globex = await createApiToken('globex', 'globex plugin');
  browser = await launchChromium();
  await Promise.all(NAMES.map(async (name) => {
    const token = await roomToken(name);
    const page = await openPage(browser, `${base}/examples/pubsub/`);
    pages[name] = page;
    const r = await page.evaluate(async (tok) => {
      window.__got = [];
      window.__states = [];
      PubSub.subscribe('*', (data, meta) => window.__got.push({ data, meta }));
      PubSub.on('state', (s) => window.__states.push(s));
      await PubSub.connect({ token: tok });
      return { state: PubSub.state, room: PubSub.room };
    }, token);
    assert.equal(r.state, 'connected', `page ${name}`);
    assert.equal(r.room.organizationId, ROOMS[name].org);
    assert.equal(r.room.participant.id, ROOMS[name].participant.id);
  }));
});

after(async () => {
  try {
    if (pages.A1) {
      await mkdir(ARTIFACTS, { recursive: true });
      await pages.A1.screenshot({ path: path.join(ARTIFACTS, 'pubsub-a1.png'), fullPage: true });
    }
  } finally {
    await browser?.close().catch(() => {});
    await srv?.stop();
    if (dataDir && !process.env.KEEP_DATA) await rm(dataDir, { recursive: true, force: true });
  }
});

test('the SDK is served as a script, an ES module and a TypeScript declaration', async () => {
  for (const [p, type] of [['/sdk/pubsub.js', /javascript/], ['/sdk/pubsub.mjs', /javascript/], ['/sdk/pubsub.d.ts', /./]]) {
    const res = await fetch(base + p);
    assert.equal(res.status, 200, p);
    assert.match(res.headers.get('content-type') || '', type, `${p} content-type`);
    await res.arrayBuffer();
  }
  const m = await pages.B.evaluate(async () => {
    const mod = await import('/sdk/pubsub.mjs');
    return {
      exports: Object.keys(mod).sort(),
      fns: ['connect', 'publish', 'subscribe', 'disconnect', 'create'].every((k) => typeof mod[k] === 'function' && typeof mod.default[k] === 'function'),
      separate: mod.default !== window.PubSub,
      state: mod.create().state,
    };
  });
  assert.deepEqual(m.exports, ['connect', 'create', 'default', 'disconnect', 'publish', 'subscribe']);
  assert.ok(m.fns && m.separate);
  assert.equal(m.state, 'disconnected');
});

test("session-scoped HTTP publish (the seed's call) reaches the room's two pages only, data exactly {foo: 'bar'}", async () => {
  await clearAll();
  const res = await httpPublish(api.acme.token, { type: 'session', event_id: 'ev1', session_id: 's1' }, 'hello', { foo: 'bar' }, { requestId: 'req-seed-1' });
  await published(res, 'session publish');
  const out = await delivered('hello', ['A1', 'A2']);
  for (const n of ['A1', 'A2']) {
    const [{ data, meta }] = out[n];
    assert.deepEqual(data, { foo: 'bar' }, 'x-triggered-by is stripped from the data');
    assert.equal(meta.scope, 'session');
    assert.equal(meta.channel, 'pubsub.acme.ev1.s1');
    assert.equal(meta.from, null);
    assert.equal(meta.triggeredBy?.request_id, 'req-seed-1', `meta: ${JSON.stringify(meta)}`);
  }
});

test('event-scoped publish (POST /api/v1/publish, Bearer) reaches every session of the event, not another event or organization', async () => {
  await clearAll();
  const res = await httpPublish(api.acme.token, { type: 'event', event_id: 'ev1' }, 'event-news', { n: 1 }, { path: '/api/v1/publish', bearer: true });
  await published(res, 'event publish');
  const out = await delivered('event-news', ['A1', 'A2', 'B']);
  assert.equal(out.B[0].meta.scope, 'event');
  assert.equal(out.B[0].meta.channel, 'pubsub.acme.ev1');
  assert.deepEqual(out.B[0].data, { n: 1 });
});

test('organization-scoped publish reaches every page of the organization and never another organization', async () => {
  await clearAll();
  await published(await httpPublish(api.acme.token, { type: 'organization' }, 'org-news', { org: 'acme' }), 'acme org publish');
  const out = await delivered('org-news', ['A1', 'A2', 'B', 'C']);
  assert.equal(out.C[0].meta.scope, 'organization');
  assert.equal(out.C[0].meta.channel, 'pubsub.acme');

  await clearAll();
  await published(await httpPublish(api.globex.token, { type: 'organization' }, 'org-news', { org: 'globex' }), 'globex org publish');
  const outD = await delivered('org-news', ['D']);
  assert.deepEqual(outD.D[0].data, { org: 'globex' });

  // globex's session ev1/s1 is D's room, not A's (same ids, other organization).
  await clearAll();
  await published(await httpPublish(api.globex.token, { type: 'session', event_id: 'ev1', session_id: 's1' }, 'hello', { foo: 'globex' }), 'globex session publish');
  await delivered('hello', ['D']);
});

test("PubSub.publish from the example page's form reaches the other participant of the room, not the sender nor anyone else", async () => {
  await clearAll();
  await pages.A1.fill('#text', 'hi from A1');
  await pages.A1.click('#say button');
  await pages.A1.waitForFunction(() => document.querySelector('#text').value === '', null, { timeout: 5000 }); // cleared once resolved
  const out = await delivered('say-hello', ['A2']);
  const [{ data, meta }] = out.A2;
  assert.deepEqual(data, { text: 'hi from A1' });
  assert.equal(meta.scope, 'session');
  assert.equal(meta.from?.user, 'p1');
  assert.equal(meta.triggeredBy, null);
  await pages.A2.waitForFunction(() => document.querySelector('#log').textContent.includes('hi from A1'), null, { timeout: 5000 });

  // Straight through the API too, with its promise.
  await clearAll();
  const r = await pages.A2.evaluate(() => PubSub.publish('say-hello', { data: { text: 'hi from A2' } }).then(() => 'ok', (e) => `${e.code} ${e.message}`));
  assert.equal(r, 'ok');
  const back = await delivered('say-hello', ['A1']);
  assert.equal(back.A1[0].meta.from?.user, 'p2');
});

test('bad HTTP publishes: 422 naming the field, 401 without a valid or with a revoked API token, and nothing is delivered', async () => {
  // A revoked token is refused at once (it worked a moment before).
  const extra = await createApiToken('acme', 'to revoke');
  await clearAll();
  await published(await httpPublish(extra.token, { type: 'session', event_id: 'ev1', session_id: 's1' }, 'pre-revoke', {}), 'publish before revoke');
  await delivered('pre-revoke', ['A1', 'A2']);
  const del = await apiCall(base, 'DELETE', `/api/v1/pubsub/api_tokens/${extra.id}`, undefined, { token: await mintToken({ sub: 'admin', admin: true }, srv.env) });
  expectStatus(del, 204, 'revoke API token');
  await clearAll();
  const revoked = await httpPublish(extra.token, { type: 'organization' }, 'post-revoke', {});
  assert.equal(revoked.status, 401, `revoked token: ${revoked.text}`);
  for (const [what, token] of [['no Authorization', ''], ['unknown token', 'not-a-token'], ['admin JWT is not an API token', await mintToken({ sub: 'admin', admin: true }, srv.env)]]) {
    const res = await httpPublish(token, { type: 'organization' }, 'post-revoke', {});
    assert.equal(res.status, 401, `${what}: ${res.status} ${res.text}`);
  }

  const ok = { type: 'session', event_id: 'ev1', session_id: 's1' };
  const cases = [
    ['event scope without event_id', { type: 'event' }, 'bad', {}, /event_id/],
    ['session scope without event_id', { type: 'session', session_id: 's1' }, 'bad', {}, /event_id/],
    ['session scope without session_id', { type: 'session', event_id: 'ev1' }, 'bad', {}, /session_id/],
    ['empty eventName', ok, '', {}, /eventName/],
    ['missing eventName', ok, undefined, {}, /eventName/],
    ['data a string', ok, 'bad', 'text', /data/],
    ['data an array', ok, 'bad', [1, 2], /data/],
    ['unknown scope type', { type: 'galaxy' }, 'bad', {}, /type/],
  ];
  for (const [what, scope, eventName, data, field] of cases) {
    const res = await httpPublish(api.acme.token, scope, eventName, data);
    assert.equal(res.status, 422, `${what}: ${res.status} ${res.text}`);
    assert.match(res.body?.error?.field ?? '', field, `${what}: field named in ${res.text}`);
  }

  // The SDK checks its arguments before sending anything.
  const local = await pages.A1.evaluate(async () => {
    const why = (p) => p.then(() => 'resolved', (e) => e.code);
    return [await why(PubSub.publish('')), await why(PubSub.publish(42)), await why(PubSub.publish('x', { data: 'text' })), await why(PubSub.publish('x', { data: [1] }))];
  });
  assert.deepEqual(local, ['invalid_argument', 'invalid_argument', 'invalid_argument', 'invalid_argument']);
  await nothingReached('refused publishes');
});

test('in-room limits: over 10/s the promise rejects with 111 and only accepted publishes arrive; over 10 KB rejects with 106 and reaches nobody', async () => {
  await sleep(1100); // the sender's earlier publishes are out of the rate window
  await clearAll();
  const results = await pages.A1.evaluate(() => Promise.all(Array.from({ length: 15 }, (_, i) =>
    PubSub.publish('burst', { data: { i } }).then(() => ({ i, ok: true }), (e) => ({ i, ok: false, code: e.code, message: e.message })))));
  const accepted = results.filter((r) => r.ok).map((r) => r.i);
  const refused = results.filter((r) => !r.ok);
  assert.ok(accepted.length >= 1 && refused.length >= 1, `15 quick publishes: ${JSON.stringify(results)}`);
  for (const r of refused) {
    assert.equal(r.code, 111, `refused publish: ${JSON.stringify(r)}`);
    assert.match(r.message, /too many/i);
  }
  const out = await delivered('burst', ['A2'], accepted.length);
  assert.deepEqual(out.A2.map((g) => g.data.i), accepted, 'A2 receives exactly the accepted publishes, in order');

  await sleep(1100);
  await clearAll();
  const big = await pages.A1.evaluate(() => PubSub.publish('big', { data: { blob: 'x'.repeat(11 * 1024) } }).then(() => 'resolved', (e) => ({ code: e.code, message: e.message })));
  assert.equal(big.code, 106, `11 KB publish: ${JSON.stringify(big)}`);
  await nothingReached('payload over 10 KB');
  assert.equal(await pages.A1.evaluate(() => PubSub.state), 'connected');
});

test('server restart: pages reconnect by themselves and recover what was published meanwhile, once, in order; a publish made while the server is down is queued and delivered once', async (t) => {
  await clearAll();
  await Promise.all(NAMES.map((n) => pages[n].evaluate(() => { window.__states.length = 0; })));
  await srv.stop(); // SIGTERM; the data directory stays
  await Promise.all(NAMES.map((n) => pages[n].waitForFunction(() => PubSub.state !== 'connected', null, { timeout: 5000 })));
  await pages.A1.evaluate(() => {
    window.__queued = PubSub.publish('queued', { data: { while: 'down' } }).then(() => 'resolved', (e) => `rejected ${e.code} ${e.message}`);
  });
  assert.equal(await pages.A1.evaluate(() => Promise.race([window.__queued, new Promise((r) => setTimeout(() => r('pending'), 200))])), 'pending');

  await startSwitchboard(); // same port, same data
  // Published at once, while the pages' reconnect backoff mostly still
  // runs: those not back yet get them through recovery.
  const back = [];
  for (const n of NAMES) if ((await pages[n].evaluate(() => PubSub.state)) === 'connected') back.push(n);
  for (const n of [1, 2, 3]) await published(await httpPublish(api.acme.token, { type: 'organization' }, 'missed', { n }), `publish ${n} during the reconnect`);
  t.diagnostic(`pages already back when the server was ready: ${back.join(', ') || 'none'}`);

  await Promise.all(NAMES.map((n) => pages[n].waitForFunction(() => PubSub.state === 'connected', null, { timeout: 15_000 })));
  for (const n of NAMES) {
    const states = await pages[n].evaluate(() => window.__states);
    assert.equal(states.at(-1), 'connected', `page ${n} states ${states}`);
    assert.ok(states.includes('connecting'), `page ${n} states ${states}`);
  }
  assert.equal(await pages.A1.evaluate(() => window.__queued), 'resolved');
  await Promise.all(['A1', 'A2', 'B', 'C'].map((n) => waitGot(n, 'missed', 3)));
  await waitGot('A2', 'queued');
  await sleep(SETTLE_MS);
  for (const n of NAMES) {
    const events = await got(n);
    const missed = events.filter((g) => g.meta.eventName === 'missed').map((g) => g.data.n);
    const queued = events.filter((g) => g.meta.eventName === 'queued');
    assert.deepEqual(missed, n === 'D' ? [] : [1, 2, 3], `page ${n}: the publishes made during the reconnect, once, in order`);
    assert.deepEqual(queued.map((g) => g.data), n === 'A2' ? [{ while: 'down' }] : [], `page ${n}: the publish queued on A1`);
    assert.equal(events.length, missed.length + queued.length, `page ${n}: ${JSON.stringify(events)}`);
  }

  await clearAll();
  await published(await httpPublish(api.acme.token, { type: 'event', event_id: 'ev1' }, 'after-restart', { n: 4 }), 'publish after restart');
  await delivered('after-restart', ['A1', 'A2', 'B']);
  await clearAll();
  await published(await httpPublish(api.globex.token, { type: 'session', event_id: 'ev1', session_id: 's1' }, 'after-restart', { n: 5 }), 'globex publish after restart');
  await delivered('after-restart', ['D']);
  // Uncaught errors only: Chromium logs the refused reconnects as console errors.
  for (const n of NAMES) assert.deepEqual(pages[n].problems.filter((p) => p.startsWith('uncaught')), [], `page ${n} problems`);
});
