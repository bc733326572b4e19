// Recovery (issue 12, PROTOCOL.md 1.1): a join's position, a join with
// `since` (replay, then the ack, then live, with no gap and no duplicate), a
// sync of a room already joined, a snapshot taken at the ack's seq, and the
// resume of a session. Every one of them holds the room's live messages for
// the member (a Catchup on `member.catchups`, which lib/rooms.ts checks on
// delivery) while the history is read, then sends, in one synchronous run:
// the replay, the reply, what was held after it. The pipeline asks; this file
// answers with the ack data (or throws, for the pipeline to turn into an error).
import type { FastifyBaseLogger } from 'fastify'
import { Catchup } from './catchup.js'
import { serializeSession } from './protocol.js'
import { isResumeToken, resumeKey } from './recovery-ids.js'
import { FRT_ERR_SNAPSHOT_TIMEOUT } from './errors.js'
import type { Room, RoomHistory, Rooms } from './rooms.js'
import type { SessionLink, SessionMember, Sessions } from './session.js'
import type { HistoryRead, RoomPosition } from '../types/history.js'
import type { SessionTaken } from '../types/session.js'

/** What recovery needs of a connection. */
export interface RecoveringMember extends SessionMember {
  /** Sends a frame now (a replay counts against the slow-consumer limits like any traffic). */
  send (message: string | Buffer): void
  recovered: boolean
  adopt (id: string): void
}

/** The data of a join ack (PROTOCOL.md 1.1). */
export interface JoinAck {
  room: string
  seq: number
  epoch: string
  recovered?: boolean
  snapshot?: unknown
}

interface RecoveryCounters {
  joinsRecovered: number
  joinsNotRecovered: number
  replayedMessages: number
  historyErrors: number
  sessionsResumed: number
  sessionsRefused: number
  sessionErrors: number
}

/** A route's snapshot loader and its timeout. */
export interface SnapshotLoader {
  load: (room: string, member: RecoveringMember) => unknown
  timeout: number
}

/** `since` as a client sends it: an integer seq >= 0 and an epoch of 8-22 base64url characters. */
const EPOCH = /^[\w-]{8,22}$/
export function readSince (value: unknown): RoomPosition | null | undefined {
  if (value === undefined) return null
  const { seq, epoch } = (value ?? {}) as { seq?: unknown, epoch?: unknown }
  if (typeof value !== 'object' || value === null || !Number.isSafeInteger(seq) || (seq as number) < 0 ||
    typeof epoch !== 'string' || !EPOCH.test(epoch)) return undefined
  return { seq: seq as number, epoch }
}

export class Recovery {
  readonly #rooms: Rooms
  readonly #sessions: Sessions | null
  readonly #counters: RecoveryCounters
  readonly #log: FastifyBaseLogger
  readonly #sessionResumed: ((connId: string) => void) | undefined

  constructor (rooms: Rooms, sessions: Sessions | null, counters: RecoveryCounters, log: FastifyBaseLogger) {
    this.#rooms = rooms
    this.#sessions = sessions
    this.#counters = counters
    this.#log = log
    this.#sessionResumed = rooms.adapter.sessionResumed?.bind(rooms.adapter)
  }

  /**
   * A join (or, `sync`, a room already joined) with an optional `since`, and the route's snapshot loader.
   * `reply` sends the ack: called in the same synchronous run as the replay and the held messages after it.
   */
  async join (member: RecoveringMember, name: string, since: RoomPosition | null, sync: boolean,
    snapshot: SnapshotLoader | undefined, reply: (ack: JoinAck) => void): Promise<void> {
    const catchup = this.#hold(member, name, since?.seq ?? 0)
    try {
      if (!sync) await this.#rooms.join(member, name)
      /* c8 ignore next 3: the socket closed while the adapter or the store answered (nothing left to send) */
      if (member.closed) return
      let read = await this.#read(name, since)
      if (member.closed) return
      let state: unknown
      if (snapshot !== undefined) {
        ;[read, state] = await this.#snapshot(member, name, snapshot)
        if (member.closed) return
        since = null
      }
      const ack: JoinAck = { room: name, seq: read.seq, epoch: read.epoch }
      if (snapshot !== undefined) ack.snapshot = state
      if (since === null) {
        reply(ack)
        this.#release(member, name, catchup, read.seq)
        return
      }
      const recovered = await this.#replay(member, name, catchup, since, read)
      reply({ ...ack, seq: recovered.seq, epoch: recovered.epoch, recovered: recovered.recovered })
      this.#release(member, name, catchup, recovered.seq)
    } catch (err) {
      if (!sync) this.#rooms.leave(member, name)
      throw err
    } finally {
      this.#unhold(member, name, catchup)
    }
  }

