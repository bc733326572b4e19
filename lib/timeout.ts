// Bounded calls to a rate-limit store. A store backed by Redis can take
// minutes to fail: ioredis's defaults queue a command while the server is away
// and give up only after 20 reconnection attempts (~73 s), and a hung server
// (SIGSTOP, a full network buffer) never answers at all. A message under a
// shared limit waits for its store call, and every later frame of the
// connection waits behind it, so each call gets a deadline; past it the call
// rejects with FRT_ERR_STORE_TIMEOUT and the caller's failure policy applies
// (lib/limits.ts: the message is let through).
//
// After a call timed out the store counts as down: while one of its calls is
// still unanswered, further calls fail at once instead of each waiting out
// its own timeout behind the last (a connection's frames are processed in
// order, so they would add up). The first call made once everything sent has
// been answered probes the store again; an answer brings it back.
//
// Every call has the same timeout, so deadlines come due in the order the
// calls were made: one FIFO and one unref'd timer serve every call, instead of
// a timer per message.
import { FRT_ERR_STORE_TIMEOUT } from './errors.js'
import type { RateLimitResult, RateLimitStore } from '../types/store.js'

interface Waiter {
  deadline: number
  settled: boolean
  resolve: (result: RateLimitResult) => void
  reject: (err: unknown) => void
}

// When the consumed head of the queue is worth cutting off.
const COMPACT_AT = 1024

export class BoundedStore implements RateLimitStore {
  readonly store: RateLimitStore
  readonly timeout: number
  #queue: Waiter[] = []
  #head = 0
  #timer: NodeJS.Timeout | null = null
  /** Calls the wrapped store has not answered yet, timed out or not. */
  #outstanding = 0
  /** A call timed out and no answer came since. */
  #down = false

  constructor (store: RateLimitStore, timeout: number) {
    this.store = store
    this.timeout = timeout
  }

  /** Calls waiting for the store now. */
  get waiting (): number {
    let n = 0
    for (let i = this.#head; i < this.#queue.length; i++) if (!this.#queue[i].settled) n++
    return n
  }

  take (key: string, rate: number, burst: number, cost?: number): RateLimitResult | Promise<RateLimitResult> {
    const result = this.store.take(key, rate, burst, cost)
    // A synchronous store (the memory default) answers at once: nothing to bound.
    if (!(result instanceof Promise)) return result
    // Down, with an earlier call still unanswered: fail now (the caller's policy applies at once).
    if (this.#down && this.#outstanding > 0) {
      result.then(undefined, ignore)
      return Promise.reject(new FRT_ERR_STORE_TIMEOUT(this.timeout))
    }
    this.#outstanding++
    return new Promise<RateLimitResult>((resolve, reject) => {
      const waiter: Waiter = { deadline: performance.now() + this.timeout, settled: false, resolve, reject }
      this.#queue.push(waiter)
      result.then(this.#answered, this.#failed).then(settle.bind(waiter, true), settle.bind(waiter, false))
      this.#timer ??= setTimeout(this.#expire, this.timeout).unref()
    })
  }

  /** Whether a call timed out since the store last answered. */
  get down (): boolean {
    return this.#down
  }

  #answered = (result: RateLimitResult): RateLimitResult => {
    this.#outstanding--
    this.#down = false
    return result
  }

  #failed = (err: unknown): never => {
    this.#outstanding--
    // A failure is an answer too (Redis replied with an error, or ioredis gave up): not "down".
    this.#down = false
    throw err
  }

  /** Rejects every call past its deadline and re-arms for the oldest one left. */
  #expire = (): void => {
    this.#timer = null
    const now = performance.now()
    const queue = this.#queue
    while (this.#head < queue.length) {
      const waiter = queue[this.#head]
      if (!waiter.settled) {
        if (waiter.deadline > now) break
        waiter.settled = true
        this.#down = true
        waiter.reject(new FRT_ERR_STORE_TIMEOUT(this.timeout))
      }
      this.#head++
    }
    if (this.#head === queue.length) {
      this.#queue = []
      this.#head = 0
      return
    }
    if (this.#head > COMPACT_AT) {
      this.#queue = queue.slice(this.#head)
      this.#head = 0
    }
    this.#timer = setTimeout(this.#expire, Math.max(1, this.#queue[this.#head].deadline - now)).unref()
  }

  /** Stops the timer; calls still waiting reject with FRT_ERR_STORE_TIMEOUT now. Never closes the wrapped store. */
  close (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    for (let i = this.#head; i < this.#queue.length; i++) {
      const waiter = this.#queue[i]
      if (waiter.settled) continue
      waiter.settled = true
      waiter.reject(new FRT_ERR_STORE_TIMEOUT(this.timeout))
    }
    this.#queue = []
    this.#head = 0
  }
}

function ignore (): void {}

// Shared by every call (bound to its waiter): the store's answer, unless the deadline came first.
function settle (this: Waiter, ok: boolean, value: unknown): void {
  if (this.settled) return
  this.settled = true
  if (ok) this.resolve(value as RateLimitResult)
  else this.reject(value)
}
