// Authentication of real-time connections, on top of @fastify/jwt: the
// handshake hook, first-message auth, token expiry and in-band refresh, and the
// userId -> connections index behind `disconnectUser`. Tokens are always
// verified by `request.jwtVerify`, so the app's @fastify/jwt configuration
// (algorithms, `trusted` deny-lists, `formatUser`, secret providers) applies to
// every mode alike; the token reaches it through `extractToken`.
import { randomBytes } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { FastifyJwtVerifyOptions, UserType, VerifyPayloadType } from '@fastify/jwt'
import {
  FRT_ERR_AUTH_KEY_PROVIDER, FRT_ERR_AUTH_TICKET_INVALID, FRT_ERR_AUTH_TOKEN_EXPIRED, FRT_ERR_AUTH_TOKEN_INVALID, FRT_ERR_AUTH_TOKEN_MISSING,
  FRT_ERR_ROUTE_INVALID
} from './errors.js'
import { CloseCode } from './protocol.js'
import { Deadlines } from './deadlines.js'
import { findToken, isTokenFault } from './token.js'
import { isSseRequest, isStreamRequest } from './transport.js'
import { userKey, type ResolvedOptions } from './options.js'
import type { AuthMode, RouteAuth } from '../types/auth.js'
import type { ConnectionRequest } from '../types/route.js'

/** What auth needs of a connection. */
export interface AuthedConnection {
  /** The whole upgrade request on a route with auth (lib/pipeline.ts keeps it for token refreshes). */
  readonly request: ConnectionRequest
  readonly user: UserType | undefined
  readonly closed: boolean
  /** Written only here: set by admit/awaitAuthFrame, null once closed. */
  auth: ConnectionAuth | null
  close (code: number, reason: string): void
}

/**
 * Called when a connection's deadline comes: `awaitingAuthFrame` when its `auth` frame never
 * came, else when its token expired. lib/pipeline.ts decides the close code.
 */
export type DeadlineReached = (conn: AuthedConnection, awaitingAuthFrame: boolean) => void

/** What a token refresh came to, when the token itself verified. */
export type RefreshVerdict = 'refreshed' | 'other-user' | 'closed'

/** A route's auth, normalized once when it is declared. */
export interface RouteAuthConfig {
  readonly mode: AuthMode
  readonly query: boolean
}

/** Auth state of one connection (`conn.auth`). */
export interface ConnectionAuth {
  /** True on a first-message route until its `auth` frame is verified. */
  waiting: boolean
  /** The user's key in the index, once known. */
  userKey: string | undefined
  /** Bumped whenever the connection's deadline is superseded. */
  generation: number
  /** Whether a current (not superseded) deadline is in the heap. */
  scheduled: boolean
}

const kToken = Symbol('fastify-realtime.token')
const kExp = Symbol('fastify-realtime.exp')
type TokenRequest = FastifyRequest & { [kToken]?: string, [kExp]?: number }

// One options object for every verification: the token rides on the request.
const VERIFY_OPTIONS = {
  verify: { extractToken: (request: FastifyRequest) => (request as TokenRequest)[kToken] }
} as unknown as FastifyJwtVerifyOptions

/** The auth state of every anonymous connection on a route without auth: never written (lib/pipeline.ts only reads `waiting`). */
const ANONYMOUS: ConnectionAuth = Object.freeze({ waiting: false, userKey: undefined, generation: 0, scheduled: false }) as ConnectionAuth

// When the prune of superseded deadlines pays for itself.
const PRUNE_SLACK = 1024

// Tickets: 144 random bits, as session ids; at most this many unused at once (the oldest go first).
const TICKET_BYTES = 18
const MAX_TICKETS = 65_536

/** A stream ticket: who asked for it, until when. */
interface Ticket { user: UserType | undefined, exp: number | undefined, expiresAt: number }

export function normalizeRouteAuth (path: string, auth: RouteAuth | undefined | false): RouteAuthConfig | null {
  if (auth === undefined || auth === false) return null
  // Token sources and the like are plugin options: a route that sets them would be silently ignored.
  for (const key of typeof auth === 'object' && auth !== null ? Object.keys(auth) : []) {
    if (key !== 'mode' && key !== 'query') {
      throw new FRT_ERR_ROUTE_INVALID(path, `"auth.${key}" is not a route option (a route's auth takes mode and query; set ${key} in the plugin's auth options)`)
    }
  }
  const { mode = 'handshake', query = false } = typeof auth === 'string' ? { mode: auth } : auth
  if (mode !== 'handshake' && mode !== 'message') {
    throw new FRT_ERR_ROUTE_INVALID(path, '"auth" must be "handshake", "message" or { mode, query }')
  }
  if (typeof query !== 'boolean') throw new FRT_ERR_ROUTE_INVALID(path, '"auth.query" must be a boolean')
  if (query && mode === 'message') {
    throw new FRT_ERR_ROUTE_INVALID(path, '"auth.query" applies to handshake auth only')
  }
  return Object.freeze({ mode, query })
}

