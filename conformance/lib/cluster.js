// Helpers for test/cluster.test.js: cluster mode (README "Running several
// nodes") driven from the outside. A nats-server of the test's own (JetStream,
// a free port, a temporary store directory: the test can kill it and start it
// again on the same port and store), a fresh PostgreSQL schema shared by every
// node, and N `switchboard serve` processes with SWITCHBOARD_NATS_URL set,
// started one after another on free ports. Nodes are lib/server.js Servers
// (launchServer), so test() dumps their logs when a test fails.
//
// Environment (besides lib/server.js's and lib/durability.js's PostgreSQL
// variables):
//   NATS_SERVER_BIN   nats-server to run (default /usr/sbin/nats-server)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';

import { launchServer, freePort, mintToken, apiCall, expectStatus, sleep, waitFor } from './server.js';
import { psql, pgBaseURL, pgStatus } from './durability.js';

export const NATS_BIN = process.env.NATS_SERVER_BIN || '/usr/sbin/nats-server';
export const RELAY_LINE = 'relay: this node relays the outbox';
const DEBUG = !!process.env.DEBUG;

// clusterSkipReason says why the cluster tests cannot run here (null when
// they can): no nats-server, or no usable PostgreSQL (a PostgreSQL that was
// explicitly asked for and is not there throws instead).
export function clusterSkipReason() {
  if (!existsSync(NATS_BIN)) return `cluster mode needs ${NATS_BIN} (nats-server with JetStream); not found, tests skipped`;
  const pg = pgStatus();
  if (!pg.run) return `cluster mode needs PostgreSQL: ${pg.reason}`;
  return null;
}

// ---------------------------------------------------------------------------
// Bookkeeping: whatever the test process leaves behind is cleaned at exit.

const liveNats = new Set();
const liveSchemas = new Set();
const tempDirs = new Set();
process.on('exit', () => {
  for (const n of liveNats) {
    try { n.child.kill('SIGKILL'); } catch { /* gone */ }
  }
  for (const s of liveSchemas) {
    try {
      psql(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      psql(`DROP PUBLICATION IF EXISTS switchboard_outbox_${s}`);
    } catch { /* best effort */ }
  }
  if (!process.env.KEEP_DATA) for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix) {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.setTimeout(300);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
    s.once('timeout', () => { s.destroy(); resolve(false); });
  });
}

// ---------------------------------------------------------------------------
// NATS

export class NatsServer {
  constructor() {
    this.dir = tempDir('switchboard-cluster-nats-');
    this.port = undefined;
    this.child = undefined;
    this.logs = [];
  }

