// The sessions of this instance (issue 12): a connection on a route with
// sessions has a `SessionLink` (its resume key, its replies for request
// de-duplication); when its socket drops without a 1000 close it stays in its
// rooms as a detached member (presence does not flap, deliveries skip it: its
// socket is closed), its unicast messages go to the store, and one deadline
// heap ends it when the window passes. What is saved is a snapshot of the
// connection (rooms with positions, kept data), written on every join and
// leave, at detach, and kept alive by one refresh timer, so a session survives
// its instance being killed outright. The store only keeps bytes.
import type { FastifyBaseLogger } from 'fastify'
import { Deadlines } from './deadlines.js'
import { isThenable } from './verdict.js'
import { newResumeToken, resumeKey } from './recovery-ids.js'
import type { RoomMember, Rooms } from './rooms.js'
import type { SessionReply, SessionState, SessionStore } from '../types/session.js'

/** What sessions need of a connection. */
export interface SessionMember extends RoomMember {
  session: SessionLink | null
  data: unknown
  readonly userKey: string | null
  readonly log: FastifyBaseLogger
}

export interface SessionLimits {
  readonly window: number
  readonly maxUnicast: number
  readonly maxReplies: number
}

interface SessionCounters { sessionErrors: number }

/** One connection's session: written by lib/session.ts and lib/recovery.ts only. */
export class SessionLink {
  /** The key the session is saved under (the hash of the token the client holds). */
  readonly key: string
  /** The token sent to the client in its `session` message. */
  readonly token: string
  /** The socket dropped; the session waits for its client until `generation`'s deadline. */
  detached = false
  /** Over (a 1000 close, the window passed, resumed elsewhere): nothing is saved under its key any more. */
  ended = false
  generation = 0
  /** Replies sent, by request id, oldest first (bounded): a re-sent request gets its first reply. */
  readonly replies: Map<string | number, string>
  /** The route's `keep`: what of the connection's data is saved. */
  readonly keep: (member: SessionMember) => unknown
  readonly #sessions: Sessions
  readonly #member: SessionMember
  #saving = false
  #newReplies: SessionReply[] = []

  constructor (sessions: Sessions, member: SessionMember, replies: Map<string | number, string>,
    keep: ((member: SessionMember) => unknown) | undefined) {
    this.#sessions = sessions
    this.keep = keep ?? none
    this.#member = member
    this.token = newResumeToken()
    this.key = resumeKey(this.token)
    this.replies = replies
  }

  /** The member's rooms changed: save once this tick is over (a burst of joins is one write). */
  readonly changed = (): void => {
    if (this.#saving) return
    this.#saving = true
    queueMicrotask(() => {
      this.#saving = false
      this.#sessions.save(this.#member)
    })
  }

  /** A reply with an id was sent (or would have been, had the socket not dropped). */
  reply (id: string | number, frame: string): void {
    const limit = this.#sessions.limits.maxReplies
    if (limit === 0) return
    this.replies.delete(id)
    this.replies.set(id, frame)
    if (this.replies.size > limit) this.replies.delete(this.replies.keys().next().value as string | number)
    // Batched per tick: one store write for the replies of a burst.
    if (this.#newReplies.push({ id, frame }) === 1) {
      queueMicrotask(() => {
        const replies = this.#newReplies
        this.#newReplies = []
        // A handler may have changed what `keep` keeps: saved with the replies of the tick.
        this.#sessions.save(this.#member)
        this.#sessions.append(this.key, { replies })
      })
    }
  }

  /**
   * The server is closing the socket: what it delivered so far is what the client has (later room messages
   * are not written to a closing socket), so the positions are taken now, not when the close completes.
   */
  freeze (): void {
    this.frozen ??= this.#sessions.snapshotOf(this.#member)
  }

  /** The state taken by `freeze`, saved at detach instead of the positions then. */
  frozen: SessionState | null = null

  /** A unicast message while the socket is away: kept for the client's return (bounded). */
  unicast (frame: string): void {
    this.#sessions.append(this.key, { unicast: [frame] })
  }
}

export class Sessions {
  readonly store: SessionStore
  readonly limits: SessionLimits
  readonly #rooms: Rooms
  readonly #counters: SessionCounters
  readonly #log: FastifyBaseLogger
  /** Connections with a session and an open socket: their sessions are kept alive. */
  readonly live = new Set<SessionMember>()
  /** Detached members by connection id, until their client returns or the window passes. */
  readonly detached = new Map<string, SessionMember>()
  readonly #deadlines: Deadlines<SessionMember>
  #timer: NodeJS.Timeout | null = null

