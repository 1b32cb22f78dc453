// ActionCable front door, proven with the REAL @rails/actioncable consumer
// (see lib/actioncable.js for the two browser globals it needs in Node).
//
// The community REST endpoints (notifications, chat rooms) come from the
// `community` branch; when the binary lacks them these tests fail loudly
// rather than skip: they are the contract. The DashboardChannel test uses
// the attendees endpoint that main already has.

import assert from 'node:assert/strict';
import { after } from 'node:test';

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';

import { startServer, expectStatus, test, connected, Collector, closeClients, sleep } from '../lib/server.js';
import { consumer, closeConsumers, subscribe, restart, hasRoute } from '../lib/actioncable.js';

after(() => {
  closeConsumers();
  closeClients();
});

// setup starts a server with project `demo` and returns tokens: admin (the
// app backend), jane (member 42), bob (member 43), eve (member 99).
async function setup() {
  const srv = await startServer({ env: { SWITCHBOARD_RELAY_POLL: '100ms' } });
  const admin = await srv.token({ sub: '1', admin: true });
  const jane = await srv.token({ sub: '42', projects: ['demo'] });
  const bob = await srv.token({ sub: '43', name: 'Bob' });
  const eve = await srv.token({ sub: '99', name: 'Eve' });
  // With CONFORMANCE_DATABASE_URL every test shares one database: the
  // project may already exist.
  const created = await srv.api('POST', '/api/v1/projects', { slug: 'demo', name: 'Demo' }, { token: admin });
  if (created.status !== 409) expectStatus(created, 201, 'create project');
  return { srv, admin, jane, bob, eve };
}

test('DashboardChannel: an attendee created over REST reaches received(); a foreign project is rejected()', async () => {
  const { srv, jane, bob } = await setup();
  try {
    const c = consumer(srv, jane);
    const dash = subscribe(c, { channel: 'DashboardChannel', project: 'demo', family: 'attendees' });
    const connectedState = await dash.state('connected');
    assert.equal(connectedState.reconnected, false);

    const res = await srv.api('POST', '/api/v1/projects/demo/attendees',
      { first_name: 'Jane', last_name: 'Smith', email: 'jane@example.com', attendee_type_id: 1 },
      { token: jane, requestId: 'cable-1' });
    expectStatus(res, 201, 'create attendee');
    const msg = await dash.event('AttendeeCreated');
    assert.equal(msg.data.email, 'jane@example.com');
    assert.deepEqual(msg.data['x-triggered-by'], { operation_id: 'v1.project.attendees.store', request_id: 'cable-1' });

    // Bob's token has no project: the same identifier is rejected for him.
    const other = subscribe(consumer(srv, bob), { channel: 'DashboardChannel', project: 'demo', family: 'attendees' });
    await other.state('rejected');
    // An unknown channel class is rejected too (Rails would stay silent and
    // the client would retry every 500 ms forever).
    const unknown = subscribe(c, { channel: 'NoSuchChannel' });
    await unknown.state('rejected');
  } finally {
    closeConsumers();
    await srv.stop();
  }
});

test('NotificationChannel: a notification created over REST gives newNotification and updateNewNotificationCount', async () => {
  const { srv, admin, jane } = await setup();
  try {
    const notes = subscribe(consumer(srv, jane), 'NotificationChannel');
    await notes.state('connected');
    const res = await srv.api('POST', '/api/v1/members/42/notifications',
      { type: 'mention', title: 'You were mentioned', body: 'Bob mentioned you', link: '/posts/1' }, { token: admin });
    expectStatus(res, 201, 'create notification');
    const created = await notes.event('newNotification');
    assert.equal(created.data.title, 'You were mentioned');
    const count = await notes.event('updateNewNotificationCount');
    assert.equal(count.data.new_notifications_count, 1);
  } finally {
    closeConsumers();
    await srv.stop();
  }
});

