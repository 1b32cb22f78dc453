// Helpers for test/durability.test.js: stores that outlive a server process
// (an SQLite data directory, or a fresh PostgreSQL schema made with psql),
// a Centrifugo config with a long canonical history, REST writers that keep
// going while the server is down, and a centrifuge-js client that records
// every publication and (re)subscription of one channel.
//
// Environment (besides lib/server.js's):
//   CONFORMANCE_DATABASE_URL        PostgreSQL base URL for the PostgreSQL
//   SWITCHBOARD_TEST_DATABASE_URL   runs (first one set wins; default
//                                   postgres://postgres@127.0.0.1:5432/test).
//                                   Each store is a fresh schema in it,
//                                   dropped afterwards.
//   DURABILITY_PG                   "0" skips the PostgreSQL runs, "1" makes
//                                   an unreachable PostgreSQL a failure
//                                   (it is one anyway when
//                                   CONFORMANCE_DATABASE_URL is set).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';

import { sleep } from './server.js';

// ---------------------------------------------------------------------------
// PostgreSQL through psql (no npm driver in the lockfile).

export function pgBaseURL() {
  return (
    process.env.CONFORMANCE_DATABASE_URL ||
    process.env.SWITCHBOARD_TEST_DATABASE_URL ||
    'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
  );
}

// psqlURL keeps only the parameters libpq knows (lib/pq-only ones such as
// binary_parameters, or search_path, make psql refuse the URI).
function psqlURL(base) {
  const u = new URL(base);
  const keep = new Set(['sslmode', 'connect_timeout', 'application_name', 'sslrootcert', 'sslcert', 'sslkey', 'options']);
  for (const k of [...u.searchParams.keys()]) if (!keep.has(k)) u.searchParams.delete(k);
  return u.toString();
}

export function psql(sql, base = pgBaseURL()) {
  return execFileSync('psql', [psqlURL(base), '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
    env: { ...process.env, PGCONNECT_TIMEOUT: '5' },
    timeout: 15_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  }).toString();
}

// pgStatus says whether the PostgreSQL runs happen: { run: true } or
// { run: false, reason }, or throws when PostgreSQL was asked for and is
// not there.
export function pgStatus() {
  if (process.env.DURABILITY_PG === '0') return { run: false, reason: 'DURABILITY_PG=0' };
  const required = !!process.env.CONFORMANCE_DATABASE_URL || process.env.DURABILITY_PG === '1';
  try {
    psql('SELECT 1');
    return { run: true };
  } catch (err) {
    const why = `PostgreSQL at ${pgBaseURL()} not usable through psql: ${String(err.stderr || err.message).trim()}`;
    if (required) throw new Error(why);
    return { run: false, reason: why };
  }
}

const liveSchemas = new Set();
process.on('exit', () => {
  for (const s of liveSchemas) {
    try { psql(`DROP SCHEMA IF EXISTS ${s} CASCADE`); } catch { /* best effort */ }
  }
});

// ---------------------------------------------------------------------------
// Stores: what survives the server process.