  /**
   * Opens a session on a connection: resumes the one `presented` names when it may (same user, unused, in
   * its window), else starts afresh. Sends the `session` message first, then the unicast messages kept while
   * away, then each restored room's missed messages; live messages of those rooms are held meanwhile.
   */
  async open (member: RecoveringMember, presented: unknown, keep: ((member: SessionMember) => unknown) | undefined): Promise<void> {
    const sessions = this.#sessions as Sessions
    let taken: SessionTaken = { found: false, reason: 'missing' }
    if (isResumeToken(presented)) {
      try {
        taken = await sessions.store.take(resumeKey(presented), member.userKey)
      } catch (err) {
        this.#counters.sessionErrors++
        this.#log.warn({ err }, 'session store failed; a fresh session instead')
      }
    }
    /* c8 ignore next: the socket closed while the store answered */
    if (member.closed) return
    if (!taken.found) {
      if (presented !== undefined) this.#counters.sessionsRefused++
      const link = sessions.attach(member, new Map(), keep)
      member.send(serializeSession({ token: link.token, window: sessions.limits.window, recovered: false }))
      return
    }
    const { state, unicast, replies } = taken
    member.adopt(state.connId)
    member.data = state.data
    member.recovered = true
    this.#counters.sessionsResumed++
    // Every room held before anything is sent, so the order on the wire is session, unicast, replays, live.
    const catchups = new Map<string, Catchup>()
    // A room saved while it was catching up has no position (not recovered); held from 0 meanwhile.
    /* c8 ignore next */
    for (const { room, position } of state.rooms) catchups.set(room, this.#hold(member, room, position?.seq ?? 0))
    const old = sessions.take(state.connId)
    if (old !== undefined) {
      // Resumed where it waited: the new socket takes the old one's place, nobody sees a leave or a join.
      this.#rooms.adopt(member, old)
    }
    const joins: Array<Promise<void>> = []
    for (const { room } of state.rooms) {
      if (!member.rooms.has(room)) joins.push(this.#rooms.join(member, room, true).catch(() => {}))
    }
    // The other instances drop their waiting copy of this connection (after ours is in the presence set).
    if (old === undefined) this.#sessionResumed?.(state.connId)
    await Promise.all(joins)
    const reads = await Promise.all(state.rooms.map(({ room, position }) => this.#read(room, position)))
    /* c8 ignore start: the socket closed while the store answered (a race the pipeline's close already handled) */
    if (member.closed) {
      for (const [room, catchup] of catchups) this.#unhold(member, room, catchup)
      return
    }
    /* c8 ignore stop */
    const link = sessions.attach(member, new Map(replies.map(({ id, frame }) => [id, frame])), keep)
    // Replays are computed before the session message lists each room's outcome; nothing is sent in between.
    const outcomes = await Promise.all(state.rooms.map(({ room, position }, i) =>
      this.#collect(room, catchups.get(room) as Catchup, position, reads[i])))
    /* c8 ignore start: as above */
    if (member.closed) {
      for (const [room, catchup] of catchups) this.#unhold(member, room, catchup)
      return
    }
    /* c8 ignore stop */
    member.send(serializeSession({
      token: link.token,
      window: sessions.limits.window,
      recovered: true,
      rooms: outcomes.map(({ room, seq, epoch, recovered }) => ({ room, seq, epoch, recovered }))
    }))
    for (const frame of unicast) member.send(frame)
    for (const outcome of outcomes) {
      for (const frame of outcome.frames) member.send(frame)
      this.#counters.replayedMessages += outcome.frames.length
      this.#release(member, outcome.room, catchups.get(outcome.room) as Catchup, outcome.seq)
      this.#unhold(member, outcome.room, catchups.get(outcome.room) as Catchup)
    }
    // Saved again with the positions delivered now.
    sessions.save(member)
  }

  /** Live messages of `name` for this member are held from now on. */
  #hold (member: RecoveringMember, name: string, since: number): Catchup {
    /* c8 ignore next: a snapshot route on a plugin without history holds up to the default bounds */
    const catchup = new Catchup(since, this.#rooms.history?.hold ?? UNBOUNDED_HOLD)
    member.catchups ??= new Map()
    member.catchups.set(name, catchup)
    return catchup
  }

  #unhold (member: RecoveringMember, name: string, catchup: Catchup): void {
    const catchups = member.catchups
    if (catchups?.get(name) !== catchup || catchup.floor >= 0) return
    catchups.delete(name)
    if (catchups.size === 0) member.catchups = null
  }

  /**
   * Sends what was held after `seq` (and every unnumbered message), then delivers live; while this instance's
   * live delivery of the room is behind `seq` (the history read ran ahead of the subscription), the live
   * copies up to it are dropped for this member (the catch-up stays on with `floor`).
   */
  #release (member: RecoveringMember, name: string, catchup: Catchup, seq: number): void {
    for (const frame of catchup.drainAfter(seq)) member.send(frame)
    const room = this.#rooms.get(name)
    // A Redis history read overtook this instance's subscription (test/recovery-backfill.test.ts plays it).
    if (room !== undefined && room.seq < seq && member.catchups?.get(name) === catchup) {
      catchup.floor = seq
      return
    }
    this.#unhold(member, name, catchup)
  }

  /** The room's position and, with `since`, what came after it: from history, or the room itself. */
  async #read (name: string, since: RoomPosition | null): Promise<HistoryRead> {
    const room = this.#rooms.get(name)
    const history = this.#rooms.history
    /* c8 ignore next: the room exists here by now (joined first); the pattern is the fallback */
    if (history !== null && (room?.history ?? history.rooms(name))) {
      try {
        const read = await history.store.since(name, since, history.replay)
        if (room !== undefined && history.byAdapter) room.epoch = read.epoch
        return read
      } catch (err) {
        this.#counters.historyErrors++
        this.#log.warn({ err, room: name }, 'history read failed; the join is not recovered')
      }
    }
    return localRead(room, since)
  }

  /** A join with `since`: the replay merged with what was held; sends the frames. */
  async #replay (member: RecoveringMember, name: string, catchup: Catchup, since: RoomPosition,
    read: HistoryRead): Promise<{ seq: number, epoch: string, recovered: boolean }> {
    const outcome = await this.#collect(name, catchup, since, read)
    /* c8 ignore next */
    if (member.closed) return outcome
    for (const frame of outcome.frames) member.send(frame)
    this.#counters.replayedMessages += outcome.frames.length
    return outcome
  }

  /** The frames to replay after `since`, merged with the held ones (read again over a gap); counted. */
  async #collect (name: string, catchup: Catchup, since: RoomPosition | null, read: HistoryRead):
  Promise<{ room: string, seq: number, epoch: string, recovered: boolean, frames: Buffer[] }> {
    if (since === null || !read.recovered) {
      this.#counters.joinsNotRecovered++
      return { room: name, seq: read.seq, epoch: read.epoch, recovered: false, frames: [] }
    }
    const frames: Buffer[] = []
    let step = catchup.merge(read.seq, read.frames)
    frames.push(...step.frames)
    /* c8 ignore start: only when live messages held ran ahead of the history read (a Redis subscription ahead
       of the read) with a hole between; the merge steps themselves are tested in test/catchup.test.ts */
    while (step.status === 'gap') {
      const again = await this.#read(name, { seq: step.seq, epoch: read.epoch })
      if (!again.recovered) {
        this.#counters.joinsNotRecovered++
        // What was merged so far went out in order; from here the client sees a gap.
        return { room: name, seq: step.seq, epoch: read.epoch, recovered: false, frames }
      }
      step = catchup.merge(again.seq, again.frames)
      frames.push(...step.frames)
    }
    const recovered = step.status === 'complete'
    if (recovered) this.#counters.joinsRecovered++
    else this.#counters.joinsNotRecovered++
    /* c8 ignore stop */
    return { room: name, seq: step.seq, epoch: read.epoch, recovered, frames }
  }

  /**
   * The route's snapshot loader, called at the room's seq N as delivered here: the state it captures when
   * called (synchronously, or a snapshot taken at the call) is the state at N, and the messages after N, held
   * meanwhile, follow the ack. Bounded by the route's timeout.
   */
  async #snapshot (member: RecoveringMember, name: string, snapshot: SnapshotLoader): Promise<[HistoryRead, unknown]> {
    const room = this.#rooms.get(name) as Room
    const at: HistoryRead = { recovered: true, seq: room.seq, epoch: room.epoch, frames: [] }
    return [at, await bounded(snapshot.load(name, member), snapshot.timeout, name)]
  }
}

const UNBOUNDED_HOLD = { maxCount: 10_000, maxBytes: 4 * 1024 * 1024 }

/** A room without history: its position here; `since` is recovered only when nothing was missed. */
function localRead (room: Room | undefined, since: RoomPosition | null): HistoryRead {
  /* c8 ignore next 2: the room exists here by now (joined first) */
  const seq = room?.seq ?? 0
  const epoch = room?.epoch ?? ''
  /* c8 ignore next: (untested branch: same epoch, another seq: messages missed in a room without history) */
  if (since !== null && (since.epoch !== epoch || since.seq !== seq)) return { recovered: false, seq, epoch, reason: 'trimmed' }
  return { recovered: true, seq, epoch, frames: [] }
}

async function bounded (value: unknown, timeout: number, room: string): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([value, new Promise((_resolve, reject) => {
      timer = setTimeout(() => reject(new FRT_ERR_SNAPSHOT_TIMEOUT(room, timeout)), timeout)
      timer.unref()
    })])
  } finally {
    clearTimeout(timer)
  }
}

export type { RoomHistory, SessionLink }
