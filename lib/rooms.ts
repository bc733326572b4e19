// The local room registry: who is in which room on this instance, the per-room
// seq, and broadcast. A broadcast is serialized once into one Buffer that every
// member's socket sends as is, and handed to the fan-out adapter for the other
// instances. Empty rooms are freed at once.
import type { FastifyBaseLogger } from 'fastify'
import { FRT_ERR_EMIT_INVALID, FRT_ERR_ROOM_LIMIT, FRT_ERR_ROOM_NAME, FRT_ERR_ROUTE_INVALID } from './errors.js'
import type { UserType } from '@fastify/jwt'
import { MessageType, roomEventParts, roomEventUnnumbered, serializeRoomEvent } from './protocol.js'
import { MemoryAdapter } from './adapters/memory.js'
import { Frame } from './frames.js'
import { Sequencer } from './sequencer.js'
import type { Backpressure } from './backpressure.js'
import { Conflation, type ConflatedConnection } from './conflation.js'
import { Deliveries, latestKey, type Delivery, type DeliveryPolicies } from './delivery.js'
import { isThenable } from './verdict.js'
import { userKey, type ResolvedOptions } from './options.js'
import type { FanoutAdapter, FanoutReceive } from '../types/adapter.js'
import type { Presence, PresenceMember, RoomEmitter } from '../types/rooms.js'
import type { RouteDefinition, SchemaMap } from '../types/route.js'
import type { HistoryBounds, HistoryStore } from '../types/history.js'
import { Catchup } from './catchup.js'
import { newEpoch } from './recovery-ids.js'
import { CloseCode } from './wire.js'
import { FRT_ERR_HISTORY_INVALID } from './errors.js'
import { instanceId } from './adapters/envelope.js'
import { activeTraceparent, deliverChannel, publishDelivery } from './trace-context.js'

// Safe in logs, URLs and Redis channel names; no spaces, quotes or control characters.
const ROOM_NAME = /^[\w\-.:@/]{1,128}$/
export const INVALID_ROOM = 'Room names are 1-128 characters of A-Z a-z 0-9 _ - . : @ /'

export function isRoomName (name: unknown): name is string {
  return typeof name === 'string' && ROOM_NAME.test(name)
}

/** Checks the room options of a route definition when the route is declared. */
export function checkRouteRooms (path: string, definition: RouteDefinition<SchemaMap, SchemaMap>): void {
  const { joinable, presence } = definition
  if (joinable !== undefined && typeof joinable !== 'boolean' && typeof joinable !== 'function') {
    throw new FRT_ERR_ROUTE_INVALID(path, '"joinable" must be a boolean or a function (conn, room) => boolean')
  }
  if (presence !== undefined && typeof presence !== 'boolean') {
    throw new FRT_ERR_ROUTE_INVALID(path, '"presence" must be a boolean')
  }
}

/** What rooms need of a connection. */
export interface RoomMember extends ConflatedConnection {
  readonly id: string
  readonly user: UserType | undefined
  /** The rooms joined; written only here. */
  readonly joined: Set<string>
  /** `joined`, without making a set for a connection that never joined one. */
  readonly rooms: ReadonlySet<string>
  /** Whether this connection's joins and leaves are announced (its route's `presence`). */
  readonly announcesPresence: boolean
  /**
   * Per room, the live messages held while the member's missed messages are read (lib/recovery.ts); null for
   * almost every connection, so a delivery pays one property read.
   */
  catchups: Map<string, Catchup> | null
  /** Told when the member's rooms changed (a session saves them); null without a session. */
  readonly session: { changed: () => void } | null
  sendFrame (frame: Frame): void
  close (code?: number, reason?: string): void
}

/** Room history as the rooms use it: which rooms keep it, where, and how much one member may have held. */
export interface RoomHistory {
  readonly store: HistoryStore
  readonly rooms: (room: string) => boolean
  readonly replay: Readonly<HistoryBounds>
  readonly hold: Readonly<HistoryBounds>
  /** Whether the fan-out adapter appends (RedisAdapter with history): else this instance does, synchronously. */
  readonly byAdapter: boolean
}

/**
 * Checks an emit against a route's declared `emits` (lib/route.ts), throwing when refused; and gives its
 * declared delivery (lib/delivery.ts).
 */
export interface EmitChecker extends DeliveryPolicies {
  checkEmit (type: string, data: unknown): void
}

interface RoomCounters {
  volatileDrops: number, conflated: number, slowConsumerCloses: number, backfills: number, backfillGaps: number, historyErrors: number
}

