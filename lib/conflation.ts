// Latest-by-key delivery (the `latest` policy of lib/delivery.ts): a member
// whose socket is behind (over the soft limit, lib/backpressure.ts) gets the
// newest message per key, never a backlog. Its latest messages wait in one Map,
// key -> newest frame, made when it first falls behind and dropped once sent;
// a newer frame replaces the older in place, so keys go out in the order they
// were first held. One timer per app, running only while some member holds
// frames, sends them once the member's buffer is back under the soft limit.
// A member that keeps up never reaches the Map: its frames take the fast path.
//
// Why a tick and not the socket's 'drain': 'drain' fires only when a write
// returned false (never below the stream's 16 KiB highWaterMark, so not with a
// small softLimit) and only once the buffer is empty, and an SSE stream is not
// a net.Socket. The tick reads bufferedAmount, which every transport has, and
// costs nothing while nobody is behind (bench/micro/conflation.mjs measures it).
import { CloseCode } from './protocol.js'
import type { Backpressure, WatchedConnection } from './backpressure.js'
import type { Frame } from './frames.js'

/** Milliseconds between two looks at the members that hold frames. */
export const FLUSH_INTERVAL = 10

/** A member's held latest frames: key -> newest frame, and their bytes (keys included). */
export interface Held {
  readonly frames: Map<string, Frame>
  bytes: number
}

/** What conflation needs of a connection. */
export interface ConflatedConnection extends WatchedConnection {
  /** Latest frames held while the socket is behind; null when none (almost always). Written only here. */
  conflated: Held | null
  sendFrame (frame: Frame): void
}

interface Counters { conflated: number, slowConsumerCloses: number }

export class Conflation {
  readonly #backpressure: Backpressure
  readonly #counters: Counters
  /** The members holding frames: what the tick looks at. */
  readonly #behind = new Set<ConflatedConnection>()
  #timer: NodeJS.Timeout | null = null
  readonly #tick = (): void => { this.flush() }

  constructor (backpressure: Backpressure, counters: Counters) {
    this.#backpressure = backpressure
    this.#counters = counters
  }

  /** Members holding frames now. */
  get behind (): number {
    return this.#behind.size
  }

  /**
   * Sends a latest frame: at once to a member that keeps up, else held as the newest of its key (replacing,
   * and counting as conflated, an older one). Held bytes and the socket's buffer together are bounded by
   * the hard limit: past it the member is closed with 4008, as a reliable backlog would be.
   */
  send (conn: ConflatedConnection, frame: Frame, key: string): void {
    let held = conn.conflated
    if (held === null) {
      if (!this.#backpressure.isSlow(conn)) {
        conn.sendFrame(frame)
        return
      }
      held = conn.conflated = { frames: new Map(), bytes: 0 }
      this.#behind.add(conn)
      if (this.#timer === null) {
        this.#timer = setInterval(this.#tick, FLUSH_INTERVAL)
        this.#timer.unref()
      }
    }
    const older = held.frames.get(key)
    if (older === undefined) {
      held.bytes += key.length + frame.wire.length
    } else {
      held.bytes += frame.wire.length - older.wire.length
      this.#counters.conflated++
    }
    held.frames.set(key, frame)
    const buffered = conn.socket.bufferedAmount
    if (held.bytes + buffered > this.#backpressure.hardLimit) {
      this.#release(conn)
      this.#counters.slowConsumerCloses++
      conn.log.warn({ bufferedAmount: buffered, heldBytes: held.bytes }, 'closing a slow consumer')
      conn.close(CloseCode.SlowConsumer, 'Slow consumer')
    }
  }

  /** The tick: members back under the soft limit get their held frames; closed ones let them go. */
  flush (): void {
    const softLimit = this.#backpressure.softLimit
    for (const conn of this.#behind) {
      if (conn.closed) {
        this.#release(conn)
      } else if (conn.socket.bufferedAmount <= softLimit) {
        const held = conn.conflated as Held
        this.#release(conn)
        for (const frame of held.frames.values()) conn.sendFrame(frame)
      }
    }
    if (this.#behind.size === 0) this.stop()
  }

  /** Stops the tick (no member holds frames, or the app closes). */
  stop (): void {
    if (this.#timer === null) return
    clearInterval(this.#timer)
    this.#timer = null
  }

  #release (conn: ConflatedConnection): void {
    conn.conflated = null
    this.#behind.delete(conn)
  }
}
