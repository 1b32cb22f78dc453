// Helpers for test/webhooks.test.js: a webhook receiver of the test's own
// (node:http on 127.0.0.1) that checks EVERY request it gets the way a
// Pusher customer's backend does, with the official `pusher` server SDK:
//
//   new Pusher({ appId, key, secret }).webhook({ headers, rawBody }).isValid()
//
// must be true (right key, hex HMAC-SHA256 of the raw body with the app
// secret, Content-Type exactly application/json, a JSON body), and the
// request must be a POST with Content-Type exactly `application/json` and an
// X-Switchboard-Webhook-Id header. Anything else is recorded in `problems`,
// which every test asserts empty at the end.
//
// The receiver answers with `respond(request, generation)` (default 200; the
// generation of the connection, see below), so a test can
// make it fail (503/500) for a while, and it can be stopped and started
// again on the same port (unreachable in between).
import { createServer } from 'node:http';

import PusherServer from 'pusher';

import { sleep } from './server.js';

export const ID_HEADER = 'x-switchboard-webhook-id';

export class WebhookReceiver {
  // apps: [{ appId, key, secret }], the apps whose webhooks may arrive here.
  constructor(apps) {
    this.sdks = new Map(apps.map((a) => [a.key, new PusherServer({ appId: a.appId, key: a.key, secret: a.secret })]));
    this.requests = []; // every request, in arrival order
    this.problems = [];
    this.respond = () => 200;
    this.port = 0;
    this.server = undefined;
    this.sockets = new Set();
    // generation stamps each connection when it opens: a test bumps it when
    // it kills a server, so a request the dead process sent before it died
    // (still unread in the socket) is told apart from the new process's.
    this.generation = 0;
  }

  // start listens on 127.0.0.1 (a free port the first time, the same port
  // afterwards).
  async start() {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (s) => {
      s.generation = this.generation;
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    for (let attempt = 0; ; attempt++) {
      try {
        await new Promise((resolve, reject) => {
          server.once('error', reject);
          server.listen(this.port, '127.0.0.1', () => {
            server.off('error', reject);
            resolve();
          });
        });
        break;
      } catch (err) {
        if (attempt >= 40 || err.code !== 'EADDRINUSE') throw err;
        await sleep(100);
      }
    }
    this.port = server.address().port;
    this.server = server;
    return this;
  }

  // stop closes the listener and every open connection: the port refuses
  // connections until start() again.
  async stop() {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise((resolve) => server.close(resolve));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  url(p = '/hook') {
    return `http://127.0.0.1:${this.port}${p}`;
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const r = {
        at: Date.now(),
        method: req.method,
        path: req.url,
        headers: req.headers,
        rawBody,
        id: req.headers[ID_HEADER],
        key: req.headers['x-pusher-key'],
        contentType: req.headers['content-type'],
        events: [],
        body: undefined,
        valid: false,
        status: 0,
      };
      const bad = (why) => this.problems.push(`${r.method} ${r.path} (webhook id ${r.id}): ${why}`);
      if (r.method !== 'POST') bad(`method ${r.method}, want POST`);
      if (r.contentType !== 'application/json') bad(`Content-Type ${JSON.stringify(r.contentType)}, want exactly "application/json"`);
      if (!r.id || !/^\d+$/.test(r.id)) bad(`X-Switchboard-Webhook-Id ${JSON.stringify(r.id)}`);
      const sdk = this.sdks.get(r.key);
      if (!sdk) {
        bad(`X-Pusher-Key ${JSON.stringify(r.key)} is not a key of this receiver's apps`);
      } else {
        const hook = sdk.webhook({ headers: req.headers, rawBody });
        r.valid = hook.isValid();
        if (!r.valid) {
          bad(`pusher SDK webhook().isValid() is false (signature ${req.headers['x-pusher-signature']}, body ${rawBody.slice(0, 300)})`);
        } else {
          r.body = hook.getData();
          r.events = hook.getEvents();
          if (!Number.isInteger(r.body.time_ms)) bad(`time_ms ${JSON.stringify(r.body.time_ms)} is not an integer`);
          if (!Array.isArray(r.events) || r.events.length === 0 || r.events.length > 50) {
            bad(`events: want 1 to 50 events, got ${JSON.stringify(r.events)?.slice(0, 200)}`);
            r.events = Array.isArray(r.events) ? r.events : [];
          }
          for (const e of r.events) {
            if (typeof e?.name !== 'string' || typeof e?.channel !== 'string') bad(`event without name/channel: ${JSON.stringify(e)}`);
          }
        }
      }
      let status = 200;
      try {
        status = this.respond(r, req.socket.generation);
      } catch (err) {
        bad(`respond threw ${err.message}`);
        status = 500;
      }
      r.status = status;
      this.requests.push(r);
      if (status === 'hang') return; // never answered (the sender's timeout decides)
      res.writeHead(status, { 'Content-Type': 'text/plain' });
      res.end(status >= 200 && status < 300 ? 'ok' : 'fail');
    });
  }

  // accepted: the requests answered 2xx (the deliveries the server may
  // count as sent), optionally only those to path p.
  accepted(p) {
    return this.requests.filter((r) => r.status >= 200 && r.status < 300 && r.valid && (p === undefined || r.path === p));
  }

  // events: every event of the accepted requests (to path p), in arrival
  // order, each with the request's webhook id, path and arrival time.
  events(p) {
    const out = [];
    for (const r of this.accepted(p)) for (const e of r.events) out.push({ ...e, _id: r.id, _path: r.path, _at: r.at });
    return out;
  }

  // waitFor polls pred(this) until it is true; throws with label (and what
  // was received) after timeoutMs.
  async waitFor(pred, timeoutMs, label) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (pred(this)) return;
      if (Date.now() > deadline) {
        throw new Error(`webhook receiver: timed out after ${timeoutMs} ms waiting for ${label}; ` +
          `${this.requests.length} requests so far, accepted events: ${summarize(this.events())}`);
      }
      await sleep(20);
    }
  }
}

// summarize renders events compactly for messages: "name channel[ user][ event]".
export function summarize(events, max = 30) {
  const s = events.map((e) => [e.name, e.channel, e.user_id, e.event, e.subscription_count].filter((x) => x !== undefined).join(' '));
  return s.length <= max ? JSON.stringify(s) : `${JSON.stringify(s.slice(0, max))} ... (${s.length - max} more)`;
}

// listDeliveries pages through GET /api/v1/webhooks/deliveries?status=...
// with an admin token and returns every delivery.
export async function listDeliveries(srv, token, status) {
  const out = [];
  let cursor = '';
  for (let page = 0; page < 1000; page++) {
    const q = new URLSearchParams({ limit: '100' });
    if (status) q.set('status', status);
    if (cursor) q.set('cursor', cursor);
    const res = await srv.api('GET', `/api/v1/webhooks/deliveries?${q}`, undefined, { token });
    if (res.status !== 200) throw new Error(`GET /api/v1/webhooks/deliveries?${q}: HTTP ${res.status}: ${res.text}`);
    out.push(...res.body.data);
    cursor = res.body.next_cursor;
    if (!cursor) return out;
  }
  throw new Error('GET /api/v1/webhooks/deliveries: more than 1000 pages');
}
