// Switchboard debug console. Plain JavaScript, no build step, nothing
// loaded from elsewhere. Everything a client sent (payloads, channel and
// user names) is shown through textContent, never as HTML.
'use strict';

(() => {
  const MAX_LINES = 2000; // kept in this page's memory, newest first
  const MAX_ROWS = 500; // rendered at once
  const POLL_MS = 2000;
  const KEY = 'switchboard-console-session';
  const $ = (id) => document.getElementById(id);

  const state = {
    session: null, // {token, expires_at, who, node}
    es: null,
    lines: [], // newest first
    paused: false,
    unseen: 0,
    dropped: 0,
    lastSeq: 0,
    open: new Set(), // seq of expanded rows
    kinds: new Set(['event', 'client', 'connect', 'disconnect', 'subscribe', 'unsubscribe', 'auth_failure']),
    kindOn: {},
    sort: 'subscribers',
    channel: null, // the channel whose presence is shown
    timer: null,
    hit: '', // request id of the last test event
  };

  // --- session ---------------------------------------------------------

  function saved() {
    try {
      const s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
      if (s && s.token && Date.parse(s.expires_at) > Date.now()) return s;
    } catch (e) { /* nothing saved */ }
    return null;
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (state.session) headers.Authorization = 'Bearer ' + state.session.token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch('/console/api' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    let json = null;
    try { json = await res.json(); } catch (e) { /* empty */ }
    if (res.status === 401 && state.session) {
      logout('Your session ended: log in again.');
      throw new Error('session ended');
    }
    if (!res.ok) {
      const msg = json && json.error ? json.error.message : 'HTTP ' + res.status;
      const err = new Error(msg);
      err.status = res.status;
      err.code = json && json.error ? json.error.code : '';
      throw err;
    }
    return { json, res };
  }

  async function login(ev) {
    ev.preventDefault();
    const cred = $('credential').value.trim();
    $('login-error').textContent = '';
    if (!cred) return;
    const body = /^[\w-]+\.[\w-]+\.[\w-]*$/.test(cred) ? { token: cred } : { secret: cred };
    try {
      const { json } = await api('POST', '/session', body);
      state.session = json;
      sessionStorage.setItem(KEY, JSON.stringify(json));
      $('credential').value = '';
      start();
    } catch (e) {
      $('login-error').textContent = 'Refused: ' + e.message;
    }
  }

  function logout(message) {
    sessionStorage.removeItem(KEY);
    state.session = null;
    if (state.es) state.es.close();
    state.es = null;
    clearInterval(state.timer);
    $('app').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    $('credential').focus();
  }

  // --- the live log ----------------------------------------------------

  function connect() {
    if (state.es) state.es.close();
    let url = '/console/api/stream?token=' + encodeURIComponent(state.session.token);
    if (state.lastSeq) url += '&last_id=' + state.lastSeq;
    const es = new EventSource(url);
    state.es = es;
    es.addEventListener('open', () => setStatus());
    es.addEventListener('hello', (e) => {
      const h = JSON.parse(e.data);
      $('node').textContent = h.node ? 'node ' + h.node + (h.cluster ? ' · cluster' : '') : 'single node';
      $('log-table').classList.toggle('single', !h.cluster);
      setStatus();
    });
    es.addEventListener('expired', () => logout('Your session expired: log in again.'));
    es.addEventListener('message', (e) => {
      let l;
      try { l = JSON.parse(e.data); } catch (err) { return; }
      receive(l);
    });
    es.addEventListener('error', () => {
      setStatus('offline');
      if (es.readyState === EventSource.CLOSED) {
        // Refused (a session that ended) or the server went away: ask.
        api('GET', '/overview').then(() => setTimeout(() => state.session && connect(), 2000)).catch(() => {});
      }
    });
  }

  function receive(l) {
    if (l.kind === 'dropped') {
      state.dropped += l.dropped || 0;
      info();
      return;
    }
    if (l.seq) {
      if (l.seq <= state.lastSeq) return; // replayed twice
      state.lastSeq = l.seq;
    }
    state.lines.unshift(l);
    if (state.lines.length > MAX_LINES) state.lines.length = MAX_LINES;
    if (state.paused) {
      state.unseen++;
      info();
      return;
    }
    if (matches(l)) {
      const body = $('log-body');
      body.insertBefore(rowFor(l), body.firstChild);
      while (body.children.length > MAX_ROWS * 2) body.lastChild.remove();
    }
    info();
  }

  function filters() {
    return {
      project: $('f-project').value.trim().toLowerCase(),
      channel: $('f-channel').value.trim(),
      event: $('f-event').value.trim().toLowerCase(),
      request: $('f-request').value.trim(),
    };
  }

  function matches(l, f = filters()) {
    if (!state.kinds.has(l.kind)) return false;
    if (f.project && !((l.project || '').toLowerCase().includes(f.project) || (l.app || '').toLowerCase().includes(f.project))) return false;
    if (f.channel && !(l.channel || '').startsWith(f.channel)) return false;
    if (f.event && !(l.event || '').toLowerCase().includes(f.event)) return false;
    if (f.request && !((l.triggered_by && l.triggered_by.request_id) || '').includes(f.request)) return false;
    return true;
  }

  function render() {
    const body = $('log-body');
    body.textContent = '';
    const f = filters();
    let n = 0;
    for (const l of state.lines) {
      if (!matches(l, f)) continue;
      body.appendChild(rowFor(l));
      if (state.open.has(l.seq)) body.appendChild(detailFor(l));
      if (++n >= MAX_ROWS) break;
    }
    info();
  }

  function cell(tr, cls, text, title) {
    const td = document.createElement('td');
    td.className = cls;
    if (text !== undefined && text !== null) td.textContent = String(text);
    if (title) td.title = title;
    tr.appendChild(td);
    return td;
  }

  function time(t) {
    const d = new Date(t);
    if (isNaN(d)) return '';
    const p = (n, w = 2) => String(n).padStart(w, '0');
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  }

  function detail(l) {
    switch (l.kind) {
      case 'connect': return [l.proto + ' ' + l.conn, l.user ? 'user ' + l.user : (l.remote || '')];
      case 'disconnect': return [l.proto + ' ' + l.conn + ' closed ' + l.code, (l.reason ? l.reason + ' · ' : '') + 'by ' + l.by];
      case 'subscribe':
      case 'unsubscribe': return [l.proto + ' ' + l.conn, l.count + ' on this channel'];
      case 'auth_failure': return [l.proto + ' ' + l.door + (l.conn ? ' ' + l.conn : ''), l.reason || ''];
      case 'client': return [l.event, 'from ' + (l.from ? (l.from.user || '?') + ' / ' + l.from.client : '?') + (l.relayed ? ' (relayed)' : '')];
      default: return [l.event, l.triggered_by ? l.triggered_by.operation_id : ''];
    }
  }

  // fanout shows how many connections got it, then the protocols that
  // did: "3 P2 C1" (pusher 2, centrifuge 1); the title spells it out.
  function fanout(td, l) {
    if (!l.fanout) return;
    td.classList.add('fan');
    const b = document.createElement('b');
    b.textContent = l.reached;
    td.appendChild(b);
    const names = { pusher: 'P', centrifuge: 'C', actioncable: 'A', other: '?' };
    for (const [k, v] of Object.entries(l.fanout)) {
      if (!v) continue;
      const s = document.createElement('span');
      s.textContent = (names[k] || k) + v;
      td.appendChild(s);
    }
    td.title = Object.entries(l.fanout).map(([k, v]) => k + ': ' + v).join(', ') + ' (reached ' + l.reached + ')';
  }

  function rowFor(l) {
    const tr = document.createElement('tr');
    tr.className = 'row';
    tr.dataset.seq = l.seq || '';
    tr.dataset.kind = l.kind;
    tr.dataset.channel = l.channel || '';
    tr.dataset.event = l.event || '';
    const rid = l.triggered_by ? l.triggered_by.request_id : '';
    tr.dataset.requestId = rid || '';
    if (rid && rid === state.hit) tr.classList.add('hit');
    cell(tr, 'c-time', time(l.time), l.time);
    const k = cell(tr, 'c-kind');
    const badge = document.createElement('span');
    badge.className = 'kind k-' + l.kind;
    badge.textContent = l.kind.replace('_', ' ');
    k.appendChild(badge);
    cell(tr, 'c-node', l.node || '', l.node);
    cell(tr, 'c-scope', l.app || l.project || '', l.app ? 'app ' + l.app : l.project ? 'project ' + l.project : '');
    cell(tr, 'c-channel', l.channel || '', l.channel);
    const [main, sub] = detail(l);
    const ev = cell(tr, 'c-event', main, main);
    if (sub) {
      const s = document.createElement('span');
      s.className = 'op';
      s.textContent = sub;
      ev.appendChild(s);
    }
    cell(tr, 'c-size', l.size ? bytes(l.size) : '');
    fanout(cell(tr, 'c-fan'), l);
    cell(tr, 'c-req', rid, rid);
    tr.addEventListener('click', () => toggle(l, tr));
    return tr;
  }

  function detailFor(l) {
    const tr = document.createElement('tr');
    tr.className = 'detail';
    const td = document.createElement('td');
    td.colSpan = 9;
    const pre = document.createElement('pre');
    const shown = Object.assign({}, l);
    if (l.data !== undefined) shown.data = l.data;
    pre.textContent = JSON.stringify(shown, null, 2);
    td.appendChild(pre);
    tr.appendChild(td);
    return tr;
  }

  function toggle(l, tr) {
    const next = tr.nextSibling;
    if (next && next.classList && next.classList.contains('detail')) {
      next.remove();
      state.open.delete(l.seq);
      return;
    }
    state.open.add(l.seq);
    tr.after(detailFor(l));
  }

  function bytes(n) {
    return n < 1024 ? n + ' B' : (n / 1024).toFixed(1) + ' KB';
  }

  function info() {
    const shown = $('log-body').querySelectorAll('tr.row').length;
    let s = `${shown} shown · ${state.lines.length} in memory (last ${MAX_LINES})`;
    if (state.paused) s += ` · paused, ${state.unseen} new`;
    if (state.dropped) s += ` · ${state.dropped} lines dropped (the console was behind; no event was)`;
    $('log-info').textContent = s;
    $('log-empty').hidden = state.lines.length > 0;
  }

  function setStatus(force) {
    const el = $('status');
    let s = force || (state.es && state.es.readyState === EventSource.OPEN ? 'live' : 'connecting');
    if (s === 'live' && state.paused) s = 'paused';
    el.dataset.state = s;
    el.textContent = s;
  }

  function pause() {
    state.paused = !state.paused;
    $('pause').textContent = state.paused ? 'Resume' : 'Pause';
    if (!state.paused) {
      state.unseen = 0;
      render();
    }
    setStatus();
    info();
  }

  // --- the overview ----------------------------------------------------

  function set(id, v) {
    $(id).textContent = v === undefined || v === null ? '–' : String(v);
  }

  function ms(v) {
    if (!v) return '0 ms';
    return v < 1000 ? v.toFixed(v < 10 ? 1 : 0) + ' ms' : (v / 1000).toFixed(1) + ' s';
  }

  function ago(v) {
    return v ? (v / 1000).toFixed(1) + ' s ago' : 'now';
  }

  async function poll() {
    try {
      const [{ json: o }, { json: ch }] = await Promise.all([
        api('GET', '/overview'),
        api('GET', '/channels?sort=' + state.sort + '&q=' + encodeURIComponent($('channels-q').value.trim())),
      ]);
      overview(o);
      channels(ch);
      if (state.channel) presence(state.channel);
      if (!$('webhooks-list').hidden) webhookList();
    } catch (e) { /* shown by the status pill; a 401 logs out */ }
  }

  function overview(o) {
    set('conn-pusher', o.connections.pusher);
    set('conn-centrifuge', o.connections.centrifuge);
    set('conn-actioncable', o.connections.actioncable);
    set('subs-total', o.subscriptions);
    $('who').textContent = o.console.who;
    const r = o.relay;
    if (r) {
      const st = r.failing ? 'retrying' : !r.relaying ? 'standby' : r.running ? 'running' : 'starting';
      set('relay-state', st);
      set('relay-lag', ms(r.lag_ms));
      set('relay-backlog', r.backlog === null ? '?' : r.backlog);
      set('relay-events', r.events);
      $('relay-note').textContent = r.failing || r.backlog_error || (r.relaying ? '' : 'another node relays the outbox');
    }
    const w = o.webhooks;
    if (w) {
      set('wh-pending', w.pending + (w.pending_more ? '+' : ''));
      set('wh-failed', w.failed + (w.failed_more ? '+' : ''));
    }
    const body = $('nodes-body');
    body.textContent = '';
    for (const n of o.nodes) {
      const tr = document.createElement('tr');
      const conns = Object.values(n.connections).reduce((a, b) => a + b, 0);
      cell(tr, '', n.id || 'this node', Object.entries(n.connections).map(([k, v]) => k + ' ' + v).join(', '));
      cell(tr, '', conns);
      cell(tr, '', n.subscriptions);
      cell(tr, '', n.relaying ? 'yes · ' + ms(n.lag_ms) : '');
      cell(tr, '', ago(n.seen_ms));
      body.appendChild(tr);
    }
    if (o.console.dropped > state.dropped) {
      state.dropped = o.console.dropped;
      info();
    }
  }

  function channels(list) {
    set('channels-count', list.total);
    const body = $('channels-body');
    body.textContent = '';
    const names = $('channel-names');
    names.textContent = '';
    for (const c of list.data) {
      const tr = document.createElement('tr');
      tr.className = 'pick' + (c.name === state.channel ? ' selected' : '');
      tr.dataset.channel = c.name;
      cell(tr, '', c.name, c.nodes ? Object.entries(c.nodes).map(([k, v]) => k + ': ' + v).join(', ') : c.name);
      cell(tr, '', c.subscribers);
      cell(tr, '', c.members || '');
      tr.addEventListener('click', () => {
        state.channel = c.name;
        $('t-channel').value = c.name;
        presence(c.name);
        for (const x of body.children) x.classList.toggle('selected', x.dataset.channel === c.name);
      });
      body.appendChild(tr);
      const o = document.createElement('option');
      o.value = c.name;
      names.appendChild(o);
    }
  }

  async function presence(name) {
    try {
      const { json } = await api('GET', '/presence?channel=' + encodeURIComponent(name));
      $('presence').hidden = false;
      $('presence-channel').textContent = name;
      const ul = $('presence-members');
      ul.textContent = '';
      if (!json.members.length) {
        const li = document.createElement('li');
        li.textContent = 'no presence members (not a presence channel, or nobody there)';
        ul.appendChild(li);
      }
      for (const m of json.members) {
        const li = document.createElement('li');
        li.textContent = m.user_id + (m.user_info ? ' ' + JSON.stringify(m.user_info) : '');
        ul.appendChild(li);
      }
    } catch (e) { /* the next poll tries again */ }
  }

  async function webhookList() {
    const box = $('webhooks-list');
    try {
      const [{ json: failed }, { json: pending }] = await Promise.all([
        api('GET', '/webhooks?status=failed&limit=20'),
        api('GET', '/webhooks?status=pending&limit=20'),
      ]);
      box.textContent = '';
      const all = failed.data.concat(pending.data);
      if (!all.length) {
        const p = document.createElement('p');
        p.className = 'note';
        p.textContent = 'Nothing pending or failed.';
        box.appendChild(p);
      }
      for (const d of all) {
        const row = document.createElement('div');
        row.className = 'wh';
        const st = document.createElement('span');
        st.className = 'st-' + d.status;
        st.textContent = '#' + d.id + ' ' + d.status;
        const url = document.createElement('span');
        url.className = 'url';
        url.textContent = d.url;
        url.title = d.url + (d.last_error ? ' · ' + d.last_error : '');
        const btn = document.createElement('button');
        btn.type = 'button';
        btn.className = 'quiet small';
        btn.textContent = 'retry';
        btn.addEventListener('click', async () => {
          btn.disabled = true;
          try { await api('POST', '/webhooks/' + d.id + '/retry'); } catch (e) { btn.title = e.message; }
          webhookList();
        });
        row.append(st, url, btn);
        box.appendChild(row);
      }
    } catch (e) {
      box.textContent = e.message;
    }
  }

  async function sendTest(ev) {
    ev.preventDefault();
    const out = $('t-result');
    out.className = 'note';
    let data;
    try {
      data = JSON.parse($('t-data').value || '{}');
    } catch (e) {
      out.className = 'note bad';
      out.textContent = 'data is not JSON: ' + e.message;
      return;
    }
    try {
      const { json, res } = await api('POST', '/events', { channel: $('t-channel').value.trim(), event: $('t-event').value.trim(), data });
      state.hit = json.triggered_by.request_id || res.headers.get('X-Request-ID') || '';
      // Its line may have arrived before this answer did.
      for (const tr of $('log-body').querySelectorAll('tr.row')) tr.classList.toggle('hit', tr.dataset.requestId === state.hit);
      out.className = 'note ok';
      out.textContent = `committed ${json.event} on ${json.channel} · request id ${state.hit}`;
      out.dataset.requestId = state.hit;
    } catch (e) {
      out.className = 'note bad';
      out.textContent = 'refused: ' + e.message;
    }
  }

  // --- start -----------------------------------------------------------

  function kindFilters() {
    const box = $('kinds');
    for (const k of state.kinds) {
      const label = document.createElement('label');
      label.className = 'k-' + k;
      const cb = document.createElement('input');
      cb.type = 'checkbox';
      cb.checked = true;
      cb.value = k;
      cb.id = 'kind-' + k;
      cb.addEventListener('change', () => {
        if (cb.checked) state.kinds.add(k); else state.kinds.delete(k);
        render();
      });
      label.append(cb, document.createTextNode(k.replace('_', ' ')));
      box.appendChild(label);
    }
  }

  function start() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('who').textContent = state.session.who;
    connect();
    poll();
    clearInterval(state.timer);
    state.timer = setInterval(poll, POLL_MS);
  }

  function init() {
    kindFilters();
    $('login-form').addEventListener('submit', login);
    $('logout').addEventListener('click', () => logout(''));
    $('pause').addEventListener('click', pause);
    $('clear').addEventListener('click', () => { state.lines = []; state.open.clear(); render(); });
    for (const id of ['f-project', 'f-channel', 'f-event', 'f-request']) $(id).addEventListener('input', render);
    $('channels-q').addEventListener('input', poll);
    for (const b of document.querySelectorAll('button.sort')) {
      b.classList.toggle('on', b.dataset.sort === state.sort);
      b.addEventListener('click', () => {
        state.sort = b.dataset.sort;
        for (const x of document.querySelectorAll('button.sort')) x.classList.toggle('on', x === b);
        poll();
      });
    }
    $('webhooks-toggle').addEventListener('click', () => {
      const box = $('webhooks-list');
      box.hidden = !box.hidden;
      $('webhooks-toggle').textContent = box.hidden ? 'show' : 'hide';
      if (!box.hidden) webhookList();
    });
    $('test-form').addEventListener('submit', sendTest);
    state.session = saved();
    if (state.session) start();
    else logout('');
    info();
  }

  init();
})();