// makeStore returns { kind, dataDir, env, label, cleanup() }. env selects the
// store for launchServer: SQLite in dataDir (DATABASE_URL removed even when
// CONFORMANCE_DATABASE_URL is set), or PostgreSQL on a fresh schema through
// the URL parameter search_path (lib/pq passes it as a run-time parameter;
// domain/dbtest does the same).
export function makeStore(kind) {
  const dataDir = mkdtempSync(path.join(tmpdir(), `switchboard-durability-${kind}-`));
  if (kind === 'sqlite') {
    return {
      kind,
      dataDir,
      label: dataDir,
      env: { DATABASE_URL: undefined },
      cleanup() {
        if (!process.env.KEEP_DATA) rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  if (kind !== 'postgres') throw new Error(`unknown store ${kind}`);
  const schema = `durability_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  psql(`CREATE SCHEMA ${schema}`);
  liveSchemas.add(schema);
  const u = new URL(pgBaseURL());
  u.searchParams.set('search_path', schema);
  if (!u.searchParams.has('sslmode')) u.searchParams.set('sslmode', 'disable');
  return {
    kind,
    dataDir,
    schema,
    label: `schema ${schema}`,
    env: { DATABASE_URL: u.toString() },
    cleanup() {
      rmSync(dataDir, { recursive: true, force: true });
      if (process.env.KEEP_DATA) return;
      try {
        psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        liveSchemas.delete(schema);
      } catch { /* the exit hook tries again */ }
    },
  };
}

const configDirs = new Set();
process.on('exit', () => {
  for (const d of configDirs) rmSync(d, { recursive: true, force: true });
});

// centrifugoConfig writes a SWITCHBOARD_CENTRIFUGO_CONFIG file whose
// canonical channels keep a long history, so a client that was away during a
// kill and restart can recover everything from its offset. Returns its path;
// the file is removed when the test process exits.
export function centrifugoConfig({ historySize = 10_000, historyTTL = '10m' } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-durability-cfg-'));
  configDirs.add(dir);
  const file = path.join(dir, 'centrifugo.json');
  writeFileSync(file, JSON.stringify({ canonical: { history_size: historySize, history_ttl: historyTTL } }));
  return file;
}

// ---------------------------------------------------------------------------
// Writers

// startWriters runs `concurrency` loops POSTing attendees to one project.
// Every attempt is a NEW attendee (never a retry of the same write): a 2xx
// answer records its id in `acked`; a non-2xx answer or a network error
// (the server is down) is counted and followed by a short pause.
// onAck(id, acked) is called synchronously with each acknowledgement.
export function startWriters({ baseURL, slug, token, concurrency = 32, onAck, requestTimeoutMs = 5000 }) {
  const acked = new Map(); // attendee id -> { n, at }
  const stats = { attempts: 0, ok: 0, non2xx: 0, errors: 0, badAcks: [], ackedTwice: [] };
  const tag = randomBytes(3).toString('hex');
  let stopping = false;
  let seq = 0;
  const url = `${baseURL}/api/v1/projects/${slug}/attendees`;

  async function loop() {
    while (!stopping) {
      const n = seq++;
      stats.attempts++;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json', Authorization: `Bearer ${token}` },
          body: JSON.stringify({ first_name: 'Kill', last_name: `Loop ${n}`, email: `k${n}-${tag}@example.com`, attendee_type_id: 1 }),
          signal: AbortSignal.timeout(requestTimeoutMs),
        });
        const text = await res.text();
        if (res.status >= 200 && res.status < 300) {
          let id;
          try { id = JSON.parse(text).id; } catch { /* below */ }
          if (!Number.isInteger(id)) {
            stats.badAcks.push(`${res.status} ${text.slice(0, 200)}`);
            continue;
          }
          if (acked.has(id)) stats.ackedTwice.push(id);
          acked.set(id, { n, at: Date.now() });
          stats.ok++;
          onAck?.(id, acked);
        } else {
          stats.non2xx++;
          await sleep(10 + Math.random() * 20);
        }
      } catch {
        stats.errors++;
        await sleep(20 + Math.random() * 30);
      }
    }
  }

  const loops = Array.from({ length: concurrency }, loop);
  return {
    acked,
    stats,
    get stopping() { return stopping; },
    // halt stops new writes at once (requests in flight still finish).
    halt() { stopping = true; },
    async stop() {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

// ---------------------------------------------------------------------------
// centrifuge-js

// centrifugeClient is a real centrifuge-js client on `ws` that fetches its
// connection token from /api/v1/realtime/token with `bearer` (a fetch that
// fails while the server is down makes the SDK retry with backoff), and
// reconnects quickly.
export function centrifugeClient(baseURL, bearer, opts = {}) {
  const wsURL = baseURL.replace(/^http/, 'ws') + '/connection/websocket';
  return new Centrifuge(wsURL, {
    websocket: WebSocket,
    minReconnectDelay: 50,
    maxReconnectDelay: 300,
    getToken: async () => {
      const res = await fetch(`${baseURL}/api/v1/realtime/token`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${bearer}` },
        signal: AbortSignal.timeout(3000),
      });
      if (res.status !== 200) throw new Error(`realtime token: HTTP ${res.status}`);
      return (await res.json()).token;
    },
    ...opts,
  });
}

