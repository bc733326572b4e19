import type { LimitSpec } from './limits.js'
import type { RateLimitResult } from './store.js'
import type { FastifyInstance } from 'fastify'
import type { EmitsOf, RouteDefinition, SchemaMap } from './route.js'
import type { Presence, RoomEmitter } from './rooms.js'
import type { RealtimeInspect } from './observability.js'
import type { RouteAuth } from './auth.js'

/** Counters since the plugin was registered. */
export interface RealtimeStats {
  /** Open connections now. */
  connections: number
  /** Frames received. */
  messagesIn: number
  /** Frames sent (events, acks, errors, pongs). */
  messagesOut: number
  /** Invalid frames (bad JSON, bad envelope, unknown type, schema violation). */
  protocolErrors: number
  /** Handlers (and onOpen/onClose hooks) that threw or rejected. */
  handlerErrors: number
  /** Messages refused by a rate limit. */
  rateLimited: number
  /** Rate-limit store failures (messages let through). */
  rateLimitErrors: number
  /** Rooms with at least one member on this instance now. */
  rooms: number
  /** Room memberships on this instance now, summed over rooms. */
  members: number
  /** Connections terminated for missing a heartbeat pong. */
  heartbeatTerminations: number
  /** Connections closed with 4008 as slow consumers. */
  slowConsumerCloses: number
  /** Volatile room messages skipped for a member over the soft limit. */
  volatileDrops: number
  /** Latest messages replaced by a newer one of the same key before a member that was behind could read them. */
  conflated: number
  /** Fan-out backend operations that failed or timed out (0 with the in-memory adapter). */
  adapterErrors: number
  /** Broadcasts not handed to the other instances because the backend was down or backed up. */
  adapterDropped: number
  /** Messages on the backend's channels that were not valid envelopes, dropped. */
  adapterInvalid: number
  /** With `RedisAdapter`: broadcasts Redis accepted, and the seconds they waited for it, summed. */
  adapterPublishes?: number
  adapterPublishSeconds?: number
  /** With `RedisAdapter`: broadcasts Redis refused or that failed on the way (also in `adapterErrors`). */
  adapterPublishFailures?: number
  /** With `RedisAdapter`: subscriptions made again after its subscriber connection came back. */
  adapterResubscribes?: number
  /** Joins (and resumed rooms) with `since` whose missed messages were replayed. */
  joinsRecovered: number
  /** Joins (and resumed rooms) with `since` told `recovered: false`. */
  joinsNotRecovered: number
  /** Room messages replayed to members. */
  replayedMessages: number
  /** Gaps in a room's subscription filled from the history (Redis). */
  backfills: number
  /** Gaps in a room's subscription that could not be filled (history lost or trimmed). */
  backfillGaps: number
  /** Sessions resumed. */
  sessionsResumed: number
  /** Resume attempts refused (unknown, used, expired token, another user). */
  sessionsRefused: number
  /** History store failures (the join is acked `recovered: false`). */
  historyErrors: number
  /** Session store failures (the connection starts a fresh session). */
  sessionErrors: number
  /** Sessions waiting for their client to come back on this instance now. */
  detachedSessions: number
}

/** `app.realtime`: declares routes when called, and carries the plugin's API. */
export interface RealtimeDecorator {
  /** Declares a real-time route on this (encapsulated) instance; returns the instance. */
  <In extends SchemaMap, Emits extends SchemaMap = {}, A extends RouteAuth | undefined = undefined>(
    this: FastifyInstance, path: string, definition: RouteDefinition<In, Emits, A>): FastifyInstance
  /** A snapshot of the counters. */
  stats (): RealtimeStats
  /**
   * Takes `cost` (default 1) from the bucket `key` of the plugin's rate-limit store (shared by every
   * instance on a RedisStore): the same machinery as message limits, for the app's own actions.
   * Always allowed when the plugin's `rateLimit` is false.
   */
  rateLimit (key: string, limit: LimitSpec & { cost?: number }): Promise<RateLimitResult>
  /**
   * Sends to a room from anywhere (handlers, HTTP routes, jobs). Untyped by default; pass a route
   * definition to type it: `app.realtime.to<typeof chat>('lobby').emit('said', ...)`. Unlike `conn.to`,
   * it cannot check the payload against a route's schema. Throws FRT_ERR_ROOM_NAME on a bad name.
   */
  to<R = unknown>(room: string): RoomEmitter<EmitsOf<R> extends never ? SchemaMap : EmitsOf<R>>
  /**
   * The members of a room: on every instance when the fan-out adapter keeps presence (RedisAdapter,
   * MemoryAdapter on a shared bus), else on this one. While Redis is unreachable, this instance's only.
   */
  presence (room: string): Promise<Presence>
  /**
   * Closes every connection of a user with 4401 (default reason "Access revoked"): on this instance at once,
   * and on every other instance through the fan-out adapter, asynchronously. Returns how many it closed here.
   * The id is what `auth.userId` returns (default `sub`, else `id`), compared as a string.
   */
  disconnectUser (id: string | number, reason?: string): number
  /** The AsyncAPI 3.0 document of the real-time routes declared so far (the `asyncapi` option sets its info). */
  asyncapi (): Record<string, unknown>
  /** This instance's connections and rooms, a bounded page at a time. */
  inspect: RealtimeInspect
  /**
   * A rolling restart of this instance: new upgrades get 503 with Retry-After; the clients, in batches over
   * `spread` ms, get a `reconnect` message with a jittered delay and a 1012 close. Resolves once every client
   * has left (or the plugin's `shutdownGrace` after the last batch). `app.close()` runs it when the plugin's
   * `drain` option is set.
   */
  drain (options?: { spread?: number, batch?: number }): Promise<void>
}

declare module 'fastify' {
  interface FastifyInstance {
    realtime: RealtimeDecorator
  }
}
