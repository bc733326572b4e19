import type { Static, TSchema } from 'typebox'
import type { FastifyBaseLogger, FastifyRequest, RouteShorthandOptions } from 'fastify'
import type { UserType } from '@fastify/jwt'
import type { WebSocket } from 'ws'
import type { MessageLimitOptions, RouteLimitOptions, LimitSpec } from './limits.js'
import type { JoinAuthorizer, RoomEmitter } from './rooms.js'
import type { RouteAuth } from './auth.js'

/** Message name to TypeBox schema, for one direction of a route. */
export type SchemaMap = Record<string, TSchema>

/**
 * What `conn.user` is on a route with auth mode `A`: on an auth route (any mode) handlers and `onOpen` only
 * ever run for a verified user, so it is `UserType`; elsewhere it may be missing (issue 11).
 */
export type UserOf<A> = [A] extends [undefined | false] ? UserType | undefined : UserType

/** Sends a route's declared emits (`conn.volatile`, `conn.latest(key)`). */
export interface Emitter<Emits extends SchemaMap = SchemaMap> {
  emit<K extends keyof Emits & string>(type: K, data: Static<Emits[K]>): void
}

/**
 * How an emit reaches a connection whose outgoing buffer is over `slowConsumer.softLimit` (it is behind):
 * `'reliable'` (default) queues it (past `hardLimit` the connection is closed with 4008); `'volatile'` skips
 * it; `{ latest }` keeps only the newest message per key (the room, the type and what `latest` returns of the
 * data: a symbol, a cursor's user) and sends those once the connection caught up. Latest messages carry no
 * `seq`. Members that keep up get every message, whatever the policy.
 */
export type DeliveryPolicy<T = unknown> = 'reliable' | 'volatile' | { latest: (data: T) => string }

/** A route's delivery policy per emit type (`delivery`). */
export type DeliveryMap<Emits extends SchemaMap> = { [K in keyof Emits & string]?: DeliveryPolicy<Static<Emits[K]>> }

/**
 * What `conn.request` offers. During the route's Fastify hooks and `onOpen` it is the whole upgrade request (a
 * `FastifyRequest`), and it stays so for the connection's life on a route with `auth`. On other routes, once
 * `onOpen` has run, the connection keeps these fields only and lets the request go (its `IncomingMessage`, raw
 * headers and stream state: about 1 KB of heap per idle connection). Its `headers` then lack the WebSocket
 * handshake's own (`connection`, `upgrade`, `sec-websocket-key`, `-version`, `-extensions`). Read anything else in
 * `onOpen`, or keep it in `conn.data`.
 */
export type ConnectionRequest = Pick<FastifyRequest, 'id' | 'ip' | 'host' | 'protocol' | 'url' | 'method' | 'headers' | 'query' | 'params' | 'log' | 'server'>

/** One client of a real-time route, as its handlers see it. `User`: see {@link UserOf}. */
export interface Connection<Emits extends SchemaMap = SchemaMap, User = UserType | undefined> {
  /** Unique id of this connection (a random UUID). */
  readonly id: string
  /** The upgrade request, after the route's Fastify hooks ran; after `onOpen`, its fields of {@link ConnectionRequest} only (routes without auth). */
  readonly request: ConnectionRequest
  /** The authenticated user (`request.user`, set by e.g. `request.jwtVerify()`); always there on an auth route. */
  readonly user: User
  /** Child of the request logger carrying `connId`. */
  readonly log: FastifyBaseLogger
  /**
   * The underlying `ws` socket; prefer `emit` and `close`. On a connection over SSE, a stand-in with the same
   * `readyState`, `bufferedAmount`, `close`, `terminate` and `ping`.
   */
  readonly socket: WebSocket
  /** True once the socket is closing or closed; emits are then dropped. */
  readonly closed: boolean
  /** Sends a server-to-client message declared in the route's `emits`, by the route's `delivery` for its type. */
  emit<K extends keyof Emits & string>(type: K, data: Static<Emits[K]>): void
  /** This connection's emits, skipped while its outgoing buffer is over `slowConsumer.softLimit`. */
  readonly volatile: Emitter<Emits>
  /**
   * This connection's emits, conflated by `key` (with the type): while the connection is behind, only the
   * newest message per key waits for it. Overrides the route's `delivery` for these emits.
   */
  latest (key: string): Emitter<Emits>
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
  /**
   * The application's own state for this connection. On a route with sessions, what the route's `keep`
   * returns (JSON) is saved with the session and put back here when the client resumes.
   */
  data: unknown
  /** True when this connection resumed a previous session (same `id`, rooms and kept `data`): set before onOpen. */
  readonly recovered: boolean
}

/**
 * Handles one client-to-server message; what it returns (or resolves) is the ack of a request. `Ack` is that
 * return type: `unknown` unless `defineRoute` inferred it (the client types `request()` with it).
 */
export type MessageHandler<S extends TSchema, Emits extends SchemaMap, User = UserType | undefined, Ack = unknown> =
  (conn: Connection<Emits, User>, data: Static<S>) => Ack

