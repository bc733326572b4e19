// Connection caps of this instance: in total (503), per client address and per
// user (429 with Retry-After), all answered before the upgrade. A slot is taken
// by a request still in its handshake and given back when its transport
// closes, whatever happens in between (refused by a later hook, failed
// upgrade, client gone, socket closed), so the count is of sockets, not of
// finished upgrades.
import type { Duplex } from 'node:stream'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { FRT_ERR_CAPS_ADDRESS, FRT_ERR_CAPS_TOTAL, FRT_ERR_CAPS_USER } from './errors.js'
import type { UserType } from '@fastify/jwt'
import { isStreamRequest } from './transport.js'

export interface CapsOptions {
  /** 0 means no cap. */
  readonly max: number
  readonly perIp: number
  readonly perUser: number
  /** Seconds, sent as Retry-After. */
  readonly retryAfter: number
}

interface Slot {
  caps: ConnectionCaps
  ip: string | undefined
  user: string | undefined
}

const kSlot = Symbol('fastify-realtime.capsSlot')
type SlotStream = Duplex & { [kSlot]?: Slot }
type Hook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

export class ConnectionCaps {
  readonly options: CapsOptions
  readonly #userKey: (user: UserType) => string | undefined
  total = 0
  readonly perIp = new Map<string, number>()
  readonly perUser = new Map<string, number>()

  constructor (options: CapsOptions, userKey: (user: UserType) => string | undefined) {
    this.options = options
    this.#userKey = userKey
  }

  /** `onRequest`, before auth: the total and per-address caps, cheap enough to shed load before any crypto. */
  readonly acquire: Hook = (request, reply, done) => {
    const stream = slotStream(request, reply)
    if (stream === undefined || stream.destroyed) return done()
    const { max, perIp, retryAfter } = this.options
    if (max > 0 && this.total >= max) {
      reply.header('retry-after', String(retryAfter))
      return done(new FRT_ERR_CAPS_TOTAL())
    }
    const ip = request.ip
    if (perIp > 0 && ip !== undefined && (this.perIp.get(ip) ?? 0) >= perIp) {
      reply.header('retry-after', String(retryAfter))
      return done(new FRT_ERR_CAPS_ADDRESS())
    }
    this.total++
    if (ip !== undefined) this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1)
    stream[kSlot] = { caps: this, ip, user: undefined }
    stream.once('close', releaseSlot)
    done()
  }

  /** `preHandler`, after every auth hook has run: the per-user cap. */
  readonly acquireUser: Hook = (request, reply, done) => {
    const stream = slotStream(request, reply)
    const slot = stream?.[kSlot]
    const user = (request as { user?: UserType }).user
    if (slot === undefined || user == null || this.options.perUser === 0) return done()
    const key = this.#userKey(user)
    if (key === undefined) return done()
    if ((this.perUser.get(key) ?? 0) >= this.options.perUser) {
      reply.header('retry-after', String(this.options.retryAfter))
      return done(new FRT_ERR_CAPS_USER())
    }
    this.perUser.set(key, (this.perUser.get(key) ?? 0) + 1)
    slot.user = key
    done()
  }

  release (slot: Slot): void {
    this.total--
    decrement(this.perIp, slot.ip)
    decrement(this.perUser, slot.user)
  }
}

// One listener for every stream: the slot rides on the stream, not in a closure.
function releaseSlot (this: SlotStream): void {
  const slot = this[kSlot] as Slot
  this[kSlot] = undefined
  slot.caps.release(slot)
}

function decrement (map: Map<string, number>, key: string | undefined): void {
  if (key === undefined) return
  const n = (map.get(key) as number) - 1
  if (n === 0) {
    map.delete(key)
  } else {
    map.set(key, n)
  }
}

// What a slot rides on: the upgrade's transport, or an SSE stream's response (its 'close' ends the stream);
// nothing for other requests (an SSE POST is not a connection).
function slotStream (request: FastifyRequest, reply: FastifyReply): SlotStream | undefined {
  if (request.ws) return upgradeStream(request)
  return isStreamRequest(request) ? reply.raw as unknown as SlotStream : undefined
}

// The transport under an upgrade request: the TCP socket, or for `app.injectWS`
// (a plain request object with no socket) the in-memory stream, which only
// @fastify/websocket's private `ws-socket` symbol holds.
function upgradeStream (request: FastifyRequest): SlotStream | undefined {
  const raw = request.raw as unknown as Record<symbol, unknown> & { socket?: SlotStream }
  if (raw.socket != null) return raw.socket
  for (const key of Object.getOwnPropertySymbols(raw)) {
    if (key.description === 'ws-socket') return raw[key] as SlotStream
  }
  /* c8 ignore next 2: an upgrade always has one or the other; no caps rather than a crash if a transport ever has neither */
  return undefined
}
