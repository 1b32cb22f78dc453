// The Centrifugo front door, proven with the real centrifuge-js 5 client
// (Node, `ws` as its WebSocket) against the real switchboard binary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Pusher from 'pusher-js';
import {
  startSwitchboard, bearer, connectionToken, serverApi, request, newClient, once, collect, sleep, subscriptionToken,
} from '../lib/centrifuge.js';

// The seed's example events, published verbatim through the server API.
const callStarted = {
  type: 'call.started',
  data: {
    call_id: 'call_123', direction: 'inbound', from: '+1-555-123-4567', to: '+1-555-987-6543',
    queue_id: 'queue_support', started_at: '2024-01-15T10:30:00Z',
  },
};
const agentStatusChanged = {
  type: 'agent.status_changed',
  data: { agent_id: 'agent_123', previous_status: 'available', new_status: 'on_call', timestamp: '2024-01-15T10:30:00Z' },
};
const ticketUpdated = {
  type: 'ticket.updated',
  data: {
    ticket_id: 'tkt_123',
    changes: { status: { from: 'open', to: 'pending' }, assignee_id: { from: null, to: 'usr_456' } },
    updated_by: 'usr_789', updated_at: '2024-01-15T10:30:00Z',
  },
};

let srv;
const clients = [];
function client(opts) {
  const c = newClient(srv, opts);
  clients.push(c);
  return c;
}
async function subscribed(c, channel, opts) {
  const sub = c.newSubscription(channel, opts);
  const ready = once(sub, 'subscribed');
  sub.subscribe();
  return { sub, ctx: await ready };
}

before(async () => {
  // A short token TTL so expiry and refresh happen within the test.
  srv = await startSwitchboard({ SWITCHBOARD_REALTIME_TOKEN_TTL: '2s' });
});
after(async () => {
  for (const c of clients) c.disconnect();
  await srv?.stop();
});

