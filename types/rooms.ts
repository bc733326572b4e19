import type { Static } from 'typebox'
import type { Connection, SchemaMap } from './route.js'

/** Sends to the members of one room. Each emit is serialized once, whatever the number of members. */
export interface RoomEmitter<Emits extends SchemaMap = SchemaMap> {
  /**
   * Sends `{"type","room","seq","data"}` to every member (on every instance, through the fan-out adapter).
   * `seq` grows by one per message to the room, starting at 1, so a client can detect a gap.
   */
  emit<K extends keyof Emits & string>(type: K, data: Static<Emits[K]>): void
  /** The same room without these connections (e.g. the sender). */
  except (...connections: Array<Connection<any>>): RoomEmitter<Emits>
  /** The same room, but members whose outgoing buffer is over `slowConsumer.softLimit` skip the message. */
  readonly volatile: RoomEmitter<Emits>
  /**
   * The same room, messages conflated by `key` (with the room and the type): a member that is behind gets only
   * the newest one per key, once it caught up; the others get every one. Latest messages carry no `seq`.
   */
  latest (key: string): RoomEmitter<Emits>
}

/** One member of a room, as presence lists it. */
export interface PresenceMember {
  /** The connection's id. */
  connId: string
  /** The authenticated user's id (the `auth.userId` option: `sub`, else `id`), as a string; null when anonymous. */
  userId: string | null
}

/** The members of a room. */
export interface Presence {
  count: number
  members: PresenceMember[]
}

/**
 * Decides whether a client may join a room with `room:join`. Return (or resolve) true to allow;
 * false refuses with a `forbidden` error; an error with a 4xx `statusCode` refuses with its code and message.
 */
export type JoinAuthorizer<Emits extends SchemaMap = SchemaMap> =
  (conn: Connection<Emits>, room: string) => boolean | Promise<boolean>
