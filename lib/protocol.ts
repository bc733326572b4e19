// The wire protocol, in one place. PROTOCOL.md is its prose; keep the two in step
// and bump PROTOCOL_VERSION on any change a client could notice.
import sjson from 'secure-json-parse'

export const PROTOCOL_VERSION = '1.0'

/** Message types the protocol itself uses; a route may not declare them. */
export const MessageType = {
  Ack: 'ack',
  Error: 'error',
  Ping: 'ping',
  Pong: 'pong'
} as const

/** Close codes: 1xxx from RFC 6455, 44xx/45xx mirror HTTP statuses. */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  UnsupportedData: 1003,
  MessageTooBig: 1009,
  InternalError: 1011,
  BadRequest: 4400,
  Unauthorized: 4401,
  Forbidden: 4403,
  Timeout: 4408,
  TooManyRequests: 4429,
  ServerError: 4500
} as const

/** Error codes carried in `{"type":"error","error":{"code":...}}` replies. */
export const ErrorCode = {
  BadJson: 'bad_json',
  BadMessage: 'bad_message',
  UnknownType: 'unknown_type',
  InvalidData: 'invalid_data',
  Internal: 'internal'
} as const

// RFC 6455 limits a close reason to 123 bytes of UTF-8.
const MAX_REASON_BYTES = 123
// A request id is echoed back verbatim; bound it so it cannot amplify replies.
const MAX_ID_LENGTH = 128

export interface InboundMessage {
  type: string
  data: unknown
  id: string | number | undefined
}

export interface WireError {
  code: string
  message: string
  details?: unknown
}

/** Thrown by `parse` for a frame that is not a protocol message; never escapes the route. */
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

function isValidId (id: unknown): id is string | number {
  return (typeof id === 'string' && id.length <= MAX_ID_LENGTH) ||
    (typeof id === 'number' && Number.isFinite(id))
}

/**
 * Parses one text frame into an envelope. Keys that would poison a prototype
 * (`__proto__`, `constructor.prototype`) are refused, as Fastify refuses them in bodies.
 */
export function parse (text: string): InboundMessage | ProtocolError {
  let value: unknown
  try {
    value = sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
  } catch {
    return new ProtocolError(ErrorCode.BadJson, 'Frame is not valid JSON')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return new ProtocolError(ErrorCode.BadMessage, 'Message must be a JSON object')
  }
  const msg = value as Record<string, unknown>
  const id = msg.id
  if (id !== undefined && !isValidId(id)) {
    return new ProtocolError(ErrorCode.BadMessage, 'Message id must be a string (at most 128 characters) or a finite number')
  }
  if (typeof msg.type !== 'string' || msg.type.length === 0) {
    return new ProtocolError(ErrorCode.BadMessage, 'Message type must be a non-empty string', id)
  }
  return { type: msg.type, data: msg.data, id }
}

export function serializeEvent (type: string, data: unknown): string {
  return data === undefined
    ? '{"type":' + JSON.stringify(type) + '}'
    : '{"type":' + JSON.stringify(type) + ',"data":' + JSON.stringify(data) + '}'
}

export function serializeAck (id: string | number, data: unknown): string {
  return JSON.stringify({ type: MessageType.Ack, id, data: data === undefined ? null : data })
}

export function serializeError (error: WireError, id?: string | number): string {
  return JSON.stringify({ type: MessageType.Error, id, error })
}

export const PONG = serializeEvent(MessageType.Pong, undefined)

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
