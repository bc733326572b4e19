// The session store: where the server-side state of a connection waits for
// its client to come back (session recovery). The core owns the meaning (when
// to save, the window, what a resume restores); a store only keeps, bounds,
// expires and hands back one state per resume key, once.
import type { RoomPosition } from './history.js'

/** One room of a saved session. */
export interface SessionRoom {
  room: string
  /** The last position delivered to the connection, when known (a client's `since` on resume wins). */
  position: RoomPosition | null
}

/** The state saved for a session; JSON-safe throughout. */
export interface SessionState {
  /** The connection's id: a resumed connection keeps it. */
  connId: string
  /** The user the session belongs to (`auth.userId` as a string), null when anonymous. */
  userKey: string | null
  /** Every room the connection was in, joined by the client or by the server. */
  rooms: SessionRoom[]
  /** What the app chose to keep of `conn.data` (JSON); null for nothing. */
  data: unknown
}

/** A reply already sent in the session, kept so that a re-sent request gets it again. */
export interface SessionReply {
  /** The request's id. */
  id: string | number
  /** The serialized reply (ack or error), sent again as is. */
  frame: string
}

/** What {@link SessionStore.append} adds to a saved session. */
export interface SessionAppend {
  /** Serialized unicast messages sent while the connection was away; only the newest `maxUnicast` are kept. */
  unicast?: string[]
  /** Replies sent; only the newest `maxReplies` are kept. */
  replies?: SessionReply[]
  maxUnicast: number
  maxReplies: number
}

/** The outcome of one {@link SessionStore.take}. */
export type SessionTaken =
  | { found: true, state: SessionState, unicast: string[], replies: SessionReply[] }
  /**
   * 'missing': unknown, already taken (tokens are single use) or expired. 'user': it belongs to another user;
   * it is left in place, so a stolen token presented by someone else does not spend the owner's resume.
   */
  | { found: false, reason: 'missing' | 'user' }

/**
 * Keeps sessions for a window after their connection left: in memory (`MemorySessions`) or in Redis
 * (`RedisSessions`, so a client may resume on another instance). Keys are hashes of resume tokens,
 * never the tokens themselves.
 */
export interface SessionStore {
  /**
   * Writes the whole state under `key` (replacing any) and makes the session expire `ttl` ms from now; the
   * unicast and reply lists already saved are kept. Called when the connection joins or leaves a room, when
   * it leaves, and to move a session to a new key.
   */
  save (key: string, state: SessionState, ttl: number): void | Promise<void>
  /**
   * Adds to the bounded lists of a saved session and makes it expire `ttl` ms from now; with nothing to add,
   * only extends it (the core's refresh of live sessions). Returns false, adding nothing, when no session is saved under `key`.
   */
  append (key: string, items: SessionAppend, ttl: number): boolean | Promise<boolean>
  /**
   * Takes the session, atomically: the first take of a key by its own user gets it and removes it; any other
   * take finds nothing (single use), and a take by another user finds 'user' and removes nothing.
   */
  take (key: string, userKey: string | null): SessionTaken | Promise<SessionTaken>
  /** Release what the store opened (timers); never closes a client it was given. */
  close? (): void | Promise<void>
}
