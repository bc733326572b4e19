// Declaring a real-time route: its schemas are compiled here, once, and every
// frame of every connection on the route is dispatched from here. Nothing a
// client sends can throw out of this file.
import { Compile } from 'typebox/compile'
import type { Validator } from 'typebox/compile'
import type { TSchema } from 'typebox'
import type { FastifyRequest } from 'fastify'
import type { WebSocket, RawData } from 'ws'
import {
  FRT_ERR_EMIT_INVALID, FRT_ERR_EMIT_UNKNOWN_TYPE, FRT_ERR_ROUTE_INVALID, FRT_ERR_ROUTE_RESERVED_TYPE
} from './errors.js'
import {
  CloseCode, ErrorCode, MessageType, PONG, ProtocolError, parse, type InboundMessage, type WireError
} from './protocol.js'
import { RealtimeConnection } from './connection.js'
import { RouteLimiter } from './limits.js'
import { checkRouteRooms } from './rooms.js'
import type { Hub } from './hub.js'
import type { Auth, RouteAuthConfig } from './auth.js'
import { authorizeThenInvoke, type MessageAuthorize } from './authorize.js'
import type { ResolvedOptions } from './options.js'
import { invokeObserved, traced } from './tracing.js'
import type { RouteDefinition, SchemaMap } from '../types/route.js'

const RESERVED = new Set<string>(Object.values(MessageType))
// How many schema violations an invalid_data reply lists.
const MAX_DETAILS = 10

export interface CompiledMessage {
  validator: Validator
  handler: (conn: RealtimeConnection, data: unknown) => unknown
  authorize: MessageAuthorize | undefined
}

const kConnection = Symbol('fastify-realtime.connection')
type RouteSocket = WebSocket & { [kConnection]: RealtimeConnection }

export class CompiledRoute {
  readonly path: string
  readonly messages = new Map<string, CompiledMessage>()
  readonly emits = new Map<string, Validator>()
  readonly definition: RouteDefinition<SchemaMap, SchemaMap>
  readonly options: ResolvedOptions
  readonly hub: Hub
  /** The instance's auth (lib/auth.ts) and this route's auth mode; set by index.ts. */
  auth: Auth | null = null
  authConfig: RouteAuthConfig | null = null
  /** Whether any message of the route has an `authorize` check. */
  authorizes = false
  /** The route's rate limits; null when the plugin's `rateLimit` is false. */
  readonly limiter: RouteLimiter | null

  constructor (path: string, definition: RouteDefinition<SchemaMap, SchemaMap>, options: ResolvedOptions, hub: Hub) {
    this.path = path
    this.definition = definition
    this.options = options
    this.hub = hub
    if (typeof definition !== 'object' || definition === null) {
      throw new FRT_ERR_ROUTE_INVALID(path, 'the definition must be an object')
    }
    const { messages, emits = {}, onOpen, onClose } = definition
    if (typeof messages !== 'object' || messages === null) {
      throw new FRT_ERR_ROUTE_INVALID(path, '"messages" must be an object of { schema, handler }')
    }
    for (const [type, message] of Object.entries(messages)) {
      if (RESERVED.has(type)) throw new FRT_ERR_ROUTE_RESERVED_TYPE(path, type)
      if (typeof message?.handler !== 'function') {
        throw new FRT_ERR_ROUTE_INVALID(path, `message "${type}" needs a handler function`)
      }
      if (message.authorize !== undefined && typeof message.authorize !== 'function') {
        throw new FRT_ERR_ROUTE_INVALID(path, `message "${type}" has an "authorize" that is not a function`)
      }
      this.authorizes ||= message.authorize !== undefined
      this.messages.set(type, {
        validator: compileSchema(path, `message "${type}"`, message.schema),
        handler: message.handler as CompiledMessage['handler'],
        authorize: message.authorize as MessageAuthorize | undefined
      })
    }
    if (typeof emits !== 'object' || emits === null) {
      throw new FRT_ERR_ROUTE_INVALID(path, '"emits" must be an object of schemas')
    }
    for (const [type, schema] of Object.entries(emits)) {
      if (RESERVED.has(type)) throw new FRT_ERR_ROUTE_RESERVED_TYPE(path, type)
      this.emits.set(type, compileSchema(path, `emit "${type}"`, schema))
    }
    this.authorizes ||= definition.authorize !== undefined
    for (const [name, hook] of [['onOpen', onOpen], ['onClose', onClose], ['authorize', definition.authorize]] as const) {
      if (hook !== undefined && typeof hook !== 'function') {
        throw new FRT_ERR_ROUTE_INVALID(path, `"${name}" must be a function`)
      }
    }
    checkRouteRooms(path, definition)
    this.limiter = options.rateLimit === false || hub.rateLimitStore === null
      ? null
      : new RouteLimiter(path, options, definition.rateLimit, messages, hub.rateLimitStore)
  }

