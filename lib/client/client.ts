// The client of a fastify-realtime route: one socket, reconnected by the
// protocol's retry table, with requests, rooms and their positions, and an
// outbox that is flushed only once the connection is whole again (authenticated,
// session resumed, rooms re-joined, in-flight requests resent). It imports only
// lib/wire.ts from the server's tree, so a browser bundle carries no server code.
import { Backoff, CloseCode, MessageType, ProtocolPrefix, RetryPolicy } from '../wire.js'
import { ClientErrorCode, RealtimeError } from './errors.js'
import { fullJitter } from './backoff.js'
import type { SseSocket } from './sse.js'
import { loadSse } from './sse-load.js'
import type {
  AckOf, ClientEvents, ConnectionState, EmitData, GapEvent, InboundData, MessageMeta, RequestOptions, SendOptions,
  WebSocketConstructor, WebSocketLike
} from './types.js'

/** Something that fires the browser's `online` / `offline` events (`window`). */
export interface NetworkEvents {
  addEventListener (type: 'online' | 'offline', listener: () => void): void
  removeEventListener (type: 'online' | 'offline', listener: () => void): void
}

export interface ClientOptions {
  /** The WebSocket class: the platform's by default; pass `ws`'s on Node 20. */
  WebSocket?: WebSocketConstructor
  /**
   * Application subprotocols to offer. With `ws` on Node, offer one the server selects (its `subprotocols`)
   * whenever a token or a resume entry is offered: `ws` refuses a handshake that offered protocols and got none.
   */
  protocols?: string[]
  /** Called before every (re)connect attempt, once per attempt; may be async. Null/undefined: no token. */
  token?: () => string | null | undefined | Promise<string | null | undefined>
  /** How the route wants the token: a `bearer.<token>` subprotocol entry (default) or a first `auth` frame. */
  auth?: 'protocol' | 'message'
  /** Refresh the token in-band this many ms before its `exp` (at most half its remaining life). Default 30 000; false: never. */
  refreshBefore?: number | false
  /** The route has sessions (protocol 1.1): wait for its `session` message and resume with it. Default false. */
  session?: boolean
  /** Default request timeout, ms. Default 10 000. */
  timeout?: number
  /** ms from a connect attempt to ready (open, authenticated, session) before it is given up. Default 10 000. */
  connectTimeout?: number
  /** Reconnection; false: never reconnect. */
  reconnect?: false | {
    /** ms; default 500. */
    base?: number
    /** ms; default 30 000. */
    cap?: number
    /** Attempts in a row before giving up; default Infinity. */
    attempts?: number
    /** ms open after which the attempt count resets; default 10 000. */
    stable?: number
  }
  /** Messages and requests kept while not open; past it `send` returns false and `request` rejects `outbox_full`. Default 100. */
  outbox?: number
  /** Application ping when idle (browsers cannot see WebSocket pings); false: off. */
  ping?: false | {
    /** ms without any message from the server before a ping. Default 25 000. */
    interval?: number
    /** ms to wait for anything back (the pong) before reconnecting. Default 10 000. */
    timeout?: number
  }
  /** Source of `online` / `offline` events; default `globalThis` when it has `addEventListener` (browsers). */
  network?: NetworkEvents | false
  /**
   * Fall back to Server-Sent Events + POST (a route with `sse`) when the WebSocket cannot be opened, and go back
   * once it can. Default: true with the platform's WebSocket (or without any), false when `WebSocket` is given.
   */
  fallback?: boolean
  /** The random source of the jitter, [0, 1). For tests. */
  random?: () => number
}

interface Pending {
  id: number
  frame: string
  resolve: (value: any) => void
  reject: (err: RealtimeError) => void
  timer: ReturnType<typeof setTimeout> | undefined
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
  /** The connection it was written to; 0 while it waits in the outbox. */
  conn: number
  resend: boolean
  /** Joins, leaves and auth frames belong to one connection; never resent or queued. */
  internal: boolean
}

interface RoomState {
  seq: number | undefined
  epoch: string | undefined
  /** Joined by the client (`join`): re-joined on reconnect. Rooms the server put us in are only tracked. */
  wanted: boolean
  /** `join()` callers waiting for the ack. */
  waiters: Array<{ resolve: () => void, reject: (err: RealtimeError) => void }>
}

interface SessionRoom { room: string, seq: number, epoch: string, recovered: boolean }

type Listener = (...args: any[]) => void

// A close we make ourselves (ping timeout, offline, connect timeout); any 4000-4999 is ours to use.
const LOCAL_CLOSE = 4000

function unref (timer: unknown): void {
  (timer as { unref?: () => void }).unref?.()
}

function report (err: unknown): void {
  // A listener that throws must not break the client's own handling of the frame.
  queueMicrotask(() => { throw err })
}