// recordSubscription subscribes `channel` (recoverable and positioned, as a
// stream consumer asks) and records, in arrival order, every publication
// ({offset, type, id, at}) and every `subscribed` context ({at,
// wasRecovering, recovered, recoverable, positioned, position}). ready
// resolves on the first subscribe.
export function recordSubscription(client, channel, readyTimeoutMs = 5000) {
  const rec = { pubs: [], subscribed: [], errors: [], unsubscribed: [], lastPubAt: 0 };
  const sub = client.newSubscription(channel, { recoverable: true, positioned: true });
  sub.on('publication', (ctx) => {
    const at = Date.now();
    rec.lastPubAt = at;
    rec.pubs.push({ offset: ctx.offset, type: ctx.data?.type, id: ctx.data?.data?.attendee_id, at });
  });
  let resolveReady;
  let rejectReady;
  const ready = new Promise((resolve, reject) => { resolveReady = resolve; rejectReady = reject; });
  sub.on('subscribed', (ctx) => {
    rec.subscribed.push({
      at: Date.now(),
      wasRecovering: ctx.wasRecovering,
      recovered: ctx.recovered,
      recoverable: ctx.recoverable,
      positioned: ctx.positioned,
      position: ctx.streamPosition,
    });
    resolveReady(ctx);
  });
  sub.on('error', (ctx) => rec.errors.push({ at: Date.now(), error: ctx.error }));
  sub.on('unsubscribed', (ctx) => {
    rec.unsubscribed.push({ at: Date.now(), code: ctx.code, reason: ctx.reason });
    rejectReady(new Error(`subscription to ${channel} refused: ${ctx.code} ${ctx.reason}`));
  });
  sub.subscribe();
  const timer = setTimeout(() => rejectReady(new Error(`no subscribe to ${channel} within ${readyTimeoutMs} ms`)), readyTimeoutMs);
  rec.sub = sub;
  rec.ready = ready.finally(() => clearTimeout(timer));
  rec.ready.catch(() => {}); // awaited by the caller
  return rec;
}

// ---------------------------------------------------------------------------
// Checks

// checkStream compares what one subscriber received on one channel with the
// acknowledged writes. startOffset is the stream position of the first
// subscribe (publications must follow it one by one, in one epoch, across
// restarts). Returns counts and a list of problems (empty when all is well).
export function checkStream({ acked, pubs, startOffset }) {
  const problems = [];
  const seen = new Map(); // id -> times
  let prev = startOffset;
  const offsetBreaks = [];
  for (const p of pubs) {
    if (p.type !== 'AttendeeCreated') problems.push(`unexpected publication type ${JSON.stringify(p.type)} at offset ${p.offset}`);
    seen.set(p.id, (seen.get(p.id) ?? 0) + 1);
    if (typeof p.offset !== 'number') offsetBreaks.push(`no offset (id ${p.id})`);
    else {
      if (p.offset !== prev + 1) offsetBreaks.push(`${prev} -> ${p.offset} (id ${p.id})`);
      prev = p.offset;
    }
  }
  // Ordered by offset, the ids must be the sequence they arrived in.
  const byOffset = [...pubs].filter((p) => typeof p.offset === 'number').sort((a, b) => a.offset - b.offset).map((p) => p.id);
  const arrival = pubs.filter((p) => typeof p.offset === 'number').map((p) => p.id);
  const orderOK = byOffset.every((id, i) => id === arrival[i]);
  const lost = [...acked.keys()].filter((id) => !seen.has(id)).sort((a, b) => a - b);
  const dups = [...seen].filter(([, n]) => n > 1).map(([id, n]) => `${id}x${n}`);
  const unacked = [...seen.keys()].filter((id) => !acked.has(id)).length;
  if (lost.length) problems.push(`${lost.length} acknowledged writes never delivered: ids ${abbreviate(lost)}`);
  if (dups.length) problems.push(`${dups.length} ids delivered more than once: ${abbreviate(dups)}`);
  if (offsetBreaks.length) problems.push(`offsets not consecutive (${offsetBreaks.length} breaks): ${abbreviate(offsetBreaks)}`);
  if (!orderOK) problems.push('attendee ids did not arrive in the order of their offsets');
  return { lost: lost.length, duplicates: dups.length, offsetBreaks: offsetBreaks.length, unacked, problems };
}

export function abbreviate(list, max = 8) {
  if (list.length <= max) return list.join(', ');
  return `${list.slice(0, max).join(', ')}, ... (${list.length - max} more)`;
}