export class Auth {
  readonly options: ResolvedOptions['auth']
  /** userId -> open connections; the cluster-wide revoke publishes an id and each node closes its own. */
  readonly users = new Map<string, Set<AuthedConnection>>()
  readonly deadlines = new Deadlines<AuthedConnection>((conn, generation) => this.expire(conn, generation))
  /** Connections with a current deadline, to know when superseded entries are worth pruning. */
  current = 0
  readonly #deadlineReached: DeadlineReached
  /** Unused stream tickets, oldest first (one lifetime for all, so also soonest to expire first). */
  readonly #tickets = new Map<string, Ticket>()

  constructor (options: ResolvedOptions['auth'], deadlineReached: DeadlineReached) {
    this.options = options
    this.#deadlineReached = deadlineReached
  }

  /** The route `onRequest` hook of handshake auth: HTTP 401 before the upgrade on any failure. */
  handshake (routeAuth: RouteAuthConfig): (request: FastifyRequest) => Promise<void> {
    const options = this.options
    const tickets = this
    return async function verifyHandshake (request) {
      if (!request.ws && !isSseRequest(request)) return
      // An EventSource cannot send headers: a stream may be opened with a ticket instead.
      const ticket = isStreamRequest(request) ? (request.query as { ticket?: unknown } | null)?.ticket : undefined
      if (typeof ticket === 'string') {
        if (!tickets.redeemTicket(request, ticket)) throw new FRT_ERR_AUTH_TICKET_INVALID()
        return
      }
      const token = findToken(request, options, routeAuth.query)
      if (token === undefined) throw new FRT_ERR_AUTH_TOKEN_MISSING()
      await verify(request, token)
    }
  }

  /** A single-use ticket for opening a stream as the request's (authenticated) user, valid `auth.ticketTtl` ms. */
  issueTicket (request: FastifyRequest): { ticket: string, expiresIn: number } {
    const tickets = this.#tickets
    const now = Date.now()
    for (const [key, ticket] of tickets) {
      if (ticket.expiresAt > now && tickets.size < MAX_TICKETS) break
      tickets.delete(key)
    }
    const ticket = randomBytes(TICKET_BYTES).toString('base64url')
    const user = (request as { user?: UserType }).user
    tickets.set(ticket, { user, exp: (request as TokenRequest)[kExp], expiresAt: now + this.options.ticketTtl })
    return { ticket, expiresIn: this.options.ticketTtl }
  }

  /** Spends a ticket: the request becomes its user's, with its token's expiry. False when unknown, used or expired. */
  redeemTicket (request: FastifyRequest, key: string): boolean {
    const ticket = this.#tickets.get(key)
    if (ticket === undefined) return false
    this.#tickets.delete(key)
    if (ticket.expiresAt <= Date.now()) return false
    ;(request as { user?: UserType }).user = ticket.user
    ;(request as TokenRequest)[kExp] = ticket.exp
    return true
  }

  userKey (user: UserType | undefined): string | undefined {
    return userKey(this.options.userId, user)
  }

  /** A connection is open and authenticated as far as it will be: its user, if any, is indexed, its token's expiry scheduled. */
  admit (conn: AuthedConnection): void {
    // Anonymous (a route without auth, no user set by the app's hooks): nothing to index or schedule, ever (an
    // `auth` frame is unknown_type there), so every such connection shares one frozen state.
    if (conn.user === undefined) {
      conn.auth = ANONYMOUS
      return
    }
    conn.auth = { waiting: false, userKey: undefined, generation: 0, scheduled: false }
    this.authenticated(conn)
  }

  /** A connection on a first-message route: it has `auth.timeout` to send its `auth` frame. */
  awaitAuthFrame (conn: AuthedConnection): void {
    conn.auth = { waiting: true, userKey: undefined, generation: 0, scheduled: false }
    this.schedule(conn, Date.now() + this.options.timeout)
  }

  /**
   * Verifies the token of a first `auth` frame. Resolves true once the connection is authenticated,
   * false when it closed meanwhile; rejects as `verify` does.
   */
  async verifyAuthFrame (conn: AuthedConnection, token: string): Promise<boolean> {
    await verify(conn.request as FastifyRequest, token)
    if (conn.closed || conn.auth === null) return false
    conn.auth.waiting = false
    this.authenticated(conn)
    return true
  }

  /** An `auth` frame on an authenticated connection: a newer token of the same user extends it. Rejects as `verify` does. */
  async refresh (conn: AuthedConnection, token: string): Promise<RefreshVerdict> {
    const request = conn.request as TokenRequest & { user?: UserType }
    const previous = request.user
    const previousExp = request[kExp]
    await verify(conn.request as FastifyRequest, token)
    if (conn.closed || conn.auth === null) return 'closed'
    if (this.userKey(request.user) !== conn.auth.userKey) {
      request.user = previous
      request[kExp] = previousExp
      return 'other-user'
    }
    this.scheduleExpiry(conn)
    return 'refreshed'
  }

