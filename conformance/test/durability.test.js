// Durability, proven from the outside with the real npm clients: the server
// process is SIGKILLed (no shutdown at all) and restarted on the same store.
//
//   A. Kill loop, once per store (SQLite; PostgreSQL on a fresh schema per
//      run): 32 REST writers create attendees while ONE centrifuge-js client
//      watches dashboard.project.{slug}.attendees; the server is SIGKILLed
//      a random 200-1500 ms after the first acknowledged write and restarted
//      on the same store and port. Every write answered 2xx must reach the client exactly once,
//      live or through recovery, with offsets following one another by 1 in
//      one epoch across the restart, and the client's resubscribe after the
//      restart must report wasRecovering and recovered.
//   B. Restart grace for Pusher: events the relay re-sends at boot
//      (committed before the kill, maybe not yet delivered) are held for
//      SWITCHBOARD_RESTART_GRACE (default 2s), so a pusher-js client that
//      reconnects at once still sees them.
//   C. A second `switchboard serve` on the same store refuses to start (exit
//      code not 0, stderr naming SWITCHBOARD_NATS_URL, within 10 s), and the
//      first node keeps serving.
//
// Run: `make killtest` (20 kill-loop runs per store), or
//   cd conformance && SWITCHBOARD_BIN=../bin/switchboard node --test test/durability.test.js
// Environment: DURABILITY_RUNS (default 5) kill-loop runs per store;
// DURABILITY_GRACE_ROUNDS (default 3) kill/restart rounds in B; PostgreSQL as
// in lib/durability.js (CONFORMANCE_DATABASE_URL, DURABILITY_PG).
import { describe, before } from 'node:test';
import assert from 'node:assert/strict';

import {
  test, launchServer, freePort, mintToken, apiCall, expectStatus, connected, waitFor, sleep,
} from '../lib/server.js';
import {
  makeStore, centrifugoConfig, startWriters, centrifugeClient, recordSubscription, checkStream, pgStatus, abbreviate,
} from '../lib/durability.js';

const RUNS = Math.max(1, Number.parseInt(process.env.DURABILITY_RUNS ?? '5', 10) || 5);
const GRACE_ROUNDS = Math.max(1, Number.parseInt(process.env.DURABILITY_GRACE_ROUNDS ?? '3', 10) || 3);
const WRITERS = 32;
const DELIVERY_BOUND_MS = 15_000; // the longest wait for acknowledged events after the writers stop
const QUIET_MS = 4_000; // ... cut short when nothing at all arrived for this long
const AFTER_RESTART_MS = 700; // writers keep going this long once the restarted server is ready

const PG = (() => {
  try {
    return pgStatus();
  } catch (err) {
    return { run: true, error: err };
  }
})();
const STORES = ['sqlite', 'postgres'];

function skipPG(t) {
  if (PG.error) throw PG.error;
  if (!PG.run) {
    t.skip(`PostgreSQL runs skipped: ${PG.reason}`);
    return true;
  }
  return false;
}

let cfgPath;
before(() => {
  cfgPath = centrifugoConfig({ historySize: 10_000, historyTTL: '10m' });
});

async function ready(srv, what) {
  try {
    await srv.waitReady();
  } catch (err) {
    throw new Error(`${what}: ${err.message}`);
  }
}

async function newProject(baseURL, slug) {
  const admin = await mintToken({ sub: '1', name: 'Staff', admin: true });
  expectStatus(await apiCall(baseURL, 'POST', '/api/v1/projects', { slug, name: `Project ${slug}` }, { token: admin }), 201, `create project ${slug}`);
  return mintToken({ sub: '42', name: 'Jane Smith', projects: [slug] });
}

// ---------------------------------------------------------------------------
// A. Kill loop