/** The `exp` of a JWT in ms, or undefined for anything else. */
function jwtExp (token: string): number | undefined {
  try {
    const body = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    const exp = JSON.parse(atob(body)).exp
    return typeof exp === 'number' ? exp * 1000 : undefined
  } catch {
    return undefined
  }
}

/** A small event emitter for the client's own events. */
export class Events<E extends { [K in keyof E]: Listener }> {
  readonly #map = new Map<keyof E, Set<Listener>>()

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof E> (name: K, listener: E[K]): () => void {
    let set = this.#map.get(name)
    if (set === undefined) this.#map.set(name, set = new Set())
    set.add(listener)
    return () => { set.delete(listener) }
  }

  emit<K extends keyof E> (name: K, ...args: Parameters<E[K]>): void {
    const set = this.#map.get(name)
    if (set === undefined) return
    for (const listener of set) {
      try {
        listener(...args)
      } catch (err) {
        report(err)
      }
    }
  }
}

/** Whether this platform can run the SSE fallback (fetch with readable response bodies). */
const sseAvailable = (): boolean => typeof fetch === 'function' && typeof TextDecoder === 'function'

/** Resolves when a client in `state` opens; rejects if it closes first. The client's and the shared tab's `ready()`. */
export function whenOpen (state: ConnectionState, events: Events<ClientEvents>): Promise<void> {
  const closed = (): RealtimeError => new RealtimeError(ClientErrorCode.Closed, 'The client is closed')
  if (state === 'open') return Promise.resolve()
  if (state === 'closed') return Promise.reject(closed())
  return new Promise((resolve, reject) => {
    const off = events.on('state', (next) => {
      if (next === 'open') resolve()
      else if (next === 'closed') reject(closed())
      else return
      off()
    })
  })
}

