// Cluster mode (README "Running several nodes"), proven from the outside with
// the real npm clients: every test runs its own nats-server (JetStream, free
// port, temporary store), a fresh PostgreSQL schema and 3 (or 2) `switchboard
// serve` nodes on it with SWITCHBOARD_NATS_URL set (lib/cluster.js).
//
//   1. pusher-js and laravel-echo on node A get the attendees written through
//      node C's REST API, each exactly once, in order.
//   2. Presence over three nodes with pusher-js: member_added across nodes,
//      members.count counts every node, and a member on a SIGKILLed node is
//      removed on the others within 8 s.
//   3. The per-user connection limit (100) holds over three nodes with
//      centrifuge-js: 100 connections round-robin, the 101st refused (3504)
//      on any node; a freed slot is usable from another node.
//   4. centrifuge-js recovery across nodes (leave A, come back on B) and
//      across a full stop/start of every node: exactly the missed
//      publications, recovered, same epoch.
//   5. The relaying node is SIGKILLed in the middle of 1,000 writes: another
//      takes over, every subscriber gets every committed attendee once, in
//      write order.
//   6. NATS is killed and restarted under load: writes keep committing,
//      /readyz says 503 (nats) then 200, the client gets everything once, in
//      order.
//
// Run: cd conformance && SWITCHBOARD_BIN=../bin/switchboard node --test --test-concurrency=1 test/cluster.test.js
// Needs /usr/sbin/nats-server (NATS_SERVER_BIN) and PostgreSQL (as in
// lib/durability.js: CONFORMANCE_DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/test); the tests are skipped, with the
// reason, when either is missing.
import assert from 'node:assert/strict';

import {
  test, mintToken, apiCall, expectStatus, connected, waitFor, sleep, Collector,
} from '../lib/server.js';
import {
  clusterSkipReason, startCluster, createAttendee, pusherSubscribed, IdRecorder, checkExactlyOnceInOrder,
  readyz, tail,
} from '../lib/cluster.js';

const SKIP = (() => {
  try {
    return clusterSkipReason();
  } catch {
    return null; // PostgreSQL was asked for and is not there: let the tests fail with it
  }
})();
const opts = (timeout) => ({ timeout, skip: SKIP ?? false });

const dashboard = (slug) => `private-dashboard.project.${slug}.attendees`;

// writeSequential writes attendees n = from..to-1 one after another through
// srv; returns { ids (201s, in write order), failures }. before(i) runs
// before write i (await-ed).
async function writeSequential(srv, slug, token, from, to, { tag = 'w', before } = {}) {
  const ids = [];
  const failures = [];
  for (let i = from; i < to; i++) {
    if (before) await before(i);
    const r = await createAttendee(srv, slug, token, i, tag);
    if (r.status === 201 && Number.isInteger(r.id)) ids.push(r.id);
    else failures.push(`write ${i} through ${srv.name}: HTTP ${r.status} ${String(r.text).slice(0, 200)}`);
  }
  return { ids, failures };
}

async function pusherOnDashboard(node, token, slug) {
  const p = node.pusherClient(token);
  await connected(p, 8000);
  const { channel } = await pusherSubscribed(p, dashboard(slug));
  const rec = new IdRecorder(`pusher-js on ${node.name}`);
  channel.bind('AttendeeCreated', rec.push);
  return { pusher: p, rec };
}

// ---------------------------------------------------------------------------
// 1. Events across nodes

test('1. pusher-js and laravel-echo on node A receive attendees written through node C, once each, in order', opts(45_000), async (t) => {
  const { cluster, nodes: [A, , C], token, slug } = await startCluster({ slug: 'events' });
  try {
    const { rec: viaPusher } = await pusherOnDashboard(A, token, slug);

    const echo = A.echoClient(token);
    const viaEcho = new IdRecorder('laravel-echo on A');
    const names = [];
    const ech = echo.private(`dashboard.project.${slug}.attendees`).listen('.AttendeeCreated', (e) => {
      viaEcho.push(e);
      names.push(e.first_name);
    });
    await waitFor((resolve, reject) => {
      ech.subscribed(() => resolve());
      ech.error((err) => reject(new Error(`echo subscription error ${JSON.stringify(err)}`)));
    }, 8000, 'laravel-echo subscription on A');

    const N = 25;
    const { ids, failures } = await writeSequential(C, slug, token, 0, N, { tag: 's1' });
    assert.deepEqual(failures, [], 'every write through C answers 201');
    const problems = [];
    for (const rec of [viaPusher, viaEcho]) {
      await rec.waitAll(ids, 10_000);
      problems.push(...checkExactlyOnceInOrder(rec.label, rec.ids, ids));
    }
    assert.deepEqual(problems, [], problems.join('\n'));
    assert.deepEqual(names, Array.from({ length: N }, (_, i) => `Guest${i}`), 'payloads carry the written first names, in order');
    t.diagnostic(`${N} attendees written through C reached pusher-js and laravel-echo on A once each, in order`);
  } finally {
    await cluster.close();
  }
});

