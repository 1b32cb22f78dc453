// Harness for the conformance suite: starts the real switchboard binary on a
// free port with a fresh data directory, mints tokens with `switchboard
// token`, talks REST with global fetch, and builds pusher-js / laravel-echo
// clients pointed at it. Every server and client created here is tracked so
// a test (or a crashing test process) never leaves anything running.
//
// Environment:
//   SWITCHBOARD_BIN            binary to run (default ../bin/switchboard,
//                              relative to conformance/)
//   CONFORMANCE_DATABASE_URL   passed to the server as DATABASE_URL
//                              (default: unset = embedded SQLite)
//   DEBUG                      stream server logs and pusher-js logs live
//   KEEP_DATA                  do not delete the server's data directory

import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test as nodeTest } from 'node:test';

import Pusher from 'pusher-js';
import Echo from 'laravel-echo';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CONFORMANCE_DIR = path.resolve(here, '..');

export const JWT_SECRET = 'conformance-jwt-secret-of-at-least-32-bytes';
export const APP_ID = 'app-id';
export const APP_KEY = 'conformance-app-key';
export const APP_SECRET = 'conformance-app-secret-0123456789';

const DEBUG = !!process.env.DEBUG;
const READY_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;

Pusher.logToConsole = DEBUG;

export function binaryPath() {
  const bin = process.env.SWITCHBOARD_BIN || path.join(CONFORMANCE_DIR, '..', 'bin', 'switchboard');
  return path.resolve(CONFORMANCE_DIR, bin);
}

function baseEnv(extra = {}) {
  const env = { ...process.env };
  // Never let the caller's environment pick the store or the app: the
  // conformance run is hermetic unless CONFORMANCE_DATABASE_URL says so.
  delete env.DATABASE_URL;
  for (const k of Object.keys(env)) if (k.startsWith('SWITCHBOARD_')) delete env[k];
  if (process.env.CONFORMANCE_DATABASE_URL) env.DATABASE_URL = process.env.CONFORMANCE_DATABASE_URL;
  return {
    ...env,
    SWITCHBOARD_JWT_SECRET: JWT_SECRET,
    SWITCHBOARD_APP_ID: APP_ID,
    SWITCHBOARD_APP_KEY: APP_KEY,
    SWITCHBOARD_APP_SECRET: APP_SECRET,
    ...extra,
  };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Process bookkeeping: kill any child that is still alive when the test
// process exits, whatever the reason.

const liveServers = new Set();
const startedServers = []; // every server started, for log dumps
const liveClients = new Set();

process.on('exit', () => {
  for (const s of liveServers) {
    try { s.child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

// ---------------------------------------------------------------------------
// Server

export class Server {
  constructor({ child, port, dataDir, env, ownsData = true }) {
    this.child = child;
    this.port = port;
    this.dataDir = dataDir;
    this.env = env;
    // ownsData: stop() removes dataDir (startServer's fresh directory); a
    // server from launchServer runs on a store that belongs to the caller.
    this.ownsData = ownsData;
    this.host = '127.0.0.1';
    this.baseURL = `http://127.0.0.1:${port}`;
    this.wsURL = `ws://127.0.0.1:${port}/app/${APP_KEY}`;
    this.authEndpoint = `${this.baseURL}/broadcasting/auth`;
    this.logs = [];
    this.exitCode = undefined;
    this.exitSignal = undefined;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        liveServers.delete(this);
        resolve({ code, signal });
      });
    });
    this.stderr = []; // stderr alone, for messages a test asserts on
    const capture = (stream, name) => {
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        this.logs.push(chunk);
        if (name === 'stderr') this.stderr.push(chunk);
        if (DEBUG) process.stderr.write(`[switchboard ${name} :${port}] ${chunk}`);
      });
    };
    capture(child.stdout, 'stdout');
    capture(child.stderr, 'stderr');
  }

  get running() {
    return this.exitCode === undefined && this.exitSignal === undefined;
  }

  logText() {
    return this.logs.join('');
  }

  stderrText() {
    return this.stderr.join('');
  }

  dumpLogs(reason = '') {
    process.stderr.write(
      `\n----- switchboard :${this.port} logs${reason ? ` (${reason})` : ''} -----\n` +
        this.logText() +
        `\n----- end of switchboard :${this.port} logs -----\n`,
    );
  }

  async waitReady(timeoutMs = READY_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    let lastErr;
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new Error(`switchboard exited before becoming ready (code ${this.exitCode}, signal ${this.exitSignal})`);
      }
      try {
        const res = await fetch(`${this.baseURL}/healthz`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 200) return;
        lastErr = new Error(`/healthz returned ${res.status}`);
      } catch (err) {
        lastErr = err;
      }
      await sleep(50);
    }
    throw new Error(`switchboard not ready after ${timeoutMs} ms: ${lastErr?.message ?? 'no answer'}`);
  }

  // stop disconnects every client made through this harness for this
  // server, sends SIGTERM, waits for exit (SIGKILL after 5 s), then removes
  // the data directory. Safe to call more than once.
  async stop() {
    if (this._stopping) return this._stopping;
    this._stopping = (async () => {
      closeClients(this.port);
      if (this.running) {
        this.child.kill('SIGTERM');
        const killer = setTimeout(() => {
          if (this.running) {
            this.logs.push(`\n[harness] no exit ${STOP_GRACE_MS} ms after SIGTERM: sending SIGKILL\n`);
            this.child.kill('SIGKILL');
          }
        }, STOP_GRACE_MS);
        await this.exited;
        clearTimeout(killer);
      }
      if (this.ownsData && !process.env.KEEP_DATA) await rm(this.dataDir, { recursive: true, force: true });
    })();
    return this._stopping;
  }

  // kill sends `signal` (SIGKILL by default: no shutdown at all) to the
  // binary itself and resolves once it has exited. Clients are left alone:
  // they see the connection drop and reconnect on their own.
  async kill(signal = 'SIGKILL') {
    if (this.running) this.child.kill(signal);
    return this.exited;
  }

  // token mints a JWT with the binary's `token` command and the same secret
  // as the server.
  token(opts) {
    return mintToken(opts, this.env);
  }

  // api calls the REST API. body is sent as JSON when not undefined.
  api(method, urlPath, body, opts) {
    return apiCall(this.baseURL, method, urlPath, body, opts);
  }

  echoClient(token, opts) {
    return echoClient(this, token, opts);
  }

  pusherClient(token, opts) {
    return pusherClient(this, token, opts);
  }
}

