// Switchboard PubSub browser SDK: scoped PubSub for in-room plugins over the
// gateway's Centrifugo client protocol v2 (JSON over WebSocket). No imports,
// no build step: the server wraps this file into /sdk/pubsub.js (window.PubSub)
// and /sdk/pubsub.mjs (ES module). Types: /sdk/pubsub.d.ts.
const PubSub = (function () {
  const SCOPES = ['organization', 'event', 'session'];
  const QUEUE_MAX = 100;
  const FRAME_MAX = 65536; // the server closes the socket (1009) on larger frames
  const IDS_KEPT = 5; // own client ids remembered, to skip our own publications
  let defaultBase = typeof location !== 'undefined' ? location.origin : ''; // autoConnect: the <script src> origin

  function fail(message, code, extra) {
    return Object.assign(new Error(message), { code }, extra);
  }

  // roomOf reads a room token's payload (no verification: the server does it).
  function roomOf(token) {
    let p;
    try {
      const s = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const bin = atob(s + '==='.slice((s.length + 3) % 4));
      p = JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
    } catch {
      throw fail('PubSub: token is not a JWT', 'invalid_token');
    }
    const r = p && p.pubsub;
    if (!r || !r.organization_id || !r.event_id || !r.session_id) {
      throw fail('PubSub: token is not a room token (no pubsub claim with organization_id, event_id, session_id)', 'invalid_token');
    }
    const o = 'pubsub.' + r.organization_id, e = o + '.' + r.event_id;
    return {
      organizationId: r.organization_id, eventId: r.event_id, sessionId: r.session_id,
      participant: { id: p.sub, name: p.name }, expiresAt: p.exp ? new Date(p.exp * 1000) : null,
      channels: [o, e, e + '.' + r.session_id],
    };
  }

  function endpoint(url) {
    url = String(url || defaultBase).replace(/\/+$/, '');
    if (/^wss?:/i.test(url)) return url;
    if (!/^https?:/i.test(url)) throw fail('PubSub: url must be http(s):// or ws(s)://, got ' + JSON.stringify(url), 'invalid_argument');
    return url.replace(/^http/i, 'ws') + '/connection/websocket';
  }

  class Client {
    constructor(opts) {
      this._opts = Object.assign({}, opts);
      this._cbs = new Map(); // eventName → Set of callbacks
      this._on = { state: new Set(), error: new Set() };
      this._pos = {}; // channel → {offset, epoch}
      this._ids = []; // own client ids, newest last
      this._queue = []; // publishes waiting for a connection
      this._calls = new Map(); // command id → [resolve(reply), reject(error)]
      this._waiters = []; // connect() promises: [resolve, reject]
      this._n = 0; // command ids
      this._tries = 0;
      this.state = 'disconnected';
      this.room = null;
    }

    connect(opts) {
      Object.assign(this._opts, opts);
      const o = this._opts;
      try {
        if (typeof o.token !== 'string' || !o.token) throw fail('PubSub.connect: token is required', 'invalid_argument');
        this.room = roomOf(o.token);
        this._url = endpoint(o.url);
      } catch (e) {
        return Promise.reject(e);
      }
      this._token = o.token;
      const p = new Promise((res, rej) => this._waiters.push([res, rej]));
      this._close();
      this._tries = 0;
      this._open();
      return p;
    }

    disconnect() {
      this._close();
      this._stop('disconnected', fail('PubSub: disconnected', 'disconnected'));
    }

    publish(eventName, arg) {
      const data = arg == null || arg.data === undefined ? {} : arg.data;
      if (typeof eventName !== 'string' || !eventName) {
        return Promise.reject(fail('PubSub.publish: eventName must be a non-empty string', 'invalid_argument'));
      }
      if ((arg != null && typeof arg !== 'object') || !data || typeof data !== 'object' || Array.isArray(data)) {
        return Promise.reject(fail('PubSub.publish: data must be an object ({data: {...}})', 'invalid_argument'));
      }
      if (this.state === 'disconnected' || this.state === 'failed') {
        return Promise.reject(fail('PubSub.publish: not connected (state ' + this.state + '); call PubSub.connect first', 'disconnected'));
      }
      const item = { data: { type: eventName, data } };
      const size = new TextEncoder().encode(JSON.stringify(item.data)).length;
      if (size > FRAME_MAX - 1024) return Promise.reject(fail('PubSub.publish: payload too large (' + size + ' bytes)', 106));
      return new Promise((res, rej) => {
        item.res = res;
        item.rej = rej;
        if (this.state === 'connected') return this._send(item);
        if (this._queue.length >= QUEUE_MAX) {
          return rej(fail('PubSub.publish: ' + QUEUE_MAX + ' publishes already wait for the connection; try again once connected', 'queue_full'));
        }
        this._queue.push(item);
      });
    }

    subscribe(eventName, cb) {
      if (typeof eventName !== 'string' || !eventName) throw fail('PubSub.subscribe: eventName must be a non-empty string', 'invalid_argument');
      if (typeof cb !== 'function') throw fail('PubSub.subscribe: callback must be a function', 'invalid_argument');
      const fn = (d, m) => cb(d, m); // one entry per call, even for the same cb
      if (!this._cbs.has(eventName)) this._cbs.set(eventName, new Set());
      this._cbs.get(eventName).add(fn);
      return () => {
        const s = this._cbs.get(eventName);
        if (s && s.delete(fn) && !s.size) this._cbs.delete(eventName);
      };
    }

    on(event, cb) {
      const s = this._on[event];
      if (!s) throw fail('PubSub.on: unknown event ' + JSON.stringify(event) + " (use 'state' or 'error')", 'invalid_argument');
      s.add(cb);
      return () => s.delete(cb);
    }

    _emit(event, v) {
      for (const cb of this._on[event]) {
        try {
          cb(v);
        } catch (e) {
          setTimeout(() => { throw e; });
        }
      }
      if (event === 'error' && !this._on.error.size) console.error('[PubSub]', v);
    }

    _state(s) {
      if (this.state === s) return;
      this.state = s;
      this._log('state', s);
      this._emit('state', s);
    }

    _log(...a) {
      if (this._opts.debug) console.debug('[PubSub]', ...a);
    }

    _open() {
      this._state('connecting');
      const ws = (this._ws = new WebSocket(this._url));
      this._arm(10000);
      ws.onopen = () => this._cmd({ connect: { token: this._token, name: 'pubsub-js', version: '1' } }).then((r) => this._connected(r), (e) => this._connectFailed(e));
      ws.onmessage = (m) => {
        this._arm(this._alive || 10000);
        try {
          for (const line of String(m.data).split('\n')) if (line) this._frame(JSON.parse(line));
        } catch (e) {
          this._lost(e);
        }
      };
      ws.onclose = (ev) => {
        this._log('closed', ev.code, ev.reason);
        const terminal = (ev.code >= 3500 && ev.code < 4000) || ev.code >= 4500;
        this._close();
        if (terminal) this._stop('failed', fail('PubSub: server closed the connection: ' + (ev.reason || ev.code), ev.code));
        else this._retry();
      };
    }

    _frame(r) {
      this._log('<-', r);
      if (r.id) {
        const c = this._calls.get(r.id);
        this._calls.delete(r.id);
        if (c) r.error ? c[1](fail(r.error.message, r.error.code, { temporary: !!r.error.temporary })) : c[0](r);
      } else if (r.push) {
        const p = r.push;
        if (p.pub) this._pub(p.channel, p.pub);
        else if (p.unsubscribe && p.unsubscribe.code >= 2500 && this.state === 'connected') this._sub(p.channel).catch((e) => this._lost(e));
        else if (p.unsubscribe) this._lost(fail('PubSub: server unsubscribed ' + p.channel + ': ' + p.unsubscribe.reason, p.unsubscribe.code));
      } else if (!Object.keys(r).length && this._pong) {
        this._raw({});
      }
    }

    _raw(cmd) {
      const s = JSON.stringify(cmd);
      this._log('->', s);
      this._ws.send(s);
    }

    _cmd(cmd) {
      cmd.id = ++this._n;
      return new Promise((res, rej) => {
        this._calls.set(cmd.id, [res, rej]);
        this._raw(cmd);
      });
    }

    async _connected(r) {
      const c = r.connect;
      this._ids.push(c.client);
      if (this._ids.length > IDS_KEPT) this._ids.shift();
      this._pong = !!c.pong;
      this._alive = c.ping ? (c.ping + 10) * 1000 : 0;
      this._arm(this._alive);
      if (c.expires && c.ttl && this._opts.getToken) this._refreshIn(c.ttl);
      const ws = this._ws;
      try {
        await Promise.all(this.room.channels.map((ch) => this._sub(ch)));
      } catch (e) {
        if (ws !== this._ws) return; // the socket went meanwhile: _retry runs
        this._close();
        return e.temporary || e.code === 100 ? this._retry(e) : this._stop('failed', e);
      }
      if (ws !== this._ws) return;
      this._tries = 0;
      this._state('connected');
      for (const w of this._waiters.splice(0)) w[0]();
      for (const item of this._queue.splice(0)) this._send(item);
    }

    async _connectFailed(e) {
      const ws = this._ws;
      if (e.code === 'disconnected' || !ws) return; // the socket closed: onclose handles it
      this._close();
      if (e.code === 109 && this._opts.getToken) {
        let err;
        try {
          this._token = await this._newToken();
        } catch (x) {
          err = x;
        }
        if (this.state === 'connecting' && !this._ws && !this._timer) this._retry(err); // unless disconnect() or connect() meanwhile
      } else if (e.code === 109 || !(e.temporary || e.code === 100)) {
        this._stop('failed', e);
      } else {
        this._retry(e);
      }
    }

    async _newToken() {
      const t = await this._opts.getToken();
      if (typeof t !== 'string' || !t) throw fail('PubSub: getToken returned no token', 'invalid_token');
      this.room = roomOf(t);
      return t;
    }

    _refreshIn(ttl) {
      const ws = this._ws;
      this._refresh = setTimeout(async () => {
        try {
          const t = (this._token = await this._newToken());
          if (ws !== this._ws) return;
          const r = await this._cmd({ refresh: { token: t } });
          if (r.refresh.expires && r.refresh.ttl) this._refreshIn(r.refresh.ttl);
        } catch (e) {
          if (ws === this._ws) this._emit('error', e); // the server closes with 3005 at expiry: reconnect, 109, getToken
        }
      }, Math.max(1, ttl - 10) * 1000);
    }

    _sub(ch) {
      const pos = this._pos[ch];
      const req = { channel: ch };
      if (pos) Object.assign(req, { recover: true, offset: pos.offset, epoch: pos.epoch });
      return this._cmd({ subscribe: req }).then((r) => {
        const s = r.subscribe;
        if (!s.recoverable) return delete this._pos[ch];
        if (!pos || !s.recovered) this._pos[ch] = { offset: s.offset || 0, epoch: s.epoch || '' };
        else pos.epoch = s.epoch;
        for (const p of s.publications || []) this._pub(ch, p);
      });
    }

    _pub(ch, p) {
      const pos = this._pos[ch];
      if (pos && p.offset) {
        if (p.offset <= pos.offset) return this._log('duplicate', ch, p.offset);
        pos.offset = p.offset;
      }
      const info = p.info;
      if (info && this._ids.includes(info.client)) return;
      const d = p.data;
      if (!d || typeof d.type !== 'string') return this._log('not a PubSub event', ch, d);
      let data = d.data, triggeredBy = null;
      if (data && typeof data === 'object' && !Array.isArray(data) && 'x-triggered-by' in data) {
        data = Object.assign({}, data);
        triggeredBy = data['x-triggered-by'];
        delete data['x-triggered-by'];
      }
      const meta = {
        eventName: d.type, scope: SCOPES[this.room.channels.indexOf(ch)] || null, channel: ch,
        from: info ? { user: info.user, client: info.client, info: info.conn_info } : null, triggeredBy,
      };
      for (const key of [d.type, '*']) {
        for (const fn of Array.from(this._cbs.get(key) || [])) {
          try {
            fn(data, meta);
          } catch (e) {
            this._emit('error', e);
          }
        }
      }
    }

    _send(item) {
      this._cmd({ publish: { channel: this.room.channels[2], data: item.data } }).then(() => item.res(), item.rej);
    }

    _lost(e) {
      this._emit('error', e);
      if (this._ws) this._ws.close(1000);
    }

    _arm(ms) {
      clearTimeout(this._watch);
      const ws = this._ws;
      if (ms) this._watch = setTimeout(() => ws === this._ws && ws.onclose({ code: 4000, reason: 'no ping from the server' }), ms);
    }

    // _close drops the socket (if any) and everything tied to it.
    _close() {
      const ws = this._ws;
      this._ws = null;
      clearTimeout(this._watch);
      clearTimeout(this._refresh);
      clearTimeout(this._timer);
      this._timer = null;
      if (ws) {
        ws.onopen = ws.onmessage = ws.onclose = null;
        if (ws.readyState < 2) ws.close(1000);
      }
      const lost = fail('PubSub: connection lost before the server answered', 'disconnected');
      for (const c of this._calls.values()) c[1](lost);
      this._calls.clear();
    }

    _retry(e) {
      if (e) this._emit('error', e);
      const d = Math.min(5000, 200 * 2 ** this._tries++);
      this._state('connecting');
      this._timer = setTimeout(() => {
        this._timer = null;
        this._open();
      }, d / 2 + (Math.random() * d) / 2);
    }

    _stop(state, e) {
      if (state === 'failed') this._emit('error', e);
      this._state(state);
      for (const w of this._waiters.splice(0)) w[1](e);
      for (const item of this._queue.splice(0)) item.rej(e);
    }
  }

  const def = new Client();
  const api = {
    connect: (o) => def.connect(o),
    disconnect: () => def.disconnect(),
    publish: (n, a) => def.publish(n, a),
    subscribe: (n, cb) => def.subscribe(n, cb),
    on: (ev, cb) => def.on(ev, cb),
    create: (o) => new Client(o),
    autoConnect(el) {
      if (!el || !el.getAttribute) return null;
      if (el.src) defaultBase = new URL(el.src, typeof location !== 'undefined' ? location.href : undefined).origin;
      const token = el.getAttribute('data-token');
      if (!token) return null;
      const p = def.connect({ token, url: el.getAttribute('data-url') || undefined });
      p.catch((e) => /^invalid/.test(e.code) && def._emit('error', e)); // the others were emitted already
      return p;
    },
  };
  Object.defineProperties(api, {
    state: { get: () => def.state, enumerable: true },
    room: { get: () => def.room, enumerable: true },
  });
  return api;
})();
