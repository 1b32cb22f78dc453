// Types of the Switchboard PubSub browser SDK.
//   <script src="https://gateway.example/sdk/pubsub.js"></script>   → window.PubSub
//   import PubSub, { publish, subscribe } from 'https://gateway.example/sdk/pubsub.mjs';

/** Connection state: `connecting` also while reconnecting; `failed` is terminal (see the `error` event). */
export type PubSubState = 'connecting' | 'connected' | 'disconnected' | 'failed';

/** The three channels of a room: `pubsub.{org}`, `pubsub.{org}.{event}`, `pubsub.{org}.{event}.{session}`. */
export type PubSubScope = 'organization' | 'event' | 'session';

export interface PubSubConnectOptions {
  /** Room token (HS256 JWT with `sub`, `name` and `pubsub: {organization_id, event_id, session_id}`) from your plugin backend. */
  token?: string;
  /**
   * Gateway base URL (`https://gateway.example`; the WebSocket is `<url>/connection/websocket`) or the full
   * `ws(s)://…/connection/websocket` endpoint. Default: the origin of the `<script src>` that loaded the SDK,
   * else `location.origin`.
   */
  url?: string;
  /** Returns a fresh room token when the current one expires (refresh before expiry, and on connect error 109). Without it an expired token is a terminal failure. */
  getToken?: () => Promise<string>;
  /** Log frames and state changes with console.debug. */
  debug?: boolean;
}

/** Who published an in-room event (null for HTTP publishes). */
export interface PubSubSender {
  /** Participant id (`sub` of the sender's room token). */
  user: string;
  /** Connection (client) id of the sender. */
  client: string;
  /** Connection info of the sender, e.g. `{name}`. */
  info?: unknown;
}

export interface PubSubMeta {
  eventName: string;
  scope: PubSubScope;
  channel: string;
  from: PubSubSender | null;
  /** `x-triggered-by` of an HTTP publish (removed from the data), else null. */
  triggeredBy: { operation_id?: string; request_id?: string; [k: string]: unknown } | null;
}

export type PubSubCallback<T = any> = (data: T, meta: PubSubMeta) => void;

/**
 * Rejection of `publish` / `connect`, and the `error` event. `code` is the server's error code for server
 * errors — 111 too many requests (rate limit), 106 payload too large, 103 permission denied, 107 bad request,
 * 109 token expired; a WebSocket close code (3500–3999, 4500+) for a terminal disconnect — or one of the local
 * codes: `invalid_argument`, `invalid_token`, `queue_full` (100 publishes already wait for the connection),
 * `disconnected` (disconnect() was called, or the connection dropped before the server answered: the publish may
 * or may not have been delivered).
 */
export interface PubSubError extends Error {
  code: number | 'invalid_argument' | 'invalid_token' | 'queue_full' | 'disconnected';
  temporary?: boolean;
}

export interface PubSubRoom {
  organizationId: string;
  eventId: string;
  sessionId: string;
  participant: { id: string; name?: string };
  expiresAt: Date | null;
  /** organization, event and session channel, in that order. */
  channels: [string, string, string];
}

export interface PubSubClient {
  /** Current connection state. */
  readonly state: PubSubState;
  /** The room of the current token (null before connect). */
  readonly room: PubSubRoom | null;
  /**
   * Connects (or reconnects with new options) and subscribes to the room's organization, event and session
   * channels. Resolves on the first successful connect; rejects on a terminal failure or disconnect() before it.
   * Options given to create() are the defaults.
   */
  connect(options?: PubSubConnectOptions): Promise<void>;
  /** Closes the connection; queued publishes and a pending connect() reject with code `disconnected`. Subscriptions stay. */
  disconnect(): void;
  /**
   * Publishes `{type: eventName, data}` to the other participants of the room (the session channel); your own
   * callbacks are not called for it. Resolves once the server accepted it. While (re)connecting, up to 100
   * publishes are queued and sent after the reconnect. `data` must be a JSON object (not an array); default `{}`.
   */
  publish(eventName: string, payload?: { data?: object }): Promise<void>;
  /**
   * Calls `callback(data, meta)` for every event named `eventName` (or every event, for `'*'`) published over
   * HTTP to the room's organization, event or session, or in the room by another participant. May be called
   * before connect. Returns the unsubscribe function.
   */
  subscribe<T = any>(eventName: string, callback: PubSubCallback<T>): () => void;
  /**
   * Listens to state changes, or to errors: terminal failures and non-terminal ones (a failed token refresh, a
   * callback that threw). Without an `error` listener they go to console.error. Returns the remove function.
   */
  on(event: 'state', callback: (state: PubSubState) => void): () => void;
  on(event: 'error', callback: (error: PubSubError) => void): () => void;
}

export interface PubSubStatic extends PubSubClient {
  /** A new, independent client (its own connection and subscriptions). */
  create(options?: PubSubConnectOptions): PubSubClient;
  /** Connects the default client with the script tag's `data-token` (and `data-url`), if it has one. Called by /sdk/pubsub.js itself. */
  autoConnect(script: HTMLScriptElement | null): Promise<void> | null;
}

declare const PubSub: PubSubStatic;
export default PubSub;
export declare const connect: PubSubStatic['connect'];
export declare const publish: PubSubStatic['publish'];
export declare const subscribe: PubSubStatic['subscribe'];
export declare const disconnect: PubSubStatic['disconnect'];
export declare const create: PubSubStatic['create'];

declare global {
  interface Window {
    PubSub: PubSubStatic;
  }
  // eslint-disable-next-line no-var
  var PubSub: PubSubStatic;
}
