// Event-management modules (access, social, games, forms) seen through the
// real clients: a kiosk on laravel-echo 2 + pusher-js 8 watches the access
// channel while scans are made over REST, and a dashboard on plain pusher-js
// (the seed's "Using Pusher Directly") watches the social, games and forms
// channels. Payloads are checked field by field against the seed, including
// x-triggered-by naming the REST operation and request that caused them.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';

import { test, startServer, connected, Collector, expectStatus, waitFor, sleep } from '../lib/server.js';

const SLUG = 'expo';
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

let srv;
const tokens = {};
let attendee; // an attendee of type 1 with badge ABC123

before(async () => {
  srv = await startServer();
  tokens.admin = await srv.token({ sub: '1', name: 'Staff', admin: true });
  tokens.kiosk = await srv.token({ sub: 'kiosk-7', name: 'Gate kiosk', projects: [SLUG] });
  tokens.jane = await srv.token({ sub: '12345', name: 'Jane Smith', projects: [SLUG] });
  expectStatus(await api('admin', 'POST', '/api/v1/projects', { slug: SLUG, name: 'Expo' }), 201, 'create project');
  attendee = expectStatus(
    await api('admin', 'POST', `/api/v1/projects/${SLUG}/attendees`, {
      first_name: 'Jane', last_name: 'Smith', email: 'jane@example.com', attendee_type_id: 1,
    }),
    201,
    'create attendee',
  );
});

after(async () => {
  await srv?.stop();
});

function api(who, method, path, body, opts = {}) {
  return srv.api(method, path, body, { token: tokens[who], ...opts });
}

// triggeredBy asserts the seed's cross-reference to the REST call.
function assertTriggeredBy(data, operationId, requestId) {
  assert.deepEqual(data['x-triggered-by'], { operation_id: operationId, request_id: requestId });
}

// withoutTrigger drops x-triggered-by so the rest can be compared exactly.
function withoutTrigger(data) {
  const { 'x-triggered-by': _, ...rest } = data;
  return rest;
}

function echoSubscribed(channel, label) {
  return waitFor(
    (resolve, reject) => {
      channel.subscribed(() => resolve());
      channel.error((err) => reject(new Error(`${label}: subscription refused (${JSON.stringify(err)})`)));
    },
    5000,
    `${label} subscription`,
  );
}

function pusherSubscribed(channel, label) {
  return waitFor(
    (resolve, reject) => {
      channel.bind('pusher:subscription_succeeded', () => resolve());
      channel.bind('pusher:subscription_error', (status) => reject(new Error(`${label}: subscription refused (${JSON.stringify(status)})`)));
    },
    5000,
    `${label} subscription`,
  );
}

