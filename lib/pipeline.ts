// The pipeline: a connection's life (accept, open, close) and the path of each
// frame it sends, read straight through in `dispatch`:
//
//   parse -> limit -> built-ins (ping, auth refresh, room join/leave) -> look-up
//   -> validate -> shared limit -> authorize -> invoke -> reply
//
// The steps (lib/limits.ts, lib/authorize.ts, lib/rooms.ts, lib/auth.ts) answer
// with verdicts, a value or a promise; only this file acts on them. It is the
// only writer of a connection's pending frames and of its error and refusal
// budgets, and the only place where an error becomes a wire reply or a close
// code. Nothing a client sends can throw out of this file.
//
// Extension points, each one place: `accept` (a resumed connection, before
// onOpen), `dispatch` (every frame in), `#invoke` (handler start, end, error),
// `#join` (a join's options, such as a history offset), `closed` (close codes).
import type { FastifyRequest } from 'fastify'
import type { WebSocket, RawData } from 'ws'
import {
  CloseCode, ErrorCode, MessageType, ProtocolError, parse, serializePong, serializeAck, type InboundMessage, type WireError
} from './protocol.js'
import { RealtimeConnection } from './connection.js'
import { spendBudget } from './limits.js'
import { authorizeMessage } from './authorize.js'
import { INVALID_ROOM, isRoomName } from './rooms.js'
import { tokenOf, type Auth, type AuthedConnection } from './auth.js'
import { isThenable } from './verdict.js'
import { readSince, type JoinAck } from './recovery.js'
import { ProtocolPrefix } from './wire.js'
import type { RoomPosition } from '../types/history.js'
import type { CompiledMessage, CompiledRoute } from './route.js'
import type { Hub } from './hub.js'
import type { ResolvedOptions } from './options.js'
import type { RateLimitResult } from '../types/store.js'
import type { Recorder } from './recorder.js'
import type { Transport } from './transport.js'
import { invokeObserved, traced } from './tracing.js'

// How many schema violations an invalid_data reply lists.
const MAX_DETAILS = 10

const kConnection = Symbol('fastify-realtime.connection')
const kPipeline = Symbol('fastify-realtime.pipeline')
type PipelineSocket = WebSocket & { [kConnection]: RealtimeConnection, [kPipeline]: Pipeline }

/** One route's pipeline: given the route's compiled table and the instance's parts, all at construction. */
export class Pipeline {
  readonly #route: CompiledRoute
  readonly #hub: Hub
  readonly #auth: Auth
  readonly #options: ResolvedOptions
  /** Metrics and the admin page (lib/recorder.ts); null when both are off: one null check per point. */
  readonly #recorder: Recorder | null
  readonly #failed = (conn: RealtimeConnection, err: unknown, msg: InboundMessage): void => this.#handlerError(conn, err, msg)

  constructor (route: CompiledRoute, hub: Hub, auth: Auth, options: ResolvedOptions, recorder: Recorder | null) {
    this.#route = route
    this.#hub = hub
    this.#auth = auth
    this.#options = options
    this.#recorder = recorder
  }

