// The rest of the Pusher server (issue 18), as a Pusher/soketi user tries
// it with the real npm packages: pusher-js 8 on the client side, the
// `pusher` Node server SDK on the app-backend side, against the real binary
// configured through an apps file.
//
// - user authentication timeout (enable_user_authentication +
//   user_authentication_timeout) → 4009 for connections that never
//   authorize themselves;
// - per-app max_connections → pusher:error 4004 + close 4004;
// - enabled: false → 4003 on the WebSocket, 403 on the HTTP API;
// - client event names longer than max_event_name_length → pusher:error;
// - subscription_count on busy channels (> 100) delayed and coalesced,
//   never dropped;
// - sendToUser reaches signed-in sockets before (or without) the
//   #server-to-user subscription;
// - GET /channels/{presence-channel}?info=subscription_count answers.

import assert from 'node:assert/strict';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';

import Pusher from 'pusher-js';
import PusherServer from 'pusher';
import WebSocket from 'ws';

import { APP_ID, APP_KEY, APP_SECRET, Collector, connected, sleep, startServer, test, waitFor } from '../lib/server.js';

const APPS = {
  apps: [
    { id: APP_ID, key: APP_KEY, secret: APP_SECRET, subscription_count: true },
    { id: 'auth-app', key: 'auth-key', secret: 'auth-secret', enable_user_authentication: true, user_authentication_timeout: 1 },
    { id: 'quota-app', key: 'quota-key', secret: 'quota-secret', max_connections: 2 },
    { id: 'off-app', key: 'off-key', secret: 'off-secret', enabled: false },
    { id: 'names-app', key: 'names-key', secret: 'names-secret', max_event_name_length: 20 },
  ],
};
const secretOf = Object.fromEntries(APPS.apps.map((a) => [a.key, { id: a.id, secret: a.secret }]));

let srv;
let dir;
const clients = new Set();

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sb-pusher-server-'));
  const file = path.join(dir, 'apps.json');
  await writeFile(file, JSON.stringify(APPS));
  srv = await startServer({ env: { SWITCHBOARD_APPS_FILE: file } });
});

after(async () => {
  for (const c of clients) c.disconnect();
  await srv?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// backend is the official server SDK for the app with key.
function backend(key = APP_KEY) {
  const { id, secret } = secretOf[key];
  return new PusherServer({ appId: id, key, secret, host: '127.0.0.1', port: String(srv.port), useTLS: false });
}

// client is pusher-js for the app with key; the app backend (the `pusher`
// SDK with the app secret) authorizes channels and signs users in, as a
// customer's own backend would.
function client(key = APP_KEY, { user } = {}) {
  const be = backend(key);
  const p = new Pusher(key, {
    cluster: 'mt1', wsHost: srv.host, wsPort: srv.port, wssPort: srv.port, forceTLS: false, enabledTransports: ['ws'],
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) => {
        const presence = channelName.startsWith('presence-') ? { user_id: user ?? 'u', user_info: {} } : undefined;
        cb(null, be.authorizeChannel(socketId, channelName, presence));
      },
    },
    userAuthentication: {
      customHandler: ({ socketId }, cb) => cb(null, be.authenticateUser(socketId, { id: user ?? 'u' })),
    },
  });
  clients.add(p);
  return p;
}

// errors collects the pusher:error frames a connection receives: on an
// open connection pusher-js emits them as PusherError; during the handshake
// (a refusal instead of connection_established) wrapped in a WebSocketError.
function errors(pusher) {
  const c = new Collector('pusher:error');
  pusher.connection.bind('error', (e) => {
    if (e?.type === 'PusherError') c.push(e.data);
    else if (e?.type === 'WebSocketError' && e.error?.type === 'PusherError') c.push(e.error.data);
  });
  return c;
}

function subscribed(channel, timeoutMs = 5000) {
  if (channel.subscribed) return Promise.resolve(channel);
  return waitFor((resolve, reject) => {
    const ok = () => resolve(channel);
    const ko = (err) => reject(new Error(`subscription to ${channel.name} failed: ${JSON.stringify(err)}`));
    channel.bind('pusher:subscription_succeeded', ok);
    channel.bind('pusher:subscription_error', ko);
    return () => { channel.unbind('pusher:subscription_succeeded', ok); channel.unbind('pusher:subscription_error', ko); };
  }, timeoutMs, `subscription to ${channel.name}`);
}

function state(pusher, want, timeoutMs = 5000) {
  const conn = pusher.connection;
  if (conn.state === want) return Promise.resolve();
  return waitFor((resolve) => {
    const f = ({ current }) => { if (current === want) resolve(); };
    conn.bind('state_change', f);
    return () => conn.unbind('state_change', f);
  }, timeoutMs, `state ${want}`);
}

