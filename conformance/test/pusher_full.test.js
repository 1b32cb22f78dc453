// Complete Pusher Channels server (issue 5), proven with the real npm
// packages: pusher-js 8 and laravel-echo 2 on the client side, the `pusher`
// Node server SDK on the app-backend side, against the real binary.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';

import PusherServer from 'pusher';

import {
  APP_ID, APP_KEY, APP_SECRET, Collector, connected, sleep, startServer, test, waitFor,
} from '../lib/server.js';

// soketi's test master key (protocol note §3.4).
const MASTER_KEY = 'nxzvbGF+f8FGhk/jOaZvgMle1tqxzF/VfUZLBLhhaH0=';

let srv;

before(async () => {
  srv = await startServer({
    env: {
      SWITCHBOARD_APP_ENCRYPTION_MASTER_KEY: MASTER_KEY,
      SWITCHBOARD_APP_SUBSCRIPTION_COUNT: 'true',
    },
  });
});

after(async () => {
  await srv?.stop();
});

// backend is the official server SDK pointed at the gateway.
function backend(secret = APP_SECRET) {
  return new PusherServer({
    appId: APP_ID, key: APP_KEY, secret, host: '127.0.0.1', port: String(srv.port), useTLS: false,
    encryptionMasterKeyBase64: MASTER_KEY,
  });
}

// subscribed resolves with the channel once pusher-js confirmed it, or
// rejects with the subscription error.
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

function subscriptionError(channel, timeoutMs = 5000) {
  return waitFor((resolve) => {
    channel.bind('pusher:subscription_error', resolve);
    return () => channel.unbind('pusher:subscription_error', resolve);
  }, timeoutMs, `subscription error on ${channel.name}`);
}

// errors collects the pusher:error frames a connection receives.
function errors(pusher) {
  const c = new Collector('pusher:error');
  pusher.connection.bind('error', (e) => {
    if (e?.type === 'PusherError') c.push(e.data);
  });
  return c;
}

async function pusherFor(sub, { name = `User ${sub}`, projects = ['demo'], ...extra } = {}) {
  const token = await srv.token({ sub, name, projects });
  const p = srv.pusherClient(token, extra);
  await connected(p);
  return { pusher: p, token };
}

async function echoFor(sub, { name = `User ${sub}`, projects = ['demo'] } = {}) {
  const token = await srv.token({ sub, name, projects });
  const echo = srv.echoClient(token);
  await connected(echo);
  return echo;
}

// stillWorks proves a connection is alive: a server event still arrives.
async function stillWorks(pusher, label) {
  const name = `alive-${Math.random().toString(36).slice(2)}`;
  const ch = pusher.subscribe(name);
  await subscribed(ch);
  const got = new Collector(`${label} alive event`);
  ch.bind('ping', got.push);
  await backend().trigger(name, 'ping', { ok: true });
  assert.deepEqual(await got.next(), { ok: true });
  assert.equal(pusher.connection.state, 'connected', `${label}: connection state`);
  pusher.unsubscribe(name);
}

