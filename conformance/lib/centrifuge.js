// Helpers for the Centrifugo front door: a switchboard process with its own
// settings (short token TTL, server API key), bearer tokens minted with the
// binary's own `token` command, the server API, and centrifuge-js clients on
// the `ws` package. Kept self-contained so the Centrifugo tests can set the
// environment they need without touching the shared lib/server.js.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import WebSocket from 'ws';
import { Centrifuge } from 'centrifuge';

export const JWT_SECRET = 'conformance-jwt-secret-of-at-least-32-bytes';
export const API_KEY = 'conformance-api-key';

function binary() {
  const bin = process.env.SWITCHBOARD_BIN;
  if (!bin) throw new Error('SWITCHBOARD_BIN must point at the switchboard binary (go build -o bin/switchboard ./cmd/switchboard)');
  return bin;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts `switchboard serve` on a random port with an empty SQLite data dir.
 * env adds or overrides variables (e.g. SWITCHBOARD_REALTIME_TOKEN_TTL).
 * Returns { base, ws, stop, env }.
 */
export async function startSwitchboard(env = {}) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-cf-'));
  const fullEnv = {
    ...process.env,
    SWITCHBOARD_ADDR: `127.0.0.1:${port}`,
    SWITCHBOARD_DATA_DIR: dir,
    SWITCHBOARD_JWT_SECRET: JWT_SECRET,
    SWITCHBOARD_APP_ID: 'app-id',
    SWITCHBOARD_APP_KEY: 'conformance-app-key',
    SWITCHBOARD_APP_SECRET: 'conformance-app-secret-0123456789',
    SWITCHBOARD_API_KEY: API_KEY,
    SWITCHBOARD_RELAY_POLL: '100ms',
    ...env,
  };
  const proc = spawn(binary(), ['serve'], { env: fullEnv, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (b) => { log += b.toString(); });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`switchboard exited: ${log}`);
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`switchboard did not start: ${log}`);
    await sleep(50);
  }
  return {
    base,
    ws: `ws://127.0.0.1:${port}/connection/websocket`,
    env: fullEnv,
    log: () => log,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes a namespaces file for SWITCHBOARD_CENTRIFUGO_CONFIG; returns its path. */
export function writeChannelsConfig(obj) {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-cfcfg-'));
  const path = join(dir, 'centrifugo.json');
  writeFileSync(path, JSON.stringify(obj));
  return path;
}

/** Mints a Switchboard bearer JWT with the binary's `token` command. */
export function bearer(sub, { name = '', projects = [], admin = false, ttl = '1h' } = {}) {
  const args = ['token', '--sub', String(sub), '--ttl', ttl];
  if (name) args.push('--name', name);
  if (projects.length) args.push('--projects', projects.join(','));
  if (admin) args.push('--admin');
  return execFileSync(binary(), args, { env: { ...process.env, SWITCHBOARD_JWT_SECRET: JWT_SECRET }, stdio: ['ignore', 'pipe', 'ignore'] })
    .toString().trim();
}

/** fetch wrapper: JSON in, { status, body } out. */
export async function request(base, method, path, { body, headers = {} } = {}) {
  const r = await fetch(base + path, {
    method,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: r.status, body: json };
}

/** POST /api/v1/realtime/token with a bearer; returns the connection token. */
export async function connectionToken(base, bearerToken) {
  const r = await request(base, 'POST', '/api/v1/realtime/token', { headers: { Authorization: `Bearer ${bearerToken}` } });
  if (r.status !== 200) throw new Error(`token endpoint: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Centrifugo server API call (X-API-Key auth). */
export function serverApi(base, method, body, key = API_KEY) {
  return request(base, 'POST', `/api/${method}`, { body, headers: { 'X-API-Key': key } });
}

/**
 * A real centrifuge-js client on `ws`. With getTokenFor, the SDK's getToken
 * fetches a token from /api/v1/realtime/token with that bearer, counting calls
 * in client.tokenCalls.
 */
export function newClient(srv, { bearerToken, token, ...opts } = {}) {
  const state = { tokenCalls: 0 };
  const options = { websocket: WebSocket, minReconnectDelay: 50, maxReconnectDelay: 300, ...opts };
  if (token) options.token = token;
  if (bearerToken) {
    options.getToken = async () => {
      state.tokenCalls++;
      return (await connectionToken(srv.base, bearerToken)).token;
    };
  }
  const c = new Centrifuge(srv.ws, options);
  c.counters = state;
  return c;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the first event's args, or rejects after ms. */
export function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timeout waiting for ${event}`)), ms);
    emitter.once(event, (ctx) => { clearTimeout(t); resolve(ctx); });
  });
}

/** Collects events into an array; wait(n) resolves once n arrived. */
export function collect(emitter, event) {
  const items = [];
  let waiters = [];
  emitter.on(event, (ctx) => {
    items.push(ctx);
    waiters = waiters.filter((w) => (items.length >= w.n ? (w.resolve(items), false) : true));
  });
  items.wait = (n, ms = 5000) => new Promise((resolve, reject) => {
    if (items.length >= n) return resolve(items);
    const t = setTimeout(() => reject(new Error(`timeout: ${items.length}/${n} ${event} events`)), ms);
    waiters.push({ n, resolve: (v) => { clearTimeout(t); resolve(v); } });
  });
  return items;
}

/**
 * Signs an HS256 JWT with the server's secret, the way an application
 * backend signs Centrifugo subscription tokens (claims sub, channel, exp).
 */
export function signJWT(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${createHmac('sha256', JWT_SECRET).update(head).digest('base64url')}`;
}

/** A subscription token for user sub on channel, valid for ttlSec (negative: already expired). */
export function subscriptionToken(sub, channel, ttlSec) {
  return signJWT({ sub: String(sub), channel, exp: Math.floor(Date.now() / 1000) + ttlSec });
}