// rawClose opens a bare WebSocket on the app and resolves with the
// pusher:error frames before the close, and the close code.
function rawClose(key, timeoutMs = 5000) {
  return waitFor((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/app/${key}?protocol=7&client=js&version=8.4.0`);
    const errs = [];
    ws.on('message', (raw) => {
      const f = JSON.parse(raw.toString());
      if (f.event === 'pusher:error') errs.push(typeof f.data === 'string' ? JSON.parse(f.data) : f.data);
    });
    ws.on('close', (code) => resolve({ code, errors: errs }));
    ws.on('error', reject);
    return () => ws.terminate();
  }, timeoutMs, `close of a ${key} socket`);
}

async function rejection(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('user authentication timeout (enable_user_authentication, user_authentication_timeout: 1)', () => {
  test('a connection that neither signs in nor subscribes to a private channel is closed with 4009', async () => {
    const idle = client('auth-key');
    const pub = client('auth-key');
    const idleErr = errors(idle);
    const pubErr = errors(pub);
    await Promise.all([connected(idle), connected(pub)]);
    await subscribed(pub.subscribe('news')); // public: does not count
    for (const e of [await idleErr.next(4000), await pubErr.next(4000)]) {
      assert.equal(e.code, 4009);
      assert.match(e.message, /not authorized within timeout/);
    }
    // 4009 is a "do not reconnect" close for pusher-js.
    await Promise.all([state(idle, 'disconnected'), state(pub, 'disconnected')]);
    await sleep(1500);
    assert.equal(idle.connection.state, 'disconnected');
    const raw = await rawClose('auth-key', 5000);
    assert.equal(raw.code, 4009);
    assert.equal(raw.errors[0].code, 4009);
  });

  test('a connection that signs in, or subscribes to a private or presence channel, stays', async () => {
    const signedIn = client('auth-key', { user: '5' });
    const priv = client('auth-key');
    const pres = client('auth-key', { user: '6' });
    const errs = [signedIn, priv, pres].map(errors);
    await Promise.all([signedIn, priv, pres].map((p) => connected(p)));
    signedIn.signin();
    await signedIn.user.signinDonePromise;
    await subscribed(priv.subscribe('private-room'));
    await subscribed(pres.subscribe('presence-room'));
    await sleep(2500);
    for (const [i, p] of [signedIn, priv, pres].entries()) {
      assert.equal(p.connection.state, 'connected', `client ${i}`);
      assert.equal(errs[i].items.length, 0, `client ${i}: ${JSON.stringify(errs[i].items)}`);
    }
    // Still served: an event reaches the private subscriber.
    const got = new Collector('event');
    priv.channel('private-room').bind('e', got.push);
    await backend('auth-key').trigger('private-room', 'e', { ok: 1 });
    assert.deepEqual(await got.next(), { ok: 1 });
  });
});

describe('per-app max_connections (2)', () => {
  test('the connection over the quota gets pusher:error 4004 and is closed; closing one frees a slot', async () => {
    const a = client('quota-key');
    const b = client('quota-key');
    await Promise.all([connected(a), connected(b)]);
    const over = client('quota-key');
    const overErr = errors(over);
    over.connect();
    const e = await overErr.next();
    assert.equal(e.code, 4004);
    await state(over, 'disconnected');
    over.disconnect();
    const raw = await rawClose('quota-key');
    assert.equal(raw.code, 4004);
    assert.equal(raw.errors[0].code, 4004);
    // Other apps are not affected.
    await connected(client(APP_KEY));
    // The slot is released when a connection closes.
    a.disconnect();
    let ok = false;
    for (let i = 0; i < 20 && !ok; i++) {
      await sleep(100);
      const c = client('quota-key');
      try {
        await connected(c, 2000);
        ok = true;
      } catch {
        c.disconnect();
      }
    }
    assert.ok(ok, 'a new connection is accepted after one closed');
  });
});

describe('enabled: false', () => {
  test('WebSocket connections are refused with 4003, the HTTP API with 403', async () => {
    const p = client('off-key');
    const errs = errors(p);
    p.connect();
    const e = await errs.next();
    assert.equal(e.code, 4003);
    await state(p, 'disconnected');
    const raw = await rawClose('off-key');
    assert.equal(raw.code, 4003);
    assert.equal(raw.errors[0].code, 4003);

    const be = backend('off-key');
    for (const call of [() => be.trigger('news', 'e', {}), () => be.get({ path: '/channels' }),
      () => be.sendToUser('1', 'e', {}), () => be.terminateUserConnections('1')]) {
      const err = await rejection(call());
      assert.equal(err.status, 403, String(err));
      assert.match(err.body, /disabled/);
    }
    // The enabled apps keep working.
    assert.equal((await backend().trigger('news', 'e', {})).status, 200);
  });
});

describe('client event names (max_event_name_length: 20)', () => {
  test('a longer client event name is refused with pusher:error 4301; 20 characters pass', async () => {
    const a = client('names-key');
    const b = client('names-key');
    const aErr = errors(a);
    const [ca, cb] = [a.subscribe('private-room'), b.subscribe('private-room')];
    await Promise.all([subscribed(ca), subscribed(cb)]);
    const got = new Collector('client event');
    cb.bind_global((name) => { if (name.startsWith('client-')) got.push(name); });
    const ok = 'client-' + 'x'.repeat(13);
    const long = 'client-' + 'x'.repeat(14);
    ca.trigger(long, { n: 1 });
    const e = await aErr.next();
    assert.equal(e.code, 4301);
    assert.match(e.message, /too long/);
    ca.trigger(ok, { n: 2 });
    assert.equal(await got.next(), ok);
    await sleep(300);
    assert.deepEqual(got.items, [ok], 'the long name is not relayed');
    assert.equal(a.connection.state, 'connected');
  });
});

describe('subscription_count on a channel with more than 100 subscribers', () => {
  test('updates within the 5 s window are delayed and coalesced, never dropped', { timeout: 60_000 }, async () => {
    const counts = new Map(); // pusher → last count seen
    const seen = new Map(); // pusher → every count seen
    const join = async () => {
      const p = client(APP_KEY);
      seen.set(p, []);
      const ch = p.subscribe('busy');
      ch.bind('pusher:subscription_count', (d) => { counts.set(p, d.subscription_count); seen.get(p).push(d.subscription_count); });
      await subscribed(ch, 10_000);
      return p;
    };
    const all = [];
    for (let i = 0; i < 100; i += 20) {
      all.push(...await Promise.all(Array.from({ length: 20 }, join)));
    }
    const allAt = (n, ms) => waitFor((resolve) => {
      const t = setInterval(() => { if (all.every((p) => counts.get(p) === n)) resolve(); }, 20);
      return () => clearInterval(t);
    }, ms, `every subscriber at ${n} (got ${[...new Set(all.map((p) => counts.get(p)))]})`);
    await allAt(100, 5000);
    // The 101st and 102nd subscribers come within 5 s of the broadcast of
    // 100: one broadcast at the end of the window tells everybody 102.
    const started = Date.now();
    all.push(await join(), await join());
    await allAt(102, 8000);
    const took = Date.now() - started;
    assert.ok(took <= 7000, `final count after ${took} ms`);
    const newcomer = all[100];
    assert.ok(!seen.get(newcomer).includes(101), `coalesced: ${seen.get(newcomer)}`);
    // A leave in the next window is delayed too, not lost.
    all.shift().disconnect();
    await allAt(101, 8000);
  });
});

describe('sendToUser right after signin_success', () => {
  test('reaches the signed-in socket even before (or without) its #server-to-user subscription', async () => {
    const be = backend();
    // pusher-js whose #server-to-user-201 subscription never leaves: the
    // worst case of the race (the event reaching the server first).
    const early = client(APP_KEY, { user: '201' });
    const send = early.send_event.bind(early);
    early.send_event = (name, data, channel) =>
      (name === 'pusher:subscribe' && String(data?.channel).startsWith('#server-to-user-') ? true : send(name, data, channel));
    // A normal one, subscribed: gets each event once.
    const normal = client(APP_KEY, { user: '201' });
    const other = client(APP_KEY, { user: '202' });
    const earlyGot = new Collector('early');
    const normalGot = new Collector('normal');
    const otherGot = new Collector('other');
    early.user.bind('notice', earlyGot.push);
    normal.user.bind('notice', normalGot.push);
    other.user.bind('notice', otherGot.push);
    await Promise.all([early, normal, other].map((p) => connected(p)));
    for (const p of [early, normal, other]) p.signin();
    await Promise.all([early, normal, other].map((p) => p.user.signinDonePromise));
    await subscribed(normal.user.serverToUserChannel);
    assert.equal(early.user.serverToUserChannel.subscribed, false);

    await be.sendToUser('201', 'notice', { n: 1 });
    assert.deepEqual(await earlyGot.next(), { n: 1 });
    assert.deepEqual(await normalGot.next(), { n: 1 });
    await sleep(300);
    assert.equal(normalGot.items.length, 1, 'a subscribed socket gets the event once');
    assert.equal(earlyGot.items.length, 1);
    await otherGot.none(0);

    // Straight after signin_success, from the signin_success handler itself.
    const fresh = client(APP_KEY, { user: '203' });
    const freshGot = new Collector('fresh');
    fresh.user.bind('notice', freshGot.push);
    fresh.connection.bind('message', (m) => {
      if (m.event === 'pusher:signin_success') be.sendToUser('203', 'notice', { first: true });
    });
    await connected(fresh);
    fresh.signin();
    assert.deepEqual(await freshGot.next(), { first: true });
    await sleep(300);
    assert.equal(freshGot.items.length, 1);
  });
});

describe('GET /channels/{presence-channel}?info=subscription_count', () => {
  test('answers 200 with subscription_count and user_count', async () => {
    const a1 = client(APP_KEY, { user: '301' });
    const a2 = client(APP_KEY, { user: '301' });
    const b = client(APP_KEY, { user: '302' });
    await Promise.all([a1, a2, b].map((p) => subscribed(p.subscribe('presence-lobby'))));
    const res = await backend().get({ path: '/channels/presence-lobby', params: { info: 'subscription_count,user_count' } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { occupied: true, subscription_count: 3, user_count: 2 });
    const only = await backend().get({ path: '/channels/presence-lobby', params: { info: 'subscription_count' } });
    assert.equal(only.status, 200);
    assert.equal((await only.json()).subscription_count, 3);
  });
});