async function killRun(kind, run) {
  const store = makeStore(kind);
  const port = await freePort();
  const env = { ...store.env, SWITCHBOARD_CENTRIFUGO_CONFIG: cfgPath };
  const servers = [];
  let client;
  let writers;
  try {
    const first = launchServer({ port, dataDir: store.dataDir, env });
    servers.push(first);
    await ready(first, `${kind} run ${run}: first start`);
    const baseURL = first.baseURL;
    const slug = `kill-${run}`;
    const channel = `dashboard.project.${slug}.attendees`;
    const token = await newProject(baseURL, slug);

    client = centrifugeClient(baseURL, token);
    const rec = recordSubscription(client, channel);
    client.connect();
    const ctx0 = await rec.ready;
    assert.equal(ctx0.recoverable, true, `${channel} must be a recoverable stream (centrifugo config ${cfgPath})`);

    writers = startWriters({ baseURL, slug, token, concurrency: WRITERS });
    const startedAt = Date.now();
    // The random kill point counts from the first acknowledged write (a
    // fresh PostgreSQL schema can take a moment to answer the first ones).
    while (writers.acked.size === 0 && Date.now() - startedAt < 10_000) await sleep(5);
    assert.ok(writers.acked.size > 0, `${kind} run ${run}: no write acknowledged within 10 s (${JSON.stringify(writers.stats)})`);
    const killAfter = 200 + Math.floor(Math.random() * 1300);
    await sleep(killAfter);
    const ackedAtKill = writers.acked.size;
    const killedAt = Date.now();
    await first.kill('SIGKILL');

    const second = launchServer({ port, dataDir: store.dataDir, env });
    servers.push(second);
    await ready(second, `${kind} run ${run}: restart after SIGKILL`);
    const restartMs = Date.now() - killedAt;
    await sleep(AFTER_RESTART_MS);
    await writers.stop();
    const stoppedAt = Date.now();

    // Wait (bounded) for every acknowledged id; give up early when nothing
    // at all has arrived for QUIET_MS.
    const received = () => {
      const ids = new Set(rec.pubs.map((p) => p.id));
      for (const id of writers.acked.keys()) if (!ids.has(id)) return false;
      return true;
    };
    while (!received() && Date.now() - stoppedAt < DELIVERY_BOUND_MS) {
      if (Date.now() - Math.max(rec.lastPubAt, stoppedAt) > QUIET_MS) break;
      await sleep(50);
    }
    await sleep(200); // a late duplicate would show up here

    const check = checkStream({ acked: writers.acked, pubs: rec.pubs, startOffset: ctx0.streamPosition?.offset ?? 0 });
    const problems = [...check.problems];
    if (writers.stats.badAcks.length) problems.push(`2xx answers without an attendee id: ${abbreviate(writers.stats.badAcks, 3)}`);
    if (writers.stats.ackedTwice.length) problems.push(`ids acknowledged twice by REST: ${abbreviate(writers.stats.ackedTwice)}`);
    const resubs = rec.subscribed.slice(1);
    if (!resubs.some((s) => s.at >= killedAt)) {
      problems.push('the client never resubscribed after the restart');
    }
    for (const s of resubs) {
      if (!s.wasRecovering || !s.recovered) {
        problems.push(`resubscribe reported wasRecovering=${s.wasRecovering} recovered=${s.recovered} (epoch ${s.position?.epoch} offset ${s.position?.offset}; first epoch ${ctx0.streamPosition?.epoch})`);
      } else if (s.position?.epoch !== ctx0.streamPosition?.epoch) {
        problems.push(`epoch changed across the restart: ${ctx0.streamPosition?.epoch} -> ${s.position?.epoch}`);
      }
    }
    if (writers.acked.size === 0) problems.push('no write was acknowledged at all');

    return {
      run,
      killAfter,
      ackedAtKill,
      restartMs,
      acked: writers.acked.size,
      received: rec.pubs.length,
      lost: check.lost,
      duplicates: check.duplicates,
      offsetBreaks: check.offsetBreaks,
      unacked: check.unacked,
      resubscribes: resubs.map((s) => `${s.wasRecovering ? 'recovering' : 'fresh'}/${s.recovered ? 'recovered' : 'NOT recovered'}`),
      writeErrors: writers.stats.errors + writers.stats.non2xx,
      elapsedMs: Date.now() - startedAt,
      problems,
    };
  } finally {
    if (writers && !writers.stopping) await writers.stop();
    client?.disconnect();
    for (const s of servers) await s.stop();
    store.cleanup();
  }
}