function checkName (name: unknown): asserts name is string {
  if (!isRoomName(name)) {
    // The name may be hostile: show a bounded excerpt only.
    throw new FRT_ERR_ROOM_NAME(typeof name === 'string' ? JSON.stringify(name.slice(0, 64)) : typeof name)
  }
}

export class Room {
  readonly name: string
  readonly members = new Set<RoomMember>()
  /** The seq of the last message sent to this room from here. */
  seq = 0
  /**
   * Whether `seq` is a known position of the room's history even at 0 (read from the store when the room was
   * made here): a gap after it can then be backfilled from the start. False: 0 means not known yet.
   */
  known = false
  /** This life of the room's numbering: the history's epoch, or a fresh one for a room without history. */
  epoch: string
  /** Whether the room keeps history (the plugin's `history.rooms`, tested once here). */
  readonly history: boolean
  /** While a gap in the room's subscription is filled from history: its live messages, held (Redis backfill). */
  backfill: Catchup | null = null
  /** This instance's own messages held by the backfill that skip some members (`.except`), by seq; else null. */
  backfillExcept: Map<number, readonly RoomMember[]> | null = null
  constructor (name: string, history: boolean) {
    this.name = name
    this.history = history
    this.epoch = newEpoch()
  }
}

export class Rooms {
  /** The rooms with members on this instance, by name. */
  readonly byName = new Map<string, Room>()
  readonly adapter: FanoutAdapter
  readonly backpressure: Backpressure
  readonly counters: RoomCounters
  readonly log: FastifyBaseLogger
  readonly maxPerConnection: number
  readonly userId: ResolvedOptions['auth']['userId']
  /** Memberships on this instance, summed over rooms. */
  members = 0
  /** This instance's id: the fan-out adapter's when it has one (deliveries and cluster counts name it). */
  readonly instance: string
  // One function for every subscription, so the adapter never holds a closure per room.
  readonly #receive: FanoutReceive
  /** Set when the adapter numbers room messages cluster-wide (`sequence`); else seq is this instance's. */
  readonly #sequencer: Sequencer<RoomMember> | null
  /** Room history; null when the plugin's `history` is off. */
  readonly history: RoomHistory | null
  /** Latest-by-key messages held for members that are behind. */
  readonly conflation: Conflation
  /** The routes' delivery policies merged, for `app.realtime.to` (lib/delivery.ts). */
  readonly deliveries = new Deliveries()