describe('laravel-echo 2 presence and whispers', () => {
  test('join() presence-dashboard.project.demo: here, joining, leaving, deduplicated per user', async () => {
    const ann = await echoFor('101', { name: 'Ann' });
    const here = new Collector('here');
    const joining = new Collector('joining');
    const leaving = new Collector('leaving');
    ann.join('dashboard.project.demo').here(here.push).joining(joining.push).leaving(leaving.push);
    assert.deepEqual(await here.next(), [{ name: 'Ann' }]);

    const bob = await echoFor('102', { name: 'Bob' });
    const bobHere = new Collector('bob here');
    bob.join('dashboard.project.demo').here(bobHere.push);
    const members = await bobHere.next();
    assert.deepEqual(members.map((m) => m.name).sort(), ['Ann', 'Bob']);
    assert.deepEqual(await joining.next(), { name: 'Bob' });

    // Bob's second tab: no second "joining" for Ann.
    const bob2 = await echoFor('102', { name: 'Bob' });
    const bob2Here = new Collector('bob2 here');
    bob2.join('dashboard.project.demo').here(bob2Here.push);
    assert.equal((await bob2Here.next()).length, 2);
    await sleep(300);
    assert.equal(joining.items.length, 1, 'a second connection of the same user is not a new member');

    // One tab leaves: Bob is still there. The last one leaves: "leaving" once.
    bob.leave('dashboard.project.demo');
    await sleep(300);
    assert.equal(leaving.items.length, 0);
    bob2.leave('dashboard.project.demo');
    assert.deepEqual(await leaving.next(), { name: 'Bob' });

    // A token without the project is refused.
    const eve = await echoFor('103', { name: 'Eve', projects: ['expo'] });
    const refused = new Collector('eve error');
    eve.join('dashboard.project.demo').error(refused.push);
    const err = await refused.next();
    assert.equal(err.status, 403);
    for (const e of [ann, bob, bob2, eve]) e.close();
  });

  test('whisper/listenForWhisper on a chat channel, refused on a dashboard channel (4301, connection kept)', async () => {
    const ann = await echoFor('111', { name: 'Ann' });
    const bob = await echoFor('112', { name: 'Bob' });
    const annCh = ann.private('chat.lobby');
    const bobCh = bob.private('chat.lobby');
    await subscribed(ann.connector.pusher.channel('private-chat.lobby'));
    await subscribed(bob.connector.pusher.channel('private-chat.lobby'));
    const bobGot = new Collector('bob whisper');
    const annGot = new Collector('ann own whisper');
    bobCh.listenForWhisper('typing', bobGot.push);
    annCh.listenForWhisper('typing', annGot.push);
    annCh.whisper('typing', { name: 'Ann' });
    assert.deepEqual(await bobGot.next(), { name: 'Ann' });
    await annGot.none(300); // never echoed to the sender

    const annErrors = errors(ann.connector.pusher);
    const dash = ann.private('dashboard.project.demo.attendees');
    await subscribed(ann.connector.pusher.channel('private-dashboard.project.demo.attendees'));
    dash.whisper('typing', { name: 'Ann' });
    const e = await annErrors.next();
    assert.equal(e.code, 4301);
    assert.match(e.message, /not supported/);
    // Nothing broke: the connection is up and whispers still flow.
    annCh.whisper('typing', { again: true });
    assert.deepEqual(await bobGot.next(), { again: true });
    await stillWorks(ann.connector.pusher, 'ann');
    ann.close();
    bob.close();
  });

  test('presence client events carry the sender user_id', async () => {
    const ann = await echoFor('121', { name: 'Ann' });
    const bob = await echoFor('122', { name: 'Bob' });
    const a = ann.join('chat.room-1');
    const b = bob.join('chat.room-1');
    await subscribed(ann.connector.pusher.channel('presence-chat.room-1'));
    await subscribed(bob.connector.pusher.channel('presence-chat.room-1'));
    const got = new Collector('presence whisper');
    bob.connector.pusher.channel('presence-chat.room-1').bind('client-wave', (data, meta) => got.push({ data, meta }));
    a.whisper('wave', { hi: 1 });
    const { data, meta } = await got.next();
    assert.deepEqual(data, { hi: 1 });
    assert.equal(meta.user_id, '121');
    void b;
    ann.close();
    bob.close();
  });
});