test('a kiosk on the access channel sees AccessGranted and AccessDenied for REST scans', async () => {
  const base = `/api/v1/projects/${SLUG}/access`;
  const zone = expectStatus(await api('admin', 'POST', `${base}/zones`, { name: 'Hall A' }), 201, 'zone');
  const point = expectStatus(await api('admin', 'POST', `${base}/points`, { name: 'Gate 1', access_zone_id: zone.id }), 201, 'point');
  const cred = expectStatus(await api('admin', 'POST', `${base}/credentials`, { attendee_id: attendee.id, value: 'ABC123' }), 201, 'credential');
  expectStatus(await api('admin', 'POST', `${base}/rules`, { access_zone_id: zone.id, attendee_type_id: 1 }), 201, 'rule');

  const kiosk = srv.echoClient(tokens.kiosk);
  await connected(kiosk);
  const granted = new Collector('AccessGranted');
  const denied = new Collector('AccessDenied');
  // A leading dot: the seed's event names are broadcast as is, not under
  // Echo's default App\Events namespace.
  const ch = kiosk.private(`dashboard.project.${SLUG}.access`).listen('.AccessGranted', granted.push).listen('.AccessDenied', denied.push);
  await echoSubscribed(ch, 'kiosk on access');

  const ok = await api('kiosk', 'POST', `${base}/scans`,
    { credential_value: 'ABC123', access_point_id: point.id, direction: 'in' }, { requestId: 'scan-ok-1' });
  const answer = expectStatus(ok, 201, 'granted scan');
  assert.equal(answer.granted, true);
  assert.equal(answer.reason, null);
  assert.equal(answer.attendee.id, attendee.id);

  const ev = await granted.next();
  assertTriggeredBy(ev, 'v1.project.access.scans.store', 'scan-ok-1');
  assert.match(ev.timestamp, RFC3339);
  assert.deepEqual(withoutTrigger(ev), {
    attendee_id: attendee.id,
    access_point_id: point.id,
    access_zone_id: zone.id,
    credential_id: cred.id,
    direction: 'in',
    timestamp: ev.timestamp,
  });

  const no = await api('kiosk', 'POST', `${base}/scans`,
    { credential_value: 'NOPE-999', access_point_id: point.id, direction: 'in' }, { requestId: 'scan-no-1' });
  const refusal = expectStatus(no, 201, 'denied scan');
  assert.equal(refusal.granted, false);
  assert.equal(refusal.reason, 'unknown_credential');
  assert.equal(refusal.attendee, null);

  const dev = await denied.next();
  assertTriggeredBy(dev, 'v1.project.access.scans.store', 'scan-no-1');
  assert.match(dev.timestamp, RFC3339);
  assert.deepEqual(withoutTrigger(dev), {
    credential_value: 'NOPE-999',
    access_point_id: point.id,
    reason: 'unknown_credential',
    timestamp: dev.timestamp,
  });

  // Revoking the badge turns the next scan into credential_revoked.
  expectStatus(await api('admin', 'POST', `${base}/credentials/${cred.id}/revoke`), 200, 'revoke');
  const again = expectStatus(await api('kiosk', 'POST', `${base}/scans`,
    { credential_value: 'ABC123', access_point_id: point.id, direction: 'in' }), 201, 'revoked scan');
  assert.equal(again.reason, 'credential_revoked');
  assert.equal((await denied.next()).reason, 'credential_revoked');

  // An unknown access point is not a scan: 404, and nothing is broadcast.
  expectStatus(await api('kiosk', 'POST', `${base}/scans`,
    { credential_value: 'ABC123', access_point_id: point.id + 1000, direction: 'in' }), 404, 'unknown point');
  await sleep(300);
  assert.equal(granted.items.length, 1);
  assert.equal(denied.items.length, 2);

  const occ = expectStatus(await api('kiosk', 'GET', `${base}/zones/${zone.id}/occupancy`), 200, 'occupancy');
  assert.deepEqual(occ, { access_zone_id: zone.id, in: 1, out: 0, occupancy: 1 });
});