  /** The `exp` (seconds) of the connection's token, as acked to an `auth` frame; null when it has none. */
  expiryOf (conn: AuthedConnection): number | null {
    return expOf(conn)
  }

  closed (conn: AuthedConnection): void {
    const state = conn.auth
    // Cannot happen today (admit/awaitAuthFrame set conn.auth on every connection, ws emits 'close' once); a second call stays harmless.
    /* c8 ignore next */
    if (state === null) return
    conn.auth = null
    this.unschedule(state)
    if (state.userKey !== undefined) {
      const set = this.users.get(state.userKey) as Set<AuthedConnection>
      set.delete(conn)
      if (set.size === 0) this.users.delete(state.userKey)
    }
  }

  /** Closes every local connection of a user with 4401; returns how many. */
  disconnectUser (id: string | number, reason = 'Access revoked'): number {
    const set = this.users.get(String(id))
    if (set === undefined) return 0
    // A socket already closing stays in the index until its close completes; it is not counted again.
    let closed = 0
    for (const conn of set) {
      if (conn.closed) continue
      conn.close(CloseCode.Unauthorized, reason)
      closed++
    }
    return closed
  }

  close (): void {
    this.#tickets.clear()
    this.deadlines.clear()
    this.current = 0
  }

  authenticated (conn: AuthedConnection): void {
    const state = conn.auth as ConnectionAuth
    const key = this.userKey(conn.user)
    state.userKey = key
    if (key !== undefined) {
      let set = this.users.get(key)
      if (set === undefined) this.users.set(key, set = new Set())
      set.add(conn)
    }
    this.scheduleExpiry(conn)
  }

  /** Replaces the connection's deadline by its token's `exp` plus grace, or by none when the token has no `exp`. */
  scheduleExpiry (conn: AuthedConnection): void {
    const exp = expOf(conn)
    if (exp === null) {
      this.unschedule(conn.auth as ConnectionAuth)
    } else {
      this.schedule(conn, exp * 1000 + this.options.grace)
    }
  }

  schedule (conn: AuthedConnection, at: number): void {
    const state = conn.auth as ConnectionAuth
    this.unschedule(state)
    state.scheduled = true
    this.current++
    const deadlines = this.deadlines
    if (deadlines.size > 2 * this.current + PRUNE_SLACK) {
      deadlines.prune((c, generation) => c.auth !== null && c.auth.scheduled && c.auth.generation === generation)
    }
    deadlines.add(at, conn, state.generation)
  }

  /** Makes the connection's heap entry, if any, stale. */
  unschedule (state: ConnectionAuth): void {
    if (!state.scheduled) return
    state.scheduled = false
    state.generation++
    this.current--
  }

  // A deadline came due: the `auth` frame never came (4408), or the token expired (4401).
  expire (conn: AuthedConnection, generation: number): void {
    const state = conn.auth
    if (state === null || !state.scheduled || state.generation !== generation) return
    this.unschedule(state)
    this.#deadlineReached(conn, state.waiting)
  }
}

function expOf (conn: AuthedConnection): number | null {
  const exp = (conn.user as { exp?: unknown } | undefined)?.exp ?? (conn.request as TokenRequest)[kExp]
  return typeof exp === 'number' ? exp : null
}

/**
 * Verifies `token` with the app's @fastify/jwt and sets `request.user`.
 * Failures become coded 401 errors; anything else (a failing secret provider)
 * is not the client's fault and keeps its own status.
 */
async function verify (request: FastifyRequest, token: string): Promise<void> {
  const req = request as TokenRequest
  req[kToken] = token
  try {
    await request.jwtVerify(VERIFY_OPTIONS)
  } catch (err) {
    const { code } = err as { code?: string }
    if (code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED') throw new FRT_ERR_AUTH_TOKEN_EXPIRED()
    // Any verification failure is the token's (401); only the key provider's is ours (500, says so).
    if (isTokenFault(err)) throw new FRT_ERR_AUTH_TOKEN_INVALID()
    throw new FRT_ERR_AUTH_KEY_PROVIDER((err as Error)?.message, { cause: err })
  } finally {
    req[kToken] = undefined
  }
  // `formatUser` may drop `exp`; the verified token still has it.
  if (typeof (request.user as { exp?: unknown } | null)?.exp !== 'number') {
    const exp = (request.server.jwt.decode<VerifyPayloadType & { exp?: unknown }>(token))?.exp
    req[kExp] = typeof exp === 'number' ? exp : undefined
  } else {
    req[kExp] = undefined
  }
}

/** The token of an `auth` frame's data; undefined when missing or empty. */
export function tokenOf (data: unknown): string | undefined {
  const token = (data as { token?: unknown } | null)?.token
  return typeof token === 'string' && token !== '' ? token : undefined
}