  get url() {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running() {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  // start runs nats-server (on a free port the first time, on the same port
  // and store directory afterwards) and resolves once it accepts TCP.
  async start() {
    if (this.running) return;
    if (this.port === undefined) this.port = await freePort();
    let lastErr;
    for (let attempt = 0; attempt < 20; attempt++) {
      const child = spawn(NATS_BIN, ['-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.dir], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.once('error', (err) => this.logs.push(`[harness] spawn ${NATS_BIN}: ${err.message}\n`));
      for (const s of [child.stdout, child.stderr]) {
        s.setEncoding('utf8');
        s.on('data', (c) => {
          this.logs.push(c);
          if (DEBUG) process.stderr.write(`[nats :${this.port}] ${c}`);
        });
      }
      this.child = child;
      this.exited = exited;
      liveNats.add(this);
      exited.then(() => liveNats.delete(this));
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && this.running) {
        if (await portOpen(this.port)) return;
        await sleep(50);
      }
      lastErr = new Error(`nats-server on port ${this.port} did not come up:\n${this.logText().slice(-2000)}`);
      if (this.running) child.kill('SIGKILL');
      await exited;
      await sleep(250); // the port can linger a moment after a kill
    }
    throw lastErr;
  }

  // stop kills nats-server (SIGKILL by default, as a crash) and waits for it.
  async stop(signal = 'SIGKILL') {
    if (!this.running) return;
    this.child.kill(signal);
    await this.exited;
  }

  logText() {
    return this.logs.join('');
  }
}

// ---------------------------------------------------------------------------
// PostgreSQL schema

export function newSchema(prefix = 'cluster') {
  const schema = `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  psql(`CREATE SCHEMA ${schema}`);
  liveSchemas.add(schema);
  const u = new URL(pgBaseURL());
  u.searchParams.set('search_path', schema);
  if (!u.searchParams.has('sslmode')) u.searchParams.set('sslmode', 'disable');
  return {
    schema,
    url: u.toString(),
    drop() {
      if (process.env.KEEP_DATA) return;
      try {
        psql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        // The relay's publication (logical decoding) is database-wide.
        psql(`DROP PUBLICATION IF EXISTS switchboard_outbox_${schema}`);
        liveSchemas.delete(schema);
      } catch { /* the exit hook tries again */ }
    },
  };
}

// ---------------------------------------------------------------------------
// Cluster

const NODE_NAMES = 'ABCDEFGHIJ';

export class Cluster {
  constructor({ nats, schema, env = {} }) {
    this.nats = nats;
    this.schema = schema;
    this.env = env;
    this.nodes = []; // every node ever started, in order
    this.centrifuges = new Set();
    this.started = 0;
  }

  // startNode launches one `switchboard serve` on a free port and waits for
  // GET /healthz 200. The Server gets a `name` (A, B, C, ... in start order).
  async startNode(name = NODE_NAMES[this.started] ?? `N${this.started}`) {
    this.started++;
    const dataDir = tempDir('switchboard-cluster-node-');
    let lastErr;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const srv = launchServer({
        port,
        dataDir,
        env: {
          DATABASE_URL: this.schema.url,
          SWITCHBOARD_NATS_URL: this.nats.url,
          SWITCHBOARD_LOG_LEVEL: 'info',
          ...this.env,
        },
      });
      srv.name = name;
      this.nodes.push(srv);
      try {
        await srv.waitReady(20_000);
        return srv;
      } catch (err) {
        lastErr = new Error(`node ${name} (:${port}): ${err.message}`);
        const inUse = /address already in use/i.test(srv.logText());
        if (srv.running) await srv.kill('SIGKILL');
        if (!inUse) throw lastErr;
      }
    }
    throw lastErr;
  }

  // startNodes starts n nodes one after another.
  async startNodes(n) {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await this.startNode());
    return out;
  }

  get running() {
    return this.nodes.filter((n) => n.running);
  }

  // relaying returns the running nodes whose log says they relay the outbox.
  relaying() {
    return this.running.filter((n) => n.logText().includes(RELAY_LINE));
  }

  // waitRelay resolves with the single running node that relays, failing
  // after timeoutMs or when two running nodes claim to.
  async waitRelay(timeoutMs = 10_000, except = new Set()) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.relaying().filter((n) => !except.has(n));
      if (r.length > 1) throw new Error(`more than one running node says it relays the outbox: ${r.map((n) => n.name).join(', ')}`);
      if (r.length === 1) return r[0];
      if (Date.now() > deadline) {
        throw new Error(`no running node said "${RELAY_LINE}" within ${timeoutMs} ms (running: ${this.running.map((n) => n.name).join(', ')})`);
      }
      await sleep(25);
    }
  }

  // centrifuge is a real centrifuge-js client on `ws` pointed at node srv,
  // closed by close().
  centrifuge(srv, opts = {}) {
    const c = new Centrifuge(`ws://127.0.0.1:${srv.port}/connection/websocket`, {
      websocket: WebSocket,
      minReconnectDelay: 50,
      maxReconnectDelay: 300,
      ...opts,
    });
    this.centrifuges.add(c);
    return c;
  }

  // stopNodes: every centrifuge-js client disconnected, every running node
  // stopped with SIGTERM (SIGKILL after 5 s, lib/server.js), in parallel.
  async stopNodes() {
    for (const c of this.centrifuges) {
      try { c.disconnect(); } catch { /* ignore */ }
    }
    this.centrifuges.clear();
    await Promise.all(this.nodes.map((n) => n.stop()));
  }

  async close() {
    await this.stopNodes();
    await this.nats.stop();
    this.schema.drop();
  }
}

// startCluster starts NATS, makes a schema, starts `nodes` nodes one after
// another, creates project `slug` through the last node and mints a project
// token. Returns { cluster, nodes, admin, token, slug }.
export async function startCluster({ nodes = 3, slug = 'demo', env = {} } = {}) {
  const nats = new NatsServer();
  await nats.start();
  let schema;
  try {
    schema = newSchema();
  } catch (err) {
    await nats.stop();
    throw err;
  }
  const cluster = new Cluster({ nats, schema, env });
  try {
    const ns = await cluster.startNodes(nodes);
    const admin = await mintToken({ sub: '1', name: 'Staff', admin: true });
    const last = ns[ns.length - 1];
    expectStatus(await apiCall(last.baseURL, 'POST', '/api/v1/projects', { slug, name: `Project ${slug}` }, { token: admin }), 201, `create project ${slug} on node ${last.name}`);
    const token = await mintToken({ sub: '42', name: 'Jane Smith', projects: [slug] });
    return { cluster, nodes: ns, admin, token, slug };
  } catch (err) {
    await cluster.close();
    throw err;
  }
}

// ---------------------------------------------------------------------------
// REST and pusher-js helpers

