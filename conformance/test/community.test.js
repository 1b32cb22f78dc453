// Community channels (chat rooms, threads, notifications) driven with the
// real laravel-echo 2 + pusher-js 8 clients against the real binary: who
// receives which event, and who is refused or cut off.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';

import { test, startServer, connected, Collector, expectStatus, waitFor, sleep } from '../lib/server.js';

const A = '42';
const B = '43';
const C = '44';
const D = '45'; // never a participant

// Payloads carry member ids as numbers, like room and message ids, so a
// frontend holding numeric ids matches them with ===. (Tokens and channel
// names use the text.)
const id = (member) => Number(member);

let srv;
const tokens = {};

before(async () => {
  srv = await startServer();
  for (const [sub, name] of [[A, 'Ann'], [B, 'Bob'], [C, 'Cat'], [D, 'Dan']]) tokens[sub] = await srv.token({ sub, name });
  tokens.admin = await srv.token({ sub: 'backend', name: 'Backend', admin: true });
});

after(async () => {
  await srv?.stop();
});

const api = (who, method, path, body) => srv.api(method, path, body, { token: tokens[who] });

// subscribed resolves once Echo's private channel subscription succeeded
// and rejects with the HTTP status when it was refused.
function subscribed(channel, label) {
  return waitFor(
    (resolve, reject) => {
      channel.subscribed(() => resolve());
      channel.error((err) => reject(new Error(`${label}: subscription refused (${JSON.stringify(err)})`)));
    },
    5000,
    `${label} subscription`,
  );
}

// member opens an Echo connection for sub and listens on its three
// channels plus the given room channels; every event name gets a collector.
async function member(sub, rooms = []) {
  const echo = srv.echoClient(tokens[sub]);
  await connected(echo);
  const got = {};
  const listen = async (name, events) => {
    const ch = echo.private(name);
    for (const ev of events) {
      const c = new Collector(`${ev} on ${name} for ${sub}`);
      ch.listen(`.${ev}`, c.push);
      got[`${name}:${ev}`] = c;
    }
    await subscribed(ch, `${sub} on private-${name}`);
  };
  await listen(`chat-room-channel-${sub}`, ['newMessage', 'chatRoomCreated', 'chatRoomDeleted']);
  await listen(`chat-community-member-${sub}-threads-channel`, ['newMessage']);
  await listen(`notification-channel-${sub}`, ['newNotification', 'updateNewNotificationCount', 'resetNewNotificationCount']);
  for (const id of rooms) await listen(`chat-room-${id}-channel`, ['newMessage', 'deletedMessage']);
  return { echo, got, on: (name, ev) => got[`${name}:${ev}`] };
}

async function createRoom(name, participantIds) {
  return expectStatus(await api(A, 'POST', '/api/v1/chat/rooms', { name, participant_ids: participantIds }), 201, 'create room');
}

async function post(who, roomId, body, extra = {}) {
  return expectStatus(await api(who, 'POST', `/api/v1/chat/rooms/${roomId}/messages`, { body, ...extra }), 201, `${who} posts`);
}

