import type { FastifyBaseLogger } from 'fastify'
import type { PresenceMember } from './rooms.js'
import type { HistoryStore } from './history.js'

/**
 * Delivers a frame published on another instance to this instance's members of `room`.
 * The core calls nothing else on receipt: the bytes are sent as they came, never parsed again.
 * `seq` is the frame's cluster-wide seq when the adapter numbers messages (`sequence`), so that the core
 * can keep a room's messages in seq order; leave it out otherwise. `latest`: the conflation key `publish` was
 * given, so that this instance keeps only the newest message per key for its members that are behind.
 * `traceparent`: the sender's W3C trace context, when the publish carried one (the core puts it on its
 * `fastify-realtime:deliver` event).
 */
export type FanoutReceive = (room: string, frame: Buffer, volatile: boolean, seq?: number, latest?: string, traceparent?: string) => void

/** What the core gives an adapter when the plugin is registered (`attach`). */
export interface FanoutCore {
  /** The app's logger. */
  readonly log: FastifyBaseLogger
  /** Closes this instance's sockets of a user, as `disconnectUser` asked on another instance; returns how many. */
  disconnectUser (userId: string, reason?: string): number
  /** Another instance resumed the session of `connId`: drop the copy waiting here, without a presence leave. */
  sessionResumed? (connId: string): void
  /**
   * The adapter's subscriptions to `rooms` were made again after its connection to the backend dropped (the
   * backend itself alive): messages published meanwhile never came. The core reads each history room's missed
   * messages from its history at once, rather than at the room's next message (which a quiet room may not have).
   */
  resubscribed? (rooms: readonly string[]): void
  /** This instance's counts (JSON, a few KB at most), for an adapter that shares them with the other instances. */
  counts? (): string
}

/** The other instances' counts as an adapter last read them: `[instance id, counts JSON]`; `at`: when (ms), 0 before the first read. */
export interface InstanceCountsRead {
  readonly at: number
  readonly entries: ReadonlyArray<readonly [id: string, counts: string]>
}

/** The adapter's own counters, merged into `app.realtime.stats()`. */
export interface FanoutStats {
  /** Failed or timed-out backend operations. */
  adapterErrors: number
  /** Broadcasts not handed to the other instances (backend down, or too many in flight). */
  adapterDropped: number
  /** Messages received from the backend that were not valid envelopes, dropped. */
  adapterInvalid: number
  /** Broadcasts the backend accepted (`RedisAdapter`; an adapter without it leaves it out). */
  adapterPublishes?: number
  /** Seconds those publishes waited for the backend, summed: the mean publish latency is this over `adapterPublishes`. */
  adapterPublishSeconds?: number
  /** Broadcasts the backend refused or that failed on the way (each is also in `adapterErrors`). */
  adapterPublishFailures?: number
  /** Times the adapter made its subscriptions again after its subscriber connection came back. */
  adapterResubscribes?: number
}

/**
 * Moves room broadcasts between instances of the app. The core owns rooms, membership and `seq`;
 * an adapter only carries already-serialized frames. The in-memory default is `MemoryAdapter`.
 * The optional members make an app cluster-wide beyond broadcasts; the core works without them.
 */
export interface FanoutAdapter {
  /** This instance's id, when the adapter has one (`RedisAdapter`): deliveries and cluster counts are named by it. */
  readonly id?: string
  /** This instance has its first local member of `room`: start receiving its frames through `receive`. */
  subscribe (room: string, receive: FanoutReceive): void | Promise<void>
  /** The last local member of `room` left: stop receiving its frames. */
  unsubscribe (room: string): void | Promise<void>
  /**
   * A broadcast made on this instance (its local members are already served): send it to the others.
   * `latest`: the message's conflation key (a `latest` delivery; it is never numbered): hand it to the other
   * instances' `receive` with the frame. An adapter that drops it delivers the message as reliable there.
   * `traceparent` (valid, or undefined): the trace of the handler that sent it; an adapter that can carries it
   * to the other instances' `receive`, else ignores it.
   */
  publish (room: string, frame: Buffer, volatile: boolean, latest?: string, traceparent?: string): void
  /** Called on `app.close()`: release what the adapter opened itself (never a client the app passed in). */
  close? (): void | Promise<void>
  /** Called once when the plugin is registered, before any other method. */
  attach? (core: FanoutCore): void | Promise<void>
  /**
   * A cluster-wide `seq`. Instead of `publish`, the core hands over the frame in two parts; the adapter numbers
   * it (`head + seq + tail` is the frame), publishes it, and calls `done(seq)` once, in bounded time, after
   * which the core serves its own members; `done(0)` when it could not publish (the core numbers the message
   * locally). To keep a room in seq order everywhere, call `done` and `receive` for a room in seq order.
   * `history`: the room keeps history: append the message to `history` (the adapter's store) as it is numbered.
   */
  sequence? (room: string, head: string, tail: string, volatile: boolean, done: (seq: number) => void, history?: boolean, traceparent?: string): void
  /** The adapter's room history (RedisAdapter given `history`): numbered, kept and published in one step. */
  readonly history?: HistoryStore | undefined
  /** Tells the other instances that this one resumed the session of `connId` (they drop their waiting copy). */
  sessionResumed? (connId: string): void
  /** A connection of this instance joined `room` (for cluster-wide presence). */
  addMember? (room: string, member: PresenceMember): void
  /** A connection of this instance left `room`. */
  removeMember? (room: string, member: PresenceMember): void
  /** The members of `room` on the other instances; the core adds its own. */
  remoteMembers? (room: string): Promise<PresenceMember[]>
  /** Asks every other instance to close the sockets of a user (each calls `FanoutCore.disconnectUser`). */
  disconnectUser? (userId: string, reason?: string): void
  /** The adapter's counters. */
  stats? (): FanoutStats
  /**
   * The other live instances' counts (each published from `FanoutCore.counts`), for cluster-wide inspection;
   * null when the adapter does not share them.
   */
  instanceCounts? (): InstanceCountsRead | null
}