test('token endpoint returns a Centrifugo connection token and its expiry', async () => {
  const r = await request(srv.base, 'POST', '/api/v1/realtime/token', { headers: { Authorization: `Bearer ${bearer(42, { name: 'Jane Smith' })}` } });
  assert.equal(r.status, 200);
  assert.match(r.body.token, /^eyJ/);
  const claims = JSON.parse(Buffer.from(r.body.token.split('.')[1], 'base64url').toString());
  assert.equal(claims.sub, '42');
  assert.deepEqual(claims.info, { name: 'Jane Smith' });
  assert.equal(new Date(r.body.expires_at).getTime() / 1000, claims.exp);
  assert.match(r.body.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  const anon = await request(srv.base, 'POST', '/api/v1/realtime/token');
  assert.equal(anon.status, 401);
  assert.equal(anon.body.error.code, 'unauthorized');
});

test('getToken connects, voice:calls receives the server API publication with identical data', async () => {
  const c = client({ bearerToken: bearer(42, { name: 'Jane Smith' }) });
  const connected = once(c, 'connected');
  c.connect();
  const ctx = await connected;
  assert.ok(ctx.client, 'client id');
  assert.equal(c.counters.tokenCalls, 1);

  const { sub } = await subscribed(c, 'voice:calls');
  const pubs = collect(sub, 'publication');
  for (const [key, header] of [['X-API-Key', API_KEY_HEADER()], ['Authorization', `apikey ${API_KEY_HEADER()}`]]) {
    const r = await request(srv.base, 'POST', '/api/publish', { body: { channel: 'voice:calls', data: callStarted }, headers: { [key]: header } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    // The offset and epoch the relay gave the publication (issue 23).
    assert.ok(r.body.result.offset >= 1 && r.body.result.epoch, JSON.stringify(r.body));
  }
  await pubs.wait(2);
  assert.deepEqual(pubs[0].data, callStarted);
  assert.deepEqual(pubs[1].data, callStarted);
  assert.ok(pubs[1].offset > pubs[0].offset, 'offsets grow');

  const { sub: agents } = await subscribed(c, 'voice:agents');
  const apubs = collect(agents, 'publication');
  const other = await serverApi(srv.base, 'broadcast', { channels: ['voice:agents', 'tickets:all', 'nope:x'], data: agentStatusChanged });
  assert.equal(other.status, 200);
  assert.equal(other.body.result.responses.length, 3);
  assert.equal(other.body.result.responses[0].result.offset, 1);
  assert.equal(other.body.result.responses[2].error.code, 102);
  await apubs.wait(1);
  assert.deepEqual(apubs[0].data, agentStatusChanged);
});

function API_KEY_HEADER() { return srv.env.SWITCHBOARD_API_KEY; }

test('server API refuses a wrong key and unknown channels', async () => {
  const bad = await serverApi(srv.base, 'publish', { channel: 'voice:calls', data: callStarted }, 'wrong');
  assert.equal(bad.status, 401);
  const unknown = await serverApi(srv.base, 'publish', { channel: 'nope:calls', data: callStarted });
  assert.deepEqual(unknown.body, { error: { code: 102, message: 'unknown channel' } });
  const malformed = await request(srv.base, 'POST', '/api/publish', { body: '{"channel":', headers: { 'X-API-Key': API_KEY_HEADER() } });
  assert.equal(malformed.status, 400);
  assert.equal(malformed.body.error.code, 'bad_request');
});

test('expired token: 109, getToken, reconnect; refresh keeps the subscription', async () => {
  const jane = bearer(42, { name: 'Jane Smith' });
  const stale = (await connectionToken(srv.base, jane)).token;
  await sleep(3100); // past the 2s TTL

  const c = client({ token: stale, bearerToken: jane });
  const errors = collect(c, 'error');
  const disconnects = collect(c, 'disconnected');
  const connected = once(c, 'connected', 10000);
  const sub = c.newSubscription('tickets:all');
  const states = collect(sub, 'state');
  const pubs = collect(sub, 'publication');
  sub.subscribe();
  c.connect();
  await connected;
  await once(sub, 'subscribed').catch(() => {}); // may already be subscribed
  assert.equal(sub.state, 'subscribed');
  assert.equal(errors[0]?.error?.code, 109, `first error is 109: ${JSON.stringify(errors)}`);
  assert.equal(c.counters.tokenCalls, 1, 'getToken called after 109');

  // Stay connected across two token lifetimes: the SDK refreshes in place.
  const statesBefore = states.length;
  await sleep(4500);
  assert.ok(c.counters.tokenCalls >= 2, `refreshed (${c.counters.tokenCalls} getToken calls)`);
  assert.equal(disconnects.length, 0, 'never disconnected');
  assert.equal(states.length, statesBefore, 'subscription never left subscribed');

  await serverApi(srv.base, 'publish', { channel: 'tickets:all', data: ticketUpdated });
  await pubs.wait(1);
  assert.deepEqual(pubs[0].data, ticketUpdated);
});

test('presence:online: join/leave with info, presence and presence_stats deduplicated by user', async () => {
  const a = client({ bearerToken: bearer(42, { name: 'Jane Smith' }) });
  const b = client({ bearerToken: bearer(7, { name: 'Bob Stone' }) });
  const b2 = client({ bearerToken: bearer(7, { name: 'Bob Stone' }) });
  a.connect();
  const { sub: sa } = await subscribed(a, 'presence:online');
  const joins = collect(sa, 'join');
  const leaves = collect(sa, 'leave');

  b.connect();
  const { sub: sb } = await subscribed(b, 'presence:online');
  await joins.wait(2); // a's own join, then b's
  const bJoin = joins.find((j) => j.info.user === '7');
  assert.ok(bJoin, JSON.stringify(joins));
  assert.deepEqual(bJoin.info.connInfo, { name: 'Bob Stone' });

  b2.connect();
  await subscribed(b2, 'presence:online');
  await joins.wait(3);

  const p = await sa.presence();
  const users = Object.values(p.clients).map((ci) => ci.user).sort();
  assert.deepEqual(users, ['42', '7', '7']);
  const stats = await sa.presenceStats();
  assert.equal(stats.numClients, 3);
  assert.equal(stats.numUsers, 2);

  sb.unsubscribe();
  await leaves.wait(1);
  assert.equal(leaves[0].info.user, '7');
  assert.deepEqual(leaves[0].info.connInfo, { name: 'Bob Stone' });
  b2.disconnect();
  await leaves.wait(2);
  const after = await sa.presenceStats();
  assert.equal(after.numClients, 1);
  assert.equal(after.numUsers, 1);
});

test('recovery: 5 publications missed while disconnected come back in order, recovered: true', async () => {
  const a = client({ bearerToken: bearer(42) });
  a.connect();
  const { sub } = await subscribed(a, 'voice:queue:queue_support');
  const pubs = collect(sub, 'publication');
  await serverApi(srv.base, 'publish', { channel: 'voice:queue:queue_support', data: { type: 'call.started', data: { n: 0 } } });
  await pubs.wait(1);

  // A watcher proves each event was delivered (and stored) before a reconnects.
  const w = client({ bearerToken: bearer(9) });
  w.connect();
  const { sub: ws } = await subscribed(w, 'voice:queue:queue_support');
  const seen = collect(ws, 'publication');

  const disconnected = once(a, 'disconnected');
  a.disconnect();
  await disconnected;
  for (let n = 1; n <= 5; n++) {
    const r = await serverApi(srv.base, 'publish', { channel: 'voice:queue:queue_support', data: { type: 'call.started', data: { n } } });
    assert.equal(r.status, 200);
  }
  await seen.wait(5);

  const resubscribed = once(sub, 'subscribed');
  a.connect();
  const ctx = await resubscribed;
  assert.equal(ctx.wasRecovering, true);
  assert.equal(ctx.recovered, true);
  await pubs.wait(6);
  await sleep(200);
  assert.deepEqual(pubs.map((p) => p.data.data.n), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(pubs.slice(1).map((p) => p.offset), seen.map((p) => p.offset));
});

test('recovery from a lost position reports recovered: false', async () => {
  const a = client({ bearerToken: bearer(42) });
  a.connect();
  // since: a position in an epoch the server never had.
  const sub = a.newSubscription('voice:agents', { since: { offset: 3, epoch: 'gone' } });
  const ready = once(sub, 'subscribed');
  sub.subscribe();
  const ctx = await ready;
  assert.equal(ctx.wasRecovering, true);
  assert.equal(ctx.recovered, false);
});

test('user:{id} is personal: user 42 may read user:42, not user:43', async () => {
  const c = client({ bearerToken: bearer(42) });
  c.connect();
  await subscribed(c, 'user:42');
  const other = c.newSubscription('user:43');
  const unsubscribed = once(other, 'unsubscribed');
  other.subscribe();
  const ctx = await unsubscribed;
  assert.equal(ctx.code, 103);
  assert.equal(ctx.reason, 'permission denied');

  const unknown = c.newSubscription('nope:1');
  const u2 = once(unknown, 'unsubscribed');
  unknown.subscribe();
  assert.equal((await u2).code, 102);
});

test('subscription errors reach sub.on(error): expired subscription token, getToken, sub_refresh', async () => {
  const c = client({ bearerToken: bearer(42) });
  c.connect();
  let calls = 0;
  // user:43 is not user 42's channel; a subscription token from the app
  // backend grants it (Centrifugo: the token decides alone).
  const sub = c.newSubscription('user:43', {
    token: subscriptionToken(42, 'user:43', -10),
    getToken: async () => { calls++; return subscriptionToken(42, 'user:43', 2); },
  });
  const errors = collect(sub, 'error');
  const ready = once(sub, 'subscribed');
  sub.subscribe();
  await ready;
  assert.equal(errors[0]?.type, 'subscribe');
  assert.equal(errors[0]?.error?.code, 109);
  assert.equal(calls, 1);
  const states = collect(sub, 'state');
  await sleep(3000); // past the 2s subscription token: the SDK sends sub_refresh
  assert.ok(calls >= 2, `sub_refresh fetched a new token (${calls} calls)`);
  assert.equal(states.length, 0, 'stayed subscribed');
  assert.equal(sub.state, 'subscribed');

  // A token for another channel is forged: Centrifugo disconnects with 3500 (terminal).
  const c2 = client({ bearerToken: bearer(42) });
  c2.connect();
  const bad = c2.newSubscription('user:44', { token: subscriptionToken(42, 'user:43', 60) });
  const disconnected = once(c2, 'disconnected');
  bad.subscribe();
  const ctx = await disconnected;
  assert.equal(ctx.code, 3500);
});

test('limits: 100 subscriptions per connection (106), 100 connections per user (3504)', async () => {
  const c = client({ bearerToken: bearer(77) });
  c.connect();
  await once(c, 'connected');
  const subs = [];
  for (let i = 0; i < 100; i++) {
    const s = c.newSubscription(`voice:queue:q${i}`);
    subs.push(once(s, 'subscribed'));
    s.subscribe();
  }
  await Promise.all(subs);
  const over = c.newSubscription('voice:queue:q100');
  const refused = once(over, 'unsubscribed');
  over.subscribe();
  assert.equal((await refused).code, 106);

  const { token } = await connectionToken(srv.base, bearer(78));
  const conns = [];
  for (let i = 0; i < 100; i++) {
    const k = client({ token });
    conns.push(once(k, 'connected'));
    k.connect();
  }
  await Promise.all(conns);
  const extra = client({ token });
  const gone = once(extra, 'disconnected');
  extra.connect();
  assert.equal((await gone).code, 3504);
  assert.equal(extra.state, 'disconnected', 'terminal: no reconnect');
});

test('a pusher-js and a centrifuge-js client on the same canonical channel both get one attendee', async () => {
  const admin = bearer(1, { admin: true });
  const r = await request(srv.base, 'POST', '/api/v1/projects', { body: { slug: 'demo', name: 'Demo' }, headers: { Authorization: `Bearer ${admin}` } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const jane = bearer(42, { name: 'Jane Smith', projects: ['demo'] });
  const outsider = bearer(43, { projects: ['other'] });

  const c = client({ bearerToken: jane });
  c.connect();
  const { sub } = await subscribed(c, 'dashboard.project.demo.attendees');
  const cpubs = collect(sub, 'publication');

  const o = client({ bearerToken: outsider });
  o.connect();
  const refused = o.newSubscription('dashboard.project.demo.attendees');
  const ru = once(refused, 'unsubscribed');
  refused.subscribe();
  assert.equal((await ru).code, 103, 'same authorization rules as over Pusher');

  const url = new URL(srv.base);
  const pusher = new Pusher('conformance-app-key', {
    wsHost: url.hostname, wsPort: Number(url.port), forceTLS: false, enabledTransports: ['ws'], cluster: 'mt1',
    disableStats: true,
    channelAuthorization: { endpoint: `${srv.base}/broadcasting/auth`, transport: 'ajax', headers: { Authorization: `Bearer ${jane}` } },
  });
  try {
    const pch = pusher.subscribe('private-dashboard.project.demo.attendees');
    await new Promise((resolve, reject) => {
      pch.bind('pusher:subscription_succeeded', resolve);
      pch.bind('pusher:subscription_error', reject);
    });
    const ppubs = [];
    pch.bind('AttendeeCreated', (d) => ppubs.push(d));

    const created = await request(srv.base, 'POST', '/api/v1/projects/demo/attendees', {
      body: { first_name: 'Jane', last_name: 'Smith', email: 'jane@example.com', attendee_type_id: 1 },
      headers: { Authorization: `Bearer ${jane}`, 'X-Request-ID': 'cf-1' },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await cpubs.wait(1);
    for (let i = 0; i < 50 && ppubs.length === 0; i++) await sleep(50);
    await sleep(200);
    assert.equal(cpubs.length, 1);
    assert.equal(ppubs.length, 1);
    assert.equal(cpubs[0].data.type, 'AttendeeCreated');
    assert.deepEqual(cpubs[0].data.data, ppubs[0]);
    assert.equal(ppubs[0].email, 'jane@example.com');
    assert.equal(ppubs[0]['x-triggered-by'].request_id, 'cf-1');
    assert.ok(cpubs[0].offset >= 1, 'canonical channels are streams too (recoverable)');
  } finally {
    pusher.disconnect();
  }
});
