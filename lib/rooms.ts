// The local room registry: who is in which room on this instance, the per-room
// seq, and broadcast. A broadcast is serialized once into one Buffer that every
// member's socket sends as is, and handed to the fan-out adapter for the other
// instances. Empty rooms are freed at once.
import type { FastifyBaseLogger } from 'fastify'
import { FRT_ERR_ROOM_LIMIT, FRT_ERR_ROOM_NAME, FRT_ERR_ROUTE_INVALID } from './errors.js'
import type { UserType } from '@fastify/jwt'
import { MessageType, roomEventParts, serializeRoomEvent } from './protocol.js'
import { MemoryAdapter } from './adapters/memory.js'
import { Frame } from './frames.js'
import { Sequencer } from './sequencer.js'
import type { Backpressure, WatchedConnection } from './backpressure.js'
import { isThenable } from './verdict.js'
import { userKey, type ResolvedOptions } from './options.js'
import type { FanoutAdapter, FanoutReceive } from '../types/adapter.js'
import type { Presence, PresenceMember, RoomEmitter } from '../types/rooms.js'
import type { RouteDefinition, SchemaMap } from '../types/route.js'

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
export interface RoomMember extends WatchedConnection {
  readonly id: string
  readonly user: UserType | undefined
  /** The rooms joined; written only here. */
  readonly joined: Set<string>
  /** `joined`, without making a set for a connection that never joined one. */
  readonly rooms: ReadonlySet<string>
  /** Whether this connection's joins and leaves are announced (its route's `presence`). */
  readonly announcesPresence: boolean
  sendFrame (frame: Frame): void
}

/** Checks an emit against a route's declared `emits` (lib/route.ts); throws when refused. */
export interface EmitChecker {
  checkEmit (type: string, data: unknown): void
}

interface RoomCounters { volatileDrops: number }

function checkName (name: unknown): asserts name is string {
  if (!isRoomName(name)) {
    // The name may be hostile: show a bounded excerpt only.
    throw new FRT_ERR_ROOM_NAME(typeof name === 'string' ? JSON.stringify(name.slice(0, 64)) : typeof name)
  }
}

