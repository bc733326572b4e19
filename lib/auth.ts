// Authentication of real-time connections, on top of @fastify/jwt: the
// handshake hook, first-message auth, token expiry and in-band refresh, and the
// userId -> connections index behind `disconnectUser`. Tokens are always
// verified by `request.jwtVerify`, so the app's @fastify/jwt configuration
// (algorithms, `trusted` deny-lists, `formatUser`, secret providers) applies to
// every mode alike; the token reaches it through `extractToken`.
import type { FastifyRequest } from 'fastify'
import type { FastifyJwtVerifyOptions, UserType, VerifyPayloadType } from '@fastify/jwt'
import type { RawData } from 'ws'
import {
  FRT_ERR_AUTH_KEY_PROVIDER, FRT_ERR_AUTH_TOKEN_EXPIRED, FRT_ERR_AUTH_TOKEN_INVALID, FRT_ERR_AUTH_TOKEN_MISSING, FRT_ERR_ROUTE_INVALID
} from './errors.js'
import { CloseCode, ErrorCode, MessageType, ProtocolError, parse, serializeAck, type InboundMessage } from './protocol.js'
import { Deadlines } from './deadlines.js'
import { findToken, isTokenFault } from './token.js'
import { userKey, type ResolvedOptions } from './options.js'
import type { RealtimeConnection } from './connection.js'
import type { AuthMode, RouteAuth } from '../types/auth.js'

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

// When the prune of superseded deadlines pays for itself.
const PRUNE_SLACK = 1024

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
  readonly users = new Map<string, Set<RealtimeConnection>>()
  readonly deadlines = new Deadlines<RealtimeConnection>((conn, generation) => this.expire(conn, generation))
  /** Connections with a current deadline, to know when superseded entries are worth pruning. */
  current = 0

  constructor (options: ResolvedOptions['auth']) {
    this.options = options
  }

  /** The route `onRequest` hook of handshake auth: HTTP 401 before the upgrade on any failure. */
  handshake (route: RouteAuthConfig): (request: FastifyRequest) => Promise<void> {
    const options = this.options
    return async function verifyHandshake (request) {
      if (!request.ws) return
      const token = findToken(request, options, route.query)
      if (token === undefined) throw new FRT_ERR_AUTH_TOKEN_MISSING()
      await verify(request, token)
    }
  }

  userKey (user: UserType | undefined): string | undefined {
    return userKey(this.options.userId, user)
  }

  /**
   * A connection was accepted. Returns true when it must now send its `auth`
   * frame (its onOpen waits until then); otherwise its user, if any, is
   * indexed and its token's expiry scheduled.
   */
  accept (conn: RealtimeConnection, mode: AuthMode | undefined): boolean {
    const state: ConnectionAuth = { waiting: mode === 'message', userKey: undefined, generation: 0, scheduled: false }
    conn.auth = state
    if (state.waiting) {
      this.schedule(conn, Date.now() + this.options.timeout)
      return true
    }
    this.authenticated(conn)
    return false
  }

  /** A frame on a first-message route before its `auth` frame succeeded. */
  firstFrame (conn: RealtimeConnection, raw: RawData, isBinary: boolean): void {
    const msg = isBinary ? null : parse(raw.toString())
    if (msg === null || msg instanceof ProtocolError || msg.type !== MessageType.Auth) {
      conn.close(CloseCode.Unauthorized, 'The first message must be "auth"')
      return
    }
    const token = tokenOf(msg.data)
    if (token === undefined) {
      conn.close(CloseCode.Unauthorized, 'The auth message needs data.token')
      return
    }
    // Frames behind the auth frame wait for its outcome, in order.
    conn.pending = []
    verify(conn.request, token).then(() => {
      if (conn.closed || conn.auth === null) return
      conn.auth.waiting = false
      this.authenticated(conn)
      this.ack(conn, msg)
      conn.route.open(conn)
    }, (err: unknown) => {
      conn.pending = null
      if (statusOf(err) === 401) {
        conn.close(CloseCode.Unauthorized, (err as Error).message)
      } else {
        conn.log.error({ err }, 'real-time auth failed')
        conn.close(CloseCode.ServerError, 'Internal error')
      }
    })
  }

  /** An `auth` frame on an authenticated connection: a newer token extends it. */
  refresh (conn: RealtimeConnection, msg: InboundMessage): void {
    const token = tokenOf(msg.data)
    if (token === undefined) {
      conn.error({ code: ErrorCode.InvalidData, message: 'The auth message needs data.token' }, msg.id)
      return
    }
    const request = conn.request as TokenRequest & { user?: UserType }
    const previous = request.user
    const previousExp = request[kExp]
    verify(conn.request, token).then(() => {
      if (conn.closed || conn.auth === null) return
      if (this.userKey(request.user) !== conn.auth.userKey) {
        request.user = previous
        request[kExp] = previousExp
        conn.error({ code: ErrorCode.Unauthorized, message: 'The token is for another user' }, msg.id)
        return
      }
      this.scheduleExpiry(conn)
      this.ack(conn, msg)
    }, (err: unknown) => {
      if (statusOf(err) !== 401) conn.log.error({ err }, 'real-time auth refresh failed')
      conn.error(statusOf(err) === 401
        ? { code: ErrorCode.Unauthorized, message: (err as Error).message }
        : { code: ErrorCode.Internal, message: 'Internal server error' }, msg.id)
    })
  }

  closed (conn: RealtimeConnection): void {
    const state = conn.auth
    // Cannot happen today (accept() sets conn.auth on every connection, ws emits 'close' once); a second call stays harmless.
    /* c8 ignore next */
    if (state === null) return
    conn.auth = null
    this.unschedule(state)
    if (state.userKey !== undefined) {
      const set = this.users.get(state.userKey) as Set<RealtimeConnection>
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
    this.deadlines.clear()
    this.current = 0
  }

  authenticated (conn: RealtimeConnection): void {
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
  scheduleExpiry (conn: RealtimeConnection): void {
    const exp = expOf(conn)
    if (exp === null) {
      this.unschedule(conn.auth as ConnectionAuth)
    } else {
      this.schedule(conn, exp * 1000 + this.options.grace)
    }
  }

  schedule (conn: RealtimeConnection, at: number): void {
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
  expire (conn: RealtimeConnection, generation: number): void {
    const state = conn.auth
    if (state === null || !state.scheduled || state.generation !== generation) return
    this.unschedule(state)
    if (state.waiting) {
      conn.close(CloseCode.Timeout, 'No auth message in time')
    } else {
      conn.close(CloseCode.Unauthorized, 'Token expired')
    }
  }

  ack (conn: RealtimeConnection, msg: InboundMessage): void {
    conn.send(serializeAck(msg.id, { exp: expOf(conn) }))
  }
}

function expOf (conn: RealtimeConnection): number | null {
  const exp = (conn.user as { exp?: unknown } | undefined)?.exp ?? (conn.request as TokenRequest)[kExp]
  return typeof exp === 'number' ? exp : null
}

function statusOf (err: unknown): number | undefined {
  return (err as { statusCode?: number } | null)?.statusCode
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

function tokenOf (data: unknown): string | undefined {
  const token = (data as { token?: unknown } | null)?.token
  return typeof token === 'string' && token !== '' ? token : undefined
}