  /** Throws on an undeclared type, and, when `validateEmits` is on, on a payload its schema refuses. */
  checkEmit (type: string, data: unknown): void {
    const validator = this.emits.get(type)
    if (validator === undefined) throw new FRT_ERR_EMIT_UNKNOWN_TYPE(type)
    if (this.options.validateEmits && !validator.Check(data)) {
      const [first] = validator.Errors(data)
      throw new FRT_ERR_EMIT_INVALID(type, `${first.instancePath || '/'} ${first.message}`)
    }
  }

  /** The `wsHandler` given to @fastify/websocket for this route. */
  accept (socket: WebSocket, request: FastifyRequest): void {
    const conn = new RealtimeConnection(socket, request, this, this.hub)
    ;(socket as RouteSocket)[kConnection] = conn
    this.hub.add(conn)
    this.hub.recorder?.opened(this) // obs
    socket.on('message', onSocketMessage)
    socket.on('close', onSocketClose)
    // A first-message auth route opens (onOpen) once the `auth` frame is verified.
    if (this.auth?.accept(conn, this.authConfig?.mode) === true) return
    this.open(conn)
  }

  /** Runs onOpen; frames that arrived before (first-message auth) or during it are dispatched after it. */
  open (conn: RealtimeConnection): void {
    const { onOpen } = this.definition
    if (onOpen === undefined) {
      this.flushPending(conn)
      return
    }
    let result: unknown
    try {
      result = onOpen(conn)
    } catch (err) {
      this.failOpen(conn, err)
      return
    }
    if (isThenable(result)) {
      conn.pending ??= []
      result.then(() => this.flushPending(conn), (err: unknown) => this.failOpen(conn, err))
    } else {
      this.flushPending(conn)
    }
  }

  dispatch (conn: RealtimeConnection, raw: RawData, isBinary: boolean): void {
    if (conn.pending !== null) {
      conn.pending.push([raw as Buffer, isBinary])
      return
    }
    // Frames already in flight when the socket started closing are not processed.
    if (conn.closed) return
    const hub = this.hub
    hub.counters.messagesIn++
    if (conn.auth?.waiting === true) {
      (this.auth as Auth).firstFrame(conn, raw, isBinary)
      return
    }
    if (isBinary) {
      conn.close(CloseCode.UnsupportedData, 'Binary frames are not accepted on this route')
      return
    }
    const msg = parse(raw.toString())
    if (msg instanceof ProtocolError) {
      this.protocolError(conn, msg, msg.id)
      return
    }
    hub.recorder?.messageIn(this, msg.type) // obs
    // Every frame counts, pings included; parsed first so a refusal carries the request id.
    if (this.limiter?.refuse(conn, msg) === true) return
    if (msg.type === MessageType.Ping) {
      conn.send(PONG)
      return
    }
    // An in-band token refresh, on routes with auth; elsewhere unknown_type.
    if (msg.type === MessageType.Auth && this.authConfig !== null) {
      (this.auth as Auth).refresh(conn, msg)
      return
    }
    // Without `joinable` these fall through to unknown_type, as any undeclared type.
    if ((msg.type === MessageType.RoomJoin || msg.type === MessageType.RoomLeave) &&
      this.definition.joinable !== undefined && this.definition.joinable !== false) {
      hub.rooms.fromClient(conn, msg)
      return
    }
    const message = this.messages.get(msg.type)
    if (message === undefined) {
      this.protocolError(conn, { code: ErrorCode.UnknownType, message: `Unknown message type "${msg.type.slice(0, 64)}"` }, msg.id)
      return
    }
    if (!message.validator.Check(msg.data)) {
      const details = message.validator.Errors(msg.data).slice(0, MAX_DETAILS)
        .map((e) => ({ path: e.instancePath, message: e.message }))
      this.protocolError(conn, { code: ErrorCode.InvalidData, message: `Invalid "${msg.type}" data`, details }, msg.id)
      return
    }
    if (this.limiter?.shared != null) {
      this.limiter.takeShared(conn, msg, conn.log, () => this.proceed(conn, message, msg), () => this.flushPending(conn))
      return
    }
    this.proceed(conn, message, msg)
  }

  proceed (conn: RealtimeConnection, message: CompiledMessage, msg: InboundMessage): void {
    if (this.authorizes) {
      authorizeThenInvoke(this, conn, message, msg)
      return
    }
    this.invoke(conn, message, msg)
  }

  invoke (conn: RealtimeConnection, message: CompiledMessage, msg: InboundMessage): void {
    // obs: with metrics on or a tracing subscriber, the observed twin of this method (lib/tracing.ts).
    if (this.hub.recorder !== null || traced()) {
      invokeObserved(this, conn, message.handler, msg)
      return
    }
    let result: unknown
    try {
      result = message.handler(conn, msg.data)
    } catch (err) {
      this.handlerError(conn, err, msg)
      return
    }
    if (isThenable(result)) {
      result.then(
        (value) => { if (msg.id !== undefined) conn.ack(msg.id, value) },
        (err: unknown) => this.handlerError(conn, err, msg)
      )
    } else if (msg.id !== undefined) {
      conn.ack(msg.id, result)
    }
  }

