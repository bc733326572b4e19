// One client of a real-time route, as handlers see it: identity, sending,
// closing, rooms. Writes go through lib/frames.ts, the one file that knows ws's
// internals. What a frame from the client does is lib/pipeline.ts's business.
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { UserType } from '@fastify/jwt'
import type { WebSocket } from 'ws'
import { closeReason, serializeAck, serializeError, serializeEvent, type WireError } from './protocol.js'
import type { Hub } from './hub.js'
import type { EmitChecker, RoomTarget } from './rooms.js'
import type { ConnectionAuth } from './auth.js'
import type { Backpressure } from './backpressure.js'
import type { Connection, ConnectionRequest, Emitter } from '../types/route.js'
import type { Held } from './conflation.js'
import { latestKey } from './delivery.js'
import { FRT_ERR_EMIT_INVALID } from './errors.js'
import { limitKey, rateLimited, type ConnectionLimits } from './limits.js'
import { Frame, writeFrame } from './frames.js'
import { userKey, type ResolvedOptions } from './options.js'
import type { InboundMessage } from './protocol.js'
import type { RecordedRoute, Recorder } from './recorder.js'
import type { Catchup } from './catchup.js'
import type { SessionLink } from './session.js'
import { activeTraceparent, deliverChannel, publishUnicast } from './trace-context.js'
import type { Transport } from './transport.js'

// ws readyState OPEN; read as a number so this file does not import ws at runtime.
const OPEN = 1
const NO_ROOMS: ReadonlySet<string> = new Set()
// Connections in order of arrival: the inspection API's cursor (lib/inspect.ts).
let serials = 0

// @fastify/websocket leaves the bytes read past the upgrade request (ws has
// consumed them by now) on the raw request under its private `ws-head` symbol,
// which would keep a Buffer alive for the whole life of the connection.
function releaseUpgradeHead (raw: object): void {
  for (const key of Object.getOwnPropertySymbols(raw)) {
    if (key.description === 'ws-head') (raw as Record<symbol, unknown>)[key] = undefined
  }
}

// The ServerResponse @fastify/websocket made for the upgrade stays assigned to the TCP socket (its
// `_httpMessage`) for the connection's life, though nothing writes to it after the 101: detached here,
// as Node detaches a response when it ends, so it and what it holds can be collected.
function releaseUpgradeResponse (raw: { socket?: unknown }): void {
  const socket = raw.socket as { _httpMessage?: { detachSocket (socket: unknown): void } | null } | null | undefined
  socket?._httpMessage?.detachSocket(socket)
}

// A handler's join has no request to ack: the replay and the live messages are what the client sees.
function noAck (): void {}

