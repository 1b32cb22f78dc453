// Walking skeleton for the Pusher front door: the attendee events of the GxP
// "Real-time Events Guide" reach laravel-echo 2 and plain pusher-js 8
// clients, on the private channel dashboard.project.{slug}.attendees,
// authorized by POST /broadcasting/auth with the customer's bearer token.
//
// One switchboard per file; every test uses its own project slug, so tests
// do not depend on each other or on order.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe } from 'node:test';

import PusherServer from 'pusher';

import {
  APP_ID,
  APP_KEY,
  APP_SECRET,
  Collector,
  connected,
  expectStatus,
  sleep,
  startServer,
  test,
  waitFor,
} from '../lib/server.js';

// RFC 3339 timestamp in UTC with a literal Z (optional fractional seconds).
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const EVENT_TIMEOUT_MS = 5000;

function assertTimestamp(value, field) {
  assert.equal(typeof value, 'string', `${field} must be a string, got ${JSON.stringify(value)}`);
  assert.match(value, RFC3339_UTC, `${field} must be RFC 3339 UTC ending in Z`);
  assert.ok(!Number.isNaN(Date.parse(value)), `${field} must parse as a date`);
}

function assertKeys(obj, keys, what) {
  assert.deepEqual(Object.keys(obj).sort(), [...keys].sort(), `${what}: exact set of fields`);
}

// Echo's .subscribed()/.error() as one promise: resolves on
// pusher:subscription_succeeded, rejects with the subscription error.
function echoSubscribed(channel, label) {
  return waitFor(
    (resolve, reject) => {
      channel.subscribed(() => resolve());
      channel.error((err) => reject(new Error(`${label}: subscription error ${JSON.stringify(err)}`)));
    },
    EVENT_TIMEOUT_MS,
    `${label} subscription`,
  );
}

function echoSubscriptionError(channel, label) {
  return waitFor(
    (resolve, reject) => {
      channel.subscribed(() => reject(new Error(`${label}: subscription unexpectedly succeeded`)));
      channel.error((err) => resolve(err));
    },
    EVENT_TIMEOUT_MS,
    `${label} subscription error`,
  );
}