  constructor (options: ResolvedOptions, log: FastifyBaseLogger, backpressure: Backpressure, counters: RoomCounters,
    history: RoomHistory | null = null, conflation = new Conflation(backpressure, counters)) {
    this.history = history
    this.conflation = conflation
    this.backpressure = backpressure
    this.counters = counters
    this.log = log
    this.maxPerConnection = options.maxRoomsPerConnection
    this.userId = options.auth.userId
    this.adapter = options.adapter ?? new MemoryAdapter()
    this.instance = this.adapter.id ?? instanceId()
    this.#sequencer = typeof this.adapter.sequence === 'function'
      ? new Sequencer(this.adapter, (room, frame, except, delivery, traceparent) => {
        const local = room as Room
        // This instance's own numbered message while a gap before it is read from history: held with the live
        // ones, so that members get the missed messages first (delivered now, it would overtake them, and the
        // missed ones would then look like duplicates to a client).
        if (local.backfill !== null && typeof delivery !== 'string') this.#holdOwn(local, frame, except)
        else this.#deliver(local, frame, except, delivery, typeof delivery === 'string' ? 0 : room.seq, traceparent)
      })
      : null
    this.#receive = (name, frame, volatile, seq, latest, traceparent) => {
      const room = this.byName.get(name)
      if (room === undefined) return
      // A latest message is never numbered: conflated here for this instance's members that are behind.
      if (latest !== undefined) this.#deliver(room, frame, null, latest, 0, traceparent)
      else if (seq === undefined || this.#sequencer === null) this.#deliver(room, frame, null, volatile, 0, traceparent)
      // A history room's gap is filled from the stream first (#backfill takes the message then).
      else if (!room.history || !this.#backfill(room, frame, seq)) this.#sequencer.receive(room, frame, volatile, seq, traceparent)
    }
  }

  /**
   * Resolves once the fan-out adapter listens to the room; the local membership is immediate. `silent`: no
   * presence event (a session resumed here from another instance: the others never saw it leave).
   */
  async join (conn: RoomMember, name: string, silent = false): Promise<void> {
    checkName(name)
    if (conn.closed || conn.joined.has(name)) return
    if (conn.joined.size >= this.maxPerConnection) throw new FRT_ERR_ROOM_LIMIT(this.maxPerConnection)
    let room = this.byName.get(name)
    const created = room === undefined
    if (room === undefined) {
      room = this.#create(name)
    }
    if (conn.announcesPresence && !silent) {
      // `except`: with a cluster-wide seq the event is delivered after the join below.
      this.emit(name, MessageType.PresenceJoin, this.presenceOf(conn), [conn], false)
    }
    room.members.add(conn)
    conn.joined.add(name)
    this.members++
    this.adapter.addMember?.(name, this.presenceOf(conn))
    if (created) {
      await this.adapter.subscribe(name, this.#receive)
      if (room.history && this.history?.byAdapter === true) await this.#learn(room)
    }
    // Saved once the room's position is known (its epoch, on Redis, only after #learn).
    conn.session?.changed()
  }

  /**
   * A history room new here (Redis): its epoch and seq from the store, so that positions saved for sessions and
   * the backfill of a gap name this life of the room. A message received meanwhile already told the seq.
   */
  async #learn (room: Room): Promise<void> {
    const history = this.history as RoomHistory
    try {
      const read = await history.store.since(room.name, null, history.replay)
      room.epoch = read.epoch
      if (room.seq === 0) {
        room.seq = read.seq
        room.known = true
      }
    } catch (err) {
      this.counters.historyErrors++
      this.log.warn({ err, room: room.name }, 'history read failed')
    }
  }

  /**
   * `conn` takes the place of `old` (the same connection id, resumed here) in every room of `old`, with no
   * presence event and no change to the adapter's presence (the id is the same). Returns the rooms taken.
   */
  adopt (conn: RoomMember, old: RoomMember): string[] {
    const taken: string[] = []
    for (const name of old.rooms) {
      const room = this.byName.get(name) as Room
      room.members.delete(old)
      room.members.add(conn)
      conn.joined.add(name)
      taken.push(name)
    }
    old.joined.clear()
    return taken
  }

  /** Returns whether the connection was a member. `silent`: no presence event (the session resumed elsewhere). */
  leave (conn: RoomMember, name: string, silent = false): boolean {
    if (!conn.joined.delete(name)) return false
    const room = this.byName.get(name) as Room
    room.members.delete(conn)
    this.members--
    this.adapter.removeMember?.(name, this.presenceOf(conn))
    // Sent even when no local member is left: other instances may still have some.
    if (conn.announcesPresence && !silent) {
      this.emit(name, MessageType.PresenceLeave, this.presenceOf(conn), null, false)
    }
    conn.session?.changed()
    if (room.members.size === 0) {
      this.byName.delete(name)
      // In memory, a room's history lives as long as the room: its next life gets a new epoch.
      if (room.history) this.history?.store.release?.(name)
      this.#settle(this.adapter.unsubscribe(name), name)
    }
    return true
  }

  leaveAll (conn: RoomMember, silent = false): void {
    // `rooms`, not `joined`: no set is made for a connection that never joined one.
    for (const name of conn.rooms) this.leave(conn, name, silent)
  }

  /** The room object of `name` on this instance, if it has members here. */
  get (name: string): Room | undefined {
    return this.byName.get(name)
  }

  #create (name: string): Room {
    const history = this.history
    const room = new Room(name, history !== null && history.rooms(name))
    if (room.history && !(history as RoomHistory).byAdapter) {
      // In memory the store answers at once: the room continues its history's numbering.
      const position = (history as RoomHistory).store.since(name, null, (history as RoomHistory).replay)
      if (!isThenable(position)) {
        room.seq = position.seq
        room.epoch = position.epoch
      }
    }
    this.byName.set(name, room)
    return room
  }

  /** `emits` checks a connection's emits against its route; null for the app-level target. */
  to (name: string, emits: EmitChecker | null): RoomTarget {
    checkName(name)
    return new RoomTarget(this, name, emits, null, null)
  }