// ---------------------------------------------------------------------------
// 2. Presence

test('2. presence over three nodes: member_added across nodes, count 3, member of a SIGKILLed node removed within 8 s', opts(45_000), async (t) => {
  const { cluster, nodes: [A, B, C], slug } = await startCluster({ slug: 'presence' });
  try {
    const channelName = `presence-dashboard.project.${slug}`;
    const join = async (node, sub, name) => {
      const tok = await mintToken({ sub, name, projects: [slug] });
      const p = node.pusherClient(tok);
      await connected(p, 8000);
      const added = new Collector(`member_added on ${node.name}`);
      const removed = new Collector(`member_removed on ${node.name}`);
      const ch = p.subscribe(channelName);
      ch.bind('pusher:member_added', added.push);
      ch.bind('pusher:member_removed', removed.push);
      const { channel } = await pusherSubscribed(p, channelName);
      return { pusher: p, channel, added, removed };
    };

    const ann = await join(A, '1', 'Ann');
    assert.equal(ann.channel.members.count, 1, 'first member alone on A');

    const bob = await join(B, '2', 'Bob');
    assert.equal(bob.channel.members.count, 2, `Bob on B sees Ann from A (members ${JSON.stringify(bob.channel.members.members)})`);
    const bobAdded = await ann.added.next(5000);
    assert.equal(bobAdded.id, '2', `A's member_added is user 2: ${JSON.stringify(bobAdded)}`);
    assert.deepEqual(bobAdded.info, { name: 'Bob' });
    assert.equal(ann.channel.members.count, 2, "A's members count after Bob joined on B");

    const cid = await join(C, '3', 'Cid');
    assert.equal(cid.channel.members.count, 3, `Cid on C counts one member per node (members ${JSON.stringify(cid.channel.members.members)})`);
    assert.equal((await ann.added.next(5000)).id, '3', "A's member_added for user 3");

    const killedAt = Date.now();
    await B.kill('SIGKILL');
    bob.pusher.close(); // it would only retry a dead port
    const [onA, onC] = await Promise.all([ann.removed.next(8000), cid.removed.next(8000)]);
    const tookMs = Date.now() - killedAt;
    assert.equal(onA.id, '2', `A's member_removed is user 2: ${JSON.stringify(onA)}`);
    assert.equal(onC.id, '2', `C's member_removed is user 2: ${JSON.stringify(onC)}`);
    assert.equal(ann.channel.members.count, 2, "A's members after B died: Ann and Cid");
    assert.ok(ann.channel.members.get('2') === null, 'user 2 no longer a member on A');
    assert.equal(ann.removed.items.length, 1, 'one member_removed on A');
    t.diagnostic(`member of the SIGKILLed node B removed on A and C ${tookMs} ms after the kill`);
  } finally {
    await cluster.close();
  }
});

// ---------------------------------------------------------------------------
// 3. Per-user connection limit

// outcome resolves with 'connected' or 'disconnected <code> <reason>' for a
// centrifuge-js client that was asked to connect.
function outcome(client, timeoutMs = 10_000) {
  return waitFor((resolve) => {
    const ok = () => resolve('connected');
    const ko = (ctx) => resolve(`disconnected ${ctx.code} ${ctx.reason}`);
    client.on('connected', ok);
    client.on('disconnected', ko);
    client.connect();
    return () => { client.removeListener('connected', ok); client.removeListener('disconnected', ko); };
  }, timeoutMs, 'centrifuge-js connect outcome');
}

async function connectionToken(node, bearer) {
  const res = await apiCall(node.baseURL, 'POST', '/api/v1/realtime/token', undefined, { token: bearer });
  return expectStatus(res, 200, `realtime token from ${node.name}`).token;
}