test('Chats::RoomChannel: participants receive newMessage (by id and by uuid); others are rejected()', async () => {
  const { srv, jane, bob, eve } = await setup();
  try {
    const room = expectStatus(await srv.api('POST', '/api/v1/chat/rooms', { name: 'Crew', participant_ids: ['43'] }, { token: jane }), 201, 'create room');
    assert.ok(room.id && room.uuid, `room has id and uuid: ${JSON.stringify(room)}`);

    const byId = subscribe(consumer(srv, bob), { channel: 'Chats::RoomChannel', chat_room_id: room.id });
    const byUUID = subscribe(consumer(srv, jane), { channel: 'Chats::RoomChannel', chat_room_uuid: room.uuid });
    const outsider = subscribe(consumer(srv, eve), { channel: 'Chats::RoomChannel', chat_room_id: room.id });
    await byId.state('connected');
    await byUUID.state('connected');
    await outsider.state('rejected');

    expectStatus(await srv.api('POST', `/api/v1/chat/rooms/${room.id}/messages`, { body: 'hello crew' }, { token: jane }), 201, 'post message');
    for (const rec of [byId, byUUID]) {
      const m = await rec.event('newMessage');
      assert.equal(m.data.body, 'hello crew');
      assert.equal(m.data.chat_room_uuid, room.uuid);
    }
    assert.equal(outsider.messages.length, 0);

    // Bob is removed from the room: his subscription is dropped at once and
    // rejected() tells his app; Jane keeps receiving.
    const bobStates = byId.states.length;
    expectStatus(await srv.api('DELETE', `/api/v1/chat/rooms/${room.id}/participants/43`, undefined, { token: jane }), 204, 'remove bob');
    await byId.state('rejected', 5000, bobStates);
    const bobSeen = byId.messages.length;
    const janeSeen = byUUID.messages.length;
    expectStatus(await srv.api('POST', `/api/v1/chat/rooms/${room.id}/messages`, { body: 'bob is gone' }, { token: jane }), 201, 'post message');
    assert.equal((await byUUID.waitFor('messages', (m) => m.event === 'newMessage' && m.data.body === 'bob is gone', 5000, janeSeen)).data.body, 'bob is gone');
    assert.equal(byId.messages.slice(bobSeen).filter((m) => m.event === 'newMessage').length, 0, 'bob got a message after removal');
  } finally {
    closeConsumers();
    await srv.stop();
  }
});

test('perform("typing") reaches the other participants as client-typing where the channel class allows it', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'cable-channels-'));
  const file = path.join(dir, 'channels.json');
  // The app's own class: the room stream, with typing notices allowed.
  await writeFile(file, JSON.stringify({ channels: [
    { channel: 'Chats::TypingChannel', stream: 'chat-room-{chat_room_id}-channel', actions: ['typing'] },
  ] }));
  const srv = await startServer({ env: { SWITCHBOARD_CABLE_CHANNELS: file } });
  try {
    const jane = await srv.token({ sub: '42' });
    const bob = await srv.token({ sub: '43' });
    const room = expectStatus(await srv.api('POST', '/api/v1/chat/rooms', { name: 'Crew', participant_ids: ['43'] }, { token: jane }), 201, 'create room');
    const janeTyping = subscribe(consumer(srv, jane), { channel: 'Chats::TypingChannel', chat_room_id: room.id });
    const bobTyping = subscribe(consumer(srv, bob), { channel: 'Chats::TypingChannel', chat_room_id: room.id });
    const bobRoom = subscribe(consumer(srv, bob), { channel: 'Chats::RoomChannel', chat_room_id: room.id });
    await Promise.all([janeTyping.state('connected'), bobTyping.state('connected'), bobRoom.state('connected')]);

    janeTyping.subscription.perform('typing', { typing: true });
    const got = await bobTyping.event('client-typing');
    assert.deepEqual(got.data, { typing: true });
    assert.equal(got.user_id, '42');
    // The builtin Chats::RoomChannel shares the stream, so it hears it too;
    // the sender does not get her own notice.
    await bobRoom.event('client-typing');
    await sleep(300);
    assert.equal(janeTyping.messages.length, 0);

    // Actions the class does not list, and any action on a class without
    // actions, go nowhere.
    janeTyping.subscription.perform('speak', { text: 'hi' });
    bobRoom.subscription.perform('typing', { typing: true });
    await sleep(300);
    assert.equal(bobTyping.messages.filter((m) => m.event !== 'client-typing').length, 0);
    assert.equal(janeTyping.messages.length, 0);
  } finally {
    closeConsumers();
    await srv.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a bad token: disconnected({willAttemptReconnect: false}) and no reconnect', async () => {
  const { srv } = await setup();
  try {
    let opens = 0;
    const c = consumer(srv, 'not-a-jwt');
    const origOpen = c.connection.open.bind(c.connection);
    c.connection.open = () => { opens++; return origOpen(); };
    const rec = subscribe(c, 'NotificationChannel');
    const d = await rec.state('disconnected');
    assert.equal(d.willAttemptReconnect, false);
    assert.equal(c.connection.monitor.isRunning(), false, 'the monitor stopped: the client gave up');
    // No token at all: same answer.
    const none = subscribe(consumer(srv, undefined), 'NotificationChannel');
    assert.equal((await none.state('disconnected')).willAttemptReconnect, false);
    assert.equal(rec.states.filter((s) => s.type === 'connected').length, 0);
    assert.ok(opens <= 1, `reopened ${opens} times`);
  } finally {
    closeConsumers();
    await srv.stop();
  }
});

test('an expiring token: disconnected({willAttemptReconnect: true}), then back with the fresh token from the URL function', { timeout: 60_000 }, async () => {
  const { srv, admin } = await setup();
  try {
    let current = await srv.token({ sub: '42', ttl: '2s' });
    const rec = subscribe(consumer(srv, () => current), 'NotificationChannel');
    await rec.state('connected');
    const fresh = await srv.token({ sub: '42', ttl: '1h' });
    const gone = await rec.state('disconnected', 5000);
    assert.equal(gone.willAttemptReconnect, true);
    current = fresh;
    await rec.waitFor('states', (s) => s.type === 'connected' && s.reconnected === true, 40_000);
    expectStatus(await srv.api('POST', '/api/v1/members/42/notifications', { type: 'system', title: 'still here', body: 'x' }, { token: admin }), 201, 'notify');
    assert.equal((await rec.event('newNotification')).data.title, 'still here');
  } finally {
    closeConsumers();
    await srv.stop();
  }
});