  /** `delivery`: false reliable, true volatile, a string latest by that key (lib/delivery.ts). */
  emit (name: string, type: string, data: unknown, except: readonly RoomMember[] | null, delivery: Delivery): void {
    const room = this.byName.get(name)
    // The trace of the handler sending it, if any (lib/trace-context.ts): to every delivery, here and elsewhere.
    const traceparent = activeTraceparent()
    if (typeof delivery === 'string') {
      // Latest messages carry no seq, on any room: a member behind gets them out of order with the numbered
      // ones (held, then sent once it caught up) and only the newest per key, so a seq would only show gaps.
      const frame = Buffer.from(roomEventUnnumbered(type, name, data))
      // Behind this instance's messages to the room still waiting for their cluster seq, if any.
      if (room !== undefined && this.#sequencer !== null) this.#sequencer.unnumbered(room, frame, except, delivery, traceparent)
      else if (room !== undefined) this.#deliver(room, frame, except, delivery, 0, traceparent)
      this.adapter.publish(name, frame, false, delivery, traceparent)
      return
    }
    const volatile = delivery
    const history = this.history !== null && (room?.history ?? this.history.rooms(name))
    if (history) {
      this.#emitKept(room, name, type, data, except, volatile, traceparent)
      return
    }
    if (this.#sequencer !== null) {
      const [head, tail] = roomEventParts(type, name, data)
      this.#sequencer.emit(room, name, head, tail, except, volatile, false, traceparent)
      return
    }
    // seq is this instance's count for the room; a room with no member here has none yet.
    const seq = room === undefined ? 1 : ++room.seq
    const frame = Buffer.from(serializeRoomEvent(type, name, seq, data))
    if (room !== undefined) this.#deliver(room, frame, except, volatile, seq, traceparent)
    this.adapter.publish(name, frame, volatile, undefined, traceparent)
  }

  /** A message to a room with history: kept and numbered by the store (volatile ones: neither). */
  #emitKept (room: Room | undefined, name: string, type: string, data: unknown, except: readonly RoomMember[] | null, volatile: boolean,
    traceparent: string | undefined): void {
    if (volatile) {
      // Not kept, so not numbered: it can never be replayed, nor be taken for a gap.
      const frame = Buffer.from(roomEventUnnumbered(type, name, data))
      if (room !== undefined) this.#deliver(room, frame, except, true, 0, traceparent)
      this.adapter.publish(name, frame, true, undefined, traceparent)
      return
    }
    const [head, tail] = roomEventParts(type, name, data)
    const history = this.history as RoomHistory
    if (history.byAdapter) {
      (this.#sequencer as Sequencer<RoomMember>).emit(room, name, head, tail, except, false, true, traceparent)
      return
    }
    const appended = history.store.append(name, head, tail)
    if (isThenable(appended)) {
      throw new FRT_ERR_HISTORY_INVALID('with a fan-out adapter that does not keep history, the store must answer append synchronously (MemoryHistory)')
    }
    const frame = Buffer.from(head + appended.seq + tail)
    if (room === undefined) {
      // Nobody here: nothing to keep it for (a room's history in memory lives as long as the room).
      history.store.release?.(name)
    } else {
      room.seq = appended.seq
      room.epoch = appended.epoch
      this.#deliver(room, frame, except, false, appended.seq, traceparent)
    }
    this.adapter.publish(name, frame, false, undefined, traceparent)
  }

  /** This instance's members, plus those of every other instance when the adapter keeps presence. */
  async presenceEverywhere (name: string): Promise<Presence> {
    const local = this.presence(name)
    if (this.adapter.remoteMembers === undefined) return local
    const members = [...local.members, ...await this.adapter.remoteMembers(name)]
    return { count: members.length, members }
  }

  presence (name: string): Presence {
    checkName(name)
    const members: PresenceMember[] = []
    const room = this.byName.get(name)
    if (room !== undefined) for (const conn of room.members) members.push(this.presenceOf(conn))
    return { count: members.length, members }
  }

  /** The number of rooms with members on this instance. */
  get size (): number {
    return this.byName.size
  }

  /** Whether joining `name` would take the connection past the per-connection cap. */
  isFull (conn: RoomMember, name: string): boolean {
    return !conn.joined.has(name) && conn.joined.size >= this.maxPerConnection
  }

  async close (): Promise<void> {
    await this.adapter.close?.()
  }

  /** The user id is the one auth uses (`auth.userId`), as a string; null when anonymous. */
  presenceOf (conn: RoomMember): PresenceMember {
    return { connId: conn.id, userId: userKey(this.userId, conn.user) ?? null }
  }

  /**
   * `seq`: the frame's seq, 0 for an unnumbered one; a member catching up holds it instead. `delivery`: a
   * string for a latest message, its key (per member, within this room). `traceparent`: the sender's trace,
   * for the `fastify-realtime:deliver` event (published only when someone listens).
   */
  #deliver (room: Room, frame: Buffer, except: readonly RoomMember[] | null, delivery: Delivery, seq: number,
    traceparent?: string): void {
    const backpressure = this.backpressure
    // Framed once: every member's socket is written the same bytes (lib/frames.ts).
    const framed = new Frame(frame)
    // Room names have no space: the room and the message's key cannot run into each other.
    const key = typeof delivery === 'string' ? room.name + ' ' + delivery : null
    let recipients = 0
    for (const conn of room.members) {
      if (except !== null && except.includes(conn)) continue
      if (conn.catchups !== null) {
        const catchup = conn.catchups.get(room.name)
        // The floor is set only when a Redis history read overtook the subscription (lib/recovery.ts #release).
        if (catchup !== undefined && catchup.floor >= 0) {
          // Replayed already (live delivery is behind the history read): once past it, deliver as usual. An
          // unnumbered message (volatile, latest) goes through and leaves the floor in place: it says nothing of
          // where the live numbered ones are.
          if (seq !== 0) {
            if (seq <= catchup.floor) continue
            conn.catchups.delete(room.name)
            if (conn.catchups.size === 0) conn.catchups = null
          }
        } else if (catchup !== undefined) {
          if (!catchup.hold(seq, frame)) {
            // Given up once: the socket is closing, so nothing more reaches it.
            conn.catchups.delete(room.name)
            this.counters.slowConsumerCloses++
            conn.close(CloseCode.SlowConsumer, 'Slow consumer')
          }
          continue
        }
      }
      if (key !== null) {
        // Sent, or held as the newest of its key until the member catches up.
        this.conflation.send(conn, framed, key)
        recipients++
        continue
      }
      if (delivery === true && backpressure.isSlow(conn)) {
        this.counters.volatileDrops++
        continue
      }
      conn.sendFrame(framed)
      recipients++
    }
    if (deliverChannel.hasSubscribers) publishDelivery(room.name, frame, seq, delivery === true, recipients, this.instance, traceparent)
  }

