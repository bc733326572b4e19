// Room messages numbered cluster-wide by the fan-out adapter (`sequence`): the
// seq is known only once the backend answered, so this instance serves its
// own members then. The adapter reports its own messages and the others' in
// the room's seq order (RedisAdapter: as they come through its subscription);
// the core keeps this instance's own messages in the order they were emitted.
// A message the adapter could not publish comes back as 0 and is numbered
// locally, one more than the last seq delivered here, so local delivery never
// waits on the backend for longer than the adapter's timeout. A message that is
// never numbered (latest) waits its turn behind this instance's messages still
// waiting for their seq, so the members here get the room's messages in the
// order they were emitted.
import type { FanoutAdapter } from '../types/adapter.js'

/** The part of a room the sequencer uses. */
export interface SequencedRoom<M> {
  readonly members: Set<M>
  /** The seq of the last message delivered to the room's local members. */
  seq: number
}

/**
 * `delivery`: volatile (true) or not; a string for a message never numbered (lib/delivery.ts's latest key).
 * `traceparent`: the sender's trace, handed through for the delivery event (lib/trace-context.ts).
 */
export type Deliver<M> = (room: SequencedRoom<M>, frame: Buffer, except: readonly M[] | null, delivery: boolean | string,
  traceparent?: string) => void

// Waiting for the adapter; then 0 (not published) or the cluster seq.
const WAITING = -1
// Never numbered: delivered as it is, in its turn.
const UNNUMBERED = -2

interface Entry<M> {
  seq: number
  /** The frame's parts; for an unnumbered entry, head is the whole frame. */
  head: string
  tail: string
  except: readonly M[] | null
  delivery: boolean | string
  traceparent: string | undefined
}

/** Generic in the member type, so that it knows nothing of connections. */
export class Sequencer<M> {
  readonly #adapter: FanoutAdapter
  readonly #deliver: Deliver<M>
  /** This instance's messages not delivered yet, by room object: a room freed and created again starts afresh. */
  readonly #queues = new Map<SequencedRoom<M>, Array<Entry<M>>>()

  constructor (adapter: FanoutAdapter, deliver: Deliver<M>) {
    this.#adapter = adapter
    this.#deliver = deliver
  }

  /** Number, publish and (once numbered) deliver one message; `room` is undefined when no member is here. */
  emit (room: SequencedRoom<M> | undefined, name: string, head: string, tail: string,
    except: readonly M[] | null, volatile: boolean, history: boolean, traceparent?: string): void {
    const adapter = this.#adapter as Required<Pick<FanoutAdapter, 'sequence'>>
    if (room === undefined) {
      adapter.sequence(name, head, tail, volatile, ignore, history, traceparent)
      return
    }
    const entry: Entry<M> = { seq: WAITING, head, tail, except, delivery: volatile, traceparent }
    let queue = this.#queues.get(room)
    if (queue === undefined) this.#queues.set(room, queue = [])
    queue.push(entry)
    adapter.sequence(name, head, tail, volatile, (seq) => this.#settle(room, entry, seq), history, traceparent)
  }

  /**
   * A message of this instance that is never numbered (latest, by `key`): delivered at once, or, while earlier
   * messages of the room wait for their seq, after them. The caller publishes it.
   */
  unnumbered (room: SequencedRoom<M>, frame: Buffer, except: readonly M[] | null, key: string, traceparent?: string): void {
    const queue = this.#queues.get(room)
    if (queue === undefined) this.#deliver(room, frame, except, key, traceparent)
    else queue.push({ seq: UNNUMBERED, head: frame.toString(), tail: '', except, delivery: key, traceparent })
  }

  /** Another instance's message for a room with local members. */
  receive (room: SequencedRoom<M>, frame: Buffer, volatile: boolean, seq: number, traceparent?: string): void {
    room.seq = seq
    this.#deliver(room, frame, null, volatile, traceparent)
  }

  #settle (room: SequencedRoom<M>, entry: Entry<M>, seq: number): void {
    if (entry.seq !== WAITING) return
    entry.seq = seq > 0 ? seq : 0
    const queue = this.#queues.get(room) as Array<Entry<M>>
    let ready = 0
    while (ready < queue.length && queue[ready].seq !== WAITING) {
      const next = queue[ready++]
      if (next.seq === UNNUMBERED) {
        this.#deliver(room, Buffer.from(next.head), next.except, next.delivery, next.traceparent)
        continue
      }
      room.seq = next.seq === 0 ? room.seq + 1 : next.seq
      this.#deliver(room, Buffer.from(next.head + room.seq + next.tail), next.except, next.delivery, next.traceparent)
    }
    if (ready === queue.length) this.#queues.delete(room)
    else queue.splice(0, ready)
  }
}

function ignore (): void {}