test('3. per-user connection limit over three nodes: 100 centrifuge-js connections, the 101st refused with 3504 anywhere', opts(60_000), async (t) => {
  const { cluster, nodes, slug } = await startCluster({ slug: 'limit' });
  try {
    const bearer = await mintToken({ sub: '77', name: 'Many Tabs', projects: [slug] });
    const token = await connectionToken(nodes[0], bearer);
    const clients = [];
    const outcomes = await Promise.all(Array.from({ length: 100 }, (_, i) => {
      const node = nodes[i % 3];
      const c = cluster.centrifuge(node, { token });
      c.node = node;
      clients.push(c);
      return outcome(c).then((o) => `${node.name}: ${o}`);
    }));
    const refused = outcomes.filter((o) => !o.endsWith(': connected'));
    assert.deepEqual(refused, [], `all 100 connections of user 77 (round-robin over A, B, C) connect`);

    await sleep(300); // the last counts reach every node
    for (const node of nodes) {
      const extra = cluster.centrifuge(node, { token });
      const o = await outcome(extra);
      assert.match(o, /^disconnected 3504 /, `the 101st connection, on ${node.name}: ${o}`);
      assert.equal(extra.state, 'disconnected', 'terminal: no reconnect');
      extra.disconnect();
    }

    // A slot freed on B is usable on C; then the user is full again.
    clients[1].disconnect();
    assert.equal(clients[1].node.name, 'B');
    await sleep(500);
    const again = cluster.centrifuge(nodes[2], { token });
    assert.equal(await outcome(again), 'connected', 'a connection on C once one on B closed');
    await sleep(300);
    const over = cluster.centrifuge(nodes[0], { token });
    assert.match(await outcome(over), /^disconnected 3504 /, 'the user is full again (checked on A)');
    t.diagnostic('100 connections over A, B, C; the 101st refused with 3504 on A, B and C; a slot freed on B reused on C');
  } finally {
    await cluster.close();
  }
});

// ---------------------------------------------------------------------------
// 4. Centrifugo recovery across nodes and across a full restart

// cfSubscribe subscribes client to channel (recoverable, positioned; opts
// may add `since`) and records publications and subscribe contexts.
function cfSubscribe(client, channel, opts = {}) {
  const rec = { pubs: [], subscribed: [] };
  const sub = client.newSubscription(channel, { recoverable: true, positioned: true, ...opts });
  sub.on('publication', (ctx) => rec.pubs.push({ offset: ctx.offset, type: ctx.data?.type, id: ctx.data?.data?.attendee_id }));
  sub.on('subscribed', (ctx) => rec.subscribed.push(ctx));
  rec.ready = waitFor((resolve, reject) => {
    const ok = (ctx) => resolve(ctx);
    const ko = (ctx) => reject(new Error(`subscription to ${channel} ended: ${ctx.code} ${ctx.reason}`));
    sub.on('subscribed', ok);
    sub.on('unsubscribed', ko);
    return () => { sub.removeListener('subscribed', ok); sub.removeListener('unsubscribed', ko); };
  }, 8000, `subscribe to ${channel}`);
  sub.subscribe();
  rec.sub = sub;
  rec.has = (ids) => ids.every((id) => rec.pubs.some((p) => p.id === id));
  return rec;
}

async function until(pred, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(25);
  }
}

// checkRecovered: the subscribe after a gap recovered exactly `want` (ids,
// in order) right after `from` ({offset, epoch}).
function checkRecovered(label, rec, from, want) {
  const problems = [];
  const ctx = rec.subscribed[0];
  if (!ctx?.wasRecovering || !ctx?.recovered) problems.push(`${label}: wasRecovering=${ctx?.wasRecovering} recovered=${ctx?.recovered}`);
  if (ctx?.streamPosition?.epoch !== from.epoch) problems.push(`${label}: epoch ${ctx?.streamPosition?.epoch}, want ${from.epoch}`);
  if (rec.subscribed.length !== 1) problems.push(`${label}: ${rec.subscribed.length} subscribes`);
  const ids = rec.pubs.map((p) => p.id);
  if (JSON.stringify(ids) !== JSON.stringify(want)) problems.push(`${label}: publications ${JSON.stringify(ids)}, want exactly ${JSON.stringify(want)}`);
  const offsets = rec.pubs.map((p) => p.offset);
  const wantOffsets = want.map((_, i) => from.offset + 1 + i);
  if (JSON.stringify(offsets) !== JSON.stringify(wantOffsets)) problems.push(`${label}: offsets ${JSON.stringify(offsets)}, want ${JSON.stringify(wantOffsets)}`);
  if (rec.pubs.some((p) => p.type !== 'AttendeeCreated')) problems.push(`${label}: types ${JSON.stringify(rec.pubs.map((p) => p.type))}`);
  return problems;
}