describe('pusher-js 8 channel types', () => {
  test('encrypted channel round-trip with shared_secret (server SDK encrypts, pusher-js decrypts)', async () => {
    const { pusher } = await pusherFor('131');
    assert.ok(pusher.config.nacl, 'the Node build of pusher-js ships nacl for encrypted channels');
    const ch = pusher.subscribe('private-encrypted-chat.secret');
    await subscribed(ch);
    const got = new Collector('decrypted');
    ch.bind('secret-event', got.push);
    await backend().trigger('private-encrypted-chat.secret', 'secret-event', { msg: 'top secret' });
    assert.deepEqual(await got.next(), { msg: 'top secret' });
    // pusher-js itself refuses client events on encrypted channels.
    assert.throws(() => ch.trigger('client-x', {}), /not currently supported for encrypted channels/);
    pusher.close();
  });

  test('cache channel: last event replayed to a new subscriber, otherwise pusher:cache_miss', async () => {
    const api = backend();
    await api.trigger('cache-ticker', 'price', { p: 42 });
    // Wait until the relay has delivered it (and so cached it).
    for (let i = 0; ; i++) {
      const res = await api.get({ path: '/channels/cache-ticker', params: { info: 'cache' } });
      const body = await res.json();
      if (body.cache) break;
      assert.ok(i < 100, 'event never reached the cache');
      await sleep(50);
    }
    const { pusher } = await pusherFor('141');
    const ch = pusher.subscribe('cache-ticker');
    const replay = new Collector('replay');
    ch.bind('price', replay.push);
    assert.deepEqual(await replay.next(), { p: 42 });

    const empty = pusher.subscribe('cache-nothing-yet');
    const miss = new Collector('cache miss');
    empty.bind('pusher:cache_miss', miss.push);
    await miss.next();
    pusher.close();
  });

  test('subscription_count reaches every subscriber', async () => {
    const { pusher: a } = await pusherFor('151');
    const { pusher: b } = await pusherFor('152');
    const counts = new Collector('count');
    const ca = a.subscribe('counted');
    ca.bind('pusher:subscription_count', (d) => counts.push(d.subscription_count));
    assert.equal(await counts.next(), 1);
    b.subscribe('counted');
    assert.equal(await counts.next(), 2);
    b.unsubscribe('counted');
    assert.equal(await counts.next(), 1);
    a.close();
    b.close();
  });

  test('sign-in, server-to-user event and terminateUserConnections', async () => {
    const token = await srv.token({ sub: '161', name: 'Sam' });
    const pusher = srv.pusherClient(token, {
      userAuthentication: { endpoint: `${srv.baseURL}/pusher/user-auth`, transport: 'ajax', headers: { Authorization: `Bearer ${token}` } },
    });
    await connected(pusher);
    const errs = errors(pusher);
    pusher.signin();
    await pusher.user.signinDonePromise;
    assert.equal(pusher.user.user_data.id, '161');
    const got = new Collector('server-to-user');
    pusher.user.bind('notice', got.push);
    const api = backend();
    // The #server-to-user-161 subscription follows signin_success; retry
    // until it is in place.
    let data;
    for (let i = 0; i < 50 && data === undefined; i++) {
      await api.sendToUser('161', 'notice', { n: i });
      data = await got.next(200).catch(() => undefined);
    }
    assert.ok(data && typeof data.n === 'number', 'server-to-user event received');

    const other = await pusherFor('162');
    const states = new Collector('state');
    pusher.connection.bind('state_change', ({ current }) => states.push(current));
    await api.terminateUserConnections('161');
    const e = await errs.next();
    assert.equal(e.code, 4009);
    while ((await states.next()) !== 'disconnected') { /* connecting → disconnected */ }
    await stillWorks(other.pusher, 'other user');
    other.pusher.close();
    pusher.close();
  });
});

describe('pusher Node server SDK against the HTTP API', () => {
  test('trigger to 100 channels, triggerBatch, get channels/users, wrong secret refused', async () => {
    const { pusher } = await pusherFor('171');
    const names = Array.from({ length: 100 }, (_, i) => `fan-${i}`);
    const got = new Collector('fan-out');
    await Promise.all(names.map((n) => {
      const ch = pusher.subscribe(n);
      ch.bind('tick', (d) => got.push([n, d]));
      return subscribed(ch);
    }));
    const api = backend();
    const res = await api.trigger(names, 'tick', { n: 1 });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {});
    const seen = new Set();
    for (let i = 0; i < 100; i++) {
      const [n, d] = await got.next();
      assert.deepEqual(d, { n: 1 });
      seen.add(n);
    }
    assert.equal(seen.size, 100);

    // 101 channels bypassing the SDK's own check: the server refuses (400)
    // and publishes nothing.
    await assert.rejects(
      api.post({ path: '/events', body: { name: 'tick', channels: [...names, 'fan-100'], data: '{}' } }),
      (err) => err.status === 400,
    );
    await sleep(300);
    assert.equal(got.items.length, 100, 'a refused trigger delivers nothing');

    const batchGot = new Collector('batch');
    pusher.channel('fan-0').bind('b1', batchGot.push);
    pusher.channel('fan-1').bind('b2', batchGot.push);
    const br = await api.triggerBatch([
      { channel: 'fan-0', name: 'b1', data: { a: 1 } },
      { channel: 'fan-1', name: 'b2', data: { b: 2 } },
    ]);
    assert.equal(br.status, 200);
    const batchItems = [await batchGot.next(), await batchGot.next()];
    assert.deepEqual(batchItems.sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))), [{ a: 1 }, { b: 2 }]);
    pusher.close();

    // Presence state through get().
    const ann = await echoFor('172', { name: 'Ann' });
    const bob = await echoFor('173', { name: 'Bob' });
    ann.join('chat.sdk');
    bob.join('chat.sdk');
    await subscribed(ann.connector.pusher.channel('presence-chat.sdk'));
    await subscribed(bob.connector.pusher.channel('presence-chat.sdk'));
    const chans = await (await api.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } })).json();
    assert.deepEqual(chans.channels['presence-chat.sdk'], { user_count: 2 });
    const users = await (await api.get({ path: '/channels/presence-chat.sdk/users' })).json();
    assert.deepEqual(users.users.map((u) => u.id).sort(), ['172', '173']);
    const one = await (await api.get({ path: '/channels/presence-chat.sdk', params: { info: 'user_count' } })).json();
    assert.deepEqual(one, { occupied: true, user_count: 2 });

    await assert.rejects(backend('wrong-secret').trigger('fan-0', 'x', {}), (err) => err.status === 401);
    await assert.rejects(backend('wrong-secret').get({ path: '/channels' }), (err) => err.status === 401);
    ann.close();
    bob.close();
  });
});

