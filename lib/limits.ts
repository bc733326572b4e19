// Message rate limits. Per-connection buckets live on the connection itself
// (two numbers each, no map lookup on the hot path); limits shared between
// connections (per user, per IP, per anything) go through a RateLimitStore so
// that the Redis store can make them cluster-wide.
import { FRT_ERR_RATE_LIMITED, FRT_ERR_ROUTE_INVALID } from './errors.js'
import { TokenBucket } from './bucket.js'
import { coarseNow } from './clock.js'
import type { Verdict } from './verdict.js'
import type { RateLimitResult, RateLimitStore } from '../types/store.js'
import type { LimitSpec, KeyedLimitSpec, MessageLimitOptions, RouteLimitOptions } from '../types/limits.js'
import type { Connection } from '../types/route.js'
import { userKey, type ResolvedOptions } from './options.js'
import type { UserType } from '@fastify/jwt'

/** What limits need of a connection: what a key function sees, and where its buckets are kept. */
export interface LimitedConnection extends Connection {
  /** Made on the first message by checkMessage; null before. */
  limits: ConnectionLimits | null
}

/**
 * The per-connection rate-limit state; created lazily, dropped with the connection. It is itself the
 * connection-wide bucket (one object per connection, not three): the budget's bucket is made on the first
 * refusal (full, as it would be by then), the per-type buckets for types that declare their own limit.
 */
export class ConnectionLimits extends TokenBucket {
  /** Refused messages tolerated before 4429; refills at one per second. Null until the first refusal. */
  budget: TokenBucket | null = null
  /** Per-message-type buckets, only for types that declare their own limit. */
  types: Map<string, TokenBucket> | null = null
}

export interface ResolvedLimits {
  readonly rate: number
  readonly burst: number
  readonly budget: number
}

// The buckets' clock: coarse, updated by a timer while frames arrive (lib/clock.ts), not read per message.
const now = coarseNow

/**
 * Checks one inbound message against the connection-wide bucket and, when the
 * message type has one, its own bucket. Returns 0 when allowed, else retryAfter ms.
 */
export function checkMessage (
  conn: LimitedConnection, limits: ResolvedLimits, type: string, typeLimit: LimitSpec | undefined, cost: number
): number {
  const t = now()
  let state = conn.limits
  if (state === null) {
    state = new ConnectionLimits(limits.burst, t)
    conn.limits = state
  }
  if (typeLimit !== undefined) {
    state.types ??= new Map()
    let bucket = state.types.get(type)
    if (bucket === undefined) {
      bucket = new TokenBucket(typeLimit.burst, t)
      state.types.set(type, bucket)
    }
    // Take from the connection bucket first, and give its tokens back when the type's own bucket
    // refuses, so that a refusal by either consumes from neither.
    const shared = state.take(t, limits.rate, limits.burst, cost)
    if (shared !== 0) return shared
    const own = bucket.take(t, typeLimit.rate, typeLimit.burst, 1)
    if (own !== 0) state.tokens += cost
    return own
  }
  return state.take(t, limits.rate, limits.burst, cost)
}

/** Spends one unit of the over-limit budget (only lib/pipeline.ts calls it); true when it is exhausted and the connection must close. */
export function spendBudget (conn: LimitedConnection, limits: ResolvedLimits): boolean {
  const state = conn.limits as ConnectionLimits
  const t = now()
  state.budget ??= new TokenBucket(limits.budget, t)
  return state.budget.take(t, 1, limits.budget, 1) !== 0
}

/** The error `conn.consume` throws when an action is over its limit; the client sees `rate_limited`. */
export function rateLimited (retryAfter: number): Error {
  return Object.assign(new FRT_ERR_RATE_LIMITED(), { retryAfter })
}

/** The key of a connection for a keyed limit: its user id, its IP, or the app's function of it. */
export function limitKey (conn: LimitedConnection, key: KeyedLimitSpec['key'], userId: (user: UserType) => unknown): string | undefined {
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

  constructor (path: string, options: ResolvedOptions, routeLimit: RouteLimitOptions | undefined,
    messages: Record<string, { rateLimit?: MessageLimitOptions }>, store: RateLimitStore) {
    const base = options.rateLimit as Exclude<ResolvedOptions['rateLimit'], false>
    if (routeLimit !== undefined) checkSpec(path, 'rateLimit', routeLimit, true)
    this.limits = {
      rate: routeLimit?.rate ?? base.rate,
      burst: routeLimit?.burst ?? base.burst,
      budget: base.budget
    }
    if (routeLimit?.shared !== undefined) {
      checkSpec(path, 'rateLimit.shared', routeLimit.shared, false)
      const key = routeLimit.shared.key
      if (key !== 'user' && key !== 'ip' && typeof key !== 'function') {
        throw new FRT_ERR_ROUTE_INVALID(path, 'rateLimit.shared.key must be "user", "ip" or a function')
      }
    }
    this.shared = routeLimit?.shared ?? null
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

  /** The connection-wide and per-type buckets: 0 when the message may pass, else retryAfter in ms. */
  check (conn: LimitedConnection, type: string): number {
    const own = this.types.get(type)
    return checkMessage(conn, this.limits, type, own?.spec, own?.cost ?? 1)
  }

  /**
   * Takes from the shared bucket in the store: null when the connection has no key (let through),
   * else the store's answer, now or later. A store that threw answers with a rejected promise.
   */
  takeShared (conn: LimitedConnection, type: string): Verdict<RateLimitResult> | null {
    const shared = this.shared as KeyedLimitSpec
    const key = limitKey(conn, shared.key, this.userId)
    if (key === undefined) return null
    try {
      return this.store.take(`${this.namespace}:${key}`, shared.rate, shared.burst, this.types.get(type)?.cost ?? 1)
    } catch (err) {
      return Promise.reject(err)
    }
  }
}
