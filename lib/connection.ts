// One client of a real-time route: identity, sending, closing. Writes go
// through lib/frames.ts, the one file that knows ws's internals.
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { UserType } from '@fastify/jwt'
import type { WebSocket } from 'ws'
import { closeReason, serializeAck, serializeError, serializeEvent, type WireError } from './protocol.js'
import type { Hub } from './hub.js'
import type { CompiledRoute } from './route.js'
import type { RoomTarget } from './rooms.js'
import type { ConnectionAuth } from './auth.js'
import type { Connection } from '../types/route.js'
import { limitKey, rateLimited, type ConnectionLimits } from './limits.js'
import { Frame, writeFrame } from './frames.js'

// ws readyState OPEN; read as a number so this file does not import ws at runtime.
const OPEN = 1
const NO_ROOMS: ReadonlySet<string> = new Set()
// obs: connections in order of arrival, the inspection API's cursor (lib/inspect.ts).
let serials = 0

// @fastify/websocket leaves the bytes read past the upgrade request (ws has
// consumed them by now) on the raw request under its private `ws-head` symbol,
// which would keep a Buffer alive for the whole life of the connection.
function releaseUpgradeHead (raw: object): void {
  for (const key of Object.getOwnPropertySymbols(raw)) {
    if (key.description === 'ws-head') (raw as Record<symbol, unknown>)[key] = undefined
  }
}

export class RealtimeConnection implements Connection {
  readonly request: FastifyRequest
  readonly socket: WebSocket
  readonly route: CompiledRoute
  readonly hub: Hub
  /** Invalid frames so far, against the error budget. */
  protocolErrors = 0
  /** Rate-limit buckets (lib/limits.ts), made on the first message. */
  limits: ConnectionLimits | null = null
  /** Frames that arrived while an async onOpen was still running; null once open. */
  pending: Array<[Buffer, boolean]> | null = null
  /** Auth state, kept by lib/auth.ts; null once closed. */
  auth: ConnectionAuth | null = null
  /** Messages `authorize` refused so far, against `auth.forbiddenBudget` (lib/authorize.ts). */
  forbidden = 0
  /** When the outgoing buffer went over the soft limit (ms since epoch); 0 when under it (lib/backpressure.ts). */
  slowSince = 0
  /** obs: when the socket opened (ms since epoch) and its order of arrival, for lib/inspect.ts. */
  readonly openedAt = Date.now()
  readonly serial = ++serials
  // Made on first use: most connections never need an id, a logger or a room
  // set, and each would cost every idle connection memory.
  #id: string | null = null
  #log: FastifyBaseLogger | null = null
  #joined: Set<string> | null = null

  constructor (socket: WebSocket, request: FastifyRequest, route: CompiledRoute, hub: Hub) {
    this.socket = socket
    this.request = request
    this.route = route
    this.hub = hub
    releaseUpgradeHead(request.raw)
  }

  get id (): string {
    // randomUUID builds its string from many pieces; a flat copy is a tenth of the size.
    this.#id ??= Buffer.from(randomUUID(), 'latin1').toString('latin1')
    return this.#id
  }

  get log (): FastifyBaseLogger {
    this.#log ??= this.request.log.child({ connId: this.id })
    return this.#log
  }

  /** The rooms joined, kept by lib/rooms.ts; exposed read-only as `rooms`. */
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
    this.route.checkEmit(type, data)
    this.hub.recorder?.messageOut(this.route, type) // obs
    this.send(serializeEvent(type, data))
  }

  /** Sends an already-serialized message; dropped silently once the socket is closing. */
  send (message: string | Buffer): void {
    if (this.socket.readyState !== OPEN) return
    this.sendFrame(new Frame(message))
  }

  /** Sends a message framed once for many connections (a room broadcast); dropped once the socket is closing. */
  sendFrame (frame: Frame): void {
    if (this.socket.readyState !== OPEN) return
    this.hub.counters.messagesOut++
    writeFrame(this, frame)
  }

  get rooms (): ReadonlySet<string> {
    return this.#joined ?? NO_ROOMS
  }

  join (room: string): Promise<void> {
    return this.hub.rooms.join(this, room)
  }

  leave (room: string): boolean {
    return this.hub.rooms.leave(this, room)
  }

  to (room: string): RoomTarget {
    return this.hub.rooms.to(room, this.route)
  }

  ack (id: string | number, data: unknown): void {
    this.hub.recorder?.messageOut(this.route, 'ack') // obs
    this.send(serializeAck(id, data))
  }

  error (error: WireError, id?: string | number): void {
    this.hub.recorder?.messageOut(this.route, 'error') // obs
    this.send(serializeError(error, id))
  }

  async consume (name: string, limit: { rate: number, burst: number, cost?: number }): Promise<void> {
    const store = this.hub.rateLimitStore
    if (store === null) return
    const key = limitKey(this, 'user', this.route.options.auth.userId) as string
    const result = await store.take(`consume:${name}:${key}`, limit.rate, limit.burst, limit.cost ?? 1)
    if (!result.allowed) throw rateLimited(result.retryAfter)
  }

  close (code = 1000, reason = ''): void {
    if (this.socket.readyState !== OPEN) return
    this.socket.close(code, closeReason(reason))
  }
}
