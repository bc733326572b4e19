// fastify-realtime/client/shared: one connection for all the tabs of an origin.
// One tab leads: it holds a Web Lock (`navigator.locks`), so exactly one tab at a
// time owns the socket, and the lock passes to a waiting tab when the leader's
// tab closes or crashes. Tabs talk to the leader over a BroadcastChannel: the
// leader joins the union of the tabs' rooms, answers each tab's requests by
// (tab, id), and relays what the server sends; a tab only sees the rooms it
// joined. Its own entry, so the single-tab bundle stays small.
import { Events, RealtimeClient, whenOpen, type ClientOptions } from './client.js'
import { ClientErrorCode, RealtimeError } from './errors.js'
import type {
  AckOf, ClientEvents, ConnectionState, EmitData, InboundData, MessageMeta, RequestOptions, SendOptions
} from './types.js'

export interface SharedClientOptions extends ClientOptions {
  /** Tabs of one origin with the same name share a connection. Default: the URL. */
  name?: string
}

/** The messages on the channel; `k` is the kind. */
type Wire =
  /** A tab took the lead (after the previous leader's loss): tabs re-send their rooms and listened types. */
  | { k: 'leader', state: ConnectionState }
  /** The leader answers a sync: it is there, and this is its state. */
  | { k: 'here', state: ConnectionState }
  | { k: 'state', state: ConnectionState }
  | { k: 'event', name: 'open' | 'close' | 'gap' | 'error', arg: any }
  | { k: 'msg', type: string, data: unknown, meta: MessageMeta, all: boolean }
  | { k: 'reply', tab: string, id: number, value?: unknown, error?: { code: string, message: string, details?: unknown, retryAfter?: number } }
  | { k: 'joined', tab: string, room: string, error?: { code: string, message: string } }
  | { k: 'sync', tab: string, rooms: string[], types: string[] }
  | { k: 'req', tab: string, id: number, type: string, data: unknown, timeout?: number, traceparent?: string }
  | { k: 'send', type: string, data: unknown, volatile?: boolean, traceparent?: string }
  | { k: 'join' | 'leave', tab: string, room: string }
  | { k: 'bye', tab: string }

interface Locks {
  request (name: string, options: { signal: AbortSignal }, callback: () => Promise<void>): Promise<void>
}

// The client rejects only with RealtimeErrors; their fields cross the channel (a class instance cannot).
function wireError (err: RealtimeError): { code: string, message: string, details?: unknown, retryAfter?: number } {
  return { code: err.code, message: err.message, details: err.details, retryAfter: err.retryAfter }
}

/** The leading tab's side: the one real client, and which tab is in which room. */
class Leader {
  readonly client: RealtimeClient<any>
  /** Room to the tabs in it; the client is joined to every room listed. */
  readonly #members = new Map<string, Set<string>>()
  readonly #joins = new Map<string, Promise<void>>()
  readonly #types = new Set<string>()
  readonly #out: (msg: Wire) => void

  constructor (url: string, options: ClientOptions, out: (msg: Wire) => void) {
    this.#out = out
    this.client = new RealtimeClient(url, options)
    this.client.events.on('state', (state) => out({ k: 'state', state }))
    for (const name of ['open', 'close', 'gap'] as const) {
      this.client.events.on(name, (arg: unknown) => out({ k: 'event', name, arg }))
    }
    this.client.events.on('error', (err) => out({ k: 'event', name: 'error', arg: wireError(err) }))
  }