// The WebSocket handshake's own headers: used by the upgrade (ws, lib/handshake.ts) and by nobody after it. The
// rest of the headers are kept; these five strings alone are ~0.2 KB per idle connection.
const HANDSHAKE_HEADERS: ReadonlySet<string> = new Set(['connection', 'upgrade', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions'])

function keptHeaders (headers: FastifyRequest['headers']): FastifyRequest['headers'] {
  const kept: FastifyRequest['headers'] = {}
  for (const name in headers) {
    if (!HANDSHAKE_HEADERS.has(name)) kept[name] = headers[name]
  }
  return kept
}

// An empty query or params object (the usual case) is replaced by this one, shared: one object less per connection.
const NOTHING: Readonly<Record<string, never>> = Object.freeze({})

function kept (value: unknown): unknown {
  return typeof value === 'object' && value !== null && Object.keys(value).length === 0 ? NOTHING : value
}

/**
 * The fields of the upgrade request a connection keeps once it is open (`ConnectionRequest`), copied into one
 * object of a fixed shape, so that the Fastify request, its IncomingMessage, raw headers and stream state can go.
 * `user` is copied too (an app's own hook may have set it), since `conn.user` reads it from here.
 */
class KeptRequest {
  readonly id: FastifyRequest['id']
  readonly ip: string
  readonly host: string
  readonly protocol: FastifyRequest['protocol']
  readonly url: string
  readonly method: string
  readonly headers: FastifyRequest['headers']
  readonly query: unknown
  readonly params: unknown
  readonly log: FastifyBaseLogger
  readonly server: FastifyRequest['server']
  readonly user: UserType | undefined

  constructor (request: FastifyRequest) {
    this.id = request.id
    this.ip = request.ip
    this.host = request.host
    this.protocol = request.protocol
    this.url = request.url
    this.method = request.method
    this.headers = keptHeaders(request.headers)
    this.query = kept(request.query)
    this.params = kept(request.params)
    this.log = request.log
    this.server = request.server
    this.user = (request as { user?: UserType }).user
  }
}

export class RealtimeConnection implements Connection {
  /** The whole upgrade request until `keepRequestFields` (lib/pipeline.ts, after onOpen on a route without auth). */
  request: ConnectionRequest
  readonly socket: WebSocket
  /** The slow-consumer policy every send answers to (lib/backpressure.ts). */
  readonly backpressure: Backpressure
  /** Whether joins and leaves are announced to the room (the route's `presence`). */
  readonly announcesPresence: boolean
  /** Invalid frames so far, against the error budget; written only by lib/pipeline.ts. */
  protocolErrors = 0
  /** Messages `authorize` refused so far, against `auth.forbiddenBudget`; written only by lib/pipeline.ts. */
  forbidden = 0
  /**
   * Frames held back, in arrival order, while an earlier step is still answering (async onOpen, first-message
   * auth, async authorize or shared limit); null when frames are dispatched as they come. Written only by lib/pipeline.ts.
   */
  pending: Array<[Buffer, boolean]> | null = null
  /** Rate-limit buckets, made on the first message by lib/limits.ts. */
  limits: ConnectionLimits | null = null
  /** Auth state, kept by lib/auth.ts; null once closed. */
  auth: ConnectionAuth | null = null
  /** When the outgoing buffer went over the soft limit (ms since epoch); 0 when under it. Written by lib/backpressure.ts. */
  slowSince = 0
  /** Latest-by-key messages held while the socket is behind (lib/conflation.ts); null almost always. */
  conflated: Held | null = null
  /** When the socket opened (ms since epoch) and its order of arrival, for lib/inspect.ts. */
  readonly openedAt = Date.now()
  readonly serial = ++serials
  /** The route's declared emits and its full URL (lib/route.ts). */
  readonly #emits: EmitChecker & RecordedRoute
  /** Metrics and the admin page (lib/recorder.ts); null when both are off. */
  readonly #recorder: Recorder | null
  // The message whose handler is running (see handlerStart), so its log lines carry msgId.
  #message: InboundMessage | null = null
  #handling = 0
  #messageLog: FastifyBaseLogger | null = null
  #messageLogFor: InboundMessage | null = null
  /** The application's state; on a route with sessions, what `keep` returns of it comes back on resume. */
  data: unknown = null
  /** Resumed a previous session (set before onOpen by lib/recovery.ts). */
  recovered = false
  /** Live room messages held while a replay is read (lib/recovery.ts, lib/rooms.ts); null almost always. */
  catchups: Map<string, Catchup> | null = null
  /** The connection's session (lib/session.ts); null on a route without sessions. */
  session: SessionLink | null = null
  readonly #hub: Hub
  readonly #userId: ResolvedOptions['auth']['userId']
  // Made on first use: most connections never need an id, a logger or a room
  // set, and each would cost every idle connection memory.
  #id: string | null = null
  #log: FastifyBaseLogger | null = null
  #joined: Set<string> | null = null

  constructor (socket: WebSocket, request: FastifyRequest, hub: Hub, emits: EmitChecker & RecordedRoute, announcesPresence: boolean,
    userId: ResolvedOptions['auth']['userId'], recorder: Recorder | null) {
    this.socket = socket
    this.request = request
    this.#hub = hub
    this.#emits = emits
    this.#userId = userId
    this.#recorder = recorder
    this.backpressure = hub.backpressure
    this.announcesPresence = announcesPresence
    releaseUpgradeHead(request.raw)
    // Only after an upgrade: on the SSE transport that response is the stream itself.
    if (request.ws) releaseUpgradeResponse(request.raw)
  }

  /**
   * Keeps of the upgrade request only the fields of `ConnectionRequest` (lib/pipeline.ts calls it once onOpen
   * ran, on routes without auth: a route with auth verifies refreshed tokens on the request itself).
   */
  keepRequestFields (): void {
    this.request = new KeptRequest(this.request as FastifyRequest)
  }

  get id (): string {
    // randomUUID builds its string from many pieces; a flat copy is a tenth of the size.
    this.#id ??= Buffer.from(randomUUID(), 'latin1').toString('latin1')
    return this.#id
  }

  /** The route's full URL (plugin prefix included). */
  get path (): string {
    return this.#emits.path
  }

  /** Takes the id of the session this connection resumed (lib/recovery.ts, before onOpen). */
  adopt (id: string): void {
    this.#id = id
    this.#log = null
  }

  /** The user as a string key (`auth.userId`), null when anonymous: what a session is bound to. */
  get userKey (): string | null {
    return userKey(this.#userId, this.user) ?? null
  }

  get log (): FastifyBaseLogger {
    this.#log ??= this.request.log.child({ connId: this.id })
    const msg = this.#message
    if (msg === null || msg.id === undefined) return this.#log
    // A child per message only when its handler logs, kept for the rest of that message.
    if (this.#messageLogFor !== msg) {
      this.#messageLog = this.#log.child({ msgId: msg.id })
      this.#messageLogFor = msg
    }
    return this.#messageLog as FastifyBaseLogger
  }

  /**
   * lib/pipeline.ts is about to run msg's handler: until it returns, `log` carries msgId. Returns what to give
   * handlerReturned. No allocation: a field write and a count.
   */
  handlerStart (msg: InboundMessage): InboundMessage | null {
    this.#handling++
    const previous = this.#message
    this.#message = msg
    return previous
  }

  /**
   * The handler returned. A pending one keeps msgId on its later lines (after an await) while it is the only
   * handler in flight on the connection; when handlers overlap, which one logs is unknowable without async
   * context, so their later lines carry connId only: never another message's id.
   */
  handlerReturned (previous: InboundMessage | null, pending: boolean): void {
    if (!pending) {
      this.#handling--
      this.#message = previous
    } else if (this.#handling > 1) {
      this.#message = null
    }
  }

  /** A pending handler settled. */
  handlerSettled (msg: InboundMessage): void {
    this.#handling--
    if (this.#message === msg) this.#message = null
  }

  /** The rooms joined, written only by lib/rooms.ts; exposed read-only as `rooms`. */
  get joined (): Set<string> {
    this.#joined ??= new Set()
    return this.#joined
  }

  get user (): UserType | undefined {
    return (this.request as { user?: UserType }).user
  }

  get closed (): boolean {
    return this.socket.readyState !== OPEN
  }

  emit (type: string, data: unknown): void {
    this.emitWith(type, data, null)
  }

  get volatile (): Emitter {
    return new Unicast(this, true)
  }

  latest (key: string): Emitter {
    if (typeof key !== 'string') throw new FRT_ERR_EMIT_INVALID('latest', `the key must be a string, got ${typeof key}`)
    return new Unicast(this, key)
  }

  /**
   * `emit` with a chosen delivery: null the route's declared one, true volatile, a string latest by that key.
   * Volatile and latest messages are not kept for a session waiting for its client: they would be stale.
   */
  emitWith (type: string, data: unknown, chosen: true | string | null): void {
    const emits = this.#emits
    emits.checkEmit(type, data)
    const delivery = chosen === null ? emits.delivery(type, data) : chosen === true || latestKey(type, chosen)
    this.#recorder?.messageOut(emits, type)
    // For a tracer: the emit with the trace of the handler sending it (lib/trace-context.ts).
    if (deliverChannel.hasSubscribers) publishUnicast(type, this.id, this.socket.readyState === OPEN ? 1 : 0, this.#hub.rooms.instance, activeTraceparent())
    if (delivery === false) {
      this.send(serializeEvent(type, data))
      return
    }
    if (this.socket.readyState !== OPEN) return
    if (delivery !== true) {
      // A unicast's key: no room (room names are never empty).
      this.#hub.conflation.send(this, new Frame(serializeEvent(type, data)), ' ' + delivery)
    } else if (this.backpressure.isSlow(this)) {
      this.#hub.counters.volatileDrops++
    } else {
      this.sendFrame(new Frame(serializeEvent(type, data)))
    }
  }

  /**
   * Sends an already-serialized message; dropped silently once the socket is closing, or, while a session
   * waits for its client, kept for it (bounded).
   */
  send (message: string | Buffer): void {
    if (this.socket.readyState !== OPEN) {
      if (this.session?.detached === true) this.session.unicast(message.toString())
      return
    }
    this.sendFrame(new Frame(message))
  }

  /** Sends a message framed once for many connections (a room broadcast); dropped once the socket is closing. */
  sendFrame (frame: Frame): void {
    if (this.socket.readyState !== OPEN) return
    this.#hub.counters.messagesOut++
    writeFrame(this, frame)
  }

  get rooms (): ReadonlySet<string> {
    return this.#joined ?? NO_ROOMS
  }

  join (room: string): Promise<void> {
    const transport = this.socket as unknown as Required<Transport>
    if (transport.moved === undefined) return this.#hub.rooms.join(this, room)
    // An SSE stream resumed by `Last-Event-ID` (lib/sse-cursor.ts): the join replays what the stream missed.
    const since = this.recovered ? null : transport.takeSince(room)
    const joined = since === null ? this.#hub.rooms.join(this, room) : this.#hub.recovery.join(this, room, since, false, undefined, noAck)
    // Once joined (and caught up), the stream's cursor lists the room.
    return joined.then(() => { transport.moved() })
  }

  leave (room: string): boolean {
    const left = this.#hub.rooms.leave(this, room)
    ;(this.socket as unknown as Transport).moved?.()
    return left
  }

  to (room: string): RoomTarget {
    return this.#hub.rooms.to(room, this.#emits)
  }

  ack (id: string | number, data: unknown): void {
    this.#recorder?.messageOut(this.#emits, 'ack')
    this.#reply(id, serializeAck(id, data))
  }

  error (error: WireError, id?: string | number): void {
    this.#recorder?.messageOut(this.#emits, 'error')
    this.#reply(id, serializeError(error, id))
  }

  // A reply with an id is remembered by the session (a re-sent request gets it again), never kept as unicast.
  #reply (id: string | number | undefined, frame: string): void {
    if (id !== undefined) this.session?.reply(id, frame)
    if (this.socket.readyState === OPEN) this.sendFrame(new Frame(frame))
  }

  async consume (name: string, limit: { rate: number, burst: number, cost?: number }): Promise<void> {
    const store = this.#hub.rateLimitStore
    if (store === null) return
    const key = limitKey(this, 'user', this.#userId) as string
    const result = await store.take(`consume:${name}:${key}`, limit.rate, limit.burst, limit.cost ?? 1)
    if (!result.allowed) throw rateLimited(result.retryAfter)
  }

  close (code = 1000, reason = ''): void {
    if (this.socket.readyState !== OPEN) return
    this.session?.freeze()
    this.socket.close(code, closeReason(reason))
  }
}

/** `conn.volatile` and `conn.latest(key)`: the connection's emits with a chosen delivery. */
class Unicast implements Emitter {
  readonly #conn: RealtimeConnection
  readonly #delivery: true | string

  constructor (conn: RealtimeConnection, delivery: true | string) {
    this.#conn = conn
    this.#delivery = delivery
  }

  emit (type: string, data: unknown): void {
    this.#conn.emitWith(type, data, this.#delivery)
  }
}