describe('limits from the seed', () => {
  test('the 101st connection of one user: auth refused, pusher:error 4004, nothing else breaks', { timeout: 120_000 }, async () => {
    const token = await srv.token({ sub: '181', name: 'Many', projects: ['demo'] });
    const clients = [];
    for (let i = 0; i < 100; i++) {
      const p = srv.pusherClient(token);
      clients.push(p);
    }
    await Promise.all(clients.map(async (p) => {
      await connected(p, 20_000);
      await subscribed(p.subscribe('private-dashboard.project.demo.attendees'), 20_000);
    }));
    const extra = srv.pusherClient(token);
    await connected(extra);
    const errs = errors(extra);
    const err = await subscriptionError(extra.subscribe('private-dashboard.project.demo.attendees'));
    assert.equal(err.status, 403);
    const e = await errs.next();
    assert.equal(e.code, 4004);
    assert.equal(extra.connection.state, 'connected');
    // The 100 others still get events; another user is unaffected.
    const got = new Collector('limit fan-out');
    for (const p of clients.slice(0, 5)) p.channel('private-dashboard.project.demo.attendees').bind('ping', got.push);
    await backend().trigger('private-dashboard.project.demo.attendees', 'ping', { ok: 1 });
    for (let i = 0; i < 5; i++) assert.deepEqual(await got.next(), { ok: 1 });
    const other = await pusherFor('182');
    await subscribed(other.pusher.subscribe('private-dashboard.project.demo.attendees'));
    // Closing one connection frees a slot.
    clients.pop().close();
    await sleep(300);
    const again = srv.pusherClient(token);
    await connected(again);
    await subscribed(again.subscribe('private-dashboard.project.demo.attendees'));
    for (const p of [...clients, extra, again, other.pusher]) p.close();
  });

  test('the 101st subscription of one connection: subscription error, the 100 keep working', async () => {
    const { pusher } = await pusherFor('191');
    const chans = Array.from({ length: 100 }, (_, i) => pusher.subscribe(`sub-${i}`));
    await Promise.all(chans.map((c) => subscribed(c)));
    const err = await subscriptionError(pusher.subscribe('sub-100'));
    assert.equal(err.type, 'LimitReached');
    assert.equal(err.status, 4100);
    const got = new Collector('sub-0 event');
    chans[0].bind('e', got.push);
    await backend().trigger('sub-0', 'e', { ok: true });
    assert.deepEqual(await got.next(), { ok: true });
    assert.equal(pusher.connection.state, 'connected');
    pusher.close();
  });

  test('an 11th client event within a second: pusher:error 4301, ten delivered, connection kept', async () => {
    const a = await pusherFor('201');
    const b = await pusherFor('202');
    const ca = a.pusher.subscribe('private-chat.rate');
    const cb = b.pusher.subscribe('private-chat.rate');
    await subscribed(ca);
    await subscribed(cb);
    const errs = errors(a.pusher);
    const got = new Collector('client events');
    cb.bind('client-n', got.push);
    for (let i = 0; i < 11; i++) assert.equal(ca.trigger('client-n', { i }), true);
    const e = await errs.next();
    assert.equal(e.code, 4301);
    assert.match(e.message, /rate limit/);
    for (let i = 0; i < 10; i++) assert.deepEqual(await got.next(), { i });
    await sleep(300);
    assert.equal(got.items.length, 10, 'the refused 11th event is not delivered');
    await sleep(1000);
    ca.trigger('client-n', { i: 'later' });
    assert.deepEqual(await got.next(), { i: 'later' });
    await stillWorks(a.pusher, 'rate-limited sender');
    a.pusher.close();
    b.pusher.close();
  });
});
