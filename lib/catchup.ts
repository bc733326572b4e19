// Replay, then live, with no gap and no duplicate. While a member's missed
// messages are being read from history, the room's live messages for it are
// held here instead of being sent; once the read is back, the replay goes
// first, then the held messages the replay did not already contain, by seq.
//
//   const catchup = new Catchup(since.seq, limits)
//   ...live message for this member: if (!catchup.hold(seq, frame)) give up (too much held)
//   const read = await history.since(room, since, bounds)   // recovered: true
//   let step = catchup.merge(read.seq, read.frames)
//   while (step.status === 'gap') step = catchup.merge(...await history.since(room, { seq: step.seq, epoch }, bounds))
//   send step.frames, in order; step.status 'reset': the room started a new life meanwhile (see merge)
//
// Pure: no timers, no I/O, nothing per message but an array push.

/** Where one merge step got to. */
export interface CatchupStep {
  /** What to send now, in order. */
  frames: Buffer[]
  /** The seq of the last numbered frame in `frames` (or the position it continues from). */
  seq: number
  /**
   * 'complete': everything held was merged; deliver live from here on.
   * 'gap': a held message is more than one past `seq`: read history again from `seq` and merge that
   * (the held messages from the gap on are kept for it).
   * 'reset': a held message cannot belong to this life of the room (its seq was already passed with other
   * bytes): the room lost its history meanwhile; the held messages from there on are in `frames` as they came.
   */
  status: 'complete' | 'gap' | 'reset'
}

export interface CatchupLimits {
  /** Most messages held. */
  maxCount: number
  /** Most bytes held. */
  maxBytes: number
}

export class Catchup {
  #seq: number
  readonly #limits: CatchupLimits
  #seqs: number[] = []
  #frames: Buffer[] = []
  #bytes = 0
  /**
   * Set once the catch-up is over while live delivery lags behind it (the read saw messages the subscription
   * has not brought yet): live messages up to this seq were already sent and are dropped; -1 while holding.
   */
  floor = -1
  /** Frames handed out by merge, by seq, to tell a duplicate from a new life's message. */
  #sent = new Map<number, Buffer>()

  /** `since`: the seq the member has; held messages at or before it are not sent again. */
  constructor (since: number, limits: CatchupLimits) {
    this.#seq = since
    this.#limits = limits
  }

  /** Messages held now. */
  get held (): number {
    return this.#frames.length
  }

  /**
   * Holds a live message (`seq` 0: an unnumbered one, e.g. volatile). Returns false, holding nothing, when
   * the limits are reached: the caller then gives the catch-up up (e.g. closes the slow member).
   */
  hold (seq: number, frame: Buffer): boolean {
    if (this.#frames.length >= this.#limits.maxCount || this.#bytes + frame.length > this.#limits.maxBytes) return false
    this.#seqs.push(seq)
    this.#frames.push(frame)
    this.#bytes += frame.length
    return true
  }

  /** Hands back the held messages numbered after `seq` (and the unnumbered ones), in order, and holds nothing more. */
  drainAfter (seq: number): Buffer[] {
    const out: Buffer[] = []
    for (let i = 0; i < this.#frames.length; i++) {
      if (this.#seqs[i] === 0 || this.#seqs[i] > seq) out.push(this.#frames[i])
    }
    this.drain()
    return out
  }

  /** Hands back every held message as it came, and holds nothing more: the catch-up is given up. */
  drain (): Buffer[] {
    const frames = this.#frames
    this.#seqs = []
    this.#frames = []
    this.#bytes = 0
    return frames
  }

  /**
   * Merges one history read: `frames` are the messages after the current position up to `seq`, in order
   * (a recovered `HistoryStore.since`). Returns what to send now.
   */
  merge (seq: number, frames: readonly Buffer[]): CatchupStep {
    const out: Buffer[] = []
    const first = this.#seq + 1
    // The replay, less what an earlier step already sent.
    for (let i = Math.max(0, this.#seq - (seq - frames.length)); i < frames.length; i++) {
      out.push(frames[i])
      this.#sent.set(seq - frames.length + i + 1, frames[i])
    }
    this.#seq = Math.max(this.#seq, seq)
    const seqs = this.#seqs
    const held = this.#frames
    let i = 0
    let status: CatchupStep['status'] = 'complete'
    for (; i < held.length; i++) {
      const next = seqs[i]
      if (next === 0) {
        out.push(held[i])
      } else if (next === this.#seq + 1) {
        out.push(held[i])
        this.#sent.set(next, held[i])
        this.#seq = next
      } else if (next > this.#seq) {
        status = 'gap'
        break
      } else if (next < first || !held[i].equals(this.#sent.get(next) as Buffer)) {
        // Already passed, but not the message sent for that seq: a new life of the room.
        status = 'reset'
        for (; i < held.length; i++) out.push(held[i])
        break
      }
      // else: the replay already had it.
    }
    this.#seqs = seqs.slice(i)
    this.#frames = held.slice(i)
    this.#bytes = 0
    for (const frame of this.#frames) this.#bytes += frame.length
    if (status !== 'gap') this.#sent = new Map()
    return { frames: out, seq: this.#seq, status }
  }
}