test('4. centrifuge-js recovers on node B what it missed after leaving node A, and again after every node restarted', opts(90_000), async (t) => {
  const { cluster, nodes: [A, B, C], token, slug } = await startCluster({ slug: 'recover' });
  try {
    const channel = `dashboard.project.${slug}.attendees`;
    const client = (node) => cluster.centrifuge(node, { getToken: () => connectionToken(node, token) });

    // A witness on C proves the writes were relayed (and stored with their
    // offsets) before anyone recovers them.
    const witness = client(C);
    const w = cfSubscribe(witness, channel);
    witness.connect();
    await w.ready;

    const onA = client(A);
    const a = cfSubscribe(onA, channel);
    onA.connect();
    const ctx0 = await a.ready;
    assert.equal(ctx0.recoverable, true, `${channel} is recoverable`);
    const epoch = ctx0.streamPosition?.epoch;
    assert.ok(epoch, `an epoch on subscribe: ${JSON.stringify(ctx0.streamPosition)}`);

    const first = await writeSequential(C, slug, token, 0, 2, { tag: 's4a' });
    assert.deepEqual(first.failures, []);
    await until(() => a.has(first.ids), 10_000, `client on A gets ${first.ids}`);
    const pos1 = { offset: a.pubs[a.pubs.length - 1].offset, epoch };
    onA.disconnect();

    const missed = await writeSequential(C, slug, token, 2, 5, { tag: 's4a' });
    assert.deepEqual(missed.failures, []);
    await until(() => w.has(missed.ids), 10_000, `witness on C gets ${missed.ids}`);

    const onB = client(B);
    const b = cfSubscribe(onB, channel, { since: pos1 });
    onB.connect();
    await b.ready;
    await sleep(700); // a duplicate or a late live copy would show here
    const problems = checkRecovered('recovery on B', b, pos1, missed.ids);
    assert.deepEqual(problems, [], problems.join('\n'));
    const pos2 = { offset: b.pubs[b.pubs.length - 1].offset, epoch };
    t.diagnostic(`left A at ${JSON.stringify(pos1)}, recovered ${missed.ids.length} on B with the same epoch`);

    // Every node stops (SIGTERM); three new ones start on the same schema and NATS.
    const stopStart = Date.now();
    await cluster.stopNodes();
    const [D, E, F] = await cluster.startNodes(3);
    t.diagnostic(`all nodes stopped and three new ones (${D.name}, ${E.name}, ${F.name}) ready in ${Date.now() - stopStart} ms`);

    const witness2 = client(F);
    const w2 = cfSubscribe(witness2, channel);
    witness2.connect();
    const wctx = await w2.ready;
    assert.equal(wctx.streamPosition?.epoch, epoch, `the stream keeps its epoch across the restart (witness on ${F.name})`);
    const last = await writeSequential(E, slug, token, 5, 6, { tag: 's4b' });
    assert.deepEqual(last.failures, []);
    await until(() => w2.has(last.ids), 10_000, `witness on ${F.name} gets ${last.ids}`);

    const onD = client(D);
    const d = cfSubscribe(onD, channel, { since: pos2 });
    onD.connect();
    await d.ready;
    await sleep(700);
    const problems2 = checkRecovered(`recovery on ${D.name} after the restart`, d, pos2, last.ids);
    assert.deepEqual(problems2, [], problems2.join('\n'));
    t.diagnostic(`after the full restart: recovered exactly 1 publication on ${D.name} from ${JSON.stringify(pos2)}, same epoch`);
  } finally {
    await cluster.close();
  }
});

// ---------------------------------------------------------------------------
// 5. Relay failover