test('server restart (graceful, then killed): the consumer reconnects and resubscribes by itself', { timeout: 120_000 }, async () => {
  let { srv, admin, jane } = await setup();
  try {
    const rec = subscribe(consumer(srv, jane), { channel: 'DashboardChannel', project: 'demo', family: 'attendees' });
    await rec.state('connected');

    // Graceful: SIGTERM → {"type":"disconnect","reason":"server_restart","reconnect":true}.
    srv = await restart(srv, 'SIGTERM');
    const gone = await rec.state('disconnected');
    assert.equal(gone.willAttemptReconnect, true);
    const back = await rec.waitFor('states', (s) => s.type === 'connected' && s.reconnected === true, 40_000);
    assert.ok(back);
    const mark = rec.messages.length;
    expectStatus(await srv.api('POST', '/api/v1/projects/demo/attendees',
      { first_name: 'Ann', last_name: 'Lee', email: 'ann@example.com', attendee_type_id: 1 }, { token: jane }), 201, 'attendee after restart');
    assert.equal((await rec.event('AttendeeCreated', 5000, mark)).data.email, 'ann@example.com');

    // Killed without a goodbye: the monitor notices (close event or stale
    // pings) and reconnects when the server is back.
    const states = rec.states.length;
    srv = await restart(srv, 'SIGKILL');
    await rec.waitFor('states', (s) => s.type === 'connected' && s.reconnected === true, 40_000, states);
    const mark2 = rec.messages.length;
    expectStatus(await srv.api('POST', '/api/v1/projects/demo/attendees',
      { first_name: 'Al', last_name: 'Ko', email: 'al@example.com', attendee_type_id: 1 }, { token: admin }), 201, 'attendee after kill');
    assert.equal((await rec.event('AttendeeCreated', 5000, mark2)).data.email, 'al@example.com');
  } finally {
    closeConsumers();
    await srv.stop();
  }
});

test('one notification reaches pusher-js, centrifuge-js and @rails/actioncable subscribed to the same member channel', async (t) => {
  const { srv, admin, jane } = await setup();
  try {
    // ActionCable
    const cable = subscribe(consumer(srv, jane), 'NotificationChannel');
    await cable.state('connected');

    // Pusher: the canonical channel is private over Pusher.
    const pusher = srv.pusherClient(jane);
    await connected(pusher);
    const pusherGot = new Collector('pusher newNotification');
    const ch = pusher.subscribe('private-notification-channel-42');
    ch.bind('newNotification', pusherGot.push);
    await new Promise((resolve, reject) => {
      ch.bind('pusher:subscription_succeeded', resolve);
      ch.bind('pusher:subscription_error', (e) => reject(new Error(`pusher subscription: ${JSON.stringify(e)}`)));
    });

    // Centrifugo front door (built on the centrifugo branch).
    let centrifugeGot;
    let centrifuge;
    if (await hasRoute(srv, '/connection/websocket')) {
      centrifuge = new Centrifuge(`ws://127.0.0.1:${srv.port}/connection/websocket`, { token: jane, websocket: WebSocket });
      centrifugeGot = new Collector('centrifuge publication');
      const sub = centrifuge.newSubscription('notification-channel-42');
      sub.on('publication', (ctx) => centrifugeGot.push(ctx.data));
      const subscribed = new Promise((resolve, reject) => {
        sub.on('subscribed', resolve);
        sub.on('error', (e) => reject(new Error(`centrifuge subscription: ${JSON.stringify(e)}`)));
      });
      sub.subscribe();
      centrifuge.connect();
      await subscribed;
    } else {
      // TODO(actioncable): the centrifugo front door is not in this binary
      // yet (branch `centrifugo`); once merged, this part runs.
      t.diagnostic('centrifugo front door absent (/connection/websocket is 404): centrifuge-js part skipped');
    }

    try {
      expectStatus(await srv.api('POST', '/api/v1/members/42/notifications',
        { type: 'system', title: 'Three doors', body: 'one event' }, { token: admin }), 201, 'create notification');
      const viaCable = await cable.event('newNotification');
      const viaPusher = await pusherGot.next();
      assert.equal(viaCable.data.title, 'Three doors');
      // Same wire object on every door.
      assert.deepEqual(viaPusher, viaCable.data);
      if (centrifugeGot) {
        // The Centrifugo door wraps the event as {type, data}.
        const viaCentrifuge = await centrifugeGot.next();
        assert.equal(viaCentrifuge.type, 'newNotification');
        assert.deepEqual(viaCentrifuge.data, viaCable.data);
      }
    } finally {
      centrifuge?.disconnect();
    }
  } finally {
    closeConsumers();
    closeClients(srv.port);
    await srv.stop();
  }
});