export interface MessageDefinition<S extends TSchema, Emits extends SchemaMap, User = UserType | undefined, Ack = unknown> {
  /** The schema `data` must match; compiled once when the route is declared. */
  schema: S
  handler: MessageHandler<S, Emits, User, Ack>
  /**
   * Checked after the schema, before the handler (after the route's own `authorize`); may be async.
   * Only `true` lets the message through; anything else replies `forbidden`.
   */
  authorize?: (conn: Connection<Emits, User>, data: Static<S>) => boolean | Promise<boolean>
  /** This message's own per-connection bucket (`rate`, `burst`) and its `cost` in the connection-wide one. */
  rateLimit?: MessageLimitOptions
}

/** Message name to the type its handler returns (the ack, before `await`); `unknown` where not known. */
export type AckMap<In extends SchemaMap> = { [K in keyof In]?: unknown }

/**
 * A real-time route: any Fastify route option, plus its messages both ways. `A` is the route's `auth`,
 * inferred from the definition: it types `conn.user` ({@link UserOf}). `Acks` holds each handler's return
 * type when `defineRoute` inferred it; it defaults to `unknown` for every message, so code written against
 * `RouteDefinition<In, Emits>` is unchanged.
 */
export interface RouteDefinition<In extends SchemaMap, Emits extends SchemaMap, A extends RouteAuth | undefined = undefined,
  Acks extends AckMap<In> = AckMap<In>>
  extends Omit<RouteShorthandOptions, 'websocket'> {
  /** Client-to-server messages: a schema and a handler each. */
  messages: { [K in keyof In]: MessageDefinition<In[K], Emits, UserOf<A>, Acks[K]> }
  /** Server-to-client messages: a schema each. */
  emits?: Emits
  /**
   * Per emit type, how it reaches a connection that is behind (see {@link DeliveryPolicy}): `'reliable'`
   * (default), `'volatile'` or `{ latest: (data) => key }`. Applies to `conn.emit`, `conn.to(room)` and, when
   * every route that declares a policy for the type declares the same one, `app.realtime.to(room)`.
   */
  delivery?: DeliveryMap<Emits>
  /** Called once the socket is open, before any message is dispatched to it. */
  onOpen?: (conn: Connection<Emits, UserOf<A>>) => unknown
  /** Called once when the socket has closed. */
  onClose?: (conn: Connection<Emits, UserOf<A>>, code: number, reason: string) => unknown
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
  auth?: A
  /**
   * Checked for every valid message before its handler; may be async. Only `true` lets it through; anything
   * else replies `forbidden`, and more than `auth.forbiddenBudget` refusals close the socket with 4403.
   */
  authorize?: (conn: Connection<Emits, UserOf<A>>, type: keyof In & string, data: unknown) => boolean | Promise<boolean>
  /**
   * This route's message limits: `rate`/`burst` override the plugin's per-connection bucket; `shared`
   * adds a bucket shared by every connection with the same key (through the store). Ignored when the
   * plugin's `rateLimit` is false.
   */
  rateLimit?: RouteLimitOptions
  /**
   * Joins may carry `since` (the client's last position) and get the missed messages replayed; a join of a room
   * already joined, with `since`, syncs it even without `joinable`. Needs the plugin's `history`. Default false.
   */
  history?: boolean
  /** Gives each connection a resume token (protocol `session` message). Needs the plugin's `sessions`. Default false. */
  sessions?: boolean
  /** What of `conn.data` a session keeps (JSON); called whenever the session is saved. Default: nothing. */
  keep?: (conn: Connection<Emits>) => unknown
  /**
   * The application's state of a room, sent in the join ack as `snapshot`, taken at the ack's `seq`: the room's
   * messages to the connection are held while it runs. Apply a change to your state before emitting it.
   */
  snapshot?: (room: string, conn: Connection<Emits>) => unknown
  /** Milliseconds the snapshot loader may take before the join fails. Default 5000. */
  snapshotTimeout?: number
  /**
   * Also answer over Server-Sent Events + HTTP POST: `GET <path>` with `Accept: text/event-stream` opens a
   * stream, `POST <path>` carries messages (see the README's SSE section). Default: the plugin's `sse` option.
   */
  sse?: boolean
}

/** The client-to-server schemas of a route definition. */
// `infer _A` (not `any`): with `any` the auth-typed handlers would not match. eslint: it is only a pattern.
// eslint-disable-next-line @typescript-eslint/no-unused-vars
export type InboundOf<R> = R extends RouteDefinition<infer In, any, infer _A> ? In : never
/** The server-to-client schemas of a route definition. */
// `infer _A` (not `any`): with `any` the auth-typed handlers would not match. eslint: it is only a pattern.
// eslint-disable-next-line @typescript-eslint/no-unused-vars
export type EmitsOf<R> = R extends RouteDefinition<any, infer E, infer _A> ? E : never

/** The keys a message definition may have: `defineRoute` refuses any other (a typo such as `authorise`). */
type MessageKey = keyof MessageDefinition<TSchema, SchemaMap>

/**
 * What `defineRoute` infers of a route's `messages` besides their schemas: each definition as written, so
 * that the handlers' return types survive; an unknown key is `never` (an error at the key).
 */
export type MessagesAsWritten<M> = { [K in keyof M]: { [P in keyof M[K]]: P extends MessageKey ? unknown : never } }

/** Each message's handler return type, from the messages as written; `unknown` where there is none. */
export type AcksOf<M, In extends SchemaMap> = {
  [K in keyof In]: K extends keyof M ? M[K] extends { handler: (...args: any[]) => infer A } ? A : unknown : unknown
}
