// The room history store: where a room's recent messages are kept so that a
// member who missed some can get exactly those back. The core owns the meaning
// (which rooms keep history, what a position is, when to replay); a store only
// numbers, keeps and hands back already-serialized frames.

/**
 * Where a reader is in a room: the `seq` of the last message it has, in the room's `epoch`. An epoch is an
 * opaque base64url string that changes whenever the room's history (and seq numbering) is lost, so a
 * position is never confused with one from another life of the room.
 */
export interface RoomPosition {
  seq: number
  epoch: string
}

/** The outcome of one {@link HistoryStore.append}. */
export interface HistoryAppended extends RoomPosition {
  /** The message id was seen before (a retried publish): nothing was stored or published again. */
  duplicate: boolean
}

/** Why a {@link HistoryStore.since} could not hand back the whole missed range. */
export type NotRecoverable =
  /** The position is from another life of the room (its history was lost since). */
  | 'epoch'
  /** The position is newer than the room's current seq (or its seq is not an integer >= 0). */
  | 'ahead'
  /** Part of the range is no longer kept (trimmed by count, age or bytes, or never kept: a hole). */
  | 'trimmed'
  /** The range is longer than the reader's `maxCount` or `maxBytes`. */
  | 'bound'

/**
 * The outcome of one {@link HistoryStore.since}: either every message after the position, complete and in
 * order, or a clean refusal. Never a partial replay. Both carry the room's current position.
 */
export type HistoryRead =
  | (RoomPosition & {
    recovered: true
    /** The frames of seq `since.seq + 1` to `seq`, in order, exactly as they were published. */
    frames: Buffer[]
  })
  | (RoomPosition & {
    recovered: false
    reason: NotRecoverable
  })

/** How much one {@link HistoryStore.since} may hand back. */
export interface HistoryBounds {
  /** Most messages; a longer range is not recoverable (`bound`). */
  maxCount: number
  /** Most bytes of frames; a larger range is not recoverable (`bound`). */
  maxBytes: number
}

/** Options of one {@link HistoryStore.append}. */
export interface HistoryAppendOptions {
  /**
   * A unique id of this message (e.g. instance id + counter). A second append with the same id within the
   * store's dedupe window stores and publishes nothing and answers the first append's seq (`duplicate: true`).
   */
  id?: string
  /**
   * Messages of this room numbered locally since this instance's last append (its backend was away): the
   * seq skips them, so the gap is visible to every other reader, and a replay over it is refused (`trimmed`).
   */
  skipped?: number
}

/**
 * Keeps each room's recent messages with the room's `seq` and `epoch`: in memory (`MemoryHistory`) or in
 * a Redis Stream per room (`RedisHistory`, which also publishes, so seq, history and fan-out agree).
 */
export interface HistoryStore {
  /**
   * Numbers one room message and keeps it: the frame is `head + seq + tail` (serialized once, before the seq
   * is known). Resolves the seq it got and the room's epoch.
   */
  append (room: string, head: string, tail: string, options?: HistoryAppendOptions): HistoryAppended | Promise<HistoryAppended>
  /**
   * Every message after `since`, or a refusal; with `since` null, just the current position (`frames` empty).
   * Reading a room that has no history yet gives it an epoch, so that a join ack can carry one.
   */
  since (room: string, since: RoomPosition | null, bounds: HistoryBounds): HistoryRead | Promise<HistoryRead>
  /**
   * The last member of `room` on this instance left. A store that keeps history only while a room lives
   * (`MemoryHistory`) frees it: the room's next life starts with a new epoch. Shared stores ignore it.
   */
  release? (room: string): void
  /** Release what the store opened (timers); never closes a client it was given. */
  close? (): void | Promise<void>
}
