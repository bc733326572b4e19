// One client of a real-time route: identity, sending, closing. It knows the
// socket only through send/close/readyState, so later transports can stand in.
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

// ws readyState OPEN; read as a number so this file does not import ws at runtime.
const OPEN = 1
// Room frames arrive as Buffers serialized once for all members; they are still text frames.
const TEXT = { binary: false }

export class RealtimeConnection implements Connection {
  readonly id: string = randomUUID()
  readonly request: FastifyRequest
  readonly log: FastifyBaseLogger
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
  /** The rooms joined, kept by lib/rooms.ts; exposed read-only as `rooms`. */
  readonly joined = new Set<string>()
  /** When the outgoing buffer went over the soft limit (ms since epoch); 0 when under it (lib/backpressure.ts). */
  slowSince = 0

  constructor (socket: WebSocket, request: FastifyRequest, route: CompiledRoute, hub: Hub) {
    this.socket = socket
    this.request = request
    this.route = route
    this.hub = hub
    this.log = request.log.child({ connId: this.id })
  }

  get user (): UserType | undefined {
    return (this.request as { user?: UserType }).user
  }

  get closed (): boolean {
    return this.socket.readyState !== OPEN
  }

  emit (type: string, data: unknown): void {
    this.route.checkEmit(type, data)
    this.send(serializeEvent(type, data))
  }

  /** Sends an already-serialized frame; dropped silently once the socket is closing. */
  send (frame: string | Buffer): void {
    if (this.socket.readyState !== OPEN) return
    this.hub.counters.messagesOut++
    this.socket.send(frame, TEXT)
    this.hub.backpressure.check(this)
  }

  get rooms (): ReadonlySet<string> {
    return this.joined
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
    this.send(serializeAck(id, data))
  }

  error (error: WireError, id?: string | number): void {
    this.send(serializeError(error, id))
  }

  async consume (name: string, limit: { rate: number, burst: number, cost?: number }): Promise<void> {
    const store = this.hub.rateLimitStore
    if (store === null) return
    const key = limitKey(this, 'user', this.route.options.auth.userId as (user: never) => unknown) as string
    const result = await store.take(`consume:${name}:${key}`, limit.rate, limit.burst, limit.cost ?? 1)
    if (!result.allowed) throw rateLimited(result.retryAfter)
  }

  close (code = 1000, reason = ''): void {
    if (this.socket.readyState !== OPEN) return
    this.socket.close(code, closeReason(reason))
  }
}
