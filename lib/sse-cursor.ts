// The SSE resume cursor (PROTOCOL.md 1.3, "Resume"): what a stream writes as
// a position-only event, `id: <cursor>`, so that a browser's own EventSource,
// reconnecting by itself, sends it back as `Last-Event-ID`. Room messages are
// encoded once for every member and carry no id; each stream instead writes
// its own cursor at most once per tick, when it changed.
//
//   1;t=<resume token>;<seq>.<epoch>.<room>;<seq>.<epoch>.<room>;+
//
// `1` is the version. `t=` (routes with sessions) is the session's current
// resume token. Each entry is a history room's position as delivered to this
// stream; an empty epoch is a room whose position is not known yet (a join
// still catching up): its resume is not recovered. A trailing `+` says rooms
// were left out past the bound: on resume, a join of a history room the cursor
// does not list is answered `recovered: false`, never a silent partial. Room
// names never hold `;` (lib/rooms.ts), and epochs and seqs never hold `.`, so
// an entry splits at its first two dots. Pure: no I/O, no timers.
import type { RoomPosition } from '../types/history.js'

/** The cursor's version, its first field. */
export const CURSOR_VERSION = '1'
/** The longest cursor written, and read: a longer `Last-Event-ID` is ignored whole. */
export const MAX_CURSOR = 2048
/** An epoch no room ever has (epochs are 8-22 base64url characters): a `since` that is never recovered. */
export const UNKNOWN_EPOCH = '?'

// The shape of one entry; room names as lib/rooms.ts allows them, epochs as lib/recovery.ts reads them.
const ENTRY = /^(\d{1,16})\.([\w-]{8,22})?\.([\w\-.:@/]{1,128})$/
const TOKEN = /^t=([\w-]{24})$/
const TRUNCATED = '+'

/** A cursor read back from a `Last-Event-ID`. */
export interface StreamResume {
  /** The session's resume token; undefined without one. */
  token: string | undefined
  /** Each listed room's position; an unknown one has the epoch UNKNOWN_EPOCH. */
  positions: Map<string, RoomPosition>
  /** Rooms were left out: a history room not listed is not recovered. */
  truncated: boolean
}

/** What the cursor is made of: the token and each room's position (null: not known). */
export interface CursorParts {
  token: string | undefined
  rooms: Iterable<[string, RoomPosition | null]>
  /** Rooms are known to be missing already (the cursor this stream resumed from was truncated). */
  truncated: boolean
}

/** Encodes a cursor, within MAX_CURSOR: the rooms that do not fit are left out, and it says so. */
export function encodeCursor ({ token, rooms, truncated }: CursorParts): string {
  let cursor = CURSOR_VERSION
  if (token !== undefined) cursor += ';t=' + token
  for (const [room, position] of rooms) {
    const entry = position === null || position.epoch === UNKNOWN_EPOCH
      ? ';0..' + room
      : ';' + position.seq + '.' + position.epoch + '.' + room
    // Room for the `;+` that would follow.
    if (cursor.length + entry.length + 2 > MAX_CURSOR) return cursor + ';' + TRUNCATED
    cursor += entry
  }
  return truncated ? cursor + ';' + TRUNCATED : cursor
}

/**
 * Reads a `Last-Event-ID`; null when it is not a cursor of this version (too long, malformed, or any entry
 * not well formed: a hostile id is ignored whole, never half used). Whether the positions are right is the
 * history's business (an epoch of another life, a seq in the future: not recovered).
 */
export function decodeCursor (value: unknown): StreamResume | null {
  if (typeof value !== 'string' || value.length > MAX_CURSOR) return null
  const fields = value.split(';')
  if (fields[0] !== CURSOR_VERSION) return null
  const resume: StreamResume = { token: undefined, positions: new Map(), truncated: false }
  for (let i = 1; i < fields.length; i++) {
    const field = fields[i]
    const entry = ENTRY.exec(field)
    if (entry !== null) {
      const seq = Number(entry[1])
      if (!Number.isSafeInteger(seq) || resume.positions.has(entry[3])) return null
      resume.positions.set(entry[3], { seq, epoch: entry[2] ?? UNKNOWN_EPOCH })
    } else if (i === 1 && TOKEN.test(field)) {
      resume.token = field.slice(2)
    } else if (i === fields.length - 1 && field === TRUNCATED) {
      resume.truncated = true
    } else {
      return null
    }
  }
  return resume
}

/** The implicit `since` of a join of `room` on a resumed stream, taken once; null when there is none. */
export function takeSince (resume: StreamResume, room: string): RoomPosition | null {
  const position = resume.positions.get(room)
  if (position !== undefined) {
    resume.positions.delete(room)
    return position
  }
  // Left out of a truncated cursor: maybe joined before, so never presented as a fresh join.
  return resume.truncated ? { seq: 0, epoch: UNKNOWN_EPOCH } : null
}