describe('A. kill -9 loop: nothing acknowledged is lost, history survives the restart', () => {
  for (const kind of STORES) {
    test(`${kind}: ${RUNS} runs of 32 writers, SIGKILL, restart, one centrifuge-js client recovers`, { timeout: 60_000 + RUNS * 40_000 }, async (t) => {
      if (kind === 'postgres' && skipPG(t)) return;
      const results = [];
      for (let run = 1; run <= RUNS; run++) {
        const r = await killRun(kind, run);
        results.push(r);
        t.diagnostic(
          `${kind} run ${run}: killed after ${r.killAfter} ms (${r.ackedAtKill} acked), back in ${r.restartMs} ms; ` +
            `acked ${r.acked}, received ${r.received} (${r.unacked} unacknowledged but committed), lost ${r.lost}, ` +
            `duplicates ${r.duplicates}, offset breaks ${r.offsetBreaks}, resubscribes [${r.resubscribes.join(', ')}]` +
            (r.problems.length ? ` -> FAIL` : ' -> ok'),
        );
      }
      const sum = (k) => results.reduce((a, r) => a + r[k], 0);
      const summary =
        `durability ${kind}: runs ${results.length}, writes acknowledged ${sum('acked')}, events lost ${sum('lost')}, ` +
        `duplicates ${sum('duplicates')}, kill points ${results.map((r) => `${r.killAfter}ms/${r.ackedAtKill}`).join(' ')}` +
        ` (ms of writing/acks before SIGKILL); offset breaks ${sum('offsetBreaks')}, ` +
        `runs not recovered ${results.filter((r) => r.resubscribes.some((s) => !s.endsWith('/recovered'))).length}`;
      t.diagnostic(summary);
      const failed = results.filter((r) => r.problems.length);
      assert.equal(
        failed.length,
        0,
        `${failed.length} of ${results.length} ${kind} runs failed:\n` +
          failed.map((r) => `  run ${r.run}: ${r.problems.join('; ')}`).join('\n'),
      );
    });
  }
});

// ---------------------------------------------------------------------------
// B. Restart grace for Pusher clients that reconnect at once

function subscribeAttendees(pusher, slug, onCreated, timeoutMs = 5000) {
  const ch = pusher.subscribe(`private-dashboard.project.${slug}.attendees`);
  ch.bind('AttendeeCreated', onCreated);
  return waitFor(
    (resolve, reject) => {
      ch.bind('pusher:subscription_succeeded', () => resolve(ch));
      ch.bind('pusher:subscription_error', (e) => reject(new Error(`subscription refused: ${JSON.stringify(e)}`)));
    },
    timeoutMs,
    `pusher subscription to private-dashboard.project.${slug}.attendees`,
  );
}

// historyIds reads the attendee ids in a canonical channel's Centrifugo
// history through the server API; null when it cannot.
async function historyIds(srv, channel) {
  try {
    const res = await fetch(`${srv.baseURL}/api/history`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-API-Key': srv.env.SWITCHBOARD_API_KEY },
      body: JSON.stringify({ channel, limit: -1 }),
      signal: AbortSignal.timeout(3000),
    });
    const body = await res.json();
    return new Set((body.result?.publications ?? []).map((p) => p.data?.data?.attendee_id));
  } catch {
    return null;
  }
}