class Room {
  readonly name: string
  readonly members = new Set<RoomMember>()
  /** The seq of the last message sent to this room from here. */
  seq = 0
  constructor (name: string) {
    this.name = name
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
  // One function for every subscription, so the adapter never holds a closure per room.
  readonly #receive: FanoutReceive
  /** Set when the adapter numbers room messages cluster-wide (`sequence`); else seq is this instance's. */
  readonly #sequencer: Sequencer<RoomMember> | null

  constructor (options: ResolvedOptions, log: FastifyBaseLogger, backpressure: Backpressure, counters: RoomCounters) {
    this.backpressure = backpressure
    this.counters = counters
    this.log = log
    this.maxPerConnection = options.maxRoomsPerConnection
    this.userId = options.auth.userId
    this.adapter = options.adapter ?? new MemoryAdapter()
    this.#sequencer = typeof this.adapter.sequence === 'function'
      ? new Sequencer(this.adapter, (room, frame, except, volatile) => this.#deliver(room as Room, frame, except, volatile))
      : null
    this.#receive = (name, frame, volatile, seq) => {
      const room = this.byName.get(name)
      if (room === undefined) return
      if (seq === undefined || this.#sequencer === null) this.#deliver(room, frame, null, volatile)
      else this.#sequencer.receive(room, frame, volatile, seq)
    }
  }

  /** Resolves once the fan-out adapter listens to the room; the local membership is immediate. */
  async join (conn: RoomMember, name: string): Promise<void> {
    checkName(name)
    if (conn.closed || conn.joined.has(name)) return
    if (conn.joined.size >= this.maxPerConnection) throw new FRT_ERR_ROOM_LIMIT(this.maxPerConnection)
    let room = this.byName.get(name)
    const created = room === undefined
    if (room === undefined) {
      room = new Room(name)
      this.byName.set(name, room)
    }
    if (conn.announcesPresence) {
      // `except`: with a cluster-wide seq the event is delivered after the join below.
      this.emit(name, MessageType.PresenceJoin, this.presenceOf(conn), [conn], false)
    }
    room.members.add(conn)
    conn.joined.add(name)
    this.members++
    this.adapter.addMember?.(name, this.presenceOf(conn))
    if (created) await this.adapter.subscribe(name, this.#receive)
  }

  /** Returns whether the connection was a member. */
  leave (conn: RoomMember, name: string): boolean {
    if (!conn.joined.delete(name)) return false
    const room = this.byName.get(name) as Room
    room.members.delete(conn)
    this.members--
    this.adapter.removeMember?.(name, this.presenceOf(conn))
    // Sent even when no local member is left: other instances may still have some.
    if (conn.announcesPresence) {
      this.emit(name, MessageType.PresenceLeave, this.presenceOf(conn), null, false)
    }
    if (room.members.size === 0) {
      this.byName.delete(name)
      this.#settle(this.adapter.unsubscribe(name), name)
    }
    return true
  }

  leaveAll (conn: RoomMember): void {
    // `rooms`, not `joined`: no set is made for a connection that never joined one.
    for (const name of conn.rooms) this.leave(conn, name)
  }

  /** `emits` checks a connection's emits against its route; null for the app-level target. */
  to (name: string, emits: EmitChecker | null): RoomTarget {
    checkName(name)
    return new RoomTarget(this, name, emits, null, false)
  }

  emit (name: string, type: string, data: unknown, except: readonly RoomMember[] | null, volatile: boolean): void {
    const room = this.byName.get(name)
    if (this.#sequencer !== null) {
      const [head, tail] = roomEventParts(type, name, data)
      this.#sequencer.emit(room, name, head, tail, except, volatile)
      return
    }
    // seq is this instance's count for the room; a room with no member here has none yet.
    const seq = room === undefined ? 1 : ++room.seq
    const frame = Buffer.from(serializeRoomEvent(type, name, seq, data))
    if (room !== undefined) this.#deliver(room, frame, except, volatile)
    this.adapter.publish(name, frame, volatile)
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

  #deliver (room: Room, frame: Buffer, except: readonly RoomMember[] | null, volatile: boolean): void {
    const backpressure = this.backpressure
    // Framed once: every member's socket is written the same bytes (lib/frames.ts).
    const framed = new Frame(frame)
    for (const conn of room.members) {
      if (except !== null && except.includes(conn)) continue
      if (volatile && backpressure.isSlow(conn)) {
        this.counters.volatileDrops++
        continue
      }
      conn.sendFrame(framed)
    }
  }

  #settle (result: void | Promise<void>, name: string): void {
    if (isThenable(result)) {
      result.then(undefined, (err: unknown) => this.log.error({ err, room: name }, 'fan-out adapter failed to unsubscribe'))
    }
  }
}

/** `to(room)`: immutable, so `except` and `volatile` derive new targets without touching shared ones. */
export class RoomTarget implements RoomEmitter {
  readonly #rooms: Rooms
  readonly #name: string
  readonly #emits: EmitChecker | null
  readonly #except: readonly RoomMember[] | null
  readonly #volatile: boolean

  constructor (rooms: Rooms, name: string, emits: EmitChecker | null, except: readonly RoomMember[] | null, volatile: boolean) {
    this.#rooms = rooms
    this.#name = name
    this.#emits = emits
    this.#except = except
    this.#volatile = volatile
  }

  emit (type: string, data: unknown): void {
    // A connection's target checks the route's declared emits; the app-level one cannot know a route.
    this.#emits?.checkEmit(type, data)
    this.#rooms.emit(this.#name, type, data, this.#except, this.#volatile)
  }

  except (...connections: unknown[]): RoomTarget {
    const except = [...(this.#except ?? []), ...connections as RoomMember[]]
    return new RoomTarget(this.#rooms, this.#name, this.#emits, except, this.#volatile)
  }

  get volatile (): RoomTarget {
    return new RoomTarget(this.#rooms, this.#name, this.#emits, this.#except, true)
  }
}