test('a dashboard sees PostCreated, PointsAwarded and FormResponseCreated with the seed fields', async () => {
  const dash = srv.pusherClient(tokens.jane);
  await connected(dash);
  const got = {};
  for (const [family, events] of [['social', ['PostCreated', 'PostHidden']], ['games', ['PointsAwarded']], ['forms', ['FormResponseCreated', 'FormResponseUpdated']]]) {
    const channel = dash.subscribe(`private-dashboard.project.${SLUG}.${family}`);
    for (const name of events) {
      got[name] = new Collector(name);
      channel.bind(name, got[name].push);
    }
    await pusherSubscribed(channel, `dashboard on ${family}`);
  }
  const p = `/api/v1/projects/${SLUG}`;

  // Social: the author is the bearer (sub 12345, name Jane Smith).
  const stream = expectStatus(await api('admin', 'POST', `${p}/social/streams`, { name: 'Main stage' }), 201, 'stream');
  const post = expectStatus(await api('jane', 'POST', `${p}/social/streams/${stream.id}/posts`,
    { content: 'Having a great time at the conference!' }, { requestId: 'post-1' }), 201, 'post');
  const pc = await got.PostCreated.next();
  assertTriggeredBy(pc, 'v1.project.social.posts.store', 'post-1');
  assert.match(pc.created_at, RFC3339);
  assert.deepEqual(withoutTrigger(pc), {
    post_id: post.id,
    stream_id: stream.id,
    content: 'Having a great time at the conference!',
    author: { id: 12345, name: 'Jane Smith' },
    created_at: pc.created_at,
  });
  // Staff hide it: the same channel says so.
  expectStatus(await api('admin', 'POST', `${p}/social/streams/${stream.id}/posts/${post.id}/hide`), 200, 'hide');
  const ph = await got.PostHidden.next();
  assertTriggeredBy(ph, 'v1.project.social.posts.hide', ph['x-triggered-by'].request_id);
  assert.equal(ph.post_id, post.id);
  assert.equal(ph.stream_id, stream.id);

  // Games: a retried award (same Idempotency-Key) is broadcast once.
  const game = expectStatus(await api('admin', 'POST', `${p}/games`, { name: 'Expo quest' }), 201, 'game');
  const award = { attendee_id: attendee.id, points: 50, reason: 'session_attendance' };
  const headers = { 'Idempotency-Key': 'award-42' };
  const first = expectStatus(await api('admin', 'POST', `${p}/games/${game.id}/awards`, award, { requestId: 'award-1', headers }), 201, 'award');
  const retry = expectStatus(await api('admin', 'POST', `${p}/games/${game.id}/awards`, award, { requestId: 'award-1b', headers }), 201, 'retried award');
  assert.deepEqual(retry, first);
  const pa = await got.PointsAwarded.next();
  assertTriggeredBy(pa, 'v1.project.games.awards.store', 'award-1');
  assert.match(pa.awarded_at, RFC3339);
  assert.deepEqual(withoutTrigger(pa), {
    game_id: game.id,
    attendee_id: attendee.id,
    points: 50,
    reason: 'session_attendance',
    total_points: 50,
    awarded_at: pa.awarded_at,
  });
  expectStatus(await api('admin', 'POST', `${p}/games/${game.id}/awards`, { ...award, points: 200 }), 201, 'second award');
  assert.equal((await got.PointsAwarded.next()).total_points, 250);
  assert.equal(got.PointsAwarded.items.length, 2, 'the retried award must not be broadcast again');
  const board = expectStatus(await api('jane', 'GET', `${p}/games/${game.id}/leaderboard`), 200, 'leaderboard');
  assert.deepEqual(board.data, [{ rank: 1, attendee_id: attendee.id, first_name: 'Jane', last_name: 'Smith', total_points: 250 }]);

  // Forms.
  const form = expectStatus(await api('admin', 'POST', `${p}/forms`, {
    title: 'Feedback',
    fields: [
      { key: 'rating', label: 'Rating', type: 'number', required: true },
      { key: 'track', label: 'Track', type: 'choice', options: ['dev', 'ops'] },
    ],
  }), 201, 'form');
  const bad = await api('jane', 'POST', `${p}/forms/${form.id}/responses`, { attendee_id: attendee.id, answers: { track: 'dev' } });
  assert.equal(bad.status, 422);
  assert.equal(bad.body.error.field, 'answers.rating');
  const resp = expectStatus(await api('jane', 'POST', `${p}/forms/${form.id}/responses`,
    { attendee_id: attendee.id, answers: { rating: 5, track: 'ops' } }, { requestId: 'form-1' }), 201, 'response');
  const fr = await got.FormResponseCreated.next();
  assertTriggeredBy(fr, 'v1.project.forms.responses.store', 'form-1');
  assert.match(fr.submitted_at, RFC3339);
  assert.deepEqual(withoutTrigger(fr), {
    form_id: form.id,
    response_id: resp.id,
    attendee_id: attendee.id,
    answers: { rating: 5, track: 'ops' },
    submitted_at: fr.submitted_at,
  });
  assert.equal(got.FormResponseCreated.items.length, 1, 'the refused response must not be broadcast');
  expectStatus(await api('jane', 'PATCH', `${p}/forms/${form.id}/responses/${resp.id}`,
    { answers: { rating: 4 } }, { requestId: 'form-2' }), 200, 'update response');
  const fu = await got.FormResponseUpdated.next();
  assertTriggeredBy(fu, 'v1.project.forms.responses.update', 'form-2');
  assert.deepEqual(fu.answers, { rating: 4 });
  assert.equal(fu.response_id, resp.id);
});