describe('B. restart grace: re-sends at boot reach pusher-js clients that reconnect at once', () => {
  test(`sqlite: ${GRACE_ROUNDS} rounds of burst, SIGKILL, restart, pusher-js client within ~300 ms`, { timeout: 30_000 + GRACE_ROUNDS * 25_000 }, async (t) => {
    const store = makeStore('sqlite');
    const port = await freePort();
    // The server API key only lets a failure say whether the missing events
    // are in the restarted node's Centrifugo history (/api/history).
    const env = { ...store.env, SWITCHBOARD_API_KEY: 'durability-api-key' };
    const slug = 'grace';
    let srv = launchServer({ port, dataDir: store.dataDir, env });
    const problems = [];
    let onlyAfter = 0;
    let total = 0;
    try {
      await ready(srv, 'first start');
      const token = await newProject(srv.baseURL, slug);
      for (let round = 1; round <= GRACE_ROUNDS; round++) {
        // The client connected before the kill: what it got from the killed
        // process counts. It cannot reach the next process before that one
        // is launched, so everything it gets until then came from the dead one.
        const before = new Set();
        let killed = false;
        let p1Live = true;
        const p1 = srv.pusherClient(token);
        await connected(p1);
        await subscribeAttendees(p1, slug, (e) => { if (p1Live) before.add(e.attendee_id); });

        // A burst, and SIGKILL the moment the BURST-th write is acknowledged:
        // the last commits are then likely not delivered yet.
        const BURST = 150 + Math.floor(Math.random() * 150);
        const dead = srv;
        let killedAt = 0;
        const writers = startWriters({
          baseURL: srv.baseURL,
          slug,
          token,
          concurrency: WRITERS,
          onAck: (_id, acked) => {
            if (!killed && acked.size >= BURST) {
              killed = true;
              killedAt = Date.now();
              dead.child.kill('SIGKILL');
              writers.halt();
            }
          },
        });
        const burstDeadline = Date.now() + 10_000;
        while (!killed && Date.now() < burstDeadline) await sleep(10);
        if (!killed) {
          killed = true;
          killedAt = Date.now();
          dead.child.kill('SIGKILL');
        }
        await writers.stop();
        const writersStoppedMs = Date.now() - killedAt;
        await dead.exited;
        const exitedMs = Date.now() - killedAt;
        await sleep(100); // frames already on the wire are read
        p1Live = false;
        p1.close(); // it would reconnect; only the client below speaks for "after"
        const acked = [...writers.acked.keys()];
        total += acked.length;

        const launchedAt = Date.now();
        srv = launchServer({ port, dataDir: store.dataDir, env });
        await ready(srv, `round ${round}: restart after SIGKILL`);
        const readyAt = Date.now();
        const after = new Set();
        const p2 = srv.pusherClient(token);
        await connected(p2);
        await subscribeAttendees(p2, slug, (e) => after.add(e.attendee_id));
        const subscribedIn = Date.now() - readyAt;
        const sinceLaunch = Date.now() - launchedAt;
        const sinceKill = Date.now() - killedAt;

        const missing = () => acked.filter((id) => !before.has(id) && !after.has(id));
        const deadline = Date.now() + 6_000;
        while (missing().length && Date.now() < deadline) await sleep(50);
        const miss = missing();
        const only = acked.filter((id) => !before.has(id) && after.has(id)).length;
        onlyAfter += only;
        t.diagnostic(
          `round ${round}: killed at ack ${BURST} (${acked.length} acked in all), ${acked.length - only - miss.length} seen before the kill, ` +
            `${only} only by the client that subscribed ${subscribedIn} ms after the restart was ready ` +
            `(${sinceLaunch} ms after launch, ${sinceKill} ms after the kill; writers stopped ${writersStoppedMs} ms, ` +
            `process reaped ${exitedMs} ms after it), ${miss.length} seen by neither`,
        );
        if (miss.length) {
          const inHistory = await historyIds(srv, `dashboard.project.${slug}.attendees`);
          const kept = inHistory ? miss.filter((id) => inHistory.has(id)).length : '?';
          problems.push(
            `round ${round}: ${miss.length} attendees acknowledged before the kill reached neither the client connected before it ` +
              `nor the one that subscribed ${subscribedIn} ms after the restart was ready: ids ${abbreviate(miss)}` +
              // Beyond the grace the contract no longer holds: say so rather than blame the server.
              ` (${kept} of them are in the restarted node's Centrifugo history: delivered there before the client ` +
              `subscribed; the others were not re-sent at all)` +
              (sinceLaunch > 1500 ? ` (INCONCLUSIVE: the restart took ${sinceLaunch} ms from launch to subscribe, too close to the 2s grace)` : ''),
          );
        }
        p2.close();
      }
      t.diagnostic(`restart grace: ${GRACE_ROUNDS} rounds, ${total} writes acknowledged, ${onlyAfter} seen only after the restart, ${problems.length} rounds with problems`);
      assert.equal(problems.length, 0, problems.join('\n'));
    } finally {
      await srv.stop();
      store.cleanup();
    }
  });
});

