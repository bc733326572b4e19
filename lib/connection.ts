// One client of a real-time route: identity, sending, closing. It knows the
// socket only through send/close/readyState, so later transports can stand in.
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { UserType } from '@fastify/jwt'
import type { WebSocket } from 'ws'
import { closeReason, serializeAck, serializeError, serializeEvent, type WireError } from './protocol.js'
import type { Hub } from './hub.js'
import type { CompiledRoute } from './route.js'
import type { Connection } from '../types/route.js'

// ws readyState OPEN; read as a number so this file does not import ws at runtime.
const OPEN = 1

export class RealtimeConnection implements Connection {
  readonly id: string = randomUUID()
  readonly request: FastifyRequest
  readonly log: FastifyBaseLogger
  readonly socket: WebSocket
  readonly route: CompiledRoute
  readonly hub: Hub
  /** Invalid frames so far, against the error budget. */
  protocolErrors = 0
  /** Frames that arrived while an async onOpen was still running; null once open. */
  pending: Array<[Buffer, boolean]> | null = null

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
  send (frame: string): void {
    if (this.socket.readyState !== OPEN) return
    this.hub.counters.messagesOut++
    this.socket.send(frame)
  }

  ack (id: string | number, data: unknown): void {
    this.send(serializeAck(id, data))
  }

  error (error: WireError, id?: string | number): void {
    this.send(serializeError(error, id))
  }

  close (code = 1000, reason = ''): void {
    if (this.socket.readyState !== OPEN) return
    this.socket.close(code, closeReason(reason))
  }
}