// createAttendee POSTs one attendee through node srv; returns { status, id,
// text }. A network error is returned as status 0.
export async function createAttendee(srv, slug, token, n, tag = 'c') {
  try {
    const res = await apiCall(srv.baseURL, 'POST', `/api/v1/projects/${slug}/attendees`,
      { first_name: `Guest${n}`, last_name: 'Cluster', email: `${tag}-${n}@example.com`, attendee_type_id: 1 }, { token });
    return { status: res.status, id: res.body?.id, text: res.text };
  } catch (err) {
    return { status: 0, id: undefined, text: String(err.message) };
  }
}

// pusherSubscribed resolves with the pusher-js channel once subscribed
// (pusher:subscription_succeeded), with the data it came with (members for
// a presence channel).
export function pusherSubscribed(pusher, channelName, timeoutMs = 8000) {
  const ch = pusher.subscribe(channelName);
  return waitFor(
    (resolve, reject) => {
      const ok = (data) => resolve({ channel: ch, data });
      const ko = (e) => reject(new Error(`subscription to ${channelName} refused: ${JSON.stringify(e)}`));
      ch.bind('pusher:subscription_succeeded', ok);
      ch.bind('pusher:subscription_error', ko);
      return () => { ch.unbind('pusher:subscription_succeeded', ok); ch.unbind('pusher:subscription_error', ko); };
    },
    timeoutMs,
    `subscription to ${channelName}`,
  );
}

// IdRecorder keeps, in arrival order, the attendee ids a client received.
export class IdRecorder {
  constructor(label) {
    this.label = label;
    this.ids = [];
    this.lastAt = 0;
    this.push = (payload) => {
      this.ids.push(payload?.attendee_id);
      this.lastAt = Date.now();
    };
  }

  // waitAll resolves once every id in `want` arrived (then a quiet period
  // of quietMs in which duplicates would show); rejects after timeoutMs.
  async waitAll(want, timeoutMs = 15_000, quietMs = 500) {
    const deadline = Date.now() + timeoutMs;
    const missing = () => {
      const got = new Set(this.ids);
      return want.filter((id) => !got.has(id));
    };
    while (missing().length && Date.now() < deadline) await sleep(25);
    await sleep(quietMs);
    return missing();
  }
}

// checkExactlyOnceInOrder compares what a client received with the ids
// written (in write order); returns a list of problems (empty: all good).
export function checkExactlyOnceInOrder(label, got, want, { ordered = true } = {}) {
  const problems = [];
  const wantSet = new Set(want);
  const counts = new Map();
  for (const id of got) counts.set(id, (counts.get(id) ?? 0) + 1);
  const lost = want.filter((id) => !counts.has(id));
  const dups = [...counts].filter(([, n]) => n > 1).map(([id, n]) => `${id}x${n}`);
  const foreign = [...counts.keys()].filter((id) => !wantSet.has(id));
  if (lost.length) problems.push(`${label}: ${lost.length} of ${want.length} written attendees never arrived: ${abbrev(lost)}`);
  if (dups.length) problems.push(`${label}: ${dups.length} attendees arrived more than once: ${abbrev(dups)}`);
  if (foreign.length) problems.push(`${label}: ${foreign.length} unexpected attendee ids: ${abbrev(foreign)}`);
  if (ordered && !lost.length && !dups.length && !foreign.length) {
    const pos = new Map(want.map((id, i) => [id, i]));
    const breaks = [];
    for (let i = 1; i < got.length; i++) {
      if (pos.get(got[i]) < pos.get(got[i - 1])) breaks.push(`${got[i - 1]} then ${got[i]} (arrival ${i})`);
    }
    if (breaks.length) problems.push(`${label}: ${breaks.length} order breaks against write order: ${abbrev(breaks)}`);
  }
  if (got.length !== want.length && !problems.length) problems.push(`${label}: got ${got.length} events, want ${want.length}`);
  return problems;
}

export function abbrev(list, max = 8) {
  if (list.length <= max) return list.join(', ');
  return `${list.slice(0, max).join(', ')}, ... (${list.length - max} more)`;
}

// readyz GETs /readyz on srv: { status, body, text }.
export async function readyz(srv) {
  try {
    const res = await fetch(`${srv.baseURL}/readyz`, { signal: AbortSignal.timeout(3000) });
    const text = await res.text();
    let body = null;
    try { body = JSON.parse(text); } catch { /* keep text */ }
    return { status: res.status, body, text };
  } catch (err) {
    return { status: 0, body: null, text: String(err.message) };
  }
}

// tail returns the last `lines` lines of a node's log.
export function tail(srv, lines = 40) {
  return srv.logText().split('\n').slice(-lines).join('\n');
}
