// Fan-out over Redis pub/sub (sharded pub/sub on a Redis Cluster). Publishing,
// seq and presence go through the app's own ioredis client (never closed by
// us) as Lua scripts defined once (lib/adapters/redis-scripts.ts); receiving
// needs a connection in subscriber mode, so the adapter opens its own with
// `client.duplicate()` and closes it on app close. Every instance subscribes only to the rooms it has members in.
//
// Redis is a helper, never a dependency of local delivery: when it is down,
// stalled or too slow, broadcasts still reach this instance's members (with a
// local seq), are not piled up in the client's queue past `maxInFlight`, and
// the outage is logged once and counted.
import {
  instanceId, latestHeader, readControl, readRoomEnvelope, roomHeader, controlMessage, type RoomEnvelope
} from './envelope.js'
import { defineScripts, type Counts, type Publish, type PresenceList, type PresenceRefresh, type PresenceWrite } from './redis-scripts.js'
import { FRT_ERR_ADAPTER_INVALID, FRT_ERR_ADAPTER_REDIS } from '../errors.js'
import { RedisHistory } from '../history/redis.js'
import type { HistoryStore } from '../../types/history.js'
import type { FanoutAdapter, FanoutCore, FanoutReceive, FanoutStats, InstanceCountsRead } from '../../types/adapter.js'
import type { PresenceMember } from '../../types/rooms.js'

/**
 * What the adapter needs of the app's client: an ioredis `Redis` or `Cluster`, such as `fastify.redis`
 * from @fastify/redis. Typed by shape so that fastify-realtime depends on no ioredis version.
 */
export interface RedisAdapterClient {
  defineCommand (name: string, definition: { lua: string, numberOfKeys?: number }): void
  duplicate (...args: any[]): unknown
  readonly status: string
  readonly isCluster?: boolean
}

export interface RedisAdapterOptions {
  /** The app's client (e.g. `fastify.redis`): publishes, seq and presence. Never closed by the adapter. */
  client: RedisAdapterClient
  /** Put before every key and channel. Default `'frt:'`. */
  prefix?: string
  /** SSUBSCRIBE/SPUBLISH instead of SUBSCRIBE/PUBLISH. Default: true on an ioredis `Cluster`. */
  sharded?: boolean
  /** Milliseconds a publish may wait for Redis before local members get the message anyway. Default 2000. */
  publishTimeout?: number
  /** Commands waiting on `client` past which broadcasts are not published (counted as dropped). Default 1000. */
  maxInFlight?: number
  /** Keep cluster-wide presence in Redis. Default true. */
  presence?: boolean
  /** Milliseconds an instance's presence entries live unless refreshed (every third of it). Default 30000. */
  presenceTtl?: number
  /** Milliseconds a silent room's seq counter is kept; after that the room's seq starts again at 1. Default 86400000. */
  seqTtl?: number
  /**
   * Room history in Redis (a Stream per room, the plugin's `history` option uses it): the last `maxCount`
   * messages (1000) within `maxAge` ms (120000). A history room's messages are numbered, kept and published by
   * one script. Default: none.
   */
  history?: { maxCount?: number, maxAge?: number }
  /**
   * Carry the W3C `traceparent` of a broadcast sent from a traced handler to the other instances, so that their
   * deliveries link to the sender's trace (`fastify-realtime:deliver`). Default false: instances older than this
   * version drop such messages (counted in `adapterInvalid`), so turn it on once every instance runs this version
   * or later. Messages without a trace are the same bytes either way.
   */
  traceContext?: boolean
  /**
   * Milliseconds between two publishes of this instance's counts (connections, rooms, members, rates, errors,
   * close codes) for the cluster-wide view of `app.realtime.inspect.cluster()` and the admin page; each also
   * reads the other instances' latest. An instance's counts vanish 3 intervals after its last publish. `false`:
   * neither publish nor read. Default 5000.
   */
  countsInterval?: number | false
}

