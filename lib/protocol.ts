// The wire protocol's server side: parsing and serializing frames. The constants
// are in lib/wire.ts; PROTOCOL.md is the prose of both.
import sjson from 'secure-json-parse'
import { ErrorCode, MessageType } from './wire.js'
import { validTraceparent } from './traceparent.js'

// The constants live in lib/wire.ts (no imports, shared with the client).
export { Backoff, CloseCode, ErrorCode, MessageType, PROTOCOL_VERSION, ProtocolPrefix, RetryPolicy, type RetryAction } from './wire.js'

// RFC 6455 limits a close reason to 123 bytes of UTF-8.
const MAX_REASON_BYTES = 123
// A request id is echoed back verbatim; bound it so it cannot amplify replies.
const MAX_ID_LENGTH = 128
// A cheap pre-screen: only frames that could spell __proto__ or constructor
// (possibly with \u escapes) pay for secure-json-parse's full scan.
const MAYBE_POISONED = /proto|constructor|\\u/

export interface InboundMessage {
  type: string
  data: unknown
  id: string | number | undefined
  /** A valid W3C trace context from the envelope (lib/traceparent.ts); an invalid one is ignored. */
  traceparent?: string | undefined
}

export interface WireError {
  code: string
  message: string
  details?: unknown
  /** With `rate_limited`: ms until a retry can succeed. */
  retryAfter?: number
}

/** Returned (never thrown) by `parse` for a frame that is not a protocol message. */
export class ProtocolError {
  readonly code: string
  readonly message: string
  readonly id: string | number | undefined
  constructor (code: string, message: string, id?: string | number) {
    this.code = code
    this.message = message
    this.id = id
  }
}

// A numeric id past 2^53 - 1 has already lost digits in JSON.parse: echoing it back altered would make the
// reply unmatchable, so it is refused (a client with bigger ids sends them as strings).
function isValidId (id: unknown): id is string | number {
  return (typeof id === 'string' && id.length <= MAX_ID_LENGTH) ||
    (typeof id === 'number' && Math.abs(id) <= Number.MAX_SAFE_INTEGER)
}

/**
 * Parses one text frame into an envelope. Keys that would poison a prototype
 * (`__proto__`, `constructor.prototype`) are refused, as Fastify refuses them in bodies.
 */
export function parse (text: string): InboundMessage | ProtocolError {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return new ProtocolError(ErrorCode.BadJson, 'Frame is not valid JSON')
  }
  if (MAYBE_POISONED.test(text)) {
    try {
      sjson.scan(value as object, { protoAction: 'error', constructorAction: 'error' })
    } catch {
      return new ProtocolError(ErrorCode.BadMessage, 'Message contains a forbidden prototype property')
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return new ProtocolError(ErrorCode.BadMessage, 'Message must be a JSON object')
  }
  const msg = value as Record<string, unknown>
  const id = msg.id
  if (id !== undefined && !isValidId(id)) {
    return new ProtocolError(ErrorCode.BadMessage, 'Message id must be a string (at most 128 characters) or a number within the safe integer range (|id| < 2^53)')
  }
  if (typeof msg.type !== 'string' || msg.type.length === 0) {
    return new ProtocolError(ErrorCode.BadMessage, 'Message type must be a non-empty string', id)
  }
  // A missing `data` is null (PROTOCOL.md), so a Type.Null() message needs no "data" field.
  return { type: msg.type, data: msg.data === undefined ? null : msg.data, id, traceparent: validTraceparent(msg.traceparent) }
}

export function serializeEvent (type: string, data: unknown): string {
  return data === undefined
    ? '{"type":' + JSON.stringify(type) + '}'
    : '{"type":' + JSON.stringify(type) + ',"data":' + JSON.stringify(data) + '}'
}

/** A room message: serialized once per broadcast and sent as is to every member. */
export function serializeRoomEvent (type: string, room: string, seq: number, data: unknown): string {
  const [head, tail] = roomEventParts(type, room, data)
  return head + seq + tail
}

/**
 * The same room message in two parts around its seq (`head + seq + tail`), for a fan-out adapter that
 * numbers messages cluster-wide: serialized once, before the seq is known.
 */
export function roomEventParts (type: string, room: string, data: unknown): [head: string, tail: string] {
  const head = '{"type":' + JSON.stringify(type) + ',"room":' + JSON.stringify(room) + ',"seq":'
  return [head, data === undefined ? '}' : ',"data":' + JSON.stringify(data) + '}']
}

/** A volatile message on a room with history: not numbered, so no `seq` (PROTOCOL.md 1.1). */
export function roomEventUnnumbered (type: string, room: string, data: unknown): string {
  return '{"type":' + JSON.stringify(type) + ',"room":' + JSON.stringify(room) +
    (data === undefined ? '}' : ',"data":' + JSON.stringify(data) + '}')
}

/** The `session` message (sent first on a route with sessions). */
export function serializeSession (data: unknown): string {
  return JSON.stringify({ type: MessageType.Session, data })
}

/** The `reconnect` advice sent before a 1012 close. */
export function serializeReconnect (after: number): string {
  return JSON.stringify({ type: MessageType.Reconnect, data: { after } })
}

/** An ack without an id (an `auth` frame sent without one) leaves `id` out. */
export function serializeAck (id: string | number | undefined, data: unknown): string {
  return JSON.stringify({ type: MessageType.Ack, id, data: data === undefined ? null : data })
}

export function serializeError (error: WireError, id?: string | number): string {
  return JSON.stringify({ type: MessageType.Error, id, error })
}

export const PONG = serializeEvent(MessageType.Pong, undefined)

/** The reply to a `ping` request: a pong carrying its id (every request's reply does). */
export function serializePong (id: string | number | undefined): string {
  return id === undefined ? PONG : JSON.stringify({ type: MessageType.Pong, id })
}

/** Cuts a close reason to the 123 bytes RFC 6455 allows, never splitting a character. */
export function closeReason (reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_REASON_BYTES) return reason
  let out = ''
  let bytes = 0
  for (const ch of reason) {
    const size = Buffer.byteLength(ch)
    if (bytes + size > MAX_REASON_BYTES) break
    out += ch
    bytes += size
  }
  return out
}
