// Helpers for the ActionCable front door: the REAL @rails/actioncable
// consumer, running in Node with `ws` as its WebSocket, pointed at
// switchboard's /cable exactly as a Rails frontend would be
// (createConsumer(`ws://host/cable?token=${jwt}`)).
//
// @rails/actioncable is written for browsers. Node lacks two things it
// touches:
//   - a WebSocket global (Node 20): `ws` is installed as adapters.WebSocket;
//   - the window-level addEventListener/removeEventListener the
//     ConnectionMonitor uses for `visibilitychange`: there are no page
//     visibility events in Node, so no-op stand-ins are installed when absent.
// Nothing else of the library is replaced: connection, monitor (stale
// detection, reconnect backoff), subscription guarantor and callbacks run as
// in a browser.

import { spawn } from 'node:child_process';
import WebSocket from 'ws';

import { Server, binaryPath, waitFor } from './server.js';

if (typeof globalThis.addEventListener !== 'function') {
  globalThis.addEventListener = () => {};
  globalThis.removeEventListener = () => {};
}
if (typeof globalThis.WebSocket === 'undefined') globalThis.WebSocket = WebSocket;

// The package's main entry is a UMD/CommonJS build: import its exports
// object.
const ActionCable = (await import('@rails/actioncable')).default;
ActionCable.adapters.WebSocket = WebSocket;
ActionCable.logger.enabled = !!process.env.DEBUG;

export { ActionCable };

const consumers = new Set();

// Servers started by restart() are not in server.js's bookkeeping: kill
// them if the test process exits without stopping them.
const restarted = new Set();
process.on('exit', () => {
  for (const s of restarted) {
    try { s.child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

export function cableURL(srv, token) {
  const base = `ws://127.0.0.1:${srv.port}/cable`;
  return token === undefined ? base : `${base}?token=${encodeURIComponent(token)}`;
}

// consumer creates a consumer for srv (or any { port }) with token in the
// URL, as the Rails guide shows for token identification. token may be a
// function: the consumer URL is then a function too, called on every
// (re)connect. Call closeConsumers() in a finally block.
export function consumer(srv, token) {
  const url = typeof token === 'function' ? () => cableURL(srv, token()) : cableURL(srv, token);
  const c = ActionCable.createConsumer(url);
  consumers.add(c);
  return c;
}

export function closeConsumers() {
  for (const c of consumers) {
    try { c.disconnect(); } catch { /* ignore */ }
  }
  consumers.clear();
}

// Recorder collects the callbacks of one subscription: `received` data in
// `messages`, and connected/rejected/disconnected in `states` (each as
// { type, ...args }).
export class Recorder {
  constructor(label) {
    this.label = label;
    this.messages = [];
    this.states = [];
    this.waiters = [];
  }

  mixin() {
    const rec = this;
    return {
      connected(data) { rec.push('states', { type: 'connected', ...(data ?? {}) }); },
      rejected() { rec.push('states', { type: 'rejected' }); },
      disconnected(data) { rec.push('states', { type: 'disconnected', ...(data ?? {}) }); },
      received(data) { rec.push('messages', data); },
    };
  }

  push(list, item) {
    this[list].push(item);
    for (const w of [...this.waiters]) w();
  }

  // waitFor resolves with the first item of list (after index `from`)
  // matching pred.
  waitFor(list, pred, timeoutMs = 5000, from = 0) {
    return waitFor(
      (resolve) => {
        const check = () => {
          const hit = this[list].slice(from).find(pred);
          if (hit !== undefined) resolve(hit);
        };
        this.waiters.push(check);
        check();
        return () => {
          const i = this.waiters.indexOf(check);
          if (i >= 0) this.waiters.splice(i, 1);
        };
      },
      timeoutMs,
      `${this.label}: ${list} matching ${pred}`,
    );
  }

  state(type, timeoutMs = 5000, from = 0) {
    return this.waitFor('states', (s) => s.type === type, timeoutMs, from);
  }

  event(name, timeoutMs = 5000, from = 0) {
    return this.waitFor('messages', (m) => m?.event === name, timeoutMs, from);
  }
}

// subscribe creates a subscription with `identifier params` (an object, in
// the key order the app writes) and returns its Recorder.
export function subscribe(c, params, label = JSON.stringify(params)) {
  const rec = new Recorder(label);
  rec.subscription = c.subscriptions.create(params, rec.mixin());
  return rec;
}

// restart stops srv with `signal` (SIGKILL: no goodbye; SIGTERM: graceful,
// clients are told to reconnect) and starts the same binary again on the
// SAME port and data directory, so consumers reconnect to the URL they
// have. Returns the new Server; stop() it (not the old one) at the end.
export async function restart(srv, signal = 'SIGKILL') {
  if (srv.running) {
    srv.child.kill(signal);
    await srv.exited;
  }
  let last;
  for (let attempt = 0; attempt < 20; attempt++) {
    const child = spawn(binaryPath(), ['serve'], { env: srv.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const next = new Server({ child, port: srv.port, dataDir: srv.dataDir, env: srv.env });
    restarted.add(next);
    next.exited.then(() => restarted.delete(next));
    try {
      await next.waitReady();
      return next;
    } catch (err) {
      // The port can linger for a moment after a kill; try again.
      last = err;
      if (next.running) {
        child.kill('SIGKILL');
        await next.exited;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw last;
}

// hasRoute reports whether srv serves path (anything but 404), to detect
// front doors built on other branches.
export async function hasRoute(srv, path) {
  const res = await fetch(srv.baseURL + path, { signal: AbortSignal.timeout(2000) });
  await res.arrayBuffer();
  return res.status !== 404;
}