/** The part of an ioredis connection in subscriber mode that the adapter uses. */
interface Subscriber {
  readonly status: string
  on (event: string, listener: (...args: any[]) => void): unknown
  once (event: string, listener: (...args: any[]) => void): unknown
  subscribe (...channels: string[]): Promise<unknown>
  unsubscribe (...channels: string[]): Promise<unknown>
  ssubscribe (...channels: string[]): Promise<unknown>
  sunsubscribe (...channels: string[]): Promise<unknown>
  disconnect (): void
}

const MAX_SKIPPED_ROOMS = 10_000
// The most other instances' counts read at once: bounds the reply (each entry is at most a few KB).
const MAX_INSTANCES = 1000

const defaults = {
  prefix: 'frt:',
  publishTimeout: 2000,
  maxInFlight: 1000,
  presence: true,
  presenceTtl: 30_000,
  seqTtl: 86_400_000,
  traceContext: false,
  countsInterval: 5000
}

/** One publish on its way. */
interface Pending {
  room: string
  done: (seq: number) => void
  deadline: number
  /** The seq Redis answered; 0 until then. */
  seq: number
  settled: boolean
  failed: boolean
  /**
   * Settled when its own copy comes back through our subscription rather than on Redis's answer: the
   * subscription carries every instance's messages of the room in seq order, so ours take their place among them.
   */
  echo: boolean
}

function invalid (field: string, rule: string): never {
  throw new FRT_ERR_ADAPTER_INVALID(`RedisAdapter option ${field} must be ${rule}`)
}

function positive (options: RedisAdapterOptions, field: 'publishTimeout' | 'maxInFlight' | 'presenceTtl' | 'seqTtl'): number {
  const value = options[field] ?? defaults[field]
  if (!Number.isInteger(value) || value < 1) invalid(field, 'a positive integer')
  return value
}

const userValue = (member: PresenceMember): string => JSON.stringify(member.userId)