  /** The `wsHandler` given to @fastify/websocket for the route. */
  readonly accept = (socket: WebSocket, request: FastifyRequest): void => {
    const route = this.#route
    const conn = new RealtimeConnection(socket, request, this.#hub, route, route.presence, this.#options.auth.userId, this.#recorder)
    this.#recorder?.opened(route)
    const tagged = socket as PipelineSocket
    tagged[kConnection] = conn
    tagged[kPipeline] = this
    this.#hub.add(conn)
    socket.on('message', onSocketMessage)
    socket.on('close', onSocketClose)
    // A first-message auth route opens (onOpen) once its `auth` frame is verified (#authFrame).
    if (route.auth?.mode === 'message') {
      this.#auth.awaitAuthFrame(conn)
      return
    }
    this.#auth.admit(conn)
    // An SSE stream's `Last-Event-ID` may carry the session's token (lib/sse-cursor.ts).
    this.#open(conn, resumeTokenOf(request) ?? (socket as unknown as Transport).resumeToken)
  }

  dispatch (conn: RealtimeConnection, raw: RawData, isBinary: boolean): void {
    if (conn.pending !== null) {
      conn.pending.push([raw as Buffer, isBinary])
      return
    }
    // Frames already in flight when the socket started closing are not processed, except during a rolling
    // restart: the client sent them before it saw our 1012, and resumes elsewhere counting on them.
    if (conn.closed && !this.#hub.draining) return
    const route = this.#route
    this.#hub.counters.messagesIn++
    if (conn.auth?.waiting === true) {
      this.#authFrame(conn, raw, isBinary)
      return
    }
    if (isBinary) {
      conn.close(CloseCode.UnsupportedData, 'Binary frames are not accepted on this route')
      return
    }
    const msg = parse(raw.toString())
    if (msg instanceof ProtocolError) {
      this.#protocolError(conn, msg, msg.id)
      return
    }
    this.#recorder?.messageIn(route, msg.type)
    // Every frame counts, pings included; parsed first so a refusal carries the request id.
    const limiter = route.limiter
    if (limiter !== null) {
      const retryAfter = limiter.check(conn, msg.type)
      if (retryAfter !== 0) {
        this.#rateLimited(conn, retryAfter, msg.id)
        return
      }
    }
    if (conn.session !== null && msg.id !== undefined && this.#repeated(conn, msg.id)) return
    if (msg.type === MessageType.Ping) {
      // Carries the request id, if any: every message with an id gets a reply carrying it.
      conn.send(serializePong(msg.id))
      return
    }
    // An in-band token refresh, on routes with auth; elsewhere unknown_type.
    if (msg.type === MessageType.Auth && route.auth !== null) {
      this.#refresh(conn, msg)
      return
    }
    // Without `joinable` these fall through to unknown_type, as any undeclared type.
    if ((msg.type === MessageType.RoomJoin || msg.type === MessageType.RoomLeave) && (route.joinable !== false || route.history)) {
      this.#room(conn, msg)
      return
    }
    const message = route.messages.get(msg.type)
    if (message === undefined) {
      this.#protocolError(conn, { code: ErrorCode.UnknownType, message: `Unknown message type "${msg.type.slice(0, 64)}"` }, msg.id)
      return
    }
    if (!message.validator.Check(msg.data)) {
      const details = message.validator.Errors(msg.data).slice(0, MAX_DETAILS)
        .map((e) => ({ path: e.instancePath, message: e.message }))
      this.#protocolError(conn, { code: ErrorCode.InvalidData, message: `Invalid "${msg.type}" data`, details }, msg.id)
      return
    }
    if (limiter?.shared != null) {
      this.#sharedLimit(conn, message, msg)
      return
    }
    this.#authorize(conn, message, msg)
  }

  /** The socket closed: unregister, run onClose, then leave every room (or wait in them, with a session). */
  closed (conn: RealtimeConnection, code: number, reason: Buffer): void {
    this.#hub.delete(conn)
    this.#recorder?.closed(this.#route, code)
    this.#auth.closed(conn)
    conn.pending = null
    const detached = this.#detach(conn, code)
    const { onClose } = this.#route
    if (onClose !== undefined) {
      const failed = (err: unknown): void => {
        this.#hub.counters.handlerErrors++
        conn.log.error({ err }, 'real-time onClose failed')
      }
      try {
        const result = onClose(conn, code, reason.toString())
        if (isThenable(result)) result.then(undefined, failed)
      } catch (err) {
        failed(err)
      }
    }
    // After onClose ran, so the hook still sees conn.rooms; empty rooms are freed here.
    if (!detached) this.#hub.rooms.leaveAll(conn)
  }

  /** A session waits for its client (any close but a 1000 from it): the connection stays in its rooms, detached. */
  #detach (conn: RealtimeConnection, code: number): boolean {
    const sessions = this.#hub.sessions
    if (sessions === null || conn.session === null) return false
    if (code === CloseCode.Normal) {
      sessions.end(conn)
      return false
    }
    return sessions.detach(conn)
  }

  /** A request id this session already answered: the first reply again, not processed twice. */
  #repeated (conn: RealtimeConnection, id: string | number): boolean {
    const reply = conn.session?.replies.get(id)
    if (reply === undefined) return false
    conn.send(reply)
    return true
  }

  /** Opens a connection: its session first on a route with sessions (resumed or fresh), then onOpen. */
  #open (conn: RealtimeConnection, resume: unknown): void {
    if (!this.#route.sessions || this.#hub.sessions === null) {
      this.#onOpen(conn)
      return
    }
    conn.pending ??= []
    this.#hub.recovery.open(conn, resume, this.#route.keep as Parameters<Hub['recovery']['open']>[2])
      .then(() => { if (!conn.closed) this.#onOpen(conn) }, (err: unknown) => this.#failOpen(conn, err))
  }

  /** Runs onOpen; frames that arrived before (first-message auth) or during it are dispatched after it. */
  #onOpen (conn: RealtimeConnection): void {
    const { onOpen } = this.#route
    if (onOpen === undefined) {
      this.#opened(conn)
      return
    }
    let result: unknown
    try {
      result = onOpen(conn)
    } catch (err) {
      this.#failOpen(conn, err)
      return
    }
    if (isThenable(result)) {
      conn.pending ??= []
      result.then(() => this.#opened(conn), (err: unknown) => this.#failOpen(conn, err))
    } else {
      this.#opened(conn)
    }
  }

  /**
   * onOpen ran: the upgrade request is cut to the fields handlers read (README, `conn.request`), so that an idle
   * connection does not keep Fastify's request and its IncomingMessage; not on a route with auth, whose token
   * refreshes are verified on the request itself. Then the frames that waited.
   */
  #opened (conn: RealtimeConnection): void {
    if (this.#route.auth === null) conn.keepRequestFields()
    this.#flushPending(conn)
  }

  /** A frame on a first-message route before its `auth` frame succeeded. */
  #authFrame (conn: RealtimeConnection, raw: RawData, isBinary: boolean): void {
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
    this.#auth.verifyAuthFrame(conn, token).then((authenticated) => {
      if (!authenticated) return
      conn.send(serializeAck(msg.id, { exp: this.#auth.expiryOf(conn) }))
      this.#open(conn, (msg.data as { resume?: unknown }).resume)
    }, (err: unknown) => {
      conn.pending = null
      if (statusCodeOf(err) === 401) {
        conn.close(CloseCode.Unauthorized, (err as Error).message)
      } else {
        conn.log.error({ err }, 'real-time auth failed')
        conn.close(CloseCode.ServerError, 'Internal error')
      }
    })
  }

  /** An `auth` frame on an authenticated connection. */
  #refresh (conn: RealtimeConnection, msg: InboundMessage): void {
    const token = tokenOf(msg.data)
    if (token === undefined) {
      conn.error({ code: ErrorCode.InvalidData, message: 'The auth message needs data.token' }, msg.id)
      return
    }
    this.#auth.refresh(conn, token).then((verdict) => {
      if (verdict === 'closed') return
      if (verdict === 'other-user') {
        conn.error({ code: ErrorCode.Unauthorized, message: 'The token is for another user' }, msg.id)
        return
      }
      conn.send(serializeAck(msg.id, { exp: this.#auth.expiryOf(conn) }))
    }, (err: unknown) => {
      const unauthorized = statusCodeOf(err) === 401
      if (!unauthorized) conn.log.error({ err }, 'real-time auth refresh failed')
      conn.error(unauthorized
        ? { code: ErrorCode.Unauthorized, message: (err as Error).message }
        : { code: ErrorCode.Internal, message: 'Internal server error' }, msg.id)
    })
  }

  /** A client's `room:join` or `room:leave`, on a route with `joinable`. */
  #room (conn: RealtimeConnection, msg: InboundMessage): void {
    const name = (msg.data as { room?: unknown } | null | undefined)?.room
    if (!isRoomName(name)) {
      this.#protocolError(conn, { code: ErrorCode.InvalidRoom, message: INVALID_ROOM }, msg.id)
      return
    }
    const route = this.#route
    let since: RoomPosition | null = null
    if (route.history && msg.type === MessageType.RoomJoin) {
      const read = readSince((msg.data as { since?: unknown }).since)
      if (read === undefined) {
        this.#protocolError(conn, { code: ErrorCode.InvalidData, message: 'data.since must be { seq: integer >= 0, epoch: string }' }, msg.id)
        return
      }
      // A stream resumed by `Last-Event-ID`: its position of the room is the implicit since (a resumed session
      // restored its rooms already).
      since = read ?? (conn.recovered ? null : (conn.socket as unknown as Transport).takeSince?.(name) ?? null)
    }
    // A sync (join with since of a room already in) needs no `joinable`: the server may have joined it.
    if (since !== null && conn.rooms.has(name)) {
      this.#joinRoom(conn, name, msg, since, true)
      return
    }
    if (route.joinable === false) {
      this.#protocolError(conn, { code: ErrorCode.UnknownType, message: `Unknown message type "${msg.type}"` }, msg.id)
      return
    }
    if (msg.type === MessageType.RoomLeave) {
      this.#hub.rooms.leave(conn, name)
      ;(conn.socket as unknown as Transport).moved?.()
      if (msg.id !== undefined) conn.ack(msg.id, null)
      return
    }
    const joinable = route.joinable
    if (joinable === true) {
      this.#join(conn, name, msg, true, since)
      return
    }
    let allowed: unknown
    try {
      allowed = (joinable as Exclude<CompiledRoute['joinable'], boolean>)(conn, name)
    } catch (err) {
      this.#handlerError(conn, err, msg)
      return
    }
    if (isThenable(allowed)) {
      allowed.then((ok) => this.#join(conn, name, msg, ok, since), (err: unknown) => this.#handlerError(conn, err, msg))
    } else {
      this.#join(conn, name, msg, allowed, since)
    }
  }

  #join (conn: RealtimeConnection, name: string, msg: InboundMessage, allowed: unknown, since: RoomPosition | null): void {
    if (allowed !== true) {
      conn.error({ code: ErrorCode.Forbidden, message: `Not allowed to join "${name}"` }, msg.id)
      return
    }
    const rooms = this.#hub.rooms
    // Checked here, after the hook, so that concurrent joins cannot pass the cap together.
    if (rooms.isFull(conn, name)) {
      conn.error({ code: ErrorCode.RoomLimit, message: `A connection may be in at most ${rooms.maxPerConnection} rooms` }, msg.id)
      return
    }
    this.#joinRoom(conn, name, msg, since, false)
  }

  /**
   * Joins (or syncs) a room and acks with its position `{ room, seq, epoch }` (1.1; 1.0 acked null). On a route
   * with history or a snapshot loader, lib/recovery.ts holds the room's live messages while it reads, and sends
   * the replay, the ack and what it held in one run.
   */
  #joinRoom (conn: RealtimeConnection, name: string, msg: InboundMessage, since: RoomPosition | null, sync: boolean): void {
    const route = this.#route
    // An SSE stream's cursor lists the room once joined (lib/sse-stream.ts), acked or not.
    const reply = (ack: JoinAck): void => {
      (conn.socket as unknown as Transport).moved?.()
      if (msg.id !== undefined) conn.ack(msg.id, ack)
    }
    if (!route.history && route.snapshot === undefined) {
      this.#hub.rooms.join(conn, name).then(() => {
        const room = this.#hub.rooms.get(name)
        if (room !== undefined) reply({ room: name, seq: room.seq, epoch: room.epoch })
      }, (err: unknown) => this.#handlerError(conn, err, msg))
      return
    }
    const snapshot = route.snapshot === undefined
      ? undefined
      : { load: route.snapshot as (room: string, member: unknown) => unknown, timeout: route.snapshotTimeout }
    this.#hub.recovery.join(conn, name, since, sync, snapshot, reply).then(undefined, (err: unknown) => this.#handlerError(conn, err, msg))
  }

  /**
   * The limit shared through the store. A store that fails lets the message through (logged): an
   * outage of the store must not silence every client. Later frames wait while the store answers.
   */
  #sharedLimit (conn: RealtimeConnection, message: CompiledMessage, msg: InboundMessage): void {
    const verdict = (this.#route.limiter as NonNullable<CompiledRoute['limiter']>).takeShared(conn, msg.type)
    if (verdict === null) {
      this.#authorize(conn, message, msg)
      return
    }
    if (!(verdict instanceof Promise)) {
      this.#afterSharedLimit(conn, message, msg, verdict as RateLimitResult)
      return
    }
    conn.pending ??= []
    verdict.then((result: RateLimitResult) => {
      if (!this.#afterSharedLimit(conn, message, msg, result)) this.#flushPending(conn)
    }, (err: unknown) => {
      this.#hub.counters.rateLimitErrors++
      conn.log.warn({ err }, 'rate-limit store failed; message let through')
      if (!this.#authorize(conn, message, msg)) this.#flushPending(conn)
    })
  }

  /** Returns true when a later step holds the pending frames and will flush them. */
  #afterSharedLimit (conn: RealtimeConnection, message: CompiledMessage, msg: InboundMessage, result: RateLimitResult): boolean {
    if (result.allowed) return this.#authorize(conn, message, msg)
    this.#rateLimited(conn, result.retryAfter, msg.id)
    return false
  }

  /**
   * The route's and the message's `authorize`, then the handler. While an async check runs, later frames
   * wait in `conn.pending`, so messages still reach handlers in order. Returns true when it went async
   * (it then flushes the pending frames itself).
   */
  #authorize (conn: RealtimeConnection, message: CompiledMessage, msg: InboundMessage): boolean {
    const route = this.#route
    if (!route.authorizes) {
      this.#invoke(conn, message, msg)
      return false
    }
    let verdict: unknown
    try {
      verdict = authorizeMessage(route.authorize, message.authorize, conn, msg.type, msg.data)
    } catch (err) {
      this.#handlerError(conn, err, msg)
      return false
    }
    if (!isThenable(verdict)) {
      this.#authorized(conn, message, msg, verdict)
      return false
    }
    conn.pending ??= []
    verdict.then((value) => {
      this.#authorized(conn, message, msg, value)
      this.#flushPending(conn)
    }, (err: unknown) => {
      this.#handlerError(conn, err, msg)
      this.#flushPending(conn)
    })
    return true
  }

  /** Only `true` lets a message through; a refusal is `forbidden`, and past `auth.forbiddenBudget` of them, 4403. */
  #authorized (conn: RealtimeConnection, message: CompiledMessage, msg: InboundMessage, verdict: unknown): void {
    if (conn.closed) return
    if (verdict === true) {
      this.#invoke(conn, message, msg)
      return
    }
    conn.error({ code: ErrorCode.Forbidden, message: `Not allowed to send "${msg.type.slice(0, 64)}"` }, msg.id)
    if (++conn.forbidden > this.#options.auth.forbiddenBudget) {
      conn.close(CloseCode.Forbidden, 'Too many forbidden messages')
    }
  }

  /** Runs the handler; what it returns (or resolves) is the ack of a request. */
  #invoke (conn: RealtimeConnection, message: CompiledMessage, msg: InboundMessage): void {
    // With metrics on, a tracing subscriber, or a message carrying a trace (what the handler sends carries it),
    // the observed twin of this method (lib/tracing.ts).
    if (this.#recorder !== null || msg.traceparent !== undefined || traced()) {
      invokeObserved(this.#route, this.#recorder, conn, message.handler, msg, this.#failed)
      return
    }
    // handlerStart/Returned/Settled: the handler's log lines carry msgId (lib/connection.ts).
    const previous = conn.handlerStart(msg)
    let result: unknown
    try {
      result = message.handler(conn, msg.data)
    } catch (err) {
      conn.handlerReturned(previous, false)
      this.#handlerError(conn, err, msg)
      return
    }
    if (isThenable(result)) {
      conn.handlerReturned(previous, true)
      result.then(
        (value) => { conn.handlerSettled(msg); if (msg.id !== undefined) conn.ack(msg.id, value) },
        (err: unknown) => { conn.handlerSettled(msg); this.#handlerError(conn, err, msg) }
      )
    } else {
      conn.handlerReturned(previous, false)
      if (msg.id !== undefined) conn.ack(msg.id, result)
    }
  }

  #rateLimited (conn: RealtimeConnection, retryAfter: number, id: string | number | undefined): void {
    const limiter = this.#route.limiter as NonNullable<CompiledRoute['limiter']>
    this.#hub.counters.rateLimited++
    conn.error({ code: ErrorCode.RateLimited, message: 'Too many messages', retryAfter }, id)
    if (spendBudget(conn, limiter.limits)) conn.close(CloseCode.TooManyRequests, 'Rate limit exceeded')
  }

  #protocolError (conn: RealtimeConnection, error: WireError, id: string | number | undefined): void {
    this.#hub.counters.protocolErrors++
    this.#recorder?.error(this.#route, error.code)
    conn.error({ code: error.code, message: error.message, details: error.details }, id)
    if (++conn.protocolErrors > this.#options.errorBudget) {
      conn.close(CloseCode.BadRequest, 'Too many invalid messages')
    }
  }

  #handlerError (conn: RealtimeConnection, err: unknown, msg: InboundMessage): void {
    this.#hub.counters.handlerErrors++
    const wire = toWireError(err)
    this.#recorder?.error(this.#route, wire.code)
    if (wire.code === ErrorCode.Internal) {
      conn.log.error({ err, type: msg.type, msgId: msg.id }, 'real-time handler failed')
    } else {
      conn.log.info({ err, type: msg.type, msgId: msg.id }, 'real-time handler refused a message')
    }
    conn.error(wire, msg.id)
  }

  #failOpen (conn: RealtimeConnection, err: unknown): void {
    this.#hub.counters.handlerErrors++
    conn.pending = null
    const status = refusalStatus(err)
    if (status === undefined) {
      conn.log.error({ err }, 'real-time onOpen failed')
      conn.close(CloseCode.ServerError, 'Internal error')
    } else {
      conn.log.info({ err }, 'real-time onOpen refused the connection')
      conn.close(4000 + status, (err as Error).message)
    }
  }

  #flushPending (conn: RealtimeConnection): void {
    const pending = conn.pending
    conn.pending = null
    if (pending === null) return
    for (const [raw, isBinary] of pending) this.dispatch(conn, raw, isBinary)
  }
}

