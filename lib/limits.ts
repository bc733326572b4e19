// Message rate limits. Per-connection buckets live on the connection itself
// (two numbers each, no map lookup on the hot path); limits shared between
// connections (per user, per IP, per anything) go through a RateLimitStore so
// that the Redis store can make them cluster-wide.
import { FRT_ERR_RATE_LIMITED, FRT_ERR_ROUTE_INVALID } from './errors.js'
import { TokenBucket } from './bucket.js'
import { CloseCode, ErrorCode, type InboundMessage } from './protocol.js'
import type { RateLimitResult, RateLimitStore } from '../types/store.js'
import type { LimitSpec, KeyedLimitSpec, MessageLimitOptions, RouteLimitOptions } from '../types/limits.js'
import type { RealtimeConnection } from './connection.js'
import { userKey, type ResolvedOptions } from './options.js'
import type { FastifyBaseLogger } from 'fastify'
import type { UserType } from '@fastify/jwt'

/** The per-connection rate-limit state; created lazily, dropped with the connection. */
export class ConnectionLimits {
  readonly messages: TokenBucket
  /** Refused messages tolerated before 4429; refills at one per second. */
  readonly budget: TokenBucket
  /** Per-message-type buckets, only for types that declare their own limit. */
  types: Map<string, TokenBucket> | null = null

  constructor (burst: number, budget: number, now: number) {
    this.messages = new TokenBucket(burst, now)
    this.budget = new TokenBucket(budget, now)
  }
}

export interface ResolvedLimits {
  readonly rate: number
  readonly burst: number
  readonly budget: number
}

const now = (): number => performance.now()

/**
 * Checks one inbound message against the connection-wide bucket and, when the
 * message type has one, its own bucket. Returns 0 when allowed, else retryAfter ms.
 */
export function checkMessage (
  conn: RealtimeConnection, limits: ResolvedLimits, type: string, typeLimit: LimitSpec | undefined, cost: number
): number {
  const t = now()
  let state = conn.limits
  if (state === null) {
    state = new ConnectionLimits(limits.burst, limits.budget, t)
    conn.limits = state
  }
  if (typeLimit !== undefined) {
    state.types ??= new Map()
    let bucket = state.types.get(type)
    if (bucket === undefined) {
      bucket = new TokenBucket(typeLimit.burst, t)
      state.types.set(type, bucket)
    }
    // Peek the connection bucket first so that a refusal by one consumes from neither.
    const shared = state.messages.take(t, limits.rate, limits.burst, cost)
    if (shared !== 0) return shared
    const own = bucket.take(t, typeLimit.rate, typeLimit.burst, 1)
    if (own !== 0) state.messages.tokens += cost
    return own
  }
  return state.messages.take(t, limits.rate, limits.burst, cost)
}

/** Spends one unit of the over-limit budget; true when it is exhausted and the connection must close. */
export function spendBudget (conn: RealtimeConnection, limits: ResolvedLimits): boolean {
  return (conn.limits as ConnectionLimits).budget.take(now(), 1, limits.budget, 1) !== 0
}

/** The error `conn.consume` throws when an action is over its limit; the client sees `rate_limited`. */
export function rateLimited (retryAfter: number): Error {
  return Object.assign(new FRT_ERR_RATE_LIMITED(), { retryAfter })
}

/** The key of a connection for a keyed limit: its user id, its IP, or the app's function of it. */
export function limitKey (conn: RealtimeConnection, key: KeyedLimitSpec['key'], userId: (user: UserType) => unknown): string | undefined {
  if (typeof key === 'function') return key(conn)
  const id = key === 'user' ? userKey(userId, conn.user) : undefined
  return id === undefined ? `ip:${conn.request.ip}` : `user:${id}`
}

function checkSpec (path: string, where: string, spec: unknown, partial: boolean): void {
  if (typeof spec !== 'object' || spec === null) throw new FRT_ERR_ROUTE_INVALID(path, `${where} must be an object or false`)
  for (const field of ['rate', 'burst', 'cost'] as const) {
    const value = (spec as Record<string, unknown>)[field]
    if (value === undefined && (partial || field === 'cost')) continue
    if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
      throw new FRT_ERR_ROUTE_INVALID(path, `${where}.${field} must be a positive number`)
    }
  }
}

