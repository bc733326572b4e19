// The protocol's constants, shared by the server (through lib/protocol.ts) and
// the client (lib/client/). It imports nothing at all, so a browser bundle of
// the client never pulls server code in. PROTOCOL.md is its prose; keep the two
// in step and bump PROTOCOL_VERSION on any change a client could notice.

export const PROTOCOL_VERSION = '1.3'

/** Message types the protocol itself uses; a route may not declare them. */
export const MessageType = {
  Ack: 'ack',
  Error: 'error',
  Ping: 'ping',
  Pong: 'pong',
  /**
   * Client sends its token (`{"type":"auth","data":{"token":"..."}}`): the first frame on a
   * first-message auth route, or later on any auth route to refresh an expiring token. Acked with `{ exp }`.
   */
  Auth: 'auth',
  /** Client asks to join a room (routes with `joinable`): `{"type":"room:join","data":{"room":"lobby"}}`. */
  RoomJoin: 'room:join',
  /** Client asks to leave a room (routes with `joinable`). */
  RoomLeave: 'room:leave',
  /** Room event: a member joined (routes with `presence`). */
  PresenceJoin: 'presence:join',
  /** Room event: a member left (routes with `presence`). */
  PresenceLeave: 'presence:leave',
  /** 1.1, server to client: the session token to resume with (routes with sessions). */
  Session: 'session',
  /** 1.1, server to client: `{ after }` ms advice sent before a 1012 close (rolling restart). */
  Reconnect: 'reconnect',
  /** 1.2, SSE transport, server to client: the first event of a stream, `{ session }`, the id its POSTs name. */
  SseSession: 'sse:session',
  /** 1.2, SSE transport, server to client: the last event of a stream, `{ code, reason }` (the close code). */
  SseClose: 'sse:close'
} as const

/** Close codes: 1xxx from RFC 6455, 44xx/45xx mirror HTTP statuses. */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  /** No close frame was received (the connection dropped); never sent on the wire. */
  Abnormal: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  InternalError: 1011,
  /** 1.1: the server restarts; reconnect after the `reconnect.after` advice. */
  ServiceRestart: 1012,
  /** 1.1: the server is overloaded; reconnect with backoff. */
  TryAgainLater: 1013,
  BadRequest: 4400,
  Unauthorized: 4401,
  Forbidden: 4403,
  Timeout: 4408,
  TooManyRequests: 4429,
  ServerError: 4500,
  // No HTTP status means "you read too slowly", so this one stays outside 44xx;
  // 4008 echoes RFC 6455's 1008 (policy violation).
  SlowConsumer: 4008
} as const

/** Error codes carried in `{"type":"error","error":{"code":...}}` replies. */
export const ErrorCode = {
  /** Over a rate limit; `retryAfter` says when to try again, in ms. */
  RateLimited: 'rate_limited',
  BadJson: 'bad_json',
  BadMessage: 'bad_message',
  UnknownType: 'unknown_type',
  InvalidData: 'invalid_data',
  Internal: 'internal',
  /** A room join the route's `joinable` hook refused, or a message its `authorize` check refused. */
  Forbidden: 'forbidden',
  /** A token refresh (`auth` frame) whose token was missing, invalid, expired or for another user. */
  Unauthorized: 'unauthorized',
  /** A room name that is not 1-128 characters of `A-Z a-z 0-9 _ - . : @ /`. */
  InvalidRoom: 'invalid_room',
  /** A join past the per-connection room cap. */
  RoomLimit: 'room_limit'
} as const

/** What a client does after a close code (the client retry table of PROTOCOL.md). */
export type RetryAction =
  /** Closed on purpose or refused: do not reconnect. */
  | 'stop'
  /** Reconnect after a full-jitter backoff delay. */
  | 'backoff'
  /** Reconnect after the server's `reconnect.after` advice (else backoff). */
  | 'advice'
  /** Reconnect after the last `retryAfter` seen (else backoff). */
  | 'retryAfter'
  /** Ask the token provider once for a fresh token, reconnect; a second 4401 in a row stops. */
  | 'refreshToken'

/** The client retry table: close code to action. A code not listed here is retried with backoff. */
export const RetryPolicy: Readonly<Record<number, RetryAction>> = Object.freeze({
  1000: 'stop',
  1001: 'backoff',
  1006: 'backoff',
  1011: 'backoff',
  1012: 'advice',
  1013: 'backoff',
  4008: 'backoff',
  4500: 'backoff',
  4429: 'retryAfter',
  4401: 'refreshToken',
  4408: 'backoff',
  1002: 'stop',
  1003: 'stop',
  1007: 'stop',
  1008: 'stop',
  1009: 'stop',
  4400: 'stop',
  4403: 'stop'
})

/** Full-jitter backoff defaults: `delay = random(0, min(cap, base * 2^attempt))`, reset after `stable` ms open. */
export const Backoff = { base: 500, cap: 30_000, stable: 10_000 } as const

/** Subprotocol entry prefixes a client offers: a handshake token and a session resume token (never selected). */
export const ProtocolPrefix = { Bearer: 'bearer.', Resume: 'resume.' } as const