/** Given to lib/auth.ts: a connection's auth deadline came. */
export function closeOnAuthDeadline (conn: AuthedConnection, awaitingAuthFrame: boolean): void {
  if (awaitingAuthFrame) {
    conn.close(CloseCode.Timeout, 'No auth message in time')
  } else {
    conn.close(CloseCode.Unauthorized, 'Token expired')
  }
}

// Shared by every socket of every route: no closure per connection.
function onSocketMessage (this: WebSocket, raw: RawData, isBinary: boolean): void {
  const socket = this as PipelineSocket
  socket[kPipeline].dispatch(socket[kConnection], raw, isBinary)
}

function onSocketClose (this: WebSocket, code: number, reason: Buffer): void {
  const socket = this as PipelineSocket
  socket[kPipeline].closed(socket[kConnection], code, reason)
}

/** A `resume.<token>` entry of the upgrade's subprotocols (never selected: lib/token.ts). */
function resumeTokenOf (request: FastifyRequest): string | undefined {
  const header = request.headers['sec-websocket-protocol']
  if (header === undefined) return undefined
  for (const entry of header.split(',')) {
    const protocol = entry.trim()
    if (protocol.startsWith(ProtocolPrefix.Resume)) return protocol.slice(ProtocolPrefix.Resume.length)
  }
  return undefined
}

function statusCodeOf (err: unknown): number | undefined {
  return (err as { statusCode?: number } | null)?.statusCode
}

// A 4xx status on the error (as @fastify/error and http-errors set) means the
// hook refused on purpose: the client may see the code and message.
function refusalStatus (err: unknown): number | undefined {
  const status = statusCodeOf(err)
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined
}

function toWireError (err: unknown): WireError {
  if (refusalStatus(err) === undefined) return { code: ErrorCode.Internal, message: 'Internal server error' }
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

/** The connection of an accepted socket (lib/socket-errors.ts logs with its id); undefined before accept. */
export function connectionOf (socket: WebSocket): RealtimeConnection | undefined {
  return (socket as Partial<PipelineSocket>)[kConnection]
}