  /**
   * A numbered message of a history room from the subscription (Redis). Returns true when it was taken care of
   * here: held while a gap before it is filled from the stream, and the range delivered in order once read.
   */
  #backfill (room: Room, frame: Buffer, seq: number): boolean {
    if (room.backfill !== null) {
      if (!room.backfill.hold(seq, frame)) {
        this.#endBackfill(room)
        this.#deliverRun(room, [frame])
      }
      return true
    }
    // An unknown position (a fresh room here, its history not read) or the next message: nothing missed.
    if ((room.seq === 0 && !room.known) || seq <= room.seq + 1) return false
    const history = this.history as RoomHistory
    const catchup = room.backfill = new Catchup(room.seq, history.hold)
    catchup.hold(seq, frame)
    this.#readGap(room, catchup, room.seq)
    return true
  }

  /**
   * The fan-out adapter subscribed to `names` again after its connection dropped (Redis alive): each history
   * room's messages published meanwhile are read from the stream and delivered now, before what comes live,
   * instead of at the room's next message (a quiet room may have none for a long time).
   */
  resync (names: readonly string[]): void {
    const history = this.history
    if (history === null || !history.byAdapter) return
    for (const name of names) {
      const room = this.byName.get(name)
      // An unknown position (seq 0, not read), or a gap already being filled: as in #backfill.
      if (room === undefined || !room.history || (room.seq === 0 && !room.known) || room.backfill !== null) continue
      const catchup = room.backfill = new Catchup(room.seq, history.hold)
      this.#readGap(room, catchup, room.seq)
    }
  }

  #readGap (room: Room, catchup: Catchup, from: number): void {
    const history = this.history as RoomHistory
    Promise.resolve(history.store.since(room.name, { seq: from, epoch: room.epoch }, history.replay)).then((read) => {
      if (room.backfill !== catchup) return
      if (!read.recovered) {
        // Lost by Redis itself (or trimmed): the members see the gap, as without history. 'ahead' (a resync of a
        // room numbered here while Redis was away): nothing was missed that the stream could tell.
        room.epoch = read.epoch
        this.#endBackfill(room, read.reason !== 'ahead')
        return
      }
      room.epoch = read.epoch
      const step = catchup.merge(read.seq, read.frames)
      this.#deliverRun(room, step.frames)
      // A second hole behind the first, opened while it was read: read again from there.
      if (step.status === 'gap') {
        this.#readGap(room, catchup, step.seq)
        return
      }
      // A resync that found nothing missed is not a backfill.
      if (read.frames.length > 0) this.counters.backfills++
      room.backfill = null
      room.backfillExcept = null
    }, (err: unknown) => {
      this.counters.historyErrors++
      this.log.warn({ err, room: room.name }, 'history read failed; a gap stays visible')
      if (room.backfill === catchup) this.#endBackfill(room)
    })
  }

  /** Gives the backfill up: what is held goes out as it came, the gap visible (`gap`: counted). */
  #endBackfill (room: Room, gap = true): void {
    const catchup = room.backfill as Catchup
    room.backfill = null
    if (gap) this.counters.backfillGaps++
    this.#deliverRun(room, catchup.drain())
    room.backfillExcept = null
  }

  /** One of this instance's messages, numbered `room.seq`, held by the room's backfill (see the sequencer's callback). */
  #holdOwn (room: Room, frame: Buffer, except: readonly RoomMember[] | null): void {
    const seq = room.seq
    if ((room.backfill as Catchup).hold(seq, frame)) {
      if (except !== null) (room.backfillExcept ??= new Map()).set(seq, except)
      return
    }
    // Past the hold's bounds: given up, as for a message from the subscription (#backfill), the gap visible.
    this.#endBackfill(room)
    room.seq = Math.max(room.seq, seq)
    this.#deliver(room, frame, except, false, seq)
  }

  /**
   * Frames read from history or held, delivered in order; their seq is read back (this path is rare). One of
   * this instance's own messages skips the members its emit left out, whether it comes from the hold or the read.
   */
  #deliverRun (room: Room, frames: Buffer[]): void {
    for (const frame of frames) {
      const seq = seqOf(frame)
      if (seq !== 0) room.seq = seq
      this.#deliver(room, frame, room.backfillExcept?.get(seq) ?? null, false, seq)
    }
  }

  #settle (result: void | Promise<void>, name: string): void {
    if (isThenable(result)) {
      result.then(undefined, (err: unknown) => this.log.error({ err, room: name }, 'fan-out adapter failed to unsubscribe'))
    }
  }
}

