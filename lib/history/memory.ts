// Room history in this process: per room, the last messages within a count, an
// age and a byte budget, with the room's seq and a random epoch. The history of
// a room lives as long as the room does here: `release` (no local member left)
// frees it, and the room's next life starts at seq 1 with a new epoch, so a
// position from the old life is refused, never answered with the wrong messages.
import type {
  HistoryAppendOptions, HistoryAppended, HistoryBounds, HistoryRead, HistoryStore, RoomPosition
} from '../../types/history.js'
import { FRT_ERR_HISTORY_INVALID } from '../errors.js'
import { newEpoch } from '../recovery-ids.js'

export interface MemoryHistoryOptions {
  /** Most messages kept per room. Default 1000. */
  maxCount?: number
  /** Milliseconds a message is kept. Default 120000 (the default session window). */
  maxAge?: number
  /** Most bytes of frames kept per room. Default 1 MiB. */
  maxBytes?: number
  /** How often, in ms, one timer drops the messages past `maxAge` in every room. Default 60000; 0: only on use. */
  sweepInterval?: number
  /** The clock, in ms. Default `Date.now`. */
  now?: () => number
}

const MAX_TIMER_DELAY = 2 ** 31 - 1

// One hidden class for every kept message.
class Entry {
  readonly seq: number
  readonly at: number
  readonly frame: Buffer
  readonly id: string | undefined
  constructor (seq: number, at: number, frame: Buffer, id: string | undefined) {
    this.seq = seq
    this.at = at
    this.frame = frame
    this.id = id
  }
}

class RoomHistory {
  readonly epoch = newEpoch()
  seq = 0
  bytes = 0
  // Oldest first; `start` is the first kept entry, so dropping from the front
  // costs nothing until the array is compacted.
  entries: Entry[] = []
  start = 0
  /** Ids of the kept messages that had one: a retried append is recognised while its message is kept. */
  readonly ids = new Map<string, number>()

  get size (): number {
    return this.entries.length - this.start
  }

  dropOldest (): void {
    const entry = this.entries[this.start++]
    this.bytes -= entry.frame.length
    if (entry.id !== undefined) this.ids.delete(entry.id)
    // Compact once half the array is dropped: amortised O(1) per message.
    if (this.start > 32 && this.start * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.start)
      this.start = 0
    }
  }
}

function invalid (field: string, rule: string, value: unknown): never {
  throw new FRT_ERR_HISTORY_INVALID(`MemoryHistory option ${field} must be ${rule}, got ${typeof value === 'function' ? 'a function' : String(value)}`)
}

function positive (value: unknown, field: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) invalid(field, 'a positive integer', value)
  return value as number
}

export class MemoryHistory implements HistoryStore {
  readonly #rooms = new Map<string, RoomHistory>()
  readonly #maxCount: number
  readonly #maxAge: number
  readonly #maxBytes: number
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined

  constructor (options: MemoryHistoryOptions = {}) {
    if (options === null || typeof options !== 'object') invalid('options', 'an object', options)
    const { maxCount = 1000, maxAge = 120_000, maxBytes = 1024 * 1024, sweepInterval = 60_000, now = Date.now } = options
    this.#maxCount = positive(maxCount, 'maxCount')
    this.#maxAge = positive(maxAge, 'maxAge')
    this.#maxBytes = positive(maxBytes, 'maxBytes')
    if (!Number.isSafeInteger(sweepInterval) || sweepInterval < 0 || sweepInterval > MAX_TIMER_DELAY) {
      invalid('sweepInterval', `an integer from 0 to ${MAX_TIMER_DELAY} (ms)`, sweepInterval)
    }
    if (typeof now !== 'function') invalid('now', 'a function returning milliseconds', now)
    this.#now = now
    if (sweepInterval > 0) {
      // One timer for every room, so an idle room does not hold its messages past maxAge.
      this.#timer = setInterval(() => this.#sweep(), sweepInterval)
      this.#timer.unref()
    }
  }

  /** Rooms with history now. */
  get rooms (): number {
    return this.#rooms.size
  }

  /** Messages and bytes kept for `room` now (for tests and stats). */
  kept (room: string): { count: number, bytes: number } {
    const history = this.#rooms.get(room)
    return { count: history?.size ?? 0, bytes: history?.bytes ?? 0 }
  }

  append (room: string, head: string, tail: string, options?: HistoryAppendOptions): HistoryAppended {
    const history = this.#room(room)
    const id = options?.id
    if (id !== undefined) {
      const seq = history.ids.get(id)
      if (seq !== undefined) return { seq, epoch: history.epoch, duplicate: true }
    }
    const now = this.#now()
    const seq = history.seq += 1 + (options?.skipped ?? 0)
    const frame = Buffer.from(head + seq + tail)
    history.entries.push(new Entry(seq, now, frame, id))
    history.bytes += frame.length
    if (id !== undefined) history.ids.set(id, seq)
    this.#trim(history, now)
    return { seq, epoch: history.epoch, duplicate: false }
  }

  since (room: string, since: RoomPosition | null, bounds: HistoryBounds): HistoryRead {
    const history = this.#room(room)
    const { seq, epoch } = history
    if (since === null) return { recovered: true, seq, epoch, frames: [] }
    if (since.epoch !== epoch) return { recovered: false, seq, epoch, reason: 'epoch' }
    // Not a seq this room ever had (the core validates client input; a store never indexes with junk).
    if (since.seq > seq || !Number.isSafeInteger(since.seq) || since.seq < 0) return { recovered: false, seq, epoch, reason: 'ahead' }
    const count = seq - since.seq
    if (count === 0) return { recovered: true, seq, epoch, frames: [] }
    if (count > bounds.maxCount) return { recovered: false, seq, epoch, reason: 'bound' }
    this.#trim(history, this.#now())
    // Seqs only grow, so `count` kept entries from since.seq + 1 up to seq are exactly the range; anything
    // else means part of it is gone (trimmed) or was never kept (seq skipped by an outage).
    const { entries } = history
    const end = entries.length
    const first = end - count
    if (first < history.start || entries[end - 1].seq !== seq || entries[first].seq !== since.seq + 1) {
      return { recovered: false, seq, epoch, reason: 'trimmed' }
    }
    const frames: Buffer[] = new Array(count)
    let bytes = 0
    for (let i = 0; i < count; i++) {
      const frame = entries[first + i].frame
      bytes += frame.length
      frames[i] = frame
    }
    if (bytes > bounds.maxBytes) return { recovered: false, seq, epoch, reason: 'bound' }
    return { recovered: true, seq, epoch, frames }
  }

  /** The room has no member here any more: its history, seq and epoch are freed. */
  release (room: string): void {
    this.#rooms.delete(room)
  }

  /** Stops the sweep timer; the store stays usable. */
  close (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  #room (room: string): RoomHistory {
    let history = this.#rooms.get(room)
    if (history === undefined) this.#rooms.set(room, history = new RoomHistory())
    return history
  }

  #trim (history: RoomHistory, now: number): void {
    const oldest = now - this.#maxAge
    while (history.size > 0 && (history.size > this.#maxCount || history.bytes > this.#maxBytes ||
      history.entries[history.start].at <= oldest)) {
      history.dropOldest()
    }
  }

  #sweep (): void {
    const now = this.#now()
    for (const history of this.#rooms.values()) this.#trim(history, now)
  }
}