// startServer runs `<bin> serve` on a free port with a fresh data dir and
// resolves once GET /healthz answers 200.
export async function startServer({ env: extraEnv = {}, args = [] } = {}) {
  const bin = binaryPath();
  if (!existsSync(bin)) {
    throw new Error(`switchboard binary not found at ${bin}: run \`make build\` or set SWITCHBOARD_BIN`);
  }
  const dataDir = await mkdtemp(path.join(tmpdir(), 'switchboard-conformance-'));
  // A port picked by freePort can be taken by someone else before the
  // server binds it; retry a couple of times on an early exit.
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const env = baseEnv({
      SWITCHBOARD_ADDR: `127.0.0.1:${port}`,
      SWITCHBOARD_DATA_DIR: dataDir,
      ...extraEnv,
    });
    const child = spawn(bin, ['serve', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const srv = new Server({ child, port, dataDir, env });
    liveServers.add(srv);
    startedServers.push(srv);
    const spawnError = new Promise((_, reject) => child.once('error', reject));
    try {
      await Promise.race([srv.waitReady(), spawnError]);
      return srv;
    } catch (err) {
      lastErr = err;
      const addrInUse = /address already in use/i.test(srv.logText());
      if (srv.running) {
        child.kill('SIGKILL');
        await srv.exited;
      }
      if (!addrInUse) {
        srv.dumpLogs('failed to start');
        await rm(dataDir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  await rm(dataDir, { recursive: true, force: true });
  throw lastErr;
}

// launchServer runs `<bin> serve` on the given port and data directory and
// returns at once (await srv.waitReady() for a server meant to come up; watch
// srv.exited for one meant to refuse). For tests that restart a server on the
// same store and port, or start a second node on it: the server is tracked
// like startServer's (killed when the test process exits, logs dumped by
// test() on failure) but the data directory is the caller's, and stop()
// leaves it in place. In env, a value of undefined removes the variable
// (e.g. DATABASE_URL: undefined for SQLite under CONFORMANCE_DATABASE_URL).
export function launchServer({ port, dataDir, env: extraEnv = {}, args = [] }) {
  const bin = binaryPath();
  if (!existsSync(bin)) {
    throw new Error(`switchboard binary not found at ${bin}: run \`make build\` or set SWITCHBOARD_BIN`);
  }
  const env = baseEnv({
    SWITCHBOARD_ADDR: `127.0.0.1:${port}`,
    SWITCHBOARD_DATA_DIR: dataDir,
    ...extraEnv,
  });
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const child = spawn(bin, ['serve', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const srv = new Server({ child, port, dataDir, env, ownsData: false });
  child.once('error', (err) => srv.logs.push(`\n[harness] spawn failed: ${err.message}\n`));
  liveServers.add(srv);
  startedServers.push(srv);
  return srv;
}

// ---------------------------------------------------------------------------
// Tokens

export function mintToken({ sub = '42', name = 'Jane Smith', projects = [], admin = false, ttl = '1h' } = {}, env) {
  const args = ['token', '--sub', String(sub), '--ttl', ttl];
  if (name) args.push('--name', name);
  if (projects.length) args.push('--projects', projects.join(','));
  if (admin) args.push('--admin');
  return new Promise((resolve, reject) => {
    execFile(binaryPath(), args, { env: env ?? baseEnv(), timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`switchboard ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        return;
      }
      const tok = stdout.trim();
      if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(tok)) {
        reject(new Error(`switchboard token printed something that is not a JWT: ${JSON.stringify(stdout)}`));
        return;
      }
      resolve(tok);
    });
  });
}

// ---------------------------------------------------------------------------
// REST

export async function apiCall(baseURL, method, urlPath, body, { token, requestId, headers = {} } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (token) h.Authorization = `Bearer ${token}`;
  if (requestId) h['X-Request-ID'] = requestId;
  const res = await fetch(baseURL + urlPath, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let json = null;
  if (text !== '') {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  return { status: res.status, body: json, text, headers: res.headers };
}

// expectStatus throws a readable error (method, path, status, body) when a
// REST call did not answer with the expected status.
export function expectStatus(res, status, what = 'request') {
  if (res.status !== status) {
    throw new Error(`${what}: expected HTTP ${status}, got ${res.status}: ${res.text}`);
  }
  return res.body;
}

// ---------------------------------------------------------------------------
// pusher-js / laravel-echo clients
//
// pusher-js resolves to its Node build (dist/node/pusher.js, main field). It
// opens the socket with a bundled faye-websocket client and does channel
// authorization with a bundled copy of the `xmlhttprequest`
// package (node-XMLHttpRequest over http.request). That XHR honours
// setRequestHeader('Authorization', ...) ("authorization" is not on its
// forbidden-header list), needs an ABSOLUTE endpoint URL (there is no page
// origin in Node) and sends Content-Type application/x-www-form-urlencoded.
// So the standard auth path works in Node and no customHandler is needed.

function serverOf(target) {
  if (typeof target === 'number') return { port: target, host: '127.0.0.1', authEndpoint: `http://127.0.0.1:${target}/broadcasting/auth` };
  return target;
}

function track(port, close) {
  const entry = { port, close };
  liveClients.add(entry);
  return () => {
    if (liveClients.delete(entry)) close();
  };
}

export function closeClients(port) {
  for (const entry of [...liveClients]) {
    if (port === undefined || entry.port === port) {
      liveClients.delete(entry);
      try { entry.close(); } catch { /* ignore */ }
    }
  }
}

// Socket options shared by pusher-js and Echo. `cluster` is mandatory since
// pusher-js 8 even with wsHost. Stats are off by default in pusher-js 8
// (`enableStats: false`); the `disableStats` option only triggers a
// deprecation warning, so it is not passed.
function socketOptions(srv) {
  return {
    cluster: 'mt1',
    wsHost: srv.host,
    wsPort: srv.port,
    wssPort: srv.port,
    forceTLS: false,
    enabledTransports: ['ws'],
  };
}

// pusherClient: plain pusher-js 8 with the modern `channelAuthorization`
// option.
export function pusherClient(target, token, extra = {}) {
  const srv = serverOf(target);
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const pusher = new Pusher(APP_KEY, {
    ...socketOptions(srv),
    channelAuthorization: { endpoint: srv.authEndpoint, transport: 'ajax', headers },
    ...extra,
  });
  pusher.close = track(srv.port, () => pusher.disconnect());
  return pusher;
}

// echoClient: laravel-echo 2 configured exactly as the GxP guide tells
// customers (broadcaster 'pusher', key, cluster, authEndpoint,
// auth.headers.Authorization), plus the self-hosting socket options. In
// Node there is no window.Pusher, so the constructor is passed as
// `Pusher`; Echo then hands its whole options object to `new Pusher(key,
// options)` and pusher-js maps the legacy authEndpoint/auth.headers onto
// channelAuthorization.
//
// A FRESH `auth: {headers}` object is passed on purpose: Echo's
// setOptions() shallow-merges its static defaults, so without our own
// `auth` object, `bearerToken` (and csrfToken) are written into the shared
// Echo._defaultOptions.auth.headers, and the last Echo instance's token
// leaks into every other instance in the same process.
export function echoClient(target, token, extra = {}) {
  const srv = serverOf(target);
  const echo = new Echo({
    broadcaster: 'pusher',
    Pusher,
    key: APP_KEY,
    ...socketOptions(srv),
    authEndpoint: srv.authEndpoint,
    auth: { headers: token ? { Authorization: `Bearer ${token}` } : {} },
    ...extra,
  });
  echo.close = track(srv.port, () => echo.disconnect());
  return echo;
}

// connected resolves when a pusher-js client reaches the `connected` state
// and rejects on `failed`/`unavailable` or timeout.
export function connected(pusherOrEcho, timeoutMs = 5000) {
  const pusher = pusherOrEcho.connector?.pusher ?? pusherOrEcho;
  const conn = pusher.connection;
  if (conn.state === 'connected') return Promise.resolve(conn.socket_id);
  return waitFor(
    (resolve, reject) => {
      const onChange = ({ current }) => {
        if (current === 'connected') resolve(conn.socket_id);
        else if (current === 'failed' || current === 'unavailable') reject(new Error(`pusher connection ${current}`));
      };
      conn.bind('state_change', onChange);
      return () => conn.unbind('state_change', onChange);
    },
    timeoutMs,
    'pusher connection',
  );
}

// ---------------------------------------------------------------------------
// Waiting helpers

// waitFor(register, timeoutMs, label): register(resolve, reject) hooks a
// callback onto whatever emitter and may return a cleanup function. The
// promise rejects with `label` in the message after timeoutMs.
export function waitFor(register, timeoutMs = 5000, label = 'event') {
  return new Promise((resolve, reject) => {
    let cleanup;
    let done = false;
    const finish = (fn, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try { cleanup?.(); } catch { /* ignore */ }
      fn(value);
    };
    const timer = setTimeout(() => finish(reject, new Error(`timed out after ${timeoutMs} ms waiting for ${label}`)), timeoutMs);
    try {
      cleanup = register((v) => finish(resolve, v), (e) => finish(reject, e));
    } catch (err) {
      finish(reject, err);
    }
    if (done) try { cleanup?.(); } catch { /* ignore */ }
  });
}

// Collector gathers every payload handed to `collector.push` (pass it as a
// listener) so a test can await the next one, or assert that none came.
export class Collector {
  constructor(label = 'event') {
    this.label = label;
    this.items = [];
    this.waiters = [];
    this.push = (item) => {
      this.items.push(item);
      const w = this.waiters.shift();
      if (w) w(item);
    };
    this.cursor = 0;
  }

  // next resolves with the next item not yet returned by next().
  next(timeoutMs = 5000) {
    if (this.cursor < this.items.length) return Promise.resolve(this.items[this.cursor++]);
    return waitFor(
      (resolve) => {
        const w = (item) => {
          this.cursor++;
          resolve(item);
        };
        this.waiters.push(w);
        return () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
        };
      },
      timeoutMs,
      this.label,
    );
  }

  // none waits `ms` and throws if anything at all has been collected.
  async none(ms = 500) {
    await sleep(ms);
    if (this.items.length) {
      throw new Error(`expected no ${this.label}, got ${this.items.length}: ${JSON.stringify(this.items)}`);
    }
  }
}

// ---------------------------------------------------------------------------
// Test wrapper: node:test's test() with a default timeout, printing the
// logs of every switchboard that was alive or started during the test when
// it fails (with DEBUG the logs are already streamed live).

const DEFAULT_TEST_TIMEOUT_MS = 30_000;

export function test(name, options, fn) {
  if (typeof options === 'function') {
    fn = options;
    options = {};
  }
  return nodeTest(name, { timeout: DEFAULT_TEST_TIMEOUT_MS, ...options }, async (t) => {
    const mark = startedServers.length;
    const aliveBefore = [...liveServers];
    try {
      await fn(t);
    } catch (err) {
      if (!DEBUG) {
        const seen = new Set([...aliveBefore, ...startedServers.slice(mark), ...liveServers]);
        for (const s of seen) s.dumpLogs(`test "${name}" failed`);
      }
      throw err;
    }
  });
}