test('5. the relaying node is SIGKILLed during 1,000 writes: every subscriber gets every committed attendee once, in order', opts(120_000), async (t) => {
  const { cluster, nodes, token, slug } = await startCluster({ slug: 'failover' });
  try {
    const relay = await cluster.waitRelay();
    const [writer, watcher] = nodes.filter((n) => n !== relay);
    const subs = [await pusherOnDashboard(writer, token, slug), await pusherOnDashboard(watcher, token, slug)];
    t.diagnostic(`relay: ${relay.name}; writes through ${writer.name}; subscribers on ${writer.name} and ${watcher.name}`);

    const N = 1000;
    const KILL_AT = 200;
    let killedAt = 0;
    let takeover = null;
    const startedAt = Date.now();
    const { ids, failures } = await writeSequential(writer, slug, token, 0, N, {
      tag: 's5',
      before: async (i) => {
        if (i !== KILL_AT) return;
        killedAt = Date.now();
        await relay.kill('SIGKILL');
        takeover = cluster.waitRelay(10_000, new Set([relay]))
          .then((n) => ({ node: n.name, ms: Date.now() - killedAt }), (err) => ({ error: err.message }));
      },
    });
    const writeMs = Date.now() - startedAt;
    const to = await takeover;
    t.diagnostic(`${ids.length}/${N} writes answered 201 in ${writeMs} ms; relay ${relay.name} SIGKILLed before write ${KILL_AT}; ` +
      (to.error ? `no takeover: ${to.error}` : `${to.node} took over ${to.ms} ms after the kill`));
    assert.deepEqual(failures, [], `every write through ${writer.name} answers 201`);
    assert.ok(!to.error, to.error);

    const problems = [];
    for (const { rec } of subs) {
      const deliveryStart = Date.now();
      const missing = await rec.waitAll(ids, 30_000, 700);
      t.diagnostic(`${rec.label}: ${rec.ids.length} events, ${missing.length} missing after ${Date.now() - deliveryStart} ms more`);
      problems.push(...checkExactlyOnceInOrder(rec.label, rec.ids, ids));
    }
    if (problems.length) {
      for (const n of nodes) process.stderr.write(`\n--- last lines of node ${n.name} (:${n.port}) ---\n${tail(n, 30)}\n`);
    }
    assert.deepEqual(problems, [], problems.join('\n'));
  } finally {
    await cluster.close();
  }
});

// ---------------------------------------------------------------------------
// 6. NATS restarted under load

test('6. NATS killed and restarted under load: writes still commit, /readyz 503 then 200, the client gets everything once, in order', opts(90_000), async (t) => {
  const { cluster, nodes: [A, B], token, slug } = await startCluster({ nodes: 2, slug: 'natsdown' });
  try {
    const { rec } = await pusherOnDashboard(A, token, slug);
    const before = await readyz(A);
    assert.equal(before.status, 200, `/readyz on A with NATS up: ${before.text}`);
    assert.match(before.text, /nats connected/);

    const PHASE = 40;
    const p1 = await writeSequential(B, slug, token, 0, PHASE, { tag: 's6' });
    await cluster.nats.stop('SIGKILL');
    const downAt = Date.now();
    const p2 = await writeSequential(B, slug, token, PHASE, 2 * PHASE, { tag: 's6' });
    assert.deepEqual([...p1.failures, ...p2.failures], [], 'writes through B answer 201 with NATS down');

    let down;
    const deadline = Date.now() + 6000;
    do {
      down = await readyz(A);
      if (down.status === 503) break;
      await sleep(100);
    } while (Date.now() < deadline);
    assert.equal(down.status, 503, `/readyz on A ${Date.now() - downAt} ms after NATS died: ${down.status} ${down.text}`);
    assert.match(down.text, /nats/i, `/readyz names NATS: ${down.text}`);
    t.diagnostic(`/readyz on A with NATS down: ${down.status} ${down.text.trim()} (${Date.now() - downAt} ms after the kill)`);

    await cluster.nats.start(); // same port, same store directory
    const upAt = Date.now();
    const p3 = await writeSequential(B, slug, token, 2 * PHASE, 3 * PHASE, { tag: 's6' });
    assert.deepEqual(p3.failures, [], 'writes through B answer 201 after NATS came back');

    const ids = [...p1.ids, ...p2.ids, ...p3.ids];
    const missing = await rec.waitAll(ids, 30_000, 700);
    t.diagnostic(`client on A: ${rec.ids.length} events of ${ids.length}, ${missing.length} missing, ${Date.now() - upAt} ms after NATS restarted`);
    const problems = checkExactlyOnceInOrder(rec.label, rec.ids, ids);
    assert.deepEqual(problems, [], problems.join('\n'));

    let up;
    const upDeadline = Date.now() + 10_000;
    do {
      up = await readyz(A);
      if (up.status === 200) break;
      await sleep(100);
    } while (Date.now() < upDeadline);
    assert.equal(up.status, 200, `/readyz on A after NATS came back: ${up.status} ${up.text}`);
    assert.match(up.text, /nats connected/);
    const upB = await readyz(B);
    assert.equal(upB.status, 200, `/readyz on B after NATS came back: ${upB.status} ${upB.text}`);
  } finally {
    await cluster.close();
  }
});