export class RealtimeClient<R = unknown> {
  /** The client's own events: `state`, `open`, `close`, `gap`, `error`. */
  readonly events = new Events<ClientEvents>()
  readonly url: string
  readonly #WebSocket: WebSocketConstructor | undefined
  /** The next attempt goes over SSE: the WebSocket could not be opened (or there is none). */
  #sse = false
  readonly #fallback: boolean
  #transport: 'websocket' | 'sse' | undefined
  readonly #o: Required<Omit<ClientOptions, 'WebSocket' | 'fallback' | 'token' | 'reconnect' | 'ping' | 'network' | 'refreshBefore'>> & {
    token: ClientOptions['token']
    refreshBefore: number | false
    reconnect: false | { base: number, cap: number, attempts: number, stable: number }
    ping: false | { interval: number, timeout: number }
    network: NetworkEvents | false
  }

  #state: ConnectionState = 'connecting'
  #ws: WebSocketLike | null = null
  /** Counts connection attempts; a frame or a timer of an older one is ignored. */
  #conn = 0
  #everOpen = false
  #attempt = 0
  #unauthorized = 0
  #openedAt = 0
  #nextId = 0
  readonly #pending = new Map<number, Pending>()
  readonly #outbox: Array<Pending | string> = []
  readonly #rooms = new Map<string, RoomState>()
  /** Rooms left while away: a resumed session restores them server-side, so they are left again. */
  readonly #leftAway = new Set<string>()
  readonly #listeners = new Map<string, Set<Listener>>()
  #sessionToken: string | undefined
  #awaitingSession = false
  #retryAfter: number | undefined
  #advice: number | undefined
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined
  #connectTimer: ReturnType<typeof setTimeout> | undefined
  #tickTimer: ReturnType<typeof setTimeout> | undefined
  #tickDue = 0
  #lastReceived = 0
  #pingSentAt = 0
  #refreshAt = 0
  #offline = false
  readonly #onOnline = (): void => this.#online()
  readonly #onOffline = (): void => this.#offlineNow()

  constructor (url: string, options: ClientOptions = {}) {
    this.url = url
    const WebSocketClass = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    this.#fallback = (options.fallback ?? options.WebSocket === undefined) && sseAvailable()
    if (WebSocketClass === undefined && !this.#fallback) {
      throw new TypeError('No WebSocket implementation: pass one as the `WebSocket` option (e.g. `ws` on Node 20)')
    }
    this.#WebSocket = WebSocketClass
    this.#sse = WebSocketClass === undefined
    const reconnect = options.reconnect === false
      ? false
      : { base: Backoff.base, cap: Backoff.cap, attempts: Infinity, stable: Backoff.stable, ...options.reconnect }
    const ping = options.ping === false ? false : { interval: 25_000, timeout: 10_000, ...options.ping }
    const global = globalThis as Partial<NetworkEvents>
    this.#o = {
      protocols: options.protocols ?? [],
      token: options.token,
      auth: options.auth ?? 'protocol',
      refreshBefore: options.refreshBefore ?? 30_000,
      session: options.session ?? false,
      timeout: options.timeout ?? 10_000,
      connectTimeout: options.connectTimeout ?? 10_000,
      reconnect,
      outbox: options.outbox ?? 100,
      ping,
      network: options.network ?? (typeof global.addEventListener === 'function' ? global as NetworkEvents : false),
      random: options.random ?? Math.random
    }
    this.connect()
  }

  /** `connecting`, `open`, `reconnecting` or `closed`. */
  get state (): ConnectionState {
    return this.#state
  }

  /** The transport of the current (or last) connection: `websocket`, or `sse` when the WebSocket could not be opened. */
  get transport (): 'websocket' | 'sse' | undefined {
    return this.#transport
  }

  /** The last position seen in a room (`seq`, and `epoch` from a 1.1 server), or undefined when not tracked. */
  position (room: string): { seq: number | undefined, epoch: string | undefined } | undefined {
    const state = this.#rooms.get(room)
    return state === undefined ? undefined : { seq: state.seq, epoch: state.epoch }
  }

  /** Resolves when the client is open; rejects if it closes for good first. */
  ready (): Promise<void> {
    return whenOpen(this.#state, this.events)
  }

  /** (Re)opens a client that is closed; a no-op otherwise. Called by the constructor. */
  connect (): void {
    if (this.#ws !== null || this.#reconnectTimer !== undefined || (this.#conn > 0 && this.#state !== 'closed')) return
    this.#attempt = 0
    this.#unauthorized = 0
    if (this.#o.network !== false) {
      this.#o.network.addEventListener('online', this.#onOnline)
      this.#o.network.addEventListener('offline', this.#onOffline)
    }
    this.#open().catch(report)
  }

  /** Closes for good (until `connect()`): requests and queued messages reject with `closed`. */
  close (code: number = CloseCode.Normal, reason = ''): void {
    if (this.#state === 'closed') return
    const ws = this.#ws
    this.#detach()
    ws?.close(code, reason)
    this.#shutdown(code, reason)
  }

  /** Sends a message; while not open it is queued (false when the outbox is full or the message is volatile). */
  send<K extends keyof InboundData<R> & string> (type: K, data: InboundData<R>[K], options: SendOptions = {}): boolean {
    // JSON.stringify leaves an undefined traceparent out: the frame is as before without one.
    const frame = JSON.stringify({ type, data, traceparent: options.traceparent })
    if (this.#state === 'open') {
      (this.#ws as WebSocketLike).send(frame)
      return true
    }
    if (options.volatile === true || this.#state === 'closed' || this.#outbox.length >= this.#o.outbox) return false
    this.#outbox.push(frame)
    return true
  }

  /** Sends a request and resolves with its ack, or rejects with a `RealtimeError`. */
  request<K extends keyof InboundData<R> & string> (type: K, data: InboundData<R>[K], options: RequestOptions = {}):
  Promise<AckOf<R, K>> {
    return new Promise((resolve, reject) => {
      if (this.#state === 'closed') return reject(new RealtimeError(ClientErrorCode.Closed, 'The client is closed'))
      if (options.signal?.aborted === true) return reject(new RealtimeError(ClientErrorCode.Aborted, 'The request was aborted'))
      const id = ++this.#nextId
      const pending: Pending = {
        id,
        frame: JSON.stringify({ type, id, data, traceparent: options.traceparent }),
        resolve,
        reject,
        timer: undefined,
        signal: options.signal,
        onAbort: undefined,
        conn: 0,
        resend: options.resend === true,
        internal: false
      }
      if (this.#state !== 'open') {
        if (this.#outbox.length >= this.#o.outbox) {
          return reject(new RealtimeError(ClientErrorCode.OutboxFull, 'The outbox is full'))
        }
        this.#outbox.push(pending)
      }
      this.#track(pending, options.timeout ?? this.#o.timeout, `"${type}"`)
      if (this.#state === 'open') this.#write(pending)
    })
  }

  /** Listens to a server message (an emit of the route, `presence:join`, `presence:leave`); returns the remover. */
  on<K extends keyof EmitData<R> & string> (type: K, handler: (data: EmitData<R>[K], meta: MessageMeta) => void): () => void {
    let set = this.#listeners.get(type)
    if (set === undefined) this.#listeners.set(type, set = new Set())
    set.add(handler)
    return () => { set.delete(handler) }
  }

  /**
   * Joins a room (routes with `joinable`) and keeps it joined across reconnects, resuming from the last seq seen.
   * Resolves once joined (after the next connect when not open now); rejects with the server's error.
   */
  join (room: string): Promise<void> {
    this.#leftAway.delete(room)
    let state = this.#rooms.get(room)
    if (state === undefined) this.#rooms.set(room, state = { seq: undefined, epoch: undefined, wanted: true, waiters: [] })
    state.wanted = true
    const joined = new Promise<void>((resolve, reject) => { state.waiters.push({ resolve, reject }) })
    if (this.#state === 'open') this.#joinRoom(room, state, false)
    return joined
  }

  /** Leaves a room and forgets it. */
  async leave (room: string): Promise<void> {
    const state = this.#rooms.get(room)
    this.#rooms.delete(room)
    state?.waiters.forEach((w) => w.reject(new RealtimeError(ClientErrorCode.Aborted, `Left "${room}"`)))
    if (this.#state === 'open') {
      await new Promise((resolve, reject) => this.#call(MessageType.RoomLeave, { room }, resolve, reject))
    } else {
      this.#leftAway.add(room)
    }
  }

  // ---- connection life ----

  async #open (): Promise<void> {
    const conn = ++this.#conn
    this.#setState(this.#everOpen ? 'reconnecting' : 'connecting')
    let token: string | null | undefined
    if (this.#o.token !== undefined) {
      try {
        // Never synchronously: the constructor's caller has not added its listeners yet.
        const provider = this.#o.token
        token = await Promise.resolve().then(() => provider())
      } catch (err) {
        if (conn !== this.#conn) return // closed (and maybe reopened) meanwhile
        this.events.emit('error', new RealtimeError(ClientErrorCode.TokenProvider, String((err as Error).message)))
        this.#retry(CloseCode.Abnormal, 'The token provider failed')
        return
      }
      if (conn !== this.#conn) return
    }
    const protocols = [...this.#o.protocols]
    const firstMessage = this.#o.auth === 'message'
    if (token != null && !firstMessage) protocols.push(ProtocolPrefix.Bearer + token)
    if (this.#sessionToken !== undefined && !firstMessage) protocols.push(ProtocolPrefix.Resume + this.#sessionToken)
    let ws: WebSocketLike
    const sse = this.#sse
    let Sse: typeof SseSocket | undefined
    if (sse) {
      try {
        Sse = await loadSse()
      /* c8 ignore next 4: only a browser that cannot download the chunk gets here (Node reads it from disk) */
      } catch {
        if (conn === this.#conn) this.#retry(CloseCode.Abnormal, 'The SSE fallback could not be loaded')
        return
      }
      if (conn !== this.#conn) return
    }
    let opened = false
    try {
      ws = Sse !== undefined ? new Sse(this.url, protocols) : new (this.#WebSocket as WebSocketConstructor)(this.url, protocols)
    } catch (err) {
      // A malformed URL: no attempt can succeed.
      this.events.emit('error', new RealtimeError(ClientErrorCode.Closed, (err as Error).message))
      this.#shutdown(CloseCode.Abnormal, (err as Error).message)
      return
    }
    this.#ws = ws
    this.#connectTimer = setTimeout(() => this.#drop('Connect timeout'), this.#o.connectTimeout)
    unref(this.#connectTimer)
    ws.onerror = () => {} // the close event follows and carries the code
    ws.onclose = (event: { code: number, reason: string }) => {
      if (ws !== this.#ws) return
      this.#detach()
      // Never opened and no code from the server (an upgrade refused on the way, or no server at all): the other
      // transport next, over SSE at once (the WebSocket may be blocked), back to WebSocket after a failed SSE.
      if (!opened && event.code === CloseCode.Abnormal && this.#WebSocket !== undefined && this.#fallback) {
        this.#sse = !sse
        if (!sse) {
          this.#open().catch(report)
          return
        }
      }
      this.#retry(event.code, event.reason)
    }
    ws.onmessage = (event: { data: unknown }) => { if (ws === this.#ws) this.#receive(String(event.data)) }
    ws.onopen = () => {
      if (ws !== this.#ws) return
      opened = true
      const transport = sse ? 'sse' : 'websocket'
      if (transport !== this.#transport) this.events.emit('transport', this.#transport = transport)
      // The probe only asks whether a WebSocket opens: without the resume token, which this stream has used.
      if (sse) this.#probe(conn, protocols.filter((entry) => !entry.startsWith(ProtocolPrefix.Resume)))
      this.#lastReceived = Date.now()
      this.#schedulePing(this.#o.ping === false ? 0 : this.#o.ping.interval)
      if (firstMessage) {
        const data: Record<string, unknown> = { token }
        if (this.#sessionToken !== undefined) data.resume = this.#sessionToken
        this.#call(MessageType.Auth, data, (ack) => {
          this.#expiresAt((ack as { exp?: number } | null)?.exp)
          this.#authenticated()
        }, () => {}) // a refused auth frame is followed by a 4401 close
      } else {
        if (token != null) this.#expiresAt(undefined, token)
        this.#authenticated()
      }
    }
  }

  /** Over SSE: tries a WebSocket now and then (every `reconnect.cap`); once one opens, reconnects over WebSocket. */
  #probe (conn: number, protocols: string[]): void {
    let probe: WebSocketLike
    try {
      probe = new (this.#WebSocket as WebSocketConstructor)(this.url, protocols)
    /* c8 ignore next 3: only a malformed URL throws here, and the first attempt, with the same URL, already closed the client */
    } catch {
      return
    }
    probe.onerror = () => {} // the close event follows
    probe.onopen = () => {
      probe.close(CloseCode.Normal, 'probe')
      /* c8 ignore next: a race guard: the SSE connection ended while the probe was opening */
      if (conn !== this.#conn || this.#ws === null) return
      this.#sse = false
      const sse = this.#ws
      this.#detach()
      sse.close(CloseCode.Normal, 'upgrade')
      this.#open().catch(report)
    }
    probe.onclose = () => {
      if (conn !== this.#conn) return
      /* c8 ignore next: a race guard (the SSE connection ended while the next probe waited); reconnect: false is the default cap */
      unref(setTimeout(() => { if (conn === this.#conn) this.#probe(conn, protocols) }, this.#o.reconnect === false ? Backoff.cap : this.#o.reconnect.cap))
    }
  }

  // The auth ack settles synchronously, so a session message in the same read as the ack comes after this.
  #authenticated (): void {
    if (this.#o.session) this.#awaitingSession = true
    else this.#restore(false, undefined)
  }

  /**
   * The connection is authenticated and its session known: re-join rooms, then resend what was in flight, then
   * flush the outbox, in that order, so nothing queued reaches the server before the rooms it may need.
   */
  #restore (recovered: boolean, sessionRooms: SessionRoom[] | undefined): void {
    const ws = this.#ws as WebSocketLike
    const restored = new Set<string>()
    for (const entry of sessionRooms ?? []) {
      // The rooms listed are those the server restored: membership is back; history only when `recovered`.
      restored.add(entry.room)
      let state = this.#rooms.get(entry.room)
      if (state === undefined) this.#rooms.set(entry.room, state = { seq: undefined, epoch: entry.epoch, wanted: false, waiters: [] })
      // Recovered: the missed messages follow the session message; keep our own position so they are not dropped.
      if (entry.recovered) continue
      if (state.seq !== undefined) this.#gap(entry.room, 'unrecovered', state.seq, entry.seq)
      state.seq = entry.seq
      state.epoch = entry.epoch
    }
    for (const [room, state] of this.#rooms) {
      if (state.wanted || restored.has(room)) continue
      // A room the server had put us in, not carried over: what was missed is lost.
      if (state.seq !== undefined) this.#gap(room, 'unrecovered', state.seq, undefined)
      this.#rooms.delete(room)
    }
    const joins: Array<Promise<unknown>> = []
    for (const [room, state] of this.#rooms) {
      if (!state.wanted) continue
      if (restored.has(room)) {
        this.#joined(state)
        continue
      }
      joins.push(this.#joinRoom(room, state, state.seq !== undefined && state.epoch !== undefined))
    }
    for (const room of this.#leftAway) if (restored.has(room)) joins.push(new Promise((resolve) => this.#call(MessageType.RoomLeave, { room }, resolve, resolve)))
    this.#leftAway.clear()
    // Synchronous when there is nothing to wait for, so a connection without rooms is open at once.
    if (joins.length === 0) this.#ready(ws, recovered)
    else Promise.all(joins).then(() => this.#ready(ws, recovered), report)
  }

  #ready (ws: WebSocketLike, recovered: boolean): void {
    if (ws !== this.#ws) return
    for (const pending of this.#pending.values()) {
      if (pending.internal || pending.conn === 0 || pending.conn === this.#conn) continue
      if (recovered || pending.resend) this.#write(pending)
      else this.#fail(pending, ClientErrorCode.ConnectionLost, 'The connection was lost before the reply')
    }
    clearTimeout(this.#connectTimer)
    this.#everOpen = true
    this.#openedAt = Date.now()
    this.#unauthorized = 0
    // Flushed before the state changes: a `state` or `open` listener may send, and must come after the queue.
    for (const item of this.#outbox.splice(0)) {
      if (typeof item === 'string') ws.send(item)
      else this.#write(item)
    }
    this.#setState('open')
    this.events.emit('open', { recovered })
  }

  #joinRoom (room: string, state: RoomState, since: boolean): Promise<void> {
    const last = state.seq
    const data = since ? { room, since: { seq: state.seq, epoch: state.epoch } } : { room }
    return new Promise((resolve) => this.#call(MessageType.RoomJoin, data, (ack) => {
      resolve()
      if (this.#rooms.get(room) !== state) return
      const position = ack as { seq?: unknown, epoch?: string, recovered?: boolean } | null
      if (position !== null && typeof position === 'object' && typeof position.seq === 'number') {
        if (since && position.recovered !== true) {
          this.#gap(room, position.epoch !== state.epoch ? 'epoch' : 'unrecovered', last, position.seq)
        }
        state.seq = position.seq
        state.epoch = position.epoch
      } else {
        // A 1.0 server: no position; whatever happened while away is unknown.
        if (last !== undefined) this.#gap(room, 'unrecovered', last, undefined)
        state.seq = undefined
        state.epoch = undefined
      }
      this.#joined(state)
    }, (err) => {
      resolve()
      // Lost with the socket: the next connect re-joins it. Refused: forget it.
      if (err.code === ClientErrorCode.ConnectionLost || this.#rooms.get(room) !== state) return
      this.#rooms.delete(room)
      const waiters = state.waiters.splice(0)
      for (const waiter of waiters) waiter.reject(err)
      if (waiters.length === 0) this.events.emit('error', err)
    }))
  }

  #joined (state: RoomState): void {
    for (const waiter of state.waiters.splice(0)) waiter.resolve()
  }

  /** Ends the current socket on our side (ping timeout, offline, connect timeout) and takes the retry path. */
  // Only called for the current socket: its timers are cleared when it is detached.
  #drop (reason: string): void {
    const ws = this.#ws as WebSocketLike
    this.#detach()
    ws.close(LOCAL_CLOSE, reason)
    this.#retry(CloseCode.Abnormal, reason)
  }

  /** Forgets the current socket: its timers stop, its in-flight requests wait for the next one or fail. */
  #detach (): void {
    const ws = this.#ws
    this.#ws = null
    this.#awaitingSession = false
    clearTimeout(this.#connectTimer)
    clearTimeout(this.#tickTimer)
    this.#pingSentAt = 0
    this.#refreshAt = 0
    if (ws === null) return
    if (this.#openedAt !== 0 && this.#o.reconnect !== false && Date.now() - this.#openedAt >= this.#o.reconnect.stable) {
      this.#attempt = 0
    }
    this.#openedAt = 0
    for (const pending of this.#pending.values()) {
      if (pending.internal && pending.conn === this.#conn) {
        this.#fail(pending, ClientErrorCode.ConnectionLost, 'The connection was lost before the reply')
      }
    }
  }

  /** The close-code policy of the protocol's retry table. */
  #retry (code: number, reason: string): void {
    const options = this.#o.reconnect
    const action = RetryPolicy[code] ?? 'backoff'
    let delay: number | undefined
    if (options !== false && action !== 'stop') {
      const backoff = (): number => fullJitter(this.#attempt++, options, this.#o.random)
      if (action === 'refreshToken') {
        // The token provider runs on every attempt; a second 4401 before opening means a fresh token did not help.
        if (++this.#unauthorized === 1) delay = fullJitter(0, options, this.#o.random)
      } else if (action === 'retryAfter') {
        delay = this.#retryAfter ?? backoff()
      } else if (action === 'advice') {
        delay = this.#advice === undefined ? backoff() : this.#advice + fullJitter(0, options, this.#o.random)
      } else {
        delay = backoff()
      }
      if (this.#attempt > options.attempts) delay = undefined
    }
    this.#retryAfter = undefined
    this.#advice = undefined
    if (delay === undefined) {
      this.#shutdown(code, reason)
      return
    }
    for (const pending of this.#pending.values()) {
      // Without sessions nothing can make a resend safe: fail now (retriable), unless the caller said it is.
      if (pending.conn === this.#conn && !this.#o.session && !pending.resend) {
        this.#fail(pending, ClientErrorCode.ConnectionLost, 'The connection was lost before the reply')
      }
    }
    this.#setState(this.#everOpen ? 'reconnecting' : 'connecting')
    this.events.emit('close', { code, reason, reconnectIn: delay })
    if (this.#offline) return // `online` reconnects
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined
      this.#open().catch(report)
    }, delay)
    unref(this.#reconnectTimer)
  }

  #shutdown (code: number, reason: string): void {
    this.#conn++ // whatever the last attempt still awaits (its token) finds it is stale
    clearTimeout(this.#reconnectTimer)
    this.#reconnectTimer = undefined
    if (this.#o.network !== false) {
      this.#o.network.removeEventListener('online', this.#onOnline)
      this.#o.network.removeEventListener('offline', this.#onOffline)
    }
    this.#setState('closed')
    const message = `The client closed (${code}${reason === '' ? '' : ': ' + reason})`
    for (const pending of this.#pending.values()) this.#fail(pending, ClientErrorCode.Closed, message)
    this.#outbox.length = 0
    for (const state of this.#rooms.values()) {
      for (const waiter of state.waiters.splice(0)) waiter.reject(new RealtimeError(ClientErrorCode.Closed, message))
    }
    this.events.emit('close', { code, reason, reconnectIn: undefined })
  }

  #setState (state: ConnectionState): void {
    const previous = this.#state
    if (previous === state) return
    this.#state = state
    this.events.emit('state', state, previous)
  }

  #online (): void {
    this.#offline = false
    if (this.#state !== 'reconnecting' && this.#state !== 'connecting') return
    if (this.#ws !== null) return
    clearTimeout(this.#reconnectTimer)
    this.#reconnectTimer = undefined
    this.#attempt = 0
    this.#open().catch(report)
  }

  #offlineNow (): void {
    this.#offline = true
    clearTimeout(this.#reconnectTimer)
    this.#reconnectTimer = undefined
    if (this.#ws !== null) this.#drop('Offline')
  }

  // ---- liveness and token refresh: one timer per socket, judged by wall time ----

  #schedulePing (delay: number): void {
    if (this.#o.ping === false && this.#refreshAt === 0) return
    clearTimeout(this.#tickTimer)
    if (this.#o.ping === false) delay = this.#refreshAt - Date.now()
    else if (this.#refreshAt !== 0) delay = Math.min(delay, this.#refreshAt - Date.now())
    delay = Math.max(delay, 0)
    this.#tickDue = Date.now() + delay
    this.#tickTimer = setTimeout(() => this.#tick(), delay)
    unref(this.#tickTimer)
  }

  #tick (): void {
    // Cleared when the socket is detached, so this is the current one.
    const ws = this.#ws as WebSocketLike
    const now = Date.now()
    if (this.#refreshAt !== 0 && now >= this.#refreshAt) this.#refresh()
    const ping = this.#o.ping
    if (ping === false) {
      this.#schedulePing(0)
      return
    }
    if (this.#pingSentAt !== 0) {
      if (this.#lastReceived >= this.#pingSentAt) {
        this.#pingSentAt = 0
      } else if (now - this.#tickDue >= ping.timeout) {
        // This timer fired far too late: the tab was throttled or the machine slept. The pong may be queued
        // behind us, so it is no evidence of a dead socket: ask again instead of reconnecting.
        this.#pingSentAt = now
        ws.send('{"type":"ping"}')
      } else if (now - this.#pingSentAt >= ping.timeout) {
        this.#drop('Ping timeout')
        return
      }
    }
    if (this.#pingSentAt === 0) {
      const idle = now - this.#lastReceived
      if (idle >= ping.interval) {
        this.#pingSentAt = now
        ws.send('{"type":"ping"}')
      } else {
        this.#schedulePing(ping.interval - idle)
        return
      }
    }
    this.#schedulePing(ping.timeout - (now - this.#pingSentAt))
  }

  #expiresAt (exp: number | null | undefined, token?: string): void {
    const at = token === undefined ? (typeof exp === 'number' ? exp * 1000 : undefined) : jwtExp(token)
    if (at === undefined || this.#o.refreshBefore === false || this.#o.token === undefined) {
      this.#refreshAt = 0
      return
    }
    const now = Date.now()
    this.#refreshAt = at - Math.min(this.#o.refreshBefore, Math.max(0, (at - now) / 2))
    this.#schedulePing(this.#o.ping === false ? 0 : Math.max(0, this.#o.ping.interval - (now - this.#lastReceived)))
  }

  #refresh (): void {
    this.#refreshAt = 0
    const ws = this.#ws
    Promise.resolve()
      .then(() => (this.#o.token as () => unknown)())
      .then((token) => {
        if (ws !== this.#ws) return // the socket is gone; the next one gets a fresh token anyway
        return new Promise((resolve, reject) => this.#call(MessageType.Auth, { token }, (ack) => {
          this.#expiresAt((ack as { exp?: number } | null)?.exp)
          resolve(undefined)
        }, reject))
      })
      .catch((err: unknown) => {
        // The socket stays until the old token expires; then 4401 and a reconnect with a fresh token.
        if ((err as RealtimeError).code !== ClientErrorCode.ConnectionLost) {
          this.events.emit('error', err instanceof RealtimeError ? err : new RealtimeError(ClientErrorCode.TokenProvider, String(err)))
        }
      })
  }

  // ---- frames ----

  #receive (text: string): void {
    this.#lastReceived = Date.now()
    let msg: { type?: unknown, id?: unknown, data?: any, error?: any, room?: unknown, seq?: unknown }
    try {
      msg = JSON.parse(text)
    } catch {
      return // not from a fastify-realtime server; nothing to do with it
    }
    if (msg === null || typeof msg !== 'object' || typeof msg.type !== 'string') return
    const type = msg.type
    if (type === MessageType.Ack || type === MessageType.Error) {
      const error = msg.error as { code?: string, message?: string, details?: unknown, retryAfter?: number } | undefined
      if (type === MessageType.Error && typeof error?.retryAfter === 'number') this.#retryAfter = error.retryAfter
      const pending = typeof msg.id === 'number' ? this.#pending.get(msg.id) : undefined
      if (type === MessageType.Ack) {
        if (pending !== undefined) this.#settle(pending).resolve(msg.data ?? null)
        return
      }
      const err = new RealtimeError(String(error?.code ?? 'internal'), String(error?.message ?? ''), error?.details, error?.retryAfter)
      if (pending !== undefined) this.#settle(pending).reject(err)
      else this.events.emit('error', err)
      return
    }
    if (type === MessageType.Pong) return
    if (type === MessageType.Session) {
      const data = msg.data as { token?: string, recovered?: boolean, rooms?: SessionRoom[] } | undefined
      if (typeof data?.token === 'string') this.#sessionToken = data.token
      if (this.#awaitingSession) {
        this.#awaitingSession = false
        this.#restore(data?.recovered === true, data?.rooms)
      }
      return
    }
    if (type === MessageType.Reconnect) {
      const after = (msg.data as { after?: unknown } | undefined)?.after
      if (typeof after === 'number') this.#advice = after
      return
    }
    let meta: MessageMeta | undefined
    if (typeof msg.room === 'string' && typeof msg.seq === 'number') {
      if (!this.#position(msg.room, msg.seq)) return
      meta = { room: msg.room, seq: msg.seq }
    }
    const listeners = this.#listeners.get(type)
    if (listeners === undefined) return
    for (const listener of listeners) {
      try {
        listener(msg.data, meta ?? {})
      } catch (err) {
        report(err)
      }
    }
  }

  /** Tracks a room message's seq; false for a duplicate (a replay of something already processed). */
  #position (room: string, seq: number): boolean {
    let state = this.#rooms.get(room)
    if (state === undefined) this.#rooms.set(room, state = { seq: undefined, epoch: undefined, wanted: false, waiters: [] })
    const last = state.seq
    if (last !== undefined) {
      if (seq === 1 && last > 1) {
        // A new numbering (the room was re-created, or Redis restarted): not a replay.
        this.#gap(room, 'epoch', last, seq)
      } else if (seq <= last) {
        return false
      } else if (seq > last + 1) {
        this.#gap(room, 'jump', last, seq)
      }
    }
    state.seq = seq
    return true
  }

  #gap (room: string, reason: GapEvent['reason'], last: number | undefined, seq: number | undefined): void {
    this.events.emit('gap', { room, reason, last, seq })
  }

  // ---- requests ----

  #track (pending: Pending, timeout: number, what: string): void {
    this.#pending.set(pending.id, pending)
    pending.timer = setTimeout(() => this.#fail(pending, ClientErrorCode.Timeout, `No reply to ${what} within ${timeout} ms`), timeout)
    unref(pending.timer)
    if (pending.signal !== undefined) {
      pending.onAbort = () => this.#fail(pending, ClientErrorCode.Aborted, 'The request was aborted')
      pending.signal.addEventListener('abort', pending.onAbort, { once: true })
    }
  }

  #write (pending: Pending): void {
    pending.conn = this.#conn;
    (this.#ws as WebSocketLike).send(pending.frame)
  }

  /**
   * A request of the current socket only (auth, joins, leaves): not queued, not resent. Its callbacks run
   * synchronously on the reply, before the next frame of the same read (a join ack sets the room's position
   * before the live messages that follow it).
   */
  #call (type: string, data: unknown, onAck: (data: unknown) => void, onError: (err: RealtimeError) => void): void {
    const id = ++this.#nextId
    const pending: Pending = {
      id,
      frame: JSON.stringify({ type, id, data }),
      resolve: onAck,
      reject: onError,
      timer: undefined,
      signal: undefined,
      onAbort: undefined,
      conn: 0,
      resend: false,
      internal: true
    }
    this.#track(pending, this.#o.timeout, `"${type}"`)
    this.#write(pending)
  }

  #settle (pending: Pending): Pending {
    this.#pending.delete(pending.id)
    clearTimeout(pending.timer)
    if (pending.onAbort !== undefined) pending.signal?.removeEventListener('abort', pending.onAbort)
    if (pending.conn === 0) {
      const index = this.#outbox.indexOf(pending)
      if (index !== -1) this.#outbox.splice(index, 1)
    }
    return pending
  }

  #fail (pending: Pending, code: string, message: string): void {
    this.#settle(pending).reject(new RealtimeError(code, message))
  }
}

/**
 * Opens a client of a route. Type it from the route definition, imported as a type only:
 * `createClient<typeof chat>('wss://example.com/chat', { token })`.
 */
export function createClient<R = unknown> (url: string, options?: ClientOptions): RealtimeClient<R> {
  return new RealtimeClient<R>(url, options)
}