export class RedisAdapter implements FanoutAdapter {
  /** This instance's id, in every envelope it publishes; its own messages are dropped by it. */
  readonly id = instanceId()
  readonly client: RedisAdapterClient
  readonly options: Readonly<Required<Omit<RedisAdapterOptions, 'client' | 'history'>>>
  readonly #counters: Required<FanoutStats> = {
    adapterErrors: 0,
    adapterDropped: 0,
    adapterInvalid: 0,
    adapterPublishes: 0,
    adapterPublishSeconds: 0,
    adapterPublishFailures: 0,
    adapterResubscribes: 0
  }

  /** Whether the subscriber was ready once: a later 'ready' is a resubscription. */
  #wasReady = false
  readonly #origin = Buffer.from(this.id)
  readonly #publish: Publish
  readonly #presenceWrite: PresenceWrite
  readonly #presenceRefresh: PresenceRefresh
  readonly #presenceList: PresenceList
  readonly #counts: Counts
  readonly #countsKey: string
  #countsTimer: NodeJS.Timeout | null = null
  #countsBusy = false
  /** The other instances' counts as last read; null while counts are not shared. */
  #cluster: InstanceCountsRead | null = null
  readonly #control: string
  readonly #ttl: string
  readonly #seqTtl: string
  readonly #sharded: string
  /** Channel to room, for the rooms this instance is subscribed to. */
  readonly #channels = new Map<string, string>()
  /** Room to channel, the same subscriptions. */
  readonly #rooms = new Map<string, string>()
  #receive: FanoutReceive | null = null
  /** Rooms whose subscription Redis confirmed on the current connection: our publishes there come back. */
  readonly #confirmed = new Set<string>()
  /** Per room, our publishes waiting for their copy to come back, in the order sent. */
  readonly #echoes = new Map<string, Pending[]>()
  /** This instance's members by room: connId -> userId as stored. */
  readonly #members = new Map<string, Map<string, string>>()
  /** Per room, messages numbered locally because they could not be published: the next seq skips them. */
  readonly #skipped = new Map<string, number>()
  /** Rooms whose presence hash must be rewritten (a write failed). */
  readonly #dirty = new Set<string>()
  #core: FanoutCore | null = null
  #subscriber: Subscriber | null = null
  #refresh: NodeJS.Timeout | null = null
  #refreshing = false
  /** Commands sent on `client` and not answered yet. */
  #inFlight = 0
  /** Publishes waiting for their seq, oldest first: one timer serves them all. */
  #waiting: Pending[] = []
  #timer: NodeJS.Timeout | null = null
  #outage = false
  /** The last resubscription after a (re)connect. */
  #resubscribed: Promise<unknown> = Promise.resolve()
  #closed = false
  readonly #envelope: RoomEnvelope = { volatile: false, seq: 0, frame: Buffer.alloc(0), traceparent: undefined, latest: undefined }
  /** The rooms' history, when asked for (`history`): it numbers, keeps and publishes history rooms' messages. */
  readonly history: HistoryStore | undefined
  /** Publishes of this instance, for history message ids (a retried append is stored once). */
  #sent = 0

  constructor (options: RedisAdapterOptions) {
    if (options === null || typeof options !== 'object') invalid('options', 'an object with a client')
    const { client } = options
    if (client === null || typeof client !== 'object' || typeof client.defineCommand !== 'function' ||
      typeof client.duplicate !== 'function') {
      invalid('client', 'an ioredis Redis or Cluster client (e.g. fastify.redis)')
    }
    const prefix = options.prefix ?? defaults.prefix
    if (typeof prefix !== 'string') invalid('prefix', 'a string')
    const sharded = options.sharded ?? client.isCluster === true
    if (typeof sharded !== 'boolean') invalid('sharded', 'a boolean')
    const presence = options.presence ?? defaults.presence
    if (typeof presence !== 'boolean') invalid('presence', 'a boolean')
    const traceContext = options.traceContext ?? defaults.traceContext
    if (typeof traceContext !== 'boolean') invalid('traceContext', 'a boolean')
    const countsInterval = options.countsInterval ?? defaults.countsInterval
    if (countsInterval !== false && (!Number.isInteger(countsInterval) || countsInterval < 100)) {
      invalid('countsInterval', 'false or an integer of at least 100 (ms)')
    }
    this.client = client
    this.options = Object.freeze({
      prefix,
      sharded,
      presence,
      traceContext,
      countsInterval,
      publishTimeout: positive(options, 'publishTimeout'),
      maxInFlight: positive(options, 'maxInFlight'),
      presenceTtl: positive(options, 'presenceTtl'),
      seqTtl: positive(options, 'seqTtl')
    })
    this.#control = prefix + 'control'
    this.#countsKey = prefix + '{instances}'
    this.#ttl = String(this.options.presenceTtl)
    this.#seqTtl = String(this.options.seqTtl)
    this.#sharded = sharded ? '1' : '0'
    const history = options.history
    if (history !== undefined && (history === null || typeof history !== 'object')) invalid('history', 'an object { maxCount?, maxAge? }')
    this.history = history === undefined
      ? undefined
      : new RedisHistory({
        client,
        prefix,
        maxCount: history.maxCount,
        maxAge: history.maxAge,
        ttl: this.options.seqTtl,
        publish: { header: roomHeader(this.id, false), sharded }
      })
    const scripts = defineScripts(client)
    this.#publish = scripts.publish
    this.#presenceWrite = scripts.presenceWrite
    this.#presenceRefresh = scripts.presenceRefresh
    this.#presenceList = scripts.presenceList
    this.#counts = scripts.counts
  }

  /** The subscriber connection the adapter opened (null before `attach` and after `close`). */
  get subscriber (): unknown {
    return this.#subscriber
  }

  /**
   * Opens the subscriber connection and listens to the control channel. Waits for the connection up to
   * `publishTimeout`, so that an app that is ready receives; a Redis that is away does not hold the app back.
   */
  async attach (core: FanoutCore): Promise<void> {
    if (this.#core !== null) throw new FRT_ERR_ADAPTER_INVALID('a RedisAdapter serves one app: create one per app')
    this.#core = core
    const sharded = this.options.sharded
    // Our own connection, so our options: fail fast instead of queueing while
    // Redis is away (we resubscribe on 'ready' ourselves), and never retry a
    // command on reconnect.
    const subscriber = (this.client.isCluster === true
      ? this.client.duplicate([], { shardedSubscribers: sharded })
      : this.client.duplicate({ enableOfflineQueue: false, autoResubscribe: false, maxRetriesPerRequest: 0 })) as Subscriber
    this.#subscriber = subscriber
    subscriber.on('error', (err: Error) => this.#fail(err))
    subscriber.on('ready', () => this.#resubscribe())
    subscriber.on('close', () => this.#lost())
    subscriber.on(sharded ? 'smessageBuffer' : 'messageBuffer', (channel: Buffer, message: Buffer) => this.#message(channel, message))
    if (this.options.presence) {
      // unref() apart, as in lib/heartbeat.ts: the fake clocks of tests return nothing from it.
      this.#refresh = setInterval(() => { this.#refreshPresence() }, Math.max(1, Math.floor(this.options.presenceTtl / 3)))
      this.#refresh.unref()
    }
    await this.#bounded(new Promise<void>((resolve) => {
      subscriber.once('ready', resolve)
      subscriber.once('error', resolve)
    }))
    await (this.client.isCluster === true ? this.#listen(this.#control) : this.#resubscribed)
    const interval = this.options.countsInterval
    if (interval !== false && core.counts !== undefined) {
      this.#cluster = { at: 0, entries: [] }
      this.#countsTimer = setInterval(() => { this.#shareCounts() }, interval)
      this.#countsTimer.unref()
      this.#shareCounts()
    }
  }

  /** The other live instances' latest counts (`countsInterval`), as read with this instance's last publish of its own. */
  instanceCounts (): InstanceCountsRead | null {
    return this.#cluster
  }

  // One timer: publish this instance's counts and read the others' in one script call; never two at once.
  #shareCounts (): void {
    if (this.#countsBusy || !this.#usable()) return
    this.#countsBusy = true
    this.#inFlight++
    const ttl = String(3 * (this.options.countsInterval as number))
    const entry = ((this.#core as FanoutCore).counts as () => string)()
    this.#counts(this.#countsKey, this.id, entry, ttl, String(MAX_INSTANCES)).then((flat) => {
      const entries: Array<[string, string]> = []
      for (let i = 0; i + 1 < flat.length; i += 2) entries.push([flat[i], flat[i + 1]])
      this.#cluster = { at: Date.now(), entries }
      this.#ok()
    }, (err: Error) => this.#fail(err)).finally(() => {
      this.#inFlight--
      this.#countsBusy = false
    })
  }

  /** Resolves once Redis confirmed the subscription, or at once while Redis is away (it is made on reconnect). */
  async subscribe (room: string, receive: FanoutReceive): Promise<void> {
    this.#receive = receive
    const channel = this.options.prefix + '{' + room + '}'
    this.#channels.set(channel, room)
    this.#rooms.set(room, channel)
    if (await this.#listen(channel) && this.#rooms.get(room) === channel) this.#confirmed.add(room)
  }

  async unsubscribe (room: string): Promise<void> {
    const channel = this.#rooms.get(room)
    if (channel === undefined) return
    this.#rooms.delete(room)
    this.#channels.delete(channel)
    this.#release(room)
    const subscriber = this.#subscriber
    if (subscriber === null || !this.#ready(subscriber)) return
    const command = this.options.sharded ? subscriber.sunsubscribe(channel) : subscriber.unsubscribe(channel)
    await this.#bounded(command)
  }

  /** Publishes a frame without a seq: a latest message (with its key), or the plain contract's publish. */
  publish (room: string, frame: Buffer, volatile: boolean, latest?: string, traceparent?: string): void {
    const header = latest === undefined
      ? this.#header(volatile, traceparent) + '0:'
      : latestHeader(this.id, latest, this.options.traceContext ? traceparent : undefined)
    this.#send(room, header, frame.toString(), '', '0', ignore)
  }

  /**
   * `traceparent` is carried in the envelope with `traceContext` on; a history room's message is published by
   * the history script under its fixed header, so it crosses without one.
   */
  sequence (room: string, head: string, tail: string, volatile: boolean, done: (seq: number) => void, history = false,
    traceparent?: string): void {
    // rooms.ts asks for history only when this adapter keeps it (RoomHistory.byAdapter); without it, a plain seq.
    this.#send(room, this.#header(volatile, traceparent), head, tail, this.#seqTtl, done, history && this.history !== undefined)
  }

  /** The envelope header; with a trace only when asked for (`traceContext`): older instances drop those. */
  #header (volatile: boolean, traceparent: string | undefined): string {
    return roomHeader(this.id, volatile, this.options.traceContext ? traceparent : undefined)
  }

  /** Another instance resumed a session: the others drop their waiting copy of it. */
  sessionResumed (connId: string): void {
    if (!this.#usable()) return
    this.#inFlight++
    this.#publish(this.#control, this.#control, controlMessage(this.id, { type: 'sessionResumed', connId }), '', '', '0', this.#sharded, 0)
      .then(() => this.#ok(), (err: Error) => this.#fail(err))
      .finally(() => { this.#inFlight-- })
  }

  addMember (room: string, member: PresenceMember): void {
    if (!this.options.presence) return
    let members = this.#members.get(room)
    if (members === undefined) this.#members.set(room, members = new Map())
    const value = userValue(member)
    members.set(member.connId, value)
    this.#write(room, 'add', [member.connId, value])
  }

  removeMember (room: string, member: PresenceMember): void {
    const members = this.#members.get(room)
    if (members?.delete(member.connId) !== true) return
    if (members.size === 0) this.#members.delete(room)
    this.#write(room, 'remove', [member.connId])
  }

  /** Members on the other instances. While Redis is away: none (logged and counted), so the caller still gets this instance's. */
  async remoteMembers (room: string): Promise<PresenceMember[]> {
    if (!this.options.presence || !this.#usable()) return []
    this.#inFlight++
    const flat = await this.#bounded(this.#presenceList(this.#set(room), this.id).finally(() => { this.#inFlight-- }))
    if (flat === undefined) return []
    const members: PresenceMember[] = []
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const userId = parseUser(flat[i + 1])
      if (userId === undefined) this.#counters.adapterInvalid++
      else members.push({ connId: flat[i], userId })
    }
    return members
  }

  disconnectUser (userId: string, reason?: string): void {
    if (!this.#usable()) {
      this.#counters.adapterDropped++
      this.#warn(new FRT_ERR_ADAPTER_REDIS(`disconnectUser not sent: the client is ${this.client.status}`))
      return
    }
    this.#inFlight++
    this.#publish(this.#control, this.#control, controlMessage(this.id, { type: 'disconnectUser', userId, reason }), '', '', '0', this.#sharded, 0)
      .then(() => this.#ok(), (err: Error) => this.#fail(err))
      .finally(() => { this.#inFlight-- })
  }

  stats (): FanoutStats {
    return { ...this.#counters }
  }

  /** Removes this instance's presence entries (best effort), stops the timers, closes the subscriber. */
  async close (): Promise<void> {
    if (this.#closed) return
    const usable = this.#usable()
    this.#closed = true
    if (this.#refresh !== null) clearInterval(this.#refresh)
    if (this.#countsTimer !== null) clearInterval(this.#countsTimer)
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#expire(Infinity)
    const cleanup: Array<Promise<unknown>> = []
    if (usable) {
      for (const room of this.#members.keys()) cleanup.push(this.#bounded(this.#presenceWrite(this.#set(room), this.#hash(room), this.id, this.#ttl, 'replace')))
      // This instance leaves the cluster's counts at once (a crashed one: when its entry expires).
      if (this.#countsTimer !== null) cleanup.push(this.#bounded(this.#counts(this.#countsKey, this.id, '-', '0', '0')))
    }
    this.#members.clear()
    await Promise.all(cleanup)
    this.#subscriber?.disconnect()
    this.#subscriber = null
    this.#core = null
  }

  #set (room: string): string {
    return this.options.prefix + '{' + room + '}:p'
  }

  #hash (room: string): string {
    return this.options.prefix + '{' + room + '}:p:' + this.id
  }

  #ready (subscriber: Subscriber): boolean {
    return subscriber.status === 'ready'
  }

  /** Whether a command may go to the app's client now: it is connected and its backlog is bounded. */
  #usable (): boolean {
    return !this.#closed && this.client.status === 'ready' && this.#inFlight < this.options.maxInFlight
  }

  #send (room: string, header: string, head: string, tail: string, ttl: string, done: (seq: number) => void, history = false): void {
    if (!this.#usable()) {
      this.#counters.adapterDropped++
      this.#warn(new FRT_ERR_ADAPTER_REDIS(this.client.status === 'ready'
        ? `${this.#inFlight} commands in flight: not publishing until Redis answers`
        : `the client is ${this.client.status}`))
      if (ttl !== '0') this.#skip(room, 1)
      done(0)
      return
    }
    const prefix = this.options.prefix + '{' + room + '}'
    const skipped = ttl === '0' ? 0 : this.#skipped.get(room) ?? 0
    if (skipped !== 0) this.#skipped.delete(room)
    const echo = ttl !== '0' && this.#confirmed.has(room) && this.#ready(this.#subscriber as Subscriber)
    const pending: Pending = { room, done, deadline: Date.now() + this.options.publishTimeout, seq: 0, settled: false, failed: false, echo }
    if (echo) {
      const echoes = this.#echoes.get(room)
      if (echoes === undefined) this.#echoes.set(room, [pending])
      else echoes.push(pending)
    }
    this.#waiting.push(pending)
    if (this.#timer === null) this.#arm(this.options.publishTimeout)
    this.#inFlight++
    const began = performance.now()
    const publish = history
      ? this.#append(room, head, tail, skipped)
      : this.#publish(prefix + ':seq', prefix, header, head, tail, ttl, this.#sharded, skipped)
    publish.then((seq) => {
      this.#inFlight--
      this.#counters.adapterPublishes++
      this.#counters.adapterPublishSeconds += (performance.now() - began) / 1000
      this.#ok()
      pending.seq = seq
      if (!pending.echo) this.#settle(pending, seq)
    }, (err: Error) => {
      this.#inFlight--
      this.#counters.adapterPublishFailures++
      this.#fail(err)
      pending.failed = true
      if (ttl !== '0') this.#skip(room, skipped + 1)
      this.#settle(pending, 0)
    })
  }

  /**
   * A history room's message: numbered, kept in the room's stream and published by one script, under an id, so
   * that a retry after a lost answer (a reconnect) stores and publishes it once: the retry answers the first seq.
   */
  #append (room: string, head: string, tail: string, skipped: number): Promise<number> {
    const history = this.history as HistoryStore
    const id = this.id + ':' + (++this.#sent)
    const append = async (): Promise<number> => (await history.append(room, head, tail, { id, skipped })).seq
    // A failure while the client stays usable (an error reply, an answer lost on the way; ioredis itself resends
    // what a dropped connection left unanswered) may come after Redis ran the script: once more, under the same id.
    return append().catch(async (err: Error) => {
      if (!this.#usable()) throw err
      return await append()
    })
  }

  #skip (room: string, count: number): void {
    const skipped = this.#skipped.get(room)
    // Bounded: past this many rooms an outage's gaps go unmarked on the rooms not tracked yet.
    if (skipped !== undefined || this.#skipped.size < MAX_SKIPPED_ROOMS) this.#skipped.set(room, (skipped ?? 0) + count)
  }

  #settle (pending: Pending, seq: number): void {
    if (pending.settled) return
    pending.settled = true
    pending.done(seq)
  }

  /** Our own message with `seq` came back for `room`: its publish takes its place in the room's order. */
  #echo (room: string, seq: number): void {
    const echoes = this.#echoes.get(room)
    if (echoes === undefined) return
    while (echoes.length > 0) {
      const head = echoes[0]
      // Failed, or answered with a lower seq whose copy was lost: not this one. (Copies go missing or arrive
      // unexpected without the connection closing when a cluster shard's subscriber reconnects under us; on one
      // Redis, 'close' releases every wait first: #lost.)
      if (head.failed || (head.seq !== 0 && head.seq < seq)) {
        echoes.shift()
        this.#settle(head, head.seq)
        continue
      }
      // A copy of a publish no longer waited for.
      if (head.seq > seq) return
      echoes.shift()
      this.#settle(head, seq)
      break
    }
    if (echoes.length === 0) this.#echoes.delete(room)
  }

  /** No copy will come back for `room` (unsubscribed, or the subscription was lost): settle on the answers. */
  #release (room: string): void {
    this.#confirmed.delete(room)
    const echoes = this.#echoes.get(room)
    if (echoes === undefined) return
    this.#echoes.delete(room)
    for (const pending of echoes) {
      pending.echo = false
      if (pending.seq !== 0 || pending.failed) this.#settle(pending, pending.seq)
    }
  }

  #arm (delay: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.#expire(Date.now())
    }, delay)
    this.#timer.unref()
  }

  // Publishes still unsettled at their deadline settle with what is known (the
  // seq if Redis answered, else 0: the core numbers it locally). One timer for all.
  #expire (now: number): void {
    const waiting = this.#waiting
    let expired = 0
    let done = 0
    for (; done < waiting.length; done++) {
      const pending = waiting[done]
      if (!pending.settled && pending.deadline > now) break
      if (!pending.settled) {
        expired++
        this.#settle(pending, pending.seq)
      }
    }
    // Once per timeout, not per message: a copy is cheap.
    this.#waiting = waiting.slice(done)
    if (this.#waiting.length > 0 && !this.#closed) this.#arm(Math.max(1, this.#waiting[0].deadline - now))
    if (expired > 0 && now !== Infinity) {
      this.#counters.adapterErrors += expired - 1
      this.#fail(new FRT_ERR_ADAPTER_REDIS(`${expired} publish(es) not settled within ${this.options.publishTimeout} ms`))
    }
  }

  /** Subscribes to one channel when the subscriber is ready (otherwise the next 'ready' does); true once confirmed. */
  async #listen (channel: string): Promise<boolean> {
    const subscriber = this.#subscriber
    if (subscriber === null || (this.client.isCluster !== true && !this.#ready(subscriber))) return false
    return await this.#bounded(this.options.sharded ? subscriber.ssubscribe(channel) : subscriber.subscribe(channel)) !== undefined
  }

  // A fresh connection (first connect or reconnect) has no subscriptions: make
  // them all again. On a cluster, ioredis resubscribes its shard connections itself.
  // The outage ends when a publish goes through again, not here.
  #resubscribe (): void {
    const subscriber = this.#subscriber as Subscriber
    if (this.client.isCluster === true) return
    const again = this.#wasReady
    if (again) this.#counters.adapterResubscribes++
    this.#wasReady = true
    const channels = [this.#control, ...this.#channels.keys()]
    const rooms = [...this.#rooms.keys()]
    this.#resubscribed = (this.options.sharded
      ? Promise.all(channels.map((channel) => this.#bounded(subscriber.ssubscribe(channel))))
      : this.#bounded(subscriber.subscribe(...channels))).then((result) => {
      const ok = Array.isArray(result) ? !result.includes(undefined) : result !== undefined
      if (!ok) return
      const kept = rooms.filter((room) => this.#rooms.has(room))
      for (const room of kept) this.#confirmed.add(room)
      // What was published while the connection was down never comes: the core reads it from history now.
      if (again) this.#core?.resubscribed?.(kept)
    })
  }

  // The subscription is gone with the connection: our publishes will not come back.
  #lost (): void {
    for (const room of [...this.#confirmed, ...this.#echoes.keys()]) this.#release(room)
  }

  #message (channel: Buffer, message: Buffer): void {
    const name = channel.toString()
    const room = this.#channels.get(name)
    if (room !== undefined) {
      const envelope = this.#envelope
      const result = readRoomEnvelope(message, this.#origin, envelope)
      if (result === 'invalid') {
        this.#counters.adapterInvalid++
      } else if (result === 'own') {
        // Only a numbered copy places one of our publishes: an unnumbered one (latest, volatile on a history
        // room) is no answer to a publish still waiting for its seq.
        if (envelope.seq !== 0) this.#echo(room, envelope.seq)
      } else {
        (this.#receive as FanoutReceive)(room, envelope.frame, envelope.volatile, envelope.seq === 0 ? undefined : envelope.seq,
          envelope.latest, envelope.traceparent)
      }
      return
    }
    if (name !== this.#control) return
    const { valid, command } = readControl(message, this.#origin)
    const { type, userId, reason, connId } = (command ?? {}) as { type?: unknown, userId?: unknown, reason?: unknown, connId?: unknown }
    if (valid && type === 'sessionResumed' && typeof connId === 'string') {
      this.#core?.sessionResumed?.(connId)
      return
    }
    if (!valid || (command !== null && (type !== 'disconnectUser' || typeof userId !== 'string' ||
      (reason !== undefined && typeof reason !== 'string')))) {
      this.#counters.adapterInvalid++
      return
    }
    if (command !== null) this.#core?.disconnectUser(userId as string, reason as string | undefined)
  }

  #write (room: string, mode: 'add' | 'remove', pairs: string[]): void {
    if (!this.#usable()) {
      this.#dirty.add(room)
      return
    }
    this.#inFlight++
    this.#presenceWrite(this.#set(room), this.#hash(room), this.id, this.#ttl, mode, ...pairs)
      .then(() => this.#ok(), (err: Error) => {
        this.#dirty.add(room)
        this.#fail(err)
      })
      .finally(() => { this.#inFlight-- })
  }

  // One timer for every room: extend this instance's entries; rewrite those that
  // a failed write or a Redis restart left wrong.
  #refreshPresence (): void {
    if (this.#refreshing || !this.#usable()) return
    this.#refreshing = true
    const rooms = new Set([...this.#members.keys(), ...this.#dirty])
    const work: Array<Promise<unknown>> = []
    for (const room of rooms) {
      const rewrite = this.#dirty.delete(room)
      const refresh = rewrite ? Promise.resolve(0) : this.#presenceRefresh(this.#set(room), this.#hash(room), this.id, this.#ttl)
      work.push(refresh.then((alive) => {
        if (alive === 1) return
        const pairs: string[] = []
        for (const [connId, value] of this.#members.get(room) ?? []) pairs.push(connId, value)
        return this.#presenceWrite(this.#set(room), this.#hash(room), this.id, this.#ttl, 'replace', ...pairs)
      }).catch((err: Error) => {
        this.#dirty.add(room)
        this.#fail(err)
      }))
    }
    Promise.all(work).finally(() => { this.#refreshing = false })
  }

  /** Waits for a command up to `publishTimeout`; a failure or timeout is counted and resolves undefined. */
  #bounded<T> (command: Promise<T>): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => {
        this.#fail(new FRT_ERR_ADAPTER_REDIS(`no answer within ${this.options.publishTimeout} ms`))
        resolve(undefined)
      }, this.options.publishTimeout)
      timer.unref()
    })
    const done = command.then((value) => value, (err: Error) => {
      this.#fail(err)
      return undefined
    })
    return Promise.race([done, timeout]).finally(() => clearTimeout(timer))
  }

  // Every failure is counted; logged once per outage, not per message.
  #fail (err: Error): void {
    this.#counters.adapterErrors++
    this.#warn(err)
  }

  #warn (err: Error): void {
    if (this.#outage || this.#closed) return
    this.#outage = true
    this.#core?.log.warn({ err }, 'Redis fan-out unavailable: broadcasts reach this instance only until it is back')
  }

  #ok (): void {
    if (!this.#outage) return
    this.#outage = false
    this.#core?.log.info('Redis fan-out is back')
  }
}

function parseUser (value: string): string | null | undefined {
  try {
    const userId = JSON.parse(value) as unknown
    return userId === null || typeof userId === 'string' ? userId : undefined
  } catch {
    return undefined
  }
}

function ignore (): void {}
