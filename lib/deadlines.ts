// Every per-connection deadline of the instance (first-message auth timeouts,
// token expiries) in one min-heap behind one unref'd timer. A timer per
// connection would cost a closure and a timer handle each and leave the
// clean-up to every close path; here a connection just records the generation
// it expects, and an entry whose generation no longer matches (refreshed,
// authenticated, closed) is dropped when it comes up. A sweep would do too,
// but would close an expired socket up to a whole sweep interval late.

// setTimeout fires at once for delays above 2^31 - 1 ms (about 24.8 days); a
// farther deadline is reached in steps.
const MAX_DELAY = 2 ** 31 - 1

export interface Deadline<T> {
  at: number
  item: T
  generation: number
}

export class Deadlines<T> {
  readonly #heap: Array<Deadline<T>> = []
  readonly #onExpire: (item: T, generation: number) => void
  #timer: NodeJS.Timeout | null = null
  #armedAt = Infinity

  /** `onExpire` is called once per entry whose time has come; it decides whether the entry is still current. */
  constructor (onExpire: (item: T, generation: number) => void) {
    this.#onExpire = onExpire
  }

  get size (): number {
    return this.#heap.length
  }

  add (at: number, item: T, generation: number): void {
    const heap = this.#heap
    heap.push({ at, item, generation })
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent].at <= heap[i].at) break
      ;[heap[parent], heap[i]] = [heap[i], heap[parent]]
      i = parent
    }
    if (at < this.#armedAt) this.#arm()
  }

  /**
   * Drops the entries `keep` refuses (closed or superseded connections), so they
   * do not hold memory until their time comes. A sorted array is a valid heap.
   */
  prune (keep: (item: T, generation: number) => boolean): void {
    const kept = this.#heap.filter((d) => keep(d.item, d.generation)).sort((a, b) => a.at - b.at)
    this.#heap.length = 0
    for (const d of kept) this.#heap.push(d)
    if (kept.length === 0) {
      this.clear()
    } else if (kept[0].at !== this.#armedAt) {
      this.#arm()
    }
  }

  /** Stops the timer; pending entries are dropped. */
  clear (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    this.#armedAt = Infinity
    this.#heap.length = 0
  }

  #arm (): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    const next = this.#heap[0]
    this.#armedAt = next.at
    this.#timer = setTimeout(this.#fire, Math.min(Math.max(0, next.at - Date.now()), MAX_DELAY))
    this.#timer.unref()
  }

  readonly #fire = (): void => {
    this.#timer = null
    this.#armedAt = Infinity
    const now = Date.now()
    const heap = this.#heap
    while (heap.length > 0 && heap[0].at <= now) {
      const { item, generation } = this.#pop()
      this.#onExpire(item, generation)
    }
    if (heap.length > 0) this.#arm()
  }

  #pop (): Deadline<T> {
    const heap = this.#heap
    const top = heap[0]
    const last = heap.pop() as Deadline<T>
    if (heap.length === 0) return top
    heap[0] = last
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let smallest = i
      if (left < heap.length && heap[left].at < heap[smallest].at) smallest = left
      if (right < heap.length && heap[right].at < heap[smallest].at) smallest = right
      if (smallest === i) break
      ;[heap[smallest], heap[i]] = [heap[i], heap[smallest]]
      i = smallest
    }
    return top
  }
}