interface TypeLimit { spec: LimitSpec | undefined, cost: number }

/**
 * One route's limits, resolved at declaration: the connection-wide bucket
 * (plugin options, overridden by the route), per-type buckets and costs, and
 * an optional limit shared through the store.
 */
export class RouteLimiter {
  readonly limits: ResolvedLimits
  readonly shared: KeyedLimitSpec | null
  readonly types = new Map<string, TypeLimit>()
  readonly store: RateLimitStore
  readonly namespace: string
  readonly userId: (user: UserType) => unknown

  constructor (path: string, options: ResolvedOptions, route: RouteLimitOptions | undefined,
    messages: Record<string, { rateLimit?: MessageLimitOptions }>, store: RateLimitStore) {
    const base = options.rateLimit as Exclude<ResolvedOptions['rateLimit'], false>
    if (route !== undefined) checkSpec(path, 'rateLimit', route, true)
    this.limits = {
      rate: route?.rate ?? base.rate,
      burst: route?.burst ?? base.burst,
      budget: base.budget
    }
    if (route?.shared !== undefined) {
      checkSpec(path, 'rateLimit.shared', route.shared, false)
      const key = route.shared.key
      if (key !== 'user' && key !== 'ip' && typeof key !== 'function') {
        throw new FRT_ERR_ROUTE_INVALID(path, 'rateLimit.shared.key must be "user", "ip" or a function')
      }
    }
    this.shared = route?.shared ?? null
    for (const [type, message] of Object.entries(messages)) {
      const limit = message.rateLimit
      if (limit === undefined) continue
      checkSpec(path, `messages.${type}.rateLimit`, limit, true)
      if ((limit.rate === undefined) !== (limit.burst === undefined)) {
        throw new FRT_ERR_ROUTE_INVALID(path, `messages.${type}.rateLimit needs both rate and burst, or neither`)
      }
      this.types.set(type, {
        spec: limit.rate === undefined ? undefined : { rate: limit.rate, burst: limit.burst as number },
        cost: limit.cost ?? 1
      })
    }
    this.store = store
    this.namespace = `route:${path}`
    this.userId = options.auth.userId
  }

  /** Checks a parsed message; when refused, replies and returns true (and closes past the budget). */
  refuse (conn: RealtimeConnection, msg: InboundMessage): boolean {
    const type = this.types.get(msg.type)
    const retryAfter = checkMessage(conn, this.limits, msg.type, type?.spec, type?.cost ?? 1)
    if (retryAfter === 0) return false
    this.refused(conn, retryAfter, msg.id)
    return true
  }

  refused (conn: RealtimeConnection, retryAfter: number, id: string | number | undefined): void {
    conn.hub.counters.rateLimited++
    conn.error({ code: ErrorCode.RateLimited, message: 'Too many messages', retryAfter }, id)
    if (spendBudget(conn, this.limits)) conn.close(CloseCode.TooManyRequests, 'Rate limit exceeded')
  }

  /**
   * Takes from the shared bucket, then calls `proceed` (at once when the store
   * answers synchronously). When the store fails, the message is let through and
   * the failure logged: an outage of the store must not silence every client.
   */
  takeShared (conn: RealtimeConnection, msg: InboundMessage, log: FastifyBaseLogger,
    proceed: () => void, done: () => void): void {
    const shared = this.shared as KeyedLimitSpec
    const key = limitKey(conn, shared.key, this.userId)
    if (key === undefined) {
      proceed()
      return
    }
    const onResult = (result: RateLimitResult): void => {
      if (result.allowed) proceed()
      else this.refused(conn, result.retryAfter, msg.id)
    }
    let result: RateLimitResult | Promise<RateLimitResult>
    try {
      result = this.store.take(`${this.namespace}:${key}`, shared.rate, shared.burst, this.types.get(msg.type)?.cost ?? 1)
    } catch (err) {
      result = Promise.reject(err)
    }
    if (!(result instanceof Promise)) {
      onResult(result)
      return
    }
    conn.pending ??= []
    result.then(onResult, (err: unknown) => {
      conn.hub.counters.rateLimitErrors++
      log.warn({ err }, 'rate-limit store failed; message let through')
      proceed()
    }).finally(done)
  }
}
