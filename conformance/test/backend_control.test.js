// Backend control for every protocol (issue 23), proven with the real
// clients and the real server SDK against the real binary:
//   - the ActionCable broadcast endpoint in AnyCable's shape (POST
//     /_broadcast, Authorization: Bearer <key>) reaching @rails/actioncable
//     with the data as given, and the same channel's pusher-js and
//     centrifuge-js subscribers;
//   - remote disconnect by user on every front door: the `pusher` SDK's
//     terminateUserConnections and Centrifugo's disconnect API close the
//     user's pusher-js, @rails/actioncable and centrifuge-js connections;
//   - Centrifugo's server API driving centrifuge-js: server-side subscribe,
//     unsubscribe, publish with offset/epoch and idempotency_key;
//   - the close handshake: a client's close code comes back on all three
//     WebSocket endpoints.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';

import PusherServer from 'pusher';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';

import {
  APP_ID, APP_KEY, APP_SECRET, Collector, closeClients, connected, sleep, startServer, test, waitFor,
} from '../lib/server.js';
import { consumer, closeConsumers, subscribe } from '../lib/actioncable.js';

const API_KEY = 'conformance-server-api-key';
const BROADCAST_KEY = 'conformance-broadcast-key';

let srv;
let jane; // member 42
let bob; // member 43
const centrifuges = new Set();

before(async () => {
  srv = await startServer({
    env: { SWITCHBOARD_API_KEY: API_KEY, SWITCHBOARD_BROADCAST_KEY: BROADCAST_KEY, SWITCHBOARD_RELAY_POLL: '100ms' },
  });
  jane = await srv.token({ sub: '42', name: 'Jane' });
  bob = await srv.token({ sub: '43', name: 'Bob' });
});

after(async () => {
  closeConsumers();
  closeClients();
  for (const c of centrifuges) c.disconnect();
  await srv?.stop();
});

// broadcast POSTs AnyCable's body to /_broadcast.
async function broadcast(body, key = BROADCAST_KEY) {
  const res = await fetch(`${srv.baseURL}/_broadcast`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, text: await res.text() };
}

// serverAPI calls Centrifugo's HTTP server API.
async function serverAPI(method, body) {
  const res = await fetch(`${srv.baseURL}/api/${method}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': API_KEY },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(res.status, 200, `${method}: HTTP ${res.status}`);
  return res.json();
}

// backend is the official Pusher server SDK pointed at the gateway.
function backend() {
  return new PusherServer({ appId: APP_ID, key: APP_KEY, secret: APP_SECRET, host: '127.0.0.1', port: String(srv.port), useTLS: false });
}

// centrifugeFor is a centrifuge-js client of the bearer's user, connected.
async function centrifugeFor(bearer) {
  const c = new Centrifuge(`ws://127.0.0.1:${srv.port}/connection/websocket`, {
    websocket: WebSocket,
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
    getToken: async () => {
      const r = await fetch(`${srv.baseURL}/api/v1/realtime/token`, { method: 'POST', headers: { Authorization: `Bearer ${bearer}` } });
      return (await r.json()).token;
    },
  });
  centrifuges.add(c);
  const up = on(c, 'connected');
  c.connect();
  await up.next();
  return c;
}