describe('pusher skeleton: attendee events over pusher-js / laravel-echo', () => {
  let srv;
  let adminToken;

  before(async () => {
    srv = await startServer();
    adminToken = await srv.token({ sub: '1', name: 'Admin', admin: true });
  });

  after(async () => {
    await srv?.stop();
  });

  async function createProject(slug) {
    const res = await srv.api('POST', '/api/v1/projects', { slug, name: `Project ${slug}` }, { token: adminToken });
    const project = expectStatus(res, 201, `create project ${slug}`);
    assertKeys(project, ['id', 'slug', 'name', 'created_at'], 'project');
    assert.ok(Number.isInteger(project.id), 'project.id is an integer');
    assert.equal(project.slug, slug);
    assertTimestamp(project.created_at, 'project.created_at');
    return project;
  }

  test('Echo private channel receives AttendeeCreated, AttendeeUpdated, AttendeeDeleted with x-triggered-by', async () => {
    const slug = 'demo';
    const project = await createProject(slug);
    const token = await srv.token({ sub: '42', name: 'Jane Smith', projects: [slug] });

    const echo = srv.echoClient(token);
    try {
      const created = new Collector('AttendeeCreated');
      const updated = new Collector('AttendeeUpdated');
      const deleted = new Collector('AttendeeDeleted');
      const all = new Collector('any event');
      const channel = echo
        .private(`dashboard.project.${slug}.attendees`)
        .listen('.AttendeeCreated', created.push)
        .listen('.AttendeeUpdated', updated.push)
        .listen('.AttendeeDeleted', deleted.push)
        .listenToAll((event, data) => all.push({ event, data }));
      await echoSubscribed(channel, 'demo client');
      assert.equal(echo.connector.pusher.channel(`private-dashboard.project.${slug}.attendees`).subscribed, true);

      // --- create -------------------------------------------------------
      const input = {
        first_name: 'Jane',
        last_name: 'Smith',
        email: 'jane@example.com',
        attendee_type_id: 1,
      };
      const postRes = await srv.api('POST', `/api/v1/projects/${slug}/attendees`, input, { token, requestId: 't-1' });
      const attendee = expectStatus(postRes, 201, 'create attendee');
      assert.equal(postRes.headers.get('x-request-id'), 't-1', 'X-Request-ID is echoed on the response');
      assertKeys(
        attendee,
        ['id', 'project_id', 'first_name', 'last_name', 'email', 'attendee_type_id', 'created_at', 'updated_at'],
        'attendee REST body',
      );
      assert.ok(Number.isInteger(attendee.id), 'attendee.id is an integer');
      assert.equal(attendee.project_id, project.id);

      const c = await created.next(EVENT_TIMEOUT_MS);
      assertKeys(
        c,
        ['attendee_id', 'project_id', 'first_name', 'last_name', 'email', 'attendee_type_id', 'created_at', 'x-triggered-by'],
        'AttendeeCreated payload',
      );
      assert.equal(typeof c.attendee_id, 'number');
      assert.ok(Number.isInteger(c.attendee_id), 'attendee_id is an integer');
      assert.equal(c.attendee_id, attendee.id);
      assert.equal(typeof c.project_id, 'number');
      assert.equal(c.project_id, project.id);
      assert.equal(c.first_name, 'Jane');
      assert.equal(c.last_name, 'Smith');
      assert.equal(c.email, 'jane@example.com');
      assert.equal(c.attendee_type_id, 1);
      assertTimestamp(c.created_at, 'AttendeeCreated.created_at');
      assert.equal(c.created_at, attendee.created_at, 'event created_at equals the REST created_at');
      assert.deepEqual(c['x-triggered-by'], { operation_id: 'v1.project.attendees.store', request_id: 't-1' });

      // --- update (only email) -----------------------------------------
      const newEmail = 'jane.updated@example.com';
      const patchRes = await srv.api(
        'PATCH',
        `/api/v1/projects/${slug}/attendees/${attendee.id}`,
        { email: newEmail },
        { token, requestId: 't-2' },
      );
      const patched = expectStatus(patchRes, 200, 'patch attendee');
      assert.equal(patched.id, attendee.id);
      assert.equal(patched.email, newEmail);
      assert.equal(patched.first_name, 'Jane', 'PATCH leaves other fields alone');

      const u = await updated.next(EVENT_TIMEOUT_MS);
      assertKeys(u, ['attendee_id', 'project_id', 'changes', 'updated_at', 'x-triggered-by'], 'AttendeeUpdated payload');
      assert.equal(u.attendee_id, attendee.id);
      assert.equal(u.project_id, project.id);
      assert.deepEqual(u.changes, { email: newEmail }, 'changes holds exactly the changed field');
      assertTimestamp(u.updated_at, 'AttendeeUpdated.updated_at');
      assert.equal(u.updated_at, patched.updated_at, 'event updated_at equals the REST updated_at');
      assert.deepEqual(u['x-triggered-by'], { operation_id: 'v1.project.attendees.update', request_id: 't-2' });

      // --- delete -------------------------------------------------------
      const delRes = await srv.api('DELETE', `/api/v1/projects/${slug}/attendees/${attendee.id}`, undefined, {
        token,
        requestId: 't-3',
      });
      expectStatus(delRes, 204, 'delete attendee');
      assert.equal(delRes.text, '', '204 has no body');

      const d = await deleted.next(EVENT_TIMEOUT_MS);
      assertKeys(d, ['attendee_id', 'project_id', 'deleted_at', 'x-triggered-by'], 'AttendeeDeleted payload');
      assert.equal(d.attendee_id, attendee.id);
      assert.equal(d.project_id, project.id);
      assertTimestamp(d.deleted_at, 'AttendeeDeleted.deleted_at');
      assert.ok(Date.parse(d.deleted_at) >= Date.parse(c.created_at), 'deleted_at is not before created_at');
      assert.deepEqual(d['x-triggered-by'], { operation_id: 'v1.project.attendees.destroy', request_id: 't-3' });

      const gone = await srv.api('GET', `/api/v1/projects/${slug}/attendees/${attendee.id}`, undefined, { token });
      assert.equal(gone.status, 404, 'deleted attendee is gone');
      assert.equal(typeof gone.body?.error?.code, 'string', '404 carries {"error":{"code","message"}}');
      assert.equal(typeof gone.body?.error?.message, 'string');

      // Exactly three events, in commit order, each once (no duplicates
      // from the relay). listenToAll reports un-namespaced names as ".Name".
      await sleep(300);
      assert.deepEqual(
        all.items.map((e) => e.event),
        ['.AttendeeCreated', '.AttendeeUpdated', '.AttendeeDeleted'],
      );
      assert.equal(created.items.length, 1);
      assert.equal(updated.items.length, 1);
      assert.equal(deleted.items.length, 1);
    } finally {
      echo.close();
    }
  });

  test('a token without the project gets a 403 subscription error and receives nothing', async () => {
    const slug = 'demo-authz';
    const other = 'expo-authz';
    await createProject(slug);
    await createProject(other);
    const demoToken = await srv.token({ sub: '42', name: 'Jane Smith', projects: [slug] });
    const expoToken = await srv.token({ sub: '43', name: 'John Doe', projects: [other] });

    const demo = srv.echoClient(demoToken);
    const expo = srv.echoClient(expoToken);
    try {
      const demoCreated = new Collector('demo AttendeeCreated');
      const demoChannel = demo.private(`dashboard.project.${slug}.attendees`).listen('.AttendeeCreated', demoCreated.push);

      const leaked = new Collector('event on the unauthorized client');
      const expoChannel = expo
        .private(`dashboard.project.${slug}.attendees`)
        .listen('.AttendeeCreated', leaked.push)
        .listenToAll((event, data) => leaked.push({ event, data }));

      const [err] = await Promise.all([
        echoSubscriptionError(expoChannel, 'expo client'),
        echoSubscribed(demoChannel, 'demo client'),
      ]);
      // pusher-js turns the non-200 answer of the auth endpoint into
      // {type: 'AuthError', error: <message>, status: <HTTP status>}.
      assert.equal(err.status, 403, `subscription error status: ${JSON.stringify(err)}`);
      assert.equal(err.type, 'AuthError');
      assert.equal(typeof err.error, 'string');
      // The socket itself stays up: a failed subscription must not
      // disconnect (the "receives nothing" below is not vacuous).
      await connected(expo);
      assert.equal(expo.connector.pusher.channel(`private-dashboard.project.${slug}.attendees`).subscribed, false);

      const res = await srv.api(
        'POST',
        `/api/v1/projects/${slug}/attendees`,
        { first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', attendee_type_id: 2 },
        { token: demoToken, requestId: 'authz-1' },
      );
      const attendee = expectStatus(res, 201, 'create attendee');
      const ev = await demoCreated.next(EVENT_TIMEOUT_MS);
      assert.equal(ev.attendee_id, attendee.id);

      await leaked.none(500);
      assert.equal(expo.connector.pusher.connection.state, 'connected');
    } finally {
      demo.close();
      expo.close();
    }
  });

  test('plain pusher-js: subscribe private- channel and bind AttendeeCreated', async () => {
    const slug = 'demo-plain';
    const project = await createProject(slug);
    const token = await srv.token({ sub: '42', name: 'Jane Smith', projects: [slug] });

    const pusher = srv.pusherClient(token);
    try {
      const socketId = await connected(pusher);
      assert.match(socketId, /^\d+\.\d+$/, 'socket_id format');

      const created = new Collector('AttendeeCreated');
      const channel = pusher.subscribe(`private-dashboard.project.${slug}.attendees`);
      channel.bind('AttendeeCreated', created.push);
      await waitFor(
        (resolve, reject) => {
          channel.bind('pusher:subscription_succeeded', resolve);
          channel.bind('pusher:subscription_error', (e) => reject(new Error(`subscription error ${JSON.stringify(e)}`)));
        },
        EVENT_TIMEOUT_MS,
        'pusher:subscription_succeeded',
      );
      assert.equal(channel.subscribed, true);

      // No X-Request-ID: the server makes one, returns it, and the event
      // carries the same id so the two can be correlated.
      const res = await srv.api(
        'POST',
        `/api/v1/projects/${slug}/attendees`,
        { first_name: 'Grace', last_name: 'Hopper', email: 'grace@example.com', attendee_type_id: 3 },
        { token },
      );
      const attendee = expectStatus(res, 201, 'create attendee');
      const requestId = res.headers.get('x-request-id');
      assert.ok(requestId, 'the server returns a generated X-Request-ID');

      const ev = await created.next(EVENT_TIMEOUT_MS);
      assert.equal(ev.attendee_id, attendee.id);
      assert.equal(ev.project_id, project.id);
      assert.equal(ev.first_name, 'Grace');
      assert.equal(ev.last_name, 'Hopper');
      assert.equal(ev.email, 'grace@example.com');
      assert.equal(ev.attendee_type_id, 3);
      assertTimestamp(ev.created_at, 'created_at');
      assert.deepEqual(ev['x-triggered-by'], { operation_id: 'v1.project.attendees.store', request_id: requestId });
    } finally {
      pusher.close();
    }
  });

  test('/broadcasting/auth signs like the pusher Node SDK and answers 403 JSON to outsiders', async () => {
    const slug = 'demo-auth';
    await createProject(slug);
    const token = await srv.token({ sub: '42', name: 'Jane Smith', projects: [slug] });
    const outsider = await srv.token({ sub: '43', projects: ['somewhere-else'] });
    const channel = `private-dashboard.project.${slug}.attendees`;
    const socketId = '1234.1234';

    // Same request as pusher-js's XHR: form-encoded body, bearer header.
    const post = (bearer) =>
      fetch(srv.authEndpoint, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/x-www-form-urlencoded',
          Authorization: `Bearer ${bearer}`,
        },
        body: new URLSearchParams({ socket_id: socketId, channel_name: channel }).toString(),
        signal: AbortSignal.timeout(5000),
      });

    const ok = await post(token);
    assert.equal(ok.status, 200);
    const body = await ok.json();
    assertKeys(body, ['auth'], 'private channel auth response');

    const sdk = new PusherServer({ appId: APP_ID, key: APP_KEY, secret: APP_SECRET, cluster: 'mt1' });
    assert.deepEqual(body, sdk.authorizeChannel(socketId, channel));
    const hmac = createHmac('sha256', APP_SECRET).update(`${socketId}:${channel}`).digest('hex');
    assert.equal(body.auth, `${APP_KEY}:${hmac}`);

    const denied = await post(outsider);
    assert.equal(denied.status, 403);
    const err = await denied.json();
    assert.equal(typeof err?.error?.code, 'string', `403 body: ${JSON.stringify(err)}`);
    assert.equal(typeof err?.error?.message, 'string');

    const anonymous = await fetch(srv.authEndpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ socket_id: socketId, channel_name: channel }).toString(),
      signal: AbortSignal.timeout(5000),
    });
    await anonymous.arrayBuffer();
    assert.ok([401, 403].includes(anonymous.status), `no bearer: expected 401 or 403, got ${anonymous.status}`);
  });
});
