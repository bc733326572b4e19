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
// How deep the poisoning check recurses before it hands the rest to secure-json-parse's iterative scan: past
// it a hostile frame of nested arrays could exhaust the stack (JSON.parse itself does not recurse).
const MAX_WALK_DEPTH = 64

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
 * Whether a parsed value has a key that would poison a prototype, as secure-json-parse's `scan` refuses them
 * (`__proto__`; `constructor` holding an object with its own `prototype`). JSON.parse has already decoded any
 * `\u` escapes in the keys, so this sees them as they are; a frame's few keys cost less to walk than its text to scan.
 */
function isPoisoned (node: object, depth: number): boolean {
  if (depth === MAX_WALK_DEPTH) return isScanRefused(node)
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const item: unknown = node[i]
      if (typeof item === 'object' && item !== null && isPoisoned(item, depth + 1)) return true
    }
    return false
  }
  for (const key in node) {
    const value: unknown = (node as Record<string, unknown>)[key]
    if (typeof value !== 'object' || value === null) {
      if (key === '__proto__') return true
      continue
    }
    if (key === '__proto__' || (key === 'constructor' && Object.hasOwn(value, 'prototype'))) return true
    if (isPoisoned(value, depth + 1)) return true
  }
  return false
}

function isScanRefused (node: object): boolean {
  try {
    sjson.scan(node, { protoAction: 'error', constructorAction: 'error' })
    return false
  } catch {
    return true
  }
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
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return new ProtocolError(ErrorCode.BadMessage, 'Message must be a JSON object')
  }
  // The one pass over the text is JSON.parse's; the check walks the parsed keys, never the text again.
  if (isPoisoned(value, 0)) {
    return new ProtocolError(ErrorCode.BadMessage, 'Message contains a forbidden prototype property')
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

// The ack's fixed head, written once: what JSON.stringify of `{ type, id, data }` would give, built by
// concatenation so that a request's reply costs one JSON.stringify of its result and no envelope object.
const ACK_HEAD = '{"type":' + JSON.stringify(MessageType.Ack)
const ACK_ID = ACK_HEAD + ',"id":'
const ACK_NO_ID = ACK_HEAD + ',"data":'

/**
 * An ack without an id (an `auth` frame sent without one) leaves `id` out. Byte for byte what
 * `JSON.stringify({ type: 'ack', id, data })` gives, `undefined` data sent as null.
 */
export function serializeAck (id: string | number | undefined, data: unknown): string {
  const json = data === undefined ? 'null' : JSON.stringify(data)
  // A value JSON cannot hold (a function, a symbol) leaves `data` out, as JSON.stringify of the envelope does.
  const tail = json === undefined ? '}' : ',"data":' + json + '}'
  if (id === undefined) return json === undefined ? ACK_HEAD + '}' : ACK_NO_ID + json + '}'
  // A number is written as JSON writes it (a non-finite one as null) without a JSON.stringify call.
  return ACK_ID + (typeof id === 'number' ? (Number.isFinite(id) ? '' + id : 'null') : JSON.stringify(id)) + tail
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
