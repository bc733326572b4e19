import type { Static, TSchema } from 'typebox'
import type { FastifyBaseLogger, FastifyRequest, RouteShorthandOptions } from 'fastify'
import type { UserType } from '@fastify/jwt'
import type { WebSocket } from 'ws'

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
  /** The underlying `ws` socket; prefer `emit` and `close`. */
  readonly socket: WebSocket
  /** True once the socket is closing or closed; emits are then dropped. */
  readonly closed: boolean
  /** Sends a server-to-client message declared in the route's `emits`. */
  emit<K extends keyof Emits & string>(type: K, data: Static<Emits[K]>): void
  /** Closes the socket with a code (default 1000) and a reason, cut to 123 bytes. */
  close (code?: number, reason?: string): void
}

/** Handles one client-to-server message; what it returns (or resolves) is the ack of a request. */
export type MessageHandler<S extends TSchema, Emits extends SchemaMap> =
  (conn: Connection<Emits>, data: Static<S>) => unknown

export interface MessageDefinition<S extends TSchema, Emits extends SchemaMap> {
  /** The schema `data` must match; compiled once when the route is declared. */
  schema: S
  handler: MessageHandler<S, Emits>
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
}

/** The client-to-server schemas of a route definition. */
export type InboundOf<R> = R extends RouteDefinition<infer In, any> ? In : never
/** The server-to-client schemas of a route definition. */
export type EmitsOf<R> = R extends RouteDefinition<any, infer E> ? E : never