// Only on the backfill path: the seq a frame carries, 0 when none.
const SEQ_FIELD = /"seq":(\d+)/
function seqOf (frame: Buffer): number {
  // toString clamps the end to the frame's length; the head with the seq is well within 400 bytes.
  const match = SEQ_FIELD.exec(frame.toString('latin1', 0, 400))
  /* c8 ignore next: frames on this path are numbered ones */
  return match === null ? 0 : Number(match[1])
}

/**
 * `to(room)`: immutable, so `except`, `volatile` and `latest` derive new targets without touching shared ones.
 * `delivery`: null follows the declared policy of each type (the route's, or the app-wide one); true volatile;
 * a string latest by that key.
 */
export class RoomTarget implements RoomEmitter {
  readonly #rooms: Rooms
  readonly #name: string
  readonly #emits: EmitChecker | null
  readonly #except: readonly RoomMember[] | null
  readonly #delivery: true | string | null

  constructor (rooms: Rooms, name: string, emits: EmitChecker | null, except: readonly RoomMember[] | null,
    delivery: true | string | null) {
    this.#rooms = rooms
    this.#name = name
    this.#emits = emits
    this.#except = except
    this.#delivery = delivery
  }

  emit (type: string, data: unknown): void {
    // A connection's target checks the route's declared emits; the app-level one cannot know a route.
    this.#emits?.checkEmit(type, data)
    const chosen = this.#delivery
    const delivery = chosen === null
      ? (this.#emits ?? this.#rooms.deliveries).delivery(type, data)
      : chosen === true || latestKey(type, chosen)
    this.#rooms.emit(this.#name, type, data, this.#except, delivery)
  }

  except (...connections: unknown[]): RoomTarget {
    const except = [...(this.#except ?? []), ...connections as RoomMember[]]
    return new RoomTarget(this.#rooms, this.#name, this.#emits, except, this.#delivery)
  }

  get volatile (): RoomTarget {
    return new RoomTarget(this.#rooms, this.#name, this.#emits, this.#except, true)
  }

  latest (key: string): RoomTarget {
    if (typeof key !== 'string') throw new FRT_ERR_EMIT_INVALID('latest', `the key must be a string, got ${typeof key}`)
    return new RoomTarget(this.#rooms, this.#name, this.#emits, this.#except, key)
  }
}