test('A posts: B and C get newMessage on their member channels, everyone on the room channel', async () => {
  const room = await createRoom('Crew', [B, C]);
  assert.ok(Number.isInteger(room.id) && typeof room.uuid === 'string');
  const [a, b, c] = [await member(A, [room.id]), await member(B, [room.id]), await member(C, [room.id])];
  const roomCh = `chat-room-${room.id}-channel`;

  const msg = await post(A, room.id, 'hello crew', { creation_uuid: 'c-1', rich_text_body: { body: 'hello crew' } });
  for (const [who, m] of [[B, b], [C, c]]) {
    const ev = await m.on(`chat-room-channel-${who}`, 'newMessage').next();
    assert.equal(ev.id, msg.id);
    assert.equal(ev.body, 'hello crew');
    assert.equal(ev.chat_room_uuid, room.uuid);
    assert.equal(ev.sender.id, id(A));
    assert.equal(ev.sender.community_member_id, id(A));
    assert.equal(ev.creation_uuid, 'c-1');
    assert.equal(ev['x-triggered-by'].operation_id, 'v1.chat.rooms.messages.store');
  }
  for (const m of [a, b, c]) {
    const ev = await m.on(roomCh, 'newMessage').next();
    assert.equal(ev.id, msg.id);
    assert.deepEqual(ev.rich_text_body, { body: 'hello crew' });
    assert.equal(ev.sender.id, id(A));
    assert.ok(Number.isInteger(ev.chat_room_participant_id));
    for (const k of ['chat_room_kind', 'chat_room_participant_id', 'sent_at', 'created_at', 'chat_thread_id', 'parent_message_id',
      'lesson_id', 'edited_at', 'replies_count', 'total_thread_participants_count', 'thread_participants_preview',
      'chat_thread_replies_count']) {
      assert.ok(k in ev, `newMessage has ${k}`);
    }
  }

  // A repeated creation_uuid is the same message and sends nothing more.
  const again = await api(A, 'POST', `/api/v1/chat/rooms/${room.id}/messages`, { body: 'hello crew', creation_uuid: 'c-1' });
  assert.equal(again.status, 200);
  assert.equal(again.body.id, msg.id);

  // B's unread count came from the database.
  const list = expectStatus(await api(B, 'GET', '/api/v1/chat/rooms'), 200, 'list rooms');
  assert.equal(list.data.find((r) => r.id === room.id).unread_messages_count, 1);
  await sleep(300);
  assert.equal(b.on(roomCh, 'newMessage').items.length, 1, 'the repeat sent nothing');
});

test('a reply reaches the room channel and the thread channels of thread participants only', async () => {
  const room = await createRoom('Threads', [B, C]);
  const [a, b, c] = [await member(A, [room.id]), await member(B, [room.id]), await member(C, [room.id])];
  const root = await post(A, room.id, 'root');
  for (const m of [a, b, c]) await m.on(`chat-room-${room.id}-channel`, 'newMessage').next();

  const reply = await post(B, room.id, 'a reply', { parent_message_id: root.id });
  for (const [who, m] of [[A, a], [B, b]]) {
    const ev = await m.on(`chat-community-member-${who}-threads-channel`, 'newMessage').next();
    assert.equal(ev.id, reply.id);
    assert.equal(ev.parent_message_id, root.id);
    assert.equal(ev.chat_thread_replies_count, 1);
    assert.equal(ev.total_thread_participants_count, 2);
    assert.equal(ev.sender.id, id(B));
    assert.deepEqual(ev.thread_participants_preview.map((p) => p.id), [id(A), id(B)]);
  }
  for (const m of [a, b, c]) assert.equal((await m.on(`chat-room-${room.id}-channel`, 'newMessage').next()).id, reply.id);
  // C takes no part in the thread; replies never go to member channels.
  await c.on(`chat-community-member-${C}-threads-channel`, 'newMessage').none(500);
  for (const [who, m] of [[A, a], [B, b], [C, c]]) {
    const mine = m.on(`chat-room-channel-${who}`, 'newMessage').items.map((e) => e.id);
    assert.deepEqual(mine, [root.id], `${who}'s member channel got only the top-level message`);
  }
});

test('notification badge goes 1, 2, then 0 after mark-all-read', async () => {
  const a = await member(A);
  const ch = `notification-channel-${A}`;
  const payload = { type: 'mention', title: 'Bob mentioned you', body: 'hi', link: '/p/1', actor: { id: B, name: 'Bob' } };

  const forbidden = await api(B, 'POST', `/api/v1/members/${A}/notifications`, payload);
  assert.equal(forbidden.status, 403, 'only admin tokens create notifications');

  const n1 = expectStatus(await api('admin', 'POST', `/api/v1/members/${A}/notifications`, payload), 201, 'notify');
  const first = await a.on(ch, 'newNotification').next();
  assert.equal(first.id, n1.id);
  assert.equal(first.community_member_id, id(A));
  assert.equal((await a.on(ch, 'updateNewNotificationCount').next()).new_notifications_count, 1);

  expectStatus(await api('admin', 'POST', `/api/v1/members/${A}/notifications`, payload), 201, 'notify');
  const second = await a.on(ch, 'newNotification').next();
  assert.equal(second.title, payload.title);
  assert.deepEqual(second.actor, { id: id(B), name: 'Bob' }, 'sent as "43", received as 43');
  assert.equal(second.read_at, null);
  assert.equal((await a.on(ch, 'updateNewNotificationCount').next()).new_notifications_count, 2);

  expectStatus(await api(A, 'POST', '/api/v1/notifications/read-all'), 200, 'read all');
  assert.equal((await a.on(ch, 'resetNewNotificationCount').next()).new_notifications_count, 0);

  const own = expectStatus(await api(A, 'GET', '/api/v1/notifications'), 200, 'list');
  assert.equal(own.data.length, 2);
  assert.ok(own.data.every((n) => n.read_at !== null));
});