  handle (msg: Wire): void {
    const client = this.client
    switch (msg.k) {
      case 'sync':
        for (const type of msg.types) this.#listen(type)
        for (const room of msg.rooms) this.#join(msg.tab, room).catch(() => {})
        this.#out({ k: 'here', state: client.state })
        break
      case 'req':
        client.request(msg.type, msg.data, { timeout: msg.timeout, traceparent: msg.traceparent }).then(
          (value) => this.#out({ k: 'reply', tab: msg.tab, id: msg.id, value }),
          (err) => this.#out({ k: 'reply', tab: msg.tab, id: msg.id, error: wireError(err) }))
        break
      case 'send':
        client.send(msg.type, msg.data, { volatile: msg.volatile, traceparent: msg.traceparent })
        break
      case 'join':
        this.#join(msg.tab, msg.room).then(
          () => this.#out({ k: 'joined', tab: msg.tab, room: msg.room }),
          (err) => this.#out({ k: 'joined', tab: msg.tab, room: msg.room, error: wireError(err) }))
        break
      case 'leave':
        this.#leave(msg.tab, msg.room)
        break
      case 'bye':
        for (const room of [...this.#members.keys()]) this.#leave(msg.tab, room)
        break
    }
  }

  /** Relays a server message type, once, whoever asked first. */
  #listen (type: string): void {
    if (this.#types.has(type)) return
    this.#types.add(type)
    this.client.on(type, (data, meta) => {
      // A room no tab joined was joined by the server (a handler's conn.join): every tab hears it.
      this.#out({ k: 'msg', type, data, meta, all: meta.room === undefined || !this.#members.has(meta.room) })
    })
  }

  #join (tab: string, room: string): Promise<void> {
    let tabs = this.#members.get(room)
    if (tabs === undefined) this.#members.set(room, tabs = new Set())
    tabs.add(tab)
    let joined = this.#joins.get(room)
    if (joined === undefined) {
      joined = this.client.join(room)
      this.#joins.set(room, joined)
      joined.catch(() => {
        // Refused: no tab is in it.
        this.#joins.delete(room)
        this.#members.delete(room)
      })
    }
    return joined
  }

  #leave (tab: string, room: string): void {
    const tabs = this.#members.get(room)
    if (tabs === undefined || !tabs.delete(tab) || tabs.size > 0) return
    this.#members.delete(room)
    this.#joins.delete(room)
    this.client.leave(room).catch(() => {})
  }
}

interface TabRequest {
  resolve: (value: any) => void
  reject: (err: RealtimeError) => void
  msg: Wire & { k: 'req' }
  resend: boolean
}

/** A tab's client when tabs share one connection; the API of `RealtimeClient`, without `position`. */
export class SharedClient<R = unknown> {
  /** The client's events, as the leading tab's client sees them: `state`, `open`, `close`, `gap`, `error`. */
  readonly events = new Events<ClientEvents>()
  readonly url: string
  /** This tab's id on the channel. */
  readonly tab = Math.random().toString(36).slice(2) + Date.now().toString(36)
  readonly #options: ClientOptions
  readonly #channel: BroadcastChannel | null
  readonly #abort = new AbortController()
  #leader: Leader | null = null
  #leaderKnown = false
  #state: ConnectionState = 'connecting'
  #everOpen = false
  #nextId = 0
  /** Posted before any leader answered: sent on its first word. */
  readonly #queue: Wire[] = []
  readonly #pending = new Map<number, TabRequest>()
  /** Rooms this tab joined, with `join()` callers waiting for the leader's word. */
  readonly #rooms = new Map<string, Array<{ resolve: () => void, reject: (err: RealtimeError) => void }>>()
  readonly #listeners = new Map<string, Set<(data: any, meta: MessageMeta) => void>>()
  readonly #onHide = (): void => this.close()

  constructor (url: string, options: SharedClientOptions = {}) {
    this.url = url
    this.#options = options
    const name = `fastify-realtime:${options.name ?? url}`
    const locks = (globalThis.navigator as { locks?: Locks } | undefined)?.locks
    if (locks === undefined || typeof BroadcastChannel !== 'function') {
      // Without Web Locks no tab can be sure it alone leads: each tab keeps its own connection.
      this.#channel = null
      this.#lead()
      return
    }
    this.#channel = new BroadcastChannel(name)
    this.#channel.onmessage = (event: MessageEvent<Wire>) => this.#receive(event.data)
    locks.request(name, { signal: this.#abort.signal }, () => new Promise<void>((resolve) => {
      // Held until this tab closes: the browser releases it when the tab goes away in any way.
      this.#abort.signal.addEventListener('abort', () => resolve(), { once: true })
      this.#lead()
    })).catch(() => {}) // aborted by close() while waiting
    this.#sync()
    globalThis.addEventListener?.('pagehide', this.#onHide)
  }

