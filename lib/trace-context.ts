// A handler's trace context, carried to what it sends, and the `fastify-realtime:deliver` channel that tells a
// subscriber about every room delivery with the trace it belongs to. Ground floor: lib/tracing.ts enters the
// context around a handler, lib/rooms.ts reads it on emit and publishes the deliveries.
//
// The synchronous part of a handler is known by a field (`current`): two writes per traced message. After an
// `await` it is known only through async context, so an AsyncLocalStorage is run, and only while a tracing
// subscriber is there (an APM, which runs one of its own anyway): on Node 20 the first `run` of any
// AsyncLocalStorage turns promise hooks on for the whole process, which a plain app must not pay for.
import { AsyncLocalStorage } from 'node:async_hooks'
import dc from 'node:diagnostics_channel'
import { validTraceparent } from './traceparent.js'

/** What carries a handler's trace: the message itself, or the tracing channel's context (a subscriber may rewrite it). */
export interface TraceCarrier {
  traceparent?: string | undefined
}

let current: TraceCarrier | null = null
const store = new AsyncLocalStorage<TraceCarrier>()
// getStore() before any run() is cheap but not free: skip it until the store was used once.
let stored = false
// The last traceparent found valid (see activeTraceparent).
let checked: string | undefined

/** Makes `carrier` the current trace for the synchronous part of a handler; returns what to give `leave`. */
export function enter (carrier: TraceCarrier): TraceCarrier | null {
  const previous = current
  current = carrier
  return previous
}

export function leave (previous: TraceCarrier | null): void {
  current = previous
}

/** Runs `fn` with `carrier` as the trace of everything it starts, after its awaits too. */
export function runInTrace<A extends unknown[], R> (carrier: TraceCarrier, fn: (...args: A) => R, ...args: A): R {
  stored = true
  return store.run(carrier, fn, ...args)
}

/**
 * The `traceparent` of the handler running now (the message's, or what a tracing subscriber made of it), valid
 * or undefined: an emit from a handler carries it to every delivery. Outside a handler: undefined.
 */
export function activeTraceparent (): string | undefined {
  const carrier = current ?? (stored ? store.getStore() : undefined)
  const value = carrier?.traceparent
  if (value === undefined || value === checked) return value
  // A subscriber may have written anything there: only a valid value crosses to other instances. The last valid
  // one is remembered, so a handler's many emits check it once.
  const valid = validTraceparent(value)
  if (valid !== undefined) checked = valid
  return valid
}

/**
 * One delivery on one instance, published on `fastify-realtime:deliver` (only when someone subscribed): a room
 * message to this instance's members, or a handler's unicast `conn.emit` (`room` null).
 */
export interface DeliverContext {
  /** The room's name; null for a unicast emit. */
  room: string | null
  /** The receiving connection of a unicast emit; undefined for a room delivery. */
  connId?: string
  /** The message's type (read from the frame's head, only when someone listens). */
  type: string
  /** The room's seq of the message; 0 for an unnumbered one (volatile on a history room, or from an adapter without seq). */
  seq: number
  volatile: boolean
  /** The members of this instance the frame was written to. */
  recipients: number
  /** This instance's id (the fan-out adapter's, e.g. the RedisAdapter's id). */
  instance: string
  /** The trace of the emit that sent it, from the sender's handler (on this instance or across Redis); else undefined. */
  traceparent: string | undefined
}

export const DELIVER_CHANNEL = 'fastify-realtime:deliver'
export const deliverChannel = dc.channel(DELIVER_CHANNEL)

// A frame starts `{"type":"<json string>"`: the type is read back only for a subscriber, never parsed whole.
const TYPE_AT = '{"type":'.length

/** The type a room frame starts with; '' when it does not start as ours do. */
export function frameType (frame: Buffer): string {
  if (frame.toString('latin1', 0, TYPE_AT) !== '{"type":') return ''
  // Room frames come from lib/protocol.ts (or another instance's, through a checked envelope): the type is a JSON
  // string right there, and a room message's next key is always "room".
  const end = frame.indexOf(',"room":', TYPE_AT)
  if (end === -1) return ''
  try {
    const type: unknown = JSON.parse(frame.toString('utf8', TYPE_AT, end))
    return typeof type === 'string' ? type : ''
  } catch {
    return ''
  }
}

/** Publishes one delivery; call only when `deliverChannel.hasSubscribers`. */
export function publishDelivery (room: string, frame: Buffer, seq: number, volatile: boolean, recipients: number,
  instance: string, traceparent: string | undefined): void {
  const ctx: DeliverContext = { room, type: frameType(frame), seq, volatile, recipients, instance, traceparent }
  deliverChannel.publish(ctx)
}

/** Publishes one unicast emit (`recipients` 0: the socket was closing); call only when `deliverChannel.hasSubscribers`. */
export function publishUnicast (type: string, connId: string, recipients: number, instance: string, traceparent: string | undefined): void {
  const ctx: DeliverContext = { room: null, connId, type, seq: 0, volatile: false, recipients, instance, traceparent }
  deliverChannel.publish(ctx)
}