  constructor (store: SessionStore, limits: SessionLimits, rooms: Rooms, counters: SessionCounters, log: FastifyBaseLogger) {
    this.store = store
    this.limits = limits
    this.#rooms = rooms
    this.#counters = counters
    this.#log = log
    this.#deadlines = new Deadlines((member, generation) => this.#expire(member, generation))
  }

  /** Starts the one timer that keeps every live session from expiring in the store (a third of the window). */
  start (): void {
    /* c8 ignore next: onReady runs once; a guard against a second start */
    if (this.#timer !== null) return
    this.#timer = setInterval(() => this.#refresh(), Math.max(1, Math.floor(this.limits.window / 3)))
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#deadlines.clear()
  }

  /** Gives the connection a fresh session (saved at once: a drop before anything else is resumable). */
  attach (member: SessionMember, replies: Map<string | number, string>, keep: ((member: SessionMember) => unknown) | undefined): SessionLink {
    const link = new SessionLink(this, member, replies, keep)
    member.session = link
    this.live.add(member)
    this.save(member)
    return link
  }

  /** Writes the member's snapshot under its key, extending it to a whole window. */
  save (member: SessionMember): void {
    const link = member.session
    if (link === null || link.ended) return
    this.#settle(this.store.save(link.key, link.frozen ?? this.snapshotOf(member), this.limits.window))
  }

  append (key: string, items: { unicast?: string[], replies?: SessionReply[] }): void {
    const { maxUnicast, maxReplies, window } = this.limits
    this.#settle(this.store.append(key, { ...items, maxUnicast, maxReplies }, window))
  }

  /** The socket of a member with a session dropped (not a 1000 close): it stays in its rooms, detached, for the window. */
  detach (member: SessionMember): boolean {
    const link = member.session as SessionLink
    this.live.delete(member)
    link.detached = true
    this.detached.set(member.id, member)
    this.save(member)
    this.#deadlines.add(Date.now() + this.limits.window, member, ++link.generation)
    return true
  }

  /** The session is over: taken out of the store (so its token resumes nothing), never saved again. */
  end (member: SessionMember): void {
    const link = member.session as SessionLink
    this.live.delete(member)
    /* c8 ignore next: a session taken by a resume, then its old socket's 1000 close */
    if (link.ended) return
    link.ended = true
    this.#settle(this.store.take(link.key, member.userKey))
  }

  /** The detached member of `connId`, taken off the waiting list (its client came back here). */
  take (connId: string): SessionMember | undefined {
    const member = this.detached.get(connId)
    if (member === undefined) return undefined
    this.detached.delete(connId)
    const link = member.session as SessionLink
    link.generation++
    // Its token was taken; the resumed connection saves under its own.
    link.ended = true
    return member
  }

  /** Another instance resumed `connId`: the copy here leaves its rooms without a presence event. */
  resumedElsewhere (connId: string): void {
    const member = this.take(connId)
    if (member !== undefined) this.#rooms.leaveAll(member, true)
  }

  /** The session's saved state: the rooms with the position delivered so far, and what the route keeps. */
  snapshotOf (member: SessionMember): SessionState {
    const rooms: SessionState['rooms'] = []
    for (const name of member.rooms) {
      const room = this.#rooms.get(name)
      // A room still catching up has not delivered up to its seq: no position (a resume replays nothing, says so).
      const position = room === undefined || member.catchups?.has(name) === true ? null : { seq: room.seq, epoch: room.epoch }
      rooms.push({ room: name, position })
    }
    return { connId: member.id, userKey: member.userKey, rooms, data: (member.session as SessionLink).keep(member) ?? null }
  }

  #expire (member: SessionMember, generation: number): void {
    const link = member.session as SessionLink
    if (link.generation !== generation || this.detached.get(member.id) !== member) return
    this.detached.delete(member.id)
    this.end(member)
    // The window passed: now the others see it leave.
    this.#rooms.leaveAll(member)
  }

  #refresh (): void {
    // Detached sessions are not extended: they end with their window.
    for (const member of this.live) this.append((member.session as SessionLink).key, {})
  }

  #settle (result: unknown): void {
    if (isThenable(result)) {
      result.then(undefined, (err: unknown) => {
        this.#counters.sessionErrors++
        this.#log.warn({ err }, 'session store failed')
      })
    }
  }
}

function none (): null {
  return null
}