  /** True while this tab holds the connection. */
  get leader (): boolean {
    return this.#leader !== null
  }

  get state (): ConnectionState {
    return this.#state
  }

  /** Resolves when open; rejects if this tab's client closes first. */
  ready (): Promise<void> {
    return whenOpen(this.#state, this.events)
  }

  send<K extends keyof InboundData<R> & string> (type: K, data: InboundData<R>[K], options: SendOptions = {}): boolean {
    if (this.#state === 'closed' || (options.volatile === true && this.#state !== 'open')) return false
    this.#toLeader({ k: 'send', type, data, volatile: options.volatile, traceparent: options.traceparent })
    return true
  }

  request<K extends keyof InboundData<R> & string> (type: K, data: InboundData<R>[K], options: RequestOptions = {}):
  Promise<AckOf<R, K>> {
    return new Promise((resolve, reject) => {
      if (this.#state === 'closed') return reject(new RealtimeError(ClientErrorCode.Closed, 'The client is closed'))
      const id = ++this.#nextId
      const msg: Wire & { k: 'req' } = { k: 'req', tab: this.tab, id, type, data, timeout: options.timeout, traceparent: options.traceparent }
      this.#pending.set(id, { resolve, reject, msg, resend: options.resend === true })
      options.signal?.addEventListener('abort', () => {
        // The leader may still send it; its reply is then ignored.
        if (this.#pending.delete(id)) reject(new RealtimeError(ClientErrorCode.Aborted, 'The request was aborted'))
      }, { once: true })
      this.#toLeader(msg)
    })
  }

  on<K extends keyof EmitData<R> & string> (type: K, handler: (data: EmitData<R>[K], meta: MessageMeta) => void): () => void {
    let set = this.#listeners.get(type)
    if (set === undefined) {
      this.#listeners.set(type, set = new Set())
      this.#sync()
    }
    set.add(handler)
    return () => { set.delete(handler) }
  }

  /** Joins a room for this tab (the leader joins it once for all tabs); resolves once joined. */
  join (room: string): Promise<void> {
    return new Promise((resolve, reject) => {
      let waiters = this.#rooms.get(room)
      if (waiters === undefined) this.#rooms.set(room, waiters = [])
      waiters.push({ resolve, reject })
      this.#toLeader({ k: 'join', tab: this.tab, room })
    })
  }

  /** Leaves a room for this tab; the leader leaves it when no tab is in it any more. */
  async leave (room: string): Promise<void> {
    this.#rooms.delete(room)
    this.#toLeader({ k: 'leave', tab: this.tab, room })
  }

  /** Closes this tab's client; when it leads, another tab takes over the connection. */
  close (): void {
    if (this.#state === 'closed') return
    this.#toLeader({ k: 'bye', tab: this.tab })
    globalThis.removeEventListener?.('pagehide', this.#onHide)
    // Closed first, so the leader's client closing below says nothing to the other tabs: for them the
    // connection goes on, with the tab that takes the lock next.
    this.#setState('closed')
    this.#leader?.client.close()
    this.#leader = null
    this.#abort.abort()
    this.#channel?.close()
    for (const request of this.#pending.values()) request.reject(new RealtimeError(ClientErrorCode.Closed, 'The client is closed'))
    this.#pending.clear()
  }

  // ---- the channel ----

  #lead (): void {
    this.#leader = new Leader(this.url, this.#options, (msg) => this.#toTabs(msg))
    this.#toTabs({ k: 'leader', state: this.#leader.client.state })
  }

  /** Tells the leader (found or not yet) this tab's rooms and listened types. */
  #sync (): void {
    this.#toLeader({ k: 'sync', tab: this.tab, rooms: [...this.#rooms.keys()], types: [...this.#listeners.keys()] }, true)
  }

  #toLeader (msg: Wire, now = false): void {
    if (this.#leader !== null) this.#leader.handle(msg)
    else if (this.#leaderKnown || now) this.#channel?.postMessage(msg)
    else this.#queue.push(msg)
  }

  #toTabs (msg: Wire): void {
    if (this.#state === 'closed') return
    this.#channel?.postMessage(msg)
    this.#receive(msg)
  }

  // Not called once closed: #toTabs stops, and a closed BroadcastChannel delivers nothing more.
  #receive (msg: Wire): void {
    switch (msg.k) {
      case 'leader':
        // A new leader (the first, or after the previous one's tab went away): what the old one had in
        // flight is lost with its socket, as when a single client's socket drops.
        this.#leaderKnown = true
        this.#mirror(msg.state)
        this.#sync()
        for (const [id, request] of this.#pending) {
          // Still queued (made before any leader was known): sent below, for the first time.
          if (this.#queue.includes(request.msg)) continue
          if (request.resend) {
            this.#toLeader(request.msg)
          } else {
            this.#pending.delete(id)
            request.reject(new RealtimeError(ClientErrorCode.ConnectionLost, 'The leading tab went away before the reply'))
          }
        }
        for (const [room, waiters] of this.#rooms) if (waiters.length > 0) this.#toLeader({ k: 'join', tab: this.tab, room })
        for (const queued of this.#queue.splice(0)) this.#toLeader(queued)
        break
      case 'here':
        if (!this.#leaderKnown) {
          this.#leaderKnown = true
          this.#mirror(msg.state)
          for (const queued of this.#queue.splice(0)) this.#toLeader(queued)
        }
        break
      case 'state':
        this.#mirror(msg.state)
        break
      case 'event':
        if (msg.name === 'error') this.events.emit('error', new RealtimeError(msg.arg.code, msg.arg.message, msg.arg.details, msg.arg.retryAfter))
        else if (msg.name !== 'gap' || this.#rooms.has(msg.arg.room)) this.events.emit(msg.name, msg.arg)
        break
      case 'msg':
        if (!msg.all && !this.#rooms.has(msg.meta.room as string)) return
        for (const listener of this.#listeners.get(msg.type) ?? []) {
          try {
            listener(msg.data, msg.meta)
          } catch (err) {
            queueMicrotask(() => { throw err })
          }
        }
        break
      case 'reply': {
        const request = msg.tab === this.tab ? this.#pending.get(msg.id) : undefined
        if (request === undefined) return
        this.#pending.delete(msg.id)
        if (msg.error === undefined) request.resolve(msg.value)
        else request.reject(new RealtimeError(msg.error.code, msg.error.message, msg.error.details, msg.error.retryAfter))
        break
      }
      case 'joined': {
        const waiters = msg.tab === this.tab ? this.#rooms.get(msg.room) : undefined
        if (waiters === undefined) return
        if (msg.error !== undefined) this.#rooms.delete(msg.room)
        for (const waiter of waiters.splice(0)) {
          if (msg.error === undefined) waiter.resolve()
          else waiter.reject(new RealtimeError(msg.error.code, msg.error.message))
        }
        break
      }
      default:
        // A follower's message, seen by the leader's channel.
        this.#leader?.handle(msg)
    }
  }

  /** Takes the leader's state; a new leader's first `connecting` is a `reconnecting` for a tab that was open. */
  #mirror (state: ConnectionState): void {
    this.#setState(state === 'connecting' && this.#everOpen ? 'reconnecting' : state)
  }

  #setState (state: ConnectionState): void {
    const previous = this.#state
    if (previous === state) return
    if (state === 'open') this.#everOpen = true
    this.#state = state
    this.events.emit('state', state, previous)
  }
}

/**
 * A client whose connection is shared by every tab of this origin that uses the same `name` (default: the
 * URL). Type it like `createClient`: `createSharedClient<typeof chat>(url, { token })`.
 */
export function createSharedClient<R = unknown> (url: string, options?: SharedClientOptions): SharedClient<R> {
  return new SharedClient<R>(url, options)
}

// The whole client API from this entry too, so a page imports one module.
export * from './index.js'
