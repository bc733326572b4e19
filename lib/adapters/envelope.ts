// What one instance publishes into Redis for the others: a short ASCII header
// in front of the already-serialized frame, so that a receiver learns who sent
// it, whether it is volatile and its seq without parsing the frame itself.
//
//   frt1 <flag: 0|1> <origin: 16 chars> <seq: decimal digits> ':' <frame bytes>
//   frtc 0           <origin: 16 chars> <JSON command>
//
// The Lua publish script writes `header + seq + ':' + head + seq + tail`, so the
// frame is built once, by Redis, with its seq in place. Anything else on our
// channels (garbage another client published) is rejected here and counted.
import { randomBytes } from 'node:crypto'

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

/** A random instance id of 16 URL-safe characters. */
export function instanceId (): string {
  return randomBytes(12).toString('base64url')
}

/** The header before the seq: magic, flag, origin. */
export function roomHeader (origin: string, volatile: boolean): string {
  return ROOM_MAGIC + (volatile ? '1' : '0') + origin
}

export function controlMessage (origin: string, command: unknown): string {
  return CONTROL_MAGIC + '0' + origin + JSON.stringify(command)
}

/** A parsed room envelope; one object reused by the receiver, never kept. */
export interface RoomEnvelope {
  volatile: boolean
  seq: number
  frame: Buffer
}

/**
 * Reads a room envelope into `out`. Returns 'own' for this instance's own
 * messages (only `out.seq` is set), 'invalid' for anything that is not an
 * envelope of ours, else 'ok'.
 */
export function readRoomEnvelope (message: Buffer, origin: Buffer, out: RoomEnvelope): 'ok' | 'own' | 'invalid' {
  // The shortest valid envelope: header, one seq digit, ':', '{}'.
  if (message.length < SEQ_START + 4 || message.toString('latin1', 0, 4) !== ROOM_MAGIC) return 'invalid'
  const flag = message[4]
  if (flag !== ZERO && flag !== ZERO + 1) return 'invalid'
  let seq = 0
  let i = SEQ_START
  const end = Math.min(message.length, SEQ_START + MAX_SEQ_DIGITS + 1)
  for (; i < end; i++) {
    const c = message[i]
    if (c === COLON) break
    if (c < ZERO || c > NINE) return 'invalid'
    seq = seq * 10 + c - ZERO
  }
  if (i === SEQ_START || message[i] !== COLON) return 'invalid'
  // Not a parse: a frame is one JSON object, so it starts and ends with braces.
  if (message[i + 1] !== OPEN || message[message.length - 1] !== CLOSE) return 'invalid'
  out.seq = seq
  // Our own copy: its seq places our publish among the others' (see the adapter).
  if (message.compare(origin, 0, ID_LENGTH, ORIGIN_START, SEQ_START) === 0) return 'own'
  out.volatile = flag !== ZERO
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
