// Sessions in this process: enough for one instance (a client that comes back
// comes back here). Bounded in count, each session's lists bounded by the
// core's limits, and expired sessions dropped by one unref'd timer for all.
import type { SessionAppend, SessionReply, SessionState, SessionStore, SessionTaken } from '../../types/session.js'
import { FRT_ERR_SESSION_INVALID } from '../errors.js'

export interface MemorySessionsOptions {
  /** Most sessions kept; past it the one saved longest ago is dropped. Default 100000. */
  maxSessions?: number
  /** How often, in ms, expired sessions are dropped. Default 10000; 0: only when taken. */
  sweepInterval?: number
  /** The clock, in ms. Default `Date.now`. */
  now?: () => number
}

const MAX_TIMER_DELAY = 2 ** 31 - 1

class Saved {
  state: SessionState
  userKey: string | null
  expiresAt: number
  unicast: string[] = []
  replies: SessionReply[] = []
  constructor (state: SessionState, expiresAt: number) {
    this.state = state
    this.userKey = state.userKey
    this.expiresAt = expiresAt
  }
}

function invalid (field: string, rule: string, value: unknown): never {
  throw new FRT_ERR_SESSION_INVALID(`MemorySessions option ${field} must be ${rule}, got ${typeof value === 'function' ? 'a function' : String(value)}`)
}

/** Appends `items` and keeps the newest `max`. */
function bounded<T> (list: T[], items: T[] | undefined, max: number): T[] {
  if (items === undefined || items.length === 0) return list
  const all = list.concat(items)
  return all.length > max ? all.slice(all.length - max) : all
}

export class MemorySessions implements SessionStore {
  // Insertion order is save order: the first key is the session saved longest ago.
  readonly #sessions = new Map<string, Saved>()
  readonly #maxSessions: number
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined

  constructor (options: MemorySessionsOptions = {}) {
    if (options === null || typeof options !== 'object') invalid('options', 'an object', options)
    const { maxSessions = 100_000, sweepInterval = 10_000, now = Date.now } = options
    if (!Number.isSafeInteger(maxSessions) || maxSessions < 1) invalid('maxSessions', 'a positive integer', maxSessions)
    if (!Number.isSafeInteger(sweepInterval) || sweepInterval < 0 || sweepInterval > MAX_TIMER_DELAY) {
      invalid('sweepInterval', `an integer from 0 to ${MAX_TIMER_DELAY} (ms)`, sweepInterval)
    }
    if (typeof now !== 'function') invalid('now', 'a function returning milliseconds', now)
    this.#maxSessions = maxSessions
    this.#now = now
    if (sweepInterval > 0) {
      this.#timer = setInterval(() => this.#sweep(), sweepInterval)
      this.#timer.unref()
    }
  }

  /** Sessions kept now, expired ones not swept yet included. */
  get size (): number {
    return this.#sessions.size
  }

  save (key: string, state: SessionState, ttl: number): void {
    // A copy, as Redis would keep: the caller may go on changing its objects.
    const copy = JSON.parse(JSON.stringify(state)) as SessionState
    const expiresAt = this.#now() + ttl
    const saved = this.#sessions.get(key)
    if (saved !== undefined) {
      // Moved to the end: save order is eviction order.
      this.#sessions.delete(key)
      saved.state = copy
      saved.userKey = copy.userKey
      saved.expiresAt = expiresAt
      this.#sessions.set(key, saved)
      return
    }
    if (this.#sessions.size >= this.#maxSessions) this.#sessions.delete(this.#sessions.keys().next().value as string)
    this.#sessions.set(key, new Saved(copy, expiresAt))
  }

  append (key: string, items: SessionAppend, ttl: number): boolean {
    const saved = this.#live(key)
    if (saved === undefined) return false
    saved.unicast = bounded(saved.unicast, items.unicast, items.maxUnicast)
    saved.replies = bounded(saved.replies, items.replies?.map(({ id, frame }) => ({ id, frame })), items.maxReplies)
    saved.expiresAt = this.#now() + ttl
    return true
  }

  take (key: string, userKey: string | null): SessionTaken {
    const saved = this.#live(key)
    if (saved === undefined) return { found: false, reason: 'missing' }
    if (saved.userKey !== userKey) return { found: false, reason: 'user' }
    this.#sessions.delete(key)
    return { found: true, state: saved.state, unicast: saved.unicast, replies: saved.replies }
  }

  /** Stops the sweep timer; the store stays usable. */
  close (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** The session under `key` unless it has expired (then it is dropped now). */
  #live (key: string): Saved | undefined {
    const saved = this.#sessions.get(key)
    if (saved === undefined || saved.expiresAt > this.#now()) return saved
    this.#sessions.delete(key)
    return undefined
  }

  #sweep (): void {
    const now = this.#now()
    // Deleting the current entry while iterating a Map is safe.
    for (const [key, saved] of this.#sessions) if (saved.expiresAt <= now) this.#sessions.delete(key)
  }
}
