// What one instance publishes into Redis for the others: a short ASCII header
// in front of the already-serialized frame, so that a receiver learns who sent
// it, whether it is volatile and its seq without parsing the frame itself.
//
//   frt1 <flag> <origin: 16 chars> [<traceparent: 55 chars>] <seq: decimal digits> ':' [<key bytes: decimal> ':' <key>] <frame bytes>
//   frtc 0      <origin: 16 chars> <JSON command>
//
// The flag is one digit, '0' plus its bits:
// - 1 volatile;
// - 2 a W3C traceparent follows the origin (the trace of the handler that sent it, so that each instance's
//   delivery links to it). Only messages sent with a trace have it: the others cost not a byte more;
// - 4 latest: the message's conflation key follows the seq, which is 0 (latest messages are never numbered).
// Bits 2 and 4 are new (issues 15 and 14): an older instance counts such a message as invalid and drops it, so
// the RedisAdapter writes traces only with its `traceContext` option, and latest messages exist only where a
// route declares them (README, Scaling out); this reader takes every form.
//
// The Lua publish script writes `header + seq + ':' + head + seq + tail`, so the
// frame is built once, by Redis, with its seq in place. Anything else on our
// channels (garbage another client published) is rejected here and counted.
import { randomBytes } from 'node:crypto'
import { validTraceparent } from '../traceparent.js'

export const ROOM_MAGIC = 'frt1'
export const CONTROL_MAGIC = 'frtc'
const ID_LENGTH = 16
const ORIGIN_START = 5
const SEQ_START = ORIGIN_START + ID_LENGTH
// 2^53 has 16 digits: more cannot be a seq Redis produced.
const MAX_SEQ_DIGITS = 15
const COLON = 0x3a
const ZERO = 0x30
const NINE = 0x39
const OPEN = 0x7b
const CLOSE = 0x7d
// A version-00 traceparent; a later version's extra fields are not carried (its first 55 characters are the trace).
const TRACE_LENGTH = 55
/** Flag bits. */
const VOLATILE = 1
const TRACED = 2
const LATEST = 4
const KNOWN_FLAGS = VOLATILE | TRACED | LATEST
// A conflation key's length, in bytes: up to 7 digits (keys are far shorter).
const MAX_KEY_DIGITS = 7

/** A random instance id of 16 URL-safe characters. */
export function instanceId (): string {
  return randomBytes(12).toString('base64url')
}

/** The header before the seq: magic, flag, origin, and the trace when given (a valid traceparent). */
export function roomHeader (origin: string, volatile: boolean, traceparent?: string): string {
  if (traceparent === undefined) return ROOM_MAGIC + (volatile ? '1' : '0') + origin
  return ROOM_MAGIC + (volatile ? '3' : '2') + origin + traceparent.slice(0, TRACE_LENGTH)
}

/** Everything before the frame of a latest message: header (with the trace when given), seq 0, its conflation key. */
export function latestHeader (origin: string, key: string, traceparent?: string): string {
  const trace = traceparent === undefined ? '' : traceparent.slice(0, TRACE_LENGTH)
  return ROOM_MAGIC + (trace === '' ? LATEST : LATEST | TRACED) + origin + trace + '0:' + Buffer.byteLength(key) + ':' + key
}

export function controlMessage (origin: string, command: unknown): string {
  return CONTROL_MAGIC + '0' + origin + JSON.stringify(command)
}

/** A parsed room envelope; one object reused by the receiver, never kept. */
export interface RoomEnvelope {
  volatile: boolean
  seq: number
  frame: Buffer
  /** The sender's trace, when the envelope carried one. */
  traceparent: string | undefined
  /** A latest message's conflation key; undefined for any other. */
  latest: string | undefined
}

/**
 * Reads a room envelope into `out`. Returns 'own' for this instance's own
 * messages (only `out.seq` is set), 'invalid' for anything that is not an
 * envelope of ours, else 'ok'.
 */
export function readRoomEnvelope (message: Buffer, origin: Buffer, out: RoomEnvelope): 'ok' | 'own' | 'invalid' {
  // The shortest valid envelope: header, one seq digit, ':', '{}'.
  if (message.length < SEQ_START + 4 || message.toString('latin1', 0, 4) !== ROOM_MAGIC) return 'invalid'
  const flags = message[4] - ZERO
  if (flags < 0 || (flags & ~KNOWN_FLAGS) !== 0) return 'invalid'
  let start = SEQ_START
  let traceparent: string | undefined
  if ((flags & TRACED) !== 0) {
    start += TRACE_LENGTH
    // Anything on our channels may be garbage: a trace that is not a valid one makes the envelope invalid.
    traceparent = validTraceparent(message.toString('latin1', SEQ_START, start))
    if (traceparent === undefined) return 'invalid'
  }
  let seq = 0
  let i = start
  const end = Math.min(message.length, start + MAX_SEQ_DIGITS + 1)
  for (; i < end; i++) {
    const c = message[i]
    if (c === COLON) break
    if (c < ZERO || c > NINE) return 'invalid'
    seq = seq * 10 + c - ZERO
  }
  if (i === start || message[i] !== COLON) return 'invalid'
  let latest: string | undefined
  if ((flags & LATEST) !== 0) {
    const keyStart = i + 1
    let length = 0
    const keyEnd = Math.min(message.length, keyStart + MAX_KEY_DIGITS + 1)
    for (i = keyStart; i < keyEnd; i++) {
      const c = message[i]
      if (c === COLON) break
      if (c < ZERO || c > NINE) return 'invalid'
      length = length * 10 + c - ZERO
    }
    if (i === keyStart || message[i] !== COLON || seq !== 0 || i + 1 + length > message.length) return 'invalid'
    latest = message.toString('utf8', i + 1, i + 1 + length)
    i += length
  }
  // Not a parse: a frame is one JSON object, so it starts and ends with braces.
  if (message[i + 1] !== OPEN || message[message.length - 1] !== CLOSE) return 'invalid'
  out.seq = seq
  // Our own copy: its seq places our publish among the others' (see the adapter).
  if (message.compare(origin, 0, ID_LENGTH, ORIGIN_START, SEQ_START) === 0) return 'own'
  out.volatile = (flags & VOLATILE) !== 0
  out.traceparent = traceparent
  out.latest = latest
  out.frame = message.subarray(i + 1)
  return 'ok'
}

/** A control command from another instance, or null for our own or an invalid one. */
export function readControl (message: Buffer, origin: Buffer): { valid: boolean, command: unknown } {
  if (message.length <= SEQ_START || message.toString('latin1', 0, 5) !== CONTROL_MAGIC + '0') return { valid: false, command: null }
  if (message.compare(origin, 0, ID_LENGTH, ORIGIN_START, SEQ_START) === 0) return { valid: true, command: null }
  try {
    return { valid: true, command: JSON.parse(message.toString('utf8', SEQ_START)) }
  } catch {
    return { valid: false, command: null }
  }
}