// on collects an emitter's events.
function on(emitter, event) {
  const got = new Collector(event);
  emitter.on(event, got.push);
  return got;
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

// pusherOn subscribes a pusher-js client of the bearer to a private
// channel and collects the named events on it.
async function pusherOn(bearer, channelName, events) {
  const pusher = srv.pusherClient(bearer);
  await connected(pusher);
  const ch = pusher.subscribe(channelName);
  await subscribed(ch);
  const got = new Collector(`pusher ${channelName}`);
  for (const e of events) ch.bind(e, (data) => got.push({ event: e, data }));
  return { pusher, got };
}

describe('ActionCable broadcast in AnyCable\'s shape (POST /_broadcast)', () => {
  test('@rails/actioncable receives the data as given; pusher-js and centrifuge-js on the same channel receive it too', async () => {
    const cable = subscribe(consumer(srv, jane), { channel: 'NotificationChannel' });
    await cable.state('connected');
    const { pusher, got: pusherGot } = await pusherOn(jane, 'private-notification-channel-42', ['broadcast', 'newNotification']);
    const cf = await centrifugeFor(jane);
    const sub = cf.newSubscription('notification-channel-42');
    const pubs = on(sub, 'publication');
    const ok = on(sub, 'subscribed');
    sub.subscribe();
    await ok.next();

    // AnyCable's own format: data is a JSON-encoded string.
    let r = await broadcast({ stream: 'notification-channel-42', data: JSON.stringify({ text: 'hi', n: 1 }) });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(await cable.waitFor('messages', (m) => m?.n === 1), { text: 'hi', n: 1 });
    assert.deepEqual(await pusherGot.next(), { event: 'broadcast', data: { text: 'hi', n: 1 } });
    assert.deepEqual((await pubs.next()).data, { text: 'hi', n: 1 });

    // An object, as given.
    r = await broadcast({ stream: 'notification-channel-42', data: { text: 'object', n: 2 } });
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(await cable.waitFor('messages', (m) => m?.n === 2), { text: 'object', n: 2 });
    assert.deepEqual((await pusherGot.next()).data, { text: 'object', n: 2 });
    assert.deepEqual((await pubs.next()).data, { text: 'object', n: 2 });

    // Text that is not JSON arrives as that string.
    r = await broadcast({ stream: 'notification-channel-42', data: 'plain words' });
    assert.equal(r.status, 201, r.text);
    assert.equal(await cable.waitFor('messages', (m) => typeof m === 'string'), 'plain words');
    assert.equal((await pusherGot.next()).data, 'plain words');
    assert.equal((await pubs.next()).data, 'plain words');

    // The gateway's own event shape is an event for Pusher and Centrifugo.
    r = await broadcast([{ stream: 'notification-channel-42', data: JSON.stringify({ event: 'newNotification', data: { id: 7 } }) }]);
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(await cable.waitFor('messages', (m) => m?.event === 'newNotification'), { event: 'newNotification', data: { id: 7 } });
    assert.deepEqual(await pusherGot.next(), { event: 'newNotification', data: { id: 7 } });
    assert.deepEqual((await pubs.next()).data, { type: 'newNotification', data: { id: 7 } });

    // A wrong key or a stream that is no Switchboard channel publishes nothing.
    r = await broadcast({ stream: 'notification-channel-42', data: 'x' }, 'wrong-key');
    assert.equal(r.status, 401, r.text);
    r = await broadcast({ stream: 'chat_room_1', data: 'x' });
    assert.equal(r.status, 422, r.text);
    await sleep(300);
    assert.equal(pusherGot.items.length, 4, 'nothing more reached pusher-js');
    pusher.close();
  });
});

describe('remote disconnect by user, every front door', () => {
  test('the pusher SDK\'s terminateUserConnections closes the user\'s pusher-js, @rails/actioncable and centrifuge-js connections', async () => {
    const janeCable = subscribe(consumer(srv, jane), { channel: 'NotificationChannel' }, 'jane cable');
    const bobCable = subscribe(consumer(srv, bob), { channel: 'NotificationChannel' }, 'bob cable');
    await janeCable.state('connected');
    await bobCable.state('connected');
    const janePusher = srv.pusherClient(jane);
    await connected(janePusher);
    await subscribed(janePusher.subscribe('private-notification-channel-42')); // authorized as 42
    const pusherErrors = new Collector('pusher:error');
    janePusher.connection.bind('error', (e) => { if (e?.type === 'PusherError') pusherErrors.push(e.data); });
    const pusherStates = new Collector('pusher state');
    janePusher.connection.bind('state_change', ({ current }) => pusherStates.push(current));
    const bobPusher = srv.pusherClient(bob);
    await connected(bobPusher);
    const janeCf = await centrifugeFor(jane);
    const cfDown = on(janeCf, 'disconnected');
    const bobCf = await centrifugeFor(bob);

    await backend().terminateUserConnections('42');

    const err = await pusherErrors.next();
    assert.equal(err.code, 4009);
    while ((await pusherStates.next()) !== 'disconnected') { /* until disconnected */ }
    const down = await janeCable.state('disconnected');
    assert.equal(down.willAttemptReconnect, false, 'ActionCable: reason remote, reconnect false');
    const cfCtx = await cfDown.next();
    assert.equal(cfCtx.code, 3503, `centrifuge-js: ${JSON.stringify(cfCtx)}`);
    await sleep(500);
    assert.equal(janeCf.state, 'disconnected', 'centrifuge-js does not reconnect after 3503');

    // Bob is untouched.
    assert.equal(bobPusher.connection.state, 'connected');
    assert.equal(bobCf.state, 'connected');
    assert.equal(bobCable.states.filter((s) => s.type === 'disconnected').length, 0);
    const r = await broadcast({ stream: 'notification-channel-43', data: { still: 'here' } });
    assert.equal(r.status, 201);
    assert.deepEqual(await bobCable.waitFor('messages', (m) => m?.still === 'here'), { still: 'here' });
    bobPusher.close();
    janePusher.close();
  });

  test('Centrifugo\'s disconnect API closes centrifuge-js with its code and the user\'s /cable connection', async () => {
    const cable = subscribe(consumer(srv, bob), { channel: 'NotificationChannel' }, 'bob cable');
    await cable.state('connected');
    const cf = await centrifugeFor(bob);
    const down = on(cf, 'disconnected');
    const res = await serverAPI('disconnect', { user: '43', disconnect: { code: 4501, reason: 'banned' } });
    assert.deepEqual(res, { result: {} });
    const ctx = await down.next();
    assert.equal(ctx.code, 4501);
    assert.equal(ctx.reason, 'banned');
    const cableDown = await cable.state('disconnected');
    assert.equal(cableDown.willAttemptReconnect, false, '4501 is terminal: ActionCable is told not to reconnect');
  });
});

describe('Centrifugo server API driving centrifuge-js', () => {
  test('server-side subscribe, publish with offset and idempotency_key, unsubscribe', async () => {
    const sam = await srv.token({ sub: '77', name: 'Sam' });
    const cf = await centrifugeFor(sam);
    const subs = on(cf, 'subscribed');
    const pubs = on(cf, 'publication');
    const unsubs = on(cf, 'unsubscribed');

    let r = await serverAPI('subscribe', { user: '77', channel: 'tickets:77' });
    assert.deepEqual(r, { result: {} });
    const s = await subs.next();
    assert.equal(s.channel, 'tickets:77');
    assert.equal(s.recoverable, true);

    const first = await serverAPI('publish', { channel: 'tickets:77', data: { n: 1 }, idempotency_key: 'ticket-1' });
    assert.equal(first.result.offset, 1);
    assert.ok(first.result.epoch, 'publish answers the epoch');
    const retry = await serverAPI('publish', { channel: 'tickets:77', data: { n: 1 }, idempotency_key: 'ticket-1' });
    assert.deepEqual(retry, first, 'the retry answers the same and publishes nothing');
    const second = await serverAPI('publish', { channel: 'tickets:77', data: { n: 2 } });
    assert.equal(second.result.offset, 2);
    const p1 = await pubs.next();
    assert.equal(p1.channel, 'tickets:77');
    assert.deepEqual(p1.data, { n: 1 });
    assert.equal(p1.offset, 1);
    const p2 = await pubs.next();
    assert.deepEqual(p2.data, { n: 2 });
    await sleep(300);
    assert.equal(pubs.items.length, 2, 'one publication per idempotency key');

    const chans = await serverAPI('channels', { pattern: 'tickets:*' });
    assert.deepEqual(chans.result.channels['tickets:77'], { num_clients: 1 });

    // A client-side subscription ended by the server: code 2000, stays unsubscribed.
    const own = cf.newSubscription('voice:calls');
    const ownOk = on(own, 'subscribed');
    const ownGone = on(own, 'unsubscribed');
    own.subscribe();
    await ownOk.next();
    r = await serverAPI('unsubscribe', { user: '77', channel: 'voice:calls' });
    assert.deepEqual(r, { result: {} });
    assert.equal((await ownGone.next()).code, 2000);
    await sleep(300);
    assert.equal(own.state, 'unsubscribed');

    // The server-side one.
    await serverAPI('unsubscribe', { user: '77', channel: 'tickets:77' });
    assert.equal((await unsubs.next()).channel, 'tickets:77');
    await serverAPI('publish', { channel: 'tickets:77', data: { n: 3 } });
    await sleep(300);
    assert.equal(pubs.items.length, 2, 'nothing after the server unsubscribed it');

    const batch = await serverAPI('batch', { commands: [{ info: {} }, { publish: { channel: 'nowhere:x', data: {} } }] });
    assert.equal(batch.replies.length, 2);
    assert.ok(batch.replies[0].info.nodes[0].num_clients >= 1);
    assert.equal(batch.replies[1].error.code, 102);
    cf.disconnect();
  });
});

describe('the close handshake', () => {
  // A client's Close frame is answered with the same code on every
  // endpoint: the ws package (what @rails/actioncable and centrifuge-js run
  // on in Node) reports that code, not 1006.
  for (const [name, path, protocols] of [
    ['/app (Pusher)', () => `/app/${APP_KEY}?protocol=7`, undefined],
    ['/connection/websocket (Centrifugo)', () => '/connection/websocket', undefined],
    ['/cable (ActionCable)', () => `/cable?token=${encodeURIComponent(jane)}`, ['actioncable-v1-json']],
  ]) {
    for (const code of [1000, 4000]) {
      test(`${name}: the client closes with ${code} and sees ${code}`, async () => {
        const ws = new WebSocket(`ws://127.0.0.1:${srv.port}${path()}`, protocols);
        await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
        const closed = new Promise((resolve) => ws.once('close', (c, reason) => resolve({ code: c, reason: reason.toString() })));
        const started = Date.now();
        ws.close(code, 'bye');
        const got = await closed;
        assert.equal(got.code, code, `close ${JSON.stringify(got)}`);
        assert.ok(Date.now() - started < 5000, 'answered at once, not after the client gave up waiting');
      });
    }
  }

  test('@rails/actioncable\'s disconnect() ends with a clean close on the server', async () => {
    const c = consumer(srv, jane);
    const rec = subscribe(c, { channel: 'NotificationChannel' });
    await rec.state('connected');
    const ws = c.connection.webSocket;
    const closed = new Promise((resolve) => ws.addEventListener('close', (e) => resolve(e)));
    c.disconnect();
    const e = await closed;
    assert.equal(e.wasClean, true, `close event ${e.code}`);
  });
});