  protocolError (conn: RealtimeConnection, error: WireError, id: string | number | undefined): void {
    this.hub.counters.protocolErrors++
    this.hub.recorder?.error(this, error.code) // obs
    conn.error({ code: error.code, message: error.message, details: (error as WireError).details }, id)
    if (++conn.protocolErrors > this.options.errorBudget) {
      conn.close(CloseCode.BadRequest, 'Too many invalid messages')
    }
  }

  handlerError (conn: RealtimeConnection, err: unknown, msg: InboundMessage): void {
    this.hub.counters.handlerErrors++
    const wire = toWireError(err)
    this.hub.recorder?.error(this, wire.code) // obs
    // obs: msgId (the request id) on the route's own log lines about a message.
    if (wire.code === ErrorCode.Internal) {
      conn.log.error({ err, type: msg.type, msgId: msg.id }, 'real-time handler failed')
    } else {
      conn.log.info({ err, type: msg.type, msgId: msg.id }, 'real-time handler refused a message')
    }
    conn.error(wire, msg.id)
  }

  failOpen (conn: RealtimeConnection, err: unknown): void {
    this.hub.counters.handlerErrors++
    conn.pending = null
    const status = statusOf(err)
    if (status === undefined) {
      conn.log.error({ err }, 'real-time onOpen failed')
      conn.close(CloseCode.ServerError, 'Internal error')
    } else {
      conn.log.info({ err }, 'real-time onOpen refused the connection')
      conn.close(4000 + status, (err as Error).message)
    }
  }

  flushPending (conn: RealtimeConnection): void {
    const pending = conn.pending
    conn.pending = null
    if (pending === null) return
    for (const [raw, isBinary] of pending) this.dispatch(conn, raw, isBinary)
  }

  closed (conn: RealtimeConnection, code: number, reason: Buffer): void {
    this.hub.delete(conn)
    this.hub.recorder?.closed(this, code) // obs
    this.auth?.closed(conn)
    conn.pending = null
    const { onClose } = this.definition
    if (onClose === undefined) return
    const failed = (err: unknown): void => {
      this.hub.counters.handlerErrors++
      conn.log.error({ err }, 'real-time onClose failed')
    }
    try {
      const result = onClose(conn, code, reason.toString())
      if (isThenable(result)) result.then(undefined, failed)
    } catch (err) {
      failed(err)
    }
  }
}

// Shared by every socket of every route: no closure per connection.
function onSocketMessage (this: WebSocket, raw: RawData, isBinary: boolean): void {
  const conn = (this as RouteSocket)[kConnection]
  conn.route.dispatch(conn, raw, isBinary)
}

function onSocketClose (this: WebSocket, code: number, reason: Buffer): void {
  const conn = (this as RouteSocket)[kConnection]
  conn.route.closed(conn, code, reason)
  // After onClose ran, so the hook still sees conn.rooms; empty rooms are freed here.
  conn.hub.rooms.leaveAll(conn)
}

function compileSchema (path: string, what: string, schema: unknown): Validator {
  if (typeof schema !== 'object' || schema === null) {
    throw new FRT_ERR_ROUTE_INVALID(path, `${what} needs a TypeBox schema`)
  }
  try {
    return Compile(schema as TSchema)
  } catch (err) {
    throw new FRT_ERR_ROUTE_INVALID(path, `${what} has a schema that does not compile: ${(err as Error).message}`)
  }
}

function isThenable (value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function'
}

// A 4xx status on the error (as @fastify/error and http-errors set) means the
// handler refused on purpose: the client may see the code and message.
function statusOf (err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown } | null)?.statusCode
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined
}

function toWireError (err: unknown): WireError {
  if (statusOf(err) === undefined) return { code: ErrorCode.Internal, message: 'Internal server error' }
  const { code, message, retryAfter } = err as { code?: unknown, message?: unknown, retryAfter?: unknown }
  // conn.consume's refusal reads on the wire like the built-in limiter's.
  if (code === 'FRT_ERR_RATE_LIMITED') {
    return { code: ErrorCode.RateLimited, message: message as string, retryAfter: retryAfter as number }
  }
  return {
    code: typeof code === 'string' ? code : 'refused',
    message: typeof message === 'string' ? message : 'Refused'
  }
}

/**
 * Types a route definition kept in its own module, so that `app.realtime(path, chat)` and the test
 * client (`connect<typeof chat>`) share its message types. Returns the definition unchanged.
 */
export function defineRoute<In extends SchemaMap, Emits extends SchemaMap = {}> (
  definition: RouteDefinition<In, Emits>): RouteDefinition<In, Emits> {
  return definition
}