// ---------------------------------------------------------------------------
// C. A second node on the same store is refused

describe('C. a second node on the same store refuses to start', () => {
  for (const kind of STORES) {
    test(`${kind}: node B exits non-zero naming SWITCHBOARD_NATS_URL; node A keeps serving`, { timeout: 45_000 }, async (t) => {
      if (kind === 'postgres' && skipPG(t)) return;
      const store = makeStore(kind);
      const [portA, portB] = [await freePort(), await freePort()];
      const a = launchServer({ port: portA, dataDir: store.dataDir, env: store.env });
      let b;
      try {
        await ready(a, 'node A');
        const slug = `second-${kind}`;
        const token = await newProject(a.baseURL, slug);

        b = launchServer({ port: portB, dataDir: store.dataDir, env: store.env });
        const startedB = Date.now();
        const verdict = await Promise.race([b.exited.then(() => 'exited'), sleep(10_000).then(() => 'running')]);
        const tookMs = Date.now() - startedB;
        let bProblem = null;
        if (verdict === 'running') {
          let answers = 'does not answer /healthz';
          try {
            const h = await fetch(`${b.baseURL}/healthz`, { signal: AbortSignal.timeout(1000) });
            answers = `answers /healthz with ${h.status} ${(await h.text()).trim()}`;
          } catch { /* keep the default */ }
          await b.kill('SIGKILL');
          bProblem = `node B on the same ${kind} store (${store.label}) was still running after 10 s and ${answers}: a second node was allowed to start`;
        } else if (b.exitCode === 0 || b.exitCode === null) {
          bProblem = `node B exited with code ${b.exitCode} (signal ${b.exitSignal}) after ${tookMs} ms; want a non-zero exit code`;
        } else if (!b.stderrText().includes('SWITCHBOARD_NATS_URL')) {
          bProblem = `node B exited with code ${b.exitCode} after ${tookMs} ms, but its stderr does not mention SWITCHBOARD_NATS_URL:\n${b.stderrText()}`;
        } else {
          t.diagnostic(`node B refused in ${tookMs} ms with exit code ${b.exitCode}`);
        }

        // Node A still serves: a pusher-js subscriber on it gets an attendee written through it.
        assert.equal(a.running, true, 'node A is still running');
        const p = a.pusherClient(token);
        await connected(p);
        const got = [];
        await subscribeAttendees(p, slug, (e) => got.push(e));
        const res = await apiCall(a.baseURL, 'POST', `/api/v1/projects/${slug}/attendees`,
          { first_name: 'Still', last_name: 'Serving', email: 'still@example.com', attendee_type_id: 1 }, { token });
        const created = expectStatus(res, 201, 'create attendee on node A');
        const deadline = Date.now() + 5000;
        while (!got.some((e) => e.attendee_id === created.id) && Date.now() < deadline) await sleep(25);
        p.close();
        assert.ok(got.some((e) => e.attendee_id === created.id), `node A's subscriber did not get attendee ${created.id} within 5 s`);

        assert.equal(bProblem, null, bProblem ?? '');
      } finally {
        if (b?.running) await b.kill('SIGKILL');
        await a.stop();
        store.cleanup();
      }
    });
  }
});