// refused subscribes with plain pusher-js and resolves with the
// subscription_error status.
function refused(sub, channel) {
  const p = srv.pusherClient(tokens[sub]);
  return waitFor(
    (resolve, reject) => {
      const ch = p.subscribe(channel);
      ch.bind('pusher:subscription_error', (err) => resolve(err.status));
      ch.bind('pusher:subscription_succeeded', () => reject(new Error(`${sub} subscribed to ${channel}`)));
    },
    5000,
    `${sub} on ${channel}`,
  ).finally(() => p.close());
}

test("member 43 cannot subscribe to any of member 42's channels", async () => {
  for (const ch of [`notification-channel-${A}`, `chat-room-channel-${A}`, `chat-community-member-${A}-threads-channel`]) {
    assert.equal(await refused(B, `private-${ch}`), 403, ch);
  }
});

test('a non-participant cannot subscribe to a room channel', async () => {
  const room = await createRoom('Private', [B]);
  assert.equal(await refused(D, `private-chat-room-${room.id}-channel`), 403);
  assert.equal(await refused(D, 'private-chat-room-999999-channel'), 403, 'unknown room');
  expectStatus(await api(D, 'POST', `/api/v1/chat/rooms/${room.id}/messages`, { body: 'let me in' }), 403, 'outsider posts');
  expectStatus(await api(D, 'GET', `/api/v1/chat/rooms/${room.id}/messages`), 403, 'outsider reads');
});

test('a removed participant stops receiving within one event', async () => {
  const room = await createRoom('Shrinking', [B, C]);
  const roomCh = `chat-room-${room.id}-channel`;
  const [b, c] = [await member(B, [room.id]), await member(C, [room.id])];
  const revoked = new Collector('revocation of C');
  c.echo.connector.pusher.channel(`private-${roomCh}`).bind('pusher:subscription_error', revoked.push);

  expectStatus(await api(A, 'DELETE', `/api/v1/chat/rooms/${room.id}/participants/${C}`), 204, 'remove C');
  const gone = await c.on(`chat-room-channel-${C}`, 'chatRoomDeleted').next();
  assert.equal(gone.chat_room_uuid, room.uuid);
  assert.equal((await revoked.next()).status, 403);

  // The very next event in the room reaches B and not C.
  const msg = await post(A, room.id, 'after removal');
  assert.equal((await b.on(roomCh, 'newMessage').next()).id, msg.id);
  await c.on(roomCh, 'newMessage').none(500);
  assert.equal(c.on(`chat-room-channel-${C}`, 'newMessage').items.length, 0);
  // And C cannot come back on its own.
  assert.equal(await refused(C, `private-${roomCh}`), 403);
});

test("a deleted room's channel receives nothing more", async () => {
  const room = await createRoom('Doomed', [B]);
  const b = await member(B, [room.id]);
  expectStatus(await api(A, 'DELETE', `/api/v1/chat/rooms/${room.id}`), 204, 'delete room');
  assert.equal((await b.on(`chat-room-channel-${B}`, 'chatRoomDeleted').next()).chat_room_uuid, room.uuid);
  await sleep(100);
  assert.equal(await refused(B, `private-chat-room-${room.id}-channel`), 403);
  expectStatus(await api(A, 'POST', `/api/v1/chat/rooms/${room.id}/messages`, { body: 'x' }), 404, 'post to a deleted room');
});
