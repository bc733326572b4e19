// Slow consumers: a client that reads slower than the server writes makes the
// server buffer for it. Past the hard limit, or past the soft limit for longer
// than softTimeout, the connection is closed with 4008, so one stalled client
// can hold at most about hardLimit bytes of server memory.
import { CloseCode } from './protocol.js'
import type { ResolvedOptions } from './options.js'

/** What the policy needs of a connection. */
export interface WatchedConnection {
  readonly socket: { readonly bufferedAmount: number }
  readonly closed: boolean
  readonly log: { warn (obj: object, msg: string): void }
  /** When the outgoing buffer went over the soft limit (ms since epoch); 0 when under it. Written only here. */
  slowSince: number
  close (code: number, reason: string): void
}

interface Counters { slowConsumerCloses: number }

export class Backpressure {
  readonly softLimit: number
  readonly softTimeout: number
  readonly hardLimit: number
  readonly counters: Counters

  constructor (options: ResolvedOptions['slowConsumer'], counters: Counters) {
    // Off: nothing is ever slow, so nothing is closed and volatile emits go to everyone.
    this.softLimit = options === false ? Infinity : options.softLimit
    this.softTimeout = options === false ? Infinity : options.softTimeout
    this.hardLimit = options === false ? Infinity : options.hardLimit
    this.counters = counters
  }

  /** Whether a volatile message should skip this connection. */
  isSlow (conn: WatchedConnection): boolean {
    // slowSince first: until the flush, the buffer also holds the frames waiting
    // corked (lib/frames.ts), which a client that keeps up drains at the flush.
    return conn.slowSince !== 0 && conn.socket.bufferedAmount > this.softLimit
  }

  /**
   * Called after each send through ws, after each flush of the fast path (lib/frames.ts), on each frame
   * to a connection already over the soft limit or past the hard one, and by the heartbeat sweep.
   */
  check (conn: WatchedConnection): void {
    const buffered = conn.socket.bufferedAmount
    if (buffered <= this.softLimit) {
      conn.slowSince = 0
      return
    }
    if (conn.closed) return
    const now = Date.now()
    if (buffered > this.hardLimit || (conn.slowSince !== 0 && now - conn.slowSince >= this.softTimeout)) {
      this.counters.slowConsumerCloses++
      conn.log.warn({ bufferedAmount: buffered }, 'closing a slow consumer')
      // The close frame queues behind the backlog; ws destroys the socket after closeTimeout
      // if the peer never reads it. Nothing more is queued meanwhile: the socket is closing.
      conn.close(CloseCode.SlowConsumer, 'Slow consumer')
      return
    }
    if (conn.slowSince === 0) conn.slowSince = now
  }
}
