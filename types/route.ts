import type { Static, TSchema } from 'typebox'
import type { FastifyBaseLogger, FastifyRequest, RouteShorthandOptions } from 'fastify'
import type { UserType } from '@fastify/jwt'
import type { WebSocket } from 'ws'
import type { MessageLimitOptions, RouteLimitOptions, LimitSpec } from './limits.js'
import type { JoinAuthorizer, RoomEmitter } from './rooms.js'
import type { RouteAuth } from './auth.js'

/** Message name to TypeBox schema, for one direction of a route. */
export type SchemaMap = Record<string, TSchema>

/** One client of a real-time route, as its handlers see it. */
export interface Connection<Emits extends SchemaMap = SchemaMap> {
  /** Unique id of this connection (a random UUID). */
  readonly id: string
  /** The upgrade request, after the route's Fastify hooks ran. */
  readonly request: FastifyRequest
  /** The authenticated user (`request.user`, set by e.g. `request.jwtVerify()`), if any. */
  readonly user: UserType | undefined
  /** Child of the request logger carrying `connId`. */
  readonly log: FastifyBaseLogger
  /**
   * The underlying `ws` socket; prefer `emit` and `close`. On a connection over SSE, a stand-in with the same
   * `readyState`, `bufferedAmount`, `close`, `terminate` and `ping`.
   */
  readonly socket: WebSocket
  /** True once the socket is closing or closed; emits are then dropped. */
  readonly closed: boolean
  /** Sends a server-to-client message declared in the route's `emits`. */
  emit<K extends keyof Emits & string>(type: K, data: Static<Emits[K]>): void
  /** Closes the socket with a code (default 1000) and a reason, cut to 123 bytes. */
  close (code?: number, reason?: string): void
  /**
   * Takes `cost` (default 1) from the bucket `name` of this connection's user (or IP when anonymous),
   * shared by all their connections through the rate-limit store. Rejects with FRT_ERR_RATE_LIMITED
   * (the client sees `rate_limited` with `retryAfter`) when the bucket is empty. Resolves at once when
   * the plugin's `rateLimit` is false.
   */
  consume (name: string, limit: LimitSpec & { cost?: number }): Promise<void>
  /** The rooms this connection is in, on this instance. */
  readonly rooms: ReadonlySet<string>
  /**
   * Joins a room (no `joinable` check: server code decides). Membership is immediate; the promise settles
   * once the fan-out adapter listens to the room. Rejects with FRT_ERR_ROOM_NAME or FRT_ERR_ROOM_LIMIT.
   * A no-op once the connection is closing.
   */
  join (room: string): Promise<void>
  /** Leaves a room; returns whether the connection was in it. */
  leave (room: string): boolean
  /** Sends to a room, typed by this route's emits and checked like `emit`. Add `.except(conn)` to skip the sender. */
  to (room: string): RoomEmitter<Emits>
}

/** Handles one client-to-server message; what it returns (or resolves) is the ack of a request. */
export type MessageHandler<S extends TSchema, Emits extends SchemaMap> =
  (conn: Connection<Emits>, data: Static<S>) => unknown

export interface MessageDefinition<S extends TSchema, Emits extends SchemaMap> {
  /** The schema `data` must match; compiled once when the route is declared. */
  schema: S
  handler: MessageHandler<S, Emits>
  /**
   * Checked after the schema, before the handler (after the route's own `authorize`); may be async.
   * Only `true` lets the message through; anything else replies `forbidden`.
   */
  authorize?: (conn: Connection<Emits>, data: Static<S>) => boolean | Promise<boolean>
  /** This message's own per-connection bucket (`rate`, `burst`) and its `cost` in the connection-wide one. */
  rateLimit?: MessageLimitOptions
}

/** A real-time route: any Fastify route option, plus its messages both ways. */
export interface RouteDefinition<In extends SchemaMap, Emits extends SchemaMap>
  extends Omit<RouteShorthandOptions, 'websocket'> {
  /** Client-to-server messages: a schema and a handler each. */
  messages: { [K in keyof In]: MessageDefinition<In[K], Emits> }
  /** Server-to-client messages: a schema each. */
  emits?: Emits
  /** Called once the socket is open, before any message is dispatched to it. */
  onOpen?: (conn: Connection<Emits>) => unknown
  /** Called once when the socket has closed. */
  onClose?: (conn: Connection<Emits>, code: number, reason: string) => unknown
  /**
   * Lets clients send `room:join` / `room:leave`. `true`: any valid room; a function: called for every
   * join, resolving true to allow (a refusal replies `forbidden`). Default: off (`unknown_type`).
   */
  joinable?: boolean | JoinAuthorizer<Emits>
  /** Sends `presence:join` / `presence:leave` to a room when this route's connections join or leave it. Default false. */
  presence?: boolean
  /**
   * Requires a token verified by @fastify/jwt: `'handshake'` (HTTP 401 before the upgrade), `'message'` (the
   * first frame must be `auth`), or `{ mode, query }` (`query: true` also reads `auth.queryParam`). Default: none.
   */
  auth?: RouteAuth
  /**
   * Checked for every valid message before its handler; may be async. Only `true` lets it through; anything
   * else replies `forbidden`, and more than `auth.forbiddenBudget` refusals close the socket with 4403.
   */
  authorize?: (conn: Connection<Emits>, type: keyof In & string, data: unknown) => boolean | Promise<boolean>
  /**
   * This route's message limits: `rate`/`burst` override the plugin's per-connection bucket; `shared`
   * adds a bucket shared by every connection with the same key (through the store). Ignored when the
   * plugin's `rateLimit` is false.
   */
  rateLimit?: RouteLimitOptions
  /**
   * Also answer over Server-Sent Events + HTTP POST: `GET <path>` with `Accept: text/event-stream` opens a
   * stream, `POST <path>` carries messages (see the README's SSE section). Default: the plugin's `sse` option.
   */
  sse?: boolean
}

/** The client-to-server schemas of a route definition. */
export type InboundOf<R> = R extends RouteDefinition<infer In, any> ? In : never
/** The server-to-client schemas of a route definition. */
export type EmitsOf<R> = R extends RouteDefinition<any, infer E> ? E : never
