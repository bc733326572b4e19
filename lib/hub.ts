// The registry of live connections on this instance, its counters, and the
// bounded shutdown: close every socket with 1001, wait for the handshakes up to
// a grace period, terminate whatever is left.
import type { FastifyBaseLogger } from 'fastify'
import type { WebSocket } from 'ws'
import { CloseCode } from './protocol.js'
import { Rooms, type RoomHistory } from './rooms.js'
import { Sessions } from './session.js'
import { Recovery } from './recovery.js'
import type { SessionStore } from '../types/session.js'
import { Backpressure, type WatchedConnection } from './backpressure.js'
import { Conflation } from './conflation.js'
import type { RealtimeStats } from '../types/fastify.js'
import type { RateLimitStore } from '../types/store.js'
import type { ResolvedOptions } from './options.js'

// An adapter without counters of its own (the in-memory one) never fails.
const NO_ADAPTER_STATS = Object.freeze({ adapterErrors: 0, adapterDropped: 0, adapterInvalid: 0 })

/** What the registry, the shutdown and the heartbeat need of a live connection. */
export interface LiveConnection extends WatchedConnection {
  readonly socket: WebSocket
  readonly log: FastifyBaseLogger
}

export class Hub {
  readonly connections = new Set<LiveConnection>()
  /** The rate-limit store for shared limits and `consume`; null when rate limits are off. */
  readonly rateLimitStore: RateLimitStore | null
  readonly counters = {
    rateLimited: 0,
    rateLimitErrors: 0,
    messagesIn: 0,
    messagesOut: 0,
    protocolErrors: 0,
    handlerErrors: 0,
    heartbeatTerminations: 0,
    slowConsumerCloses: 0,
    volatileDrops: 0,
    conflated: 0,
    joinsRecovered: 0,
    joinsNotRecovered: 0,
    replayedMessages: 0,
    backfills: 0,
    backfillGaps: 0,
    sessionsResumed: 0,
    sessionsRefused: 0,
    historyErrors: 0,
    sessionErrors: 0
  }

  /** Room membership and broadcast (lib/rooms.ts). */
  readonly rooms: Rooms
  /** The slow-consumer policy every send goes through (lib/backpressure.ts). */
  readonly backpressure: Backpressure
  /** Latest-by-key messages held for members that are behind (lib/conflation.ts). */
  readonly conflation: Conflation
  /** Sessions waiting and live (lib/session.ts); null when the plugin's `sessions` is off. */
  readonly sessions: Sessions | null
  /** Joins with positions, replays, snapshots and resumes (lib/recovery.ts). */
  readonly recovery: Recovery
  /** Set by a rolling restart (lib/drain.ts): new upgrades are refused. */
  draining = false
  #drained: (() => void) | null = null

  constructor (options: ResolvedOptions, log: FastifyBaseLogger, rateLimitStore: RateLimitStore | null,
    history: RoomHistory | null = null, sessionStore: SessionStore | null = null) {
    this.rateLimitStore = rateLimitStore
    this.backpressure = new Backpressure(options.slowConsumer, this.counters)
    this.conflation = new Conflation(this.backpressure, this.counters)
    this.rooms = new Rooms(options, log, this.backpressure, this.counters, history, this.conflation)
    this.sessions = options.sessions === false || sessionStore === null
      ? null
      : new Sessions(sessionStore, options.sessions, this.rooms, this.counters, log)
    this.recovery = new Recovery(this.rooms, this.sessions, this.counters, log)
  }

  add (conn: LiveConnection): void {
    this.connections.add(conn)
  }

  delete (conn: LiveConnection): void {
    if (this.connections.delete(conn) && this.connections.size === 0 && this.#drained !== null) {
      this.#drained()
    }
  }

  stats (): RealtimeStats {
    return {
      connections: this.connections.size,
      ...this.counters,
      rooms: this.rooms.size,
      members: this.rooms.members,
      detachedSessions: this.sessions?.detached.size ?? 0,
      ...this.rooms.adapter.stats?.() ?? NO_ADAPTER_STATS
    }
  }

  async shutdown (grace: number): Promise<void> {
    if (this.connections.size === 0) return
    for (const conn of this.connections) conn.close(CloseCode.GoingAway, 'Server shutting down')
    await this.#drain(grace)
    for (const conn of this.connections) conn.socket.terminate()
    // A terminated socket emits 'close' on a later tick; wait for it so that
    // onClose hooks have run when app.close() resolves.
    await this.#drain(grace)
  }

  /** Resolves once every connection has closed, or after `timeout` ms. */
  drained (timeout: number): Promise<void> {
    return this.#drain(timeout)
  }

  #drain (timeout: number): Promise<void> {
    if (this.connections.size === 0) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeout).unref()
      const self = this
      function done (): void {
        clearTimeout(timer)
        self.#drained = null
        resolve()
      }
      this.#drained = done
    })
  }
}
