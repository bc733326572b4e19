import type { UserType } from '@fastify/jwt'

/** Where a handshake token is looked for, in the order given. */
export type TokenSource = 'header' | 'cookie' | 'protocol'

/** `auth` plugin options: token sources, first-message auth, expiry. */
export interface AuthOptions {
  /**
   * Handshake token sources, tried in order. `header`: `Authorization: Bearer <token>`;
   * `cookie`: the `cookieName` cookie (requires `origins`); `protocol`: a
   * `Sec-WebSocket-Protocol` entry `<protocolPrefix><token>`, never echoed back.
   * Default `['header', 'protocol']`. The query string is read only on routes with `auth: { query: true }`.
   */
  sources?: TokenSource[]
  /** Cookie holding the token. Default `'token'`. */
  cookieName?: string
  /** Prefix of the subprotocol entry carrying the token. Default `'bearer.'`. */
  protocolPrefix?: string
  /** Query parameter holding the token; removed from every upgrade URL before routing and logging. Default `'access_token'`. */
  queryParam?: string
  /** Milliseconds a first-message route waits for the `auth` frame before closing with 4408. Default 5000. */
  timeout?: number
  /** Milliseconds past the token's `exp` before the socket closes with 4401. Default 0. */
  grace?: number
  /** Messages `authorize` may refuse on one connection before it is closed with 4403. Default 5. */
  forbiddenBudget?: number
  /** Milliseconds a stream ticket (SSE transport: `POST <path>` without a session) stays valid; single use. Default 30 000. */
  ticketTtl?: number
  /** The id of a user for `disconnectUser` and the per-user cap. Default `user.sub ?? user.id`. */
  userId?: (user: UserType) => string | number | undefined
}

/** `connections` plugin options: caps checked before the upgrade, counting sockets still in their handshake. */
export interface ConnectionCapsOptions {
  /** Sockets on this instance; one more gets HTTP 503. Default 0 (no cap). */
  max?: number
  /** Sockets per client address (`request.ip`, so mind `trustProxy`); one more gets HTTP 429. Default 0 (no cap). */
  perIp?: number
  /** Sockets per user; one more gets HTTP 429. Default 0 (no cap). */
  perUser?: number
  /** Seconds sent in `Retry-After` with a 429 or 503. Default 5. */
  retryAfter?: number
}

/** `handshake`: the token is verified before the upgrade. `message`: the first frame must be `auth`. */
export type AuthMode = 'handshake' | 'message'

export interface RouteAuthOptions {
  /** Default `'handshake'`. */
  mode?: AuthMode
  /** Also accept the token from the query string (`auth.queryParam`), for clients that can do nothing else. Default false. */
  query?: boolean
}

/** A route's `auth`: a mode, or options. */
export type RouteAuth = AuthMode | RouteAuthOptions
