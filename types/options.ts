import type { RateLimitStore } from './store.js'
import type { AuthOptions, ConnectionCapsOptions } from './auth.js'
import type { FanoutAdapter } from './adapter.js'
import type { AdminOptions, AsyncApiOptions, MetricsOptions } from './observability.js'
import type { HistoryStore } from './history.js'
import type { SessionStore } from './session.js'

/** Options of `app.register(realtime, options)`. Every field is optional. */
export interface RealtimeOptions {
  /** Largest inbound frame in bytes; a bigger one closes the socket with 1009. Default 65536. */
  maxPayload?: number
  /** permessage-deflate; off by default (CPU, memory per socket, compression bombs). */
  perMessageDeflate?: boolean | Record<string, unknown>
  /** Milliseconds ws waits for the peer's close frame before destroying the socket. Default 3000. */
  closeTimeout?: number
  /** Milliseconds `app.close()` waits for close handshakes before terminating sockets. Default 2000. */
  shutdownGrace?: number
  /** Invalid frames a connection may send before it is closed with 4400. Default 10. */
  errorBudget?: number
  /** Validate outgoing messages against the route's `emits` schemas. Default false. */
  validateEmits?: boolean
  /** Extra `ws` server options, used only when fastify-realtime registers @fastify/websocket itself. */
  websocket?: Record<string, unknown>
  /** Token sources, first-message auth, expiry and per-message authorization (see the README's auth section). */
  auth?: AuthOptions
  /**
   * Which browser origins may open a socket; any other (or `null`) gets HTTP 403 before the upgrade.
   * `'same-origin'` (default): the Origin's `host[:port]` must be the request's host (`request.host`, so set
   * Fastify's `trustProxy` behind a proxy that rewrites Host). An array: exact `scheme://host[:port]` entries.
   * `'*'`: any origin, no check (not allowed with cookie auth).
   */
  origins?: string[] | 'same-origin' | '*'
  /**
   * Every route also answers over Server-Sent Events + HTTP POST (for clients whose WebSocket upgrade is blocked),
   * unless its definition says `sse: false`. Default false: only routes whose definition says `sse: true` do.
   */
  sse?: boolean
  /** What an upgrade without an Origin header (not a browser) gets: `'allow'` (default) or `'deny'` (HTTP 403). */
  missingOrigin?: 'allow' | 'deny'
  /** Application subprotocols the server may select (the first the client offers); a token entry never is. Default none. */
  subprotocols?: string[]
  /** Connection caps checked before the upgrade. */
  connections?: ConnectionCapsOptions
  /** Rooms one connection may be in at once. Default 128. */
  maxRoomsPerConnection?: number
  /**
   * Protocol-level ping/pong from one sweep timer for all connections. A peer that has not answered a ping
   * after `timeout` ms is terminated and leaves its rooms. Default `{ interval: 30000, timeout: 10000 }`;
   * `false` turns it off.
   */
  heartbeat?: false | {
    /** Milliseconds between pings to one peer. */
    interval?: number
    /** Milliseconds a peer has to answer a ping. */
    timeout?: number
  }
  /**
   * Closing clients that read slower than the server writes, with close code 4008. Default
   * `{ softLimit: 524288, softTimeout: 10000, hardLimit: 4194304 }`; `false` turns it off.
   */
  slowConsumer?: false | {
    /** Buffered bytes past which a client is slow: volatile emits skip it, and the soft timer runs. */
    softLimit?: number
    /** Milliseconds a client may stay over `softLimit` before it is closed. */
    softTimeout?: number
    /** Buffered bytes past which a client is closed at once. */
    hardLimit?: number
  }
  /** Moves room broadcasts between instances of the app. Default: in-memory (this process only). */
  adapter?: FanoutAdapter
  /**
   * Message rate limits, on by default: each connection may send `burst` messages at once, refilled at
   * `rate` per second (default 50/s, burst 100). A message past it gets a `rate_limited` error with
   * `retryAfter`; after `budget` such refusals (default 20, refilled one per second) the socket closes
   * with 4429. `store` counts limits shared between connections (a route's `rateLimit.shared`,
   * `conn.consume`, `app.realtime.rateLimit`): default an in-memory store; a `RedisStore` makes them
   * cluster-wide. `false` turns every limit off.
   */
  rateLimit?: false | {
    rate?: number
    burst?: number
    budget?: number
    /**
     * Milliseconds an asynchronous store call (Redis) may take before the failure policy applies: the message
     * is let through, as when the store fails. Default 1000. A frame never waits on the store longer.
     */
    storeTimeout?: number
    store?: RateLimitStore
  }
  /** Prometheus metrics on the app's prom-client registry (prom-client is an optional peer dependency). Default off. */
  metrics?: MetricsOptions
  /** The AsyncAPI document's info, and the path serving it (`app.realtime.asyncapi()` works without). */
  asyncapi?: AsyncApiOptions
  /** The built-in admin page at a path the app chooses, behind the app's own hook. Default off. */
  admin?: AdminOptions
  /**
   * Room history (off by default): rooms keep their recent messages so that a join with `since` replays what
   * a client missed. `store`: default the adapter's (a `RedisAdapter` given `history`), else an in-memory
   * `MemoryHistory`. `rooms`: which rooms keep history (default all); it must be the same on every instance.
   * `replay`: the most one replay hands back (default 1000 messages, 1 MiB); `hold`: the most live messages
   * held for one member while its replay is read (default 10000, 4 MiB; past it the member is closed with 4008).
   */
  history?: false | {
    store?: HistoryStore
    rooms?: RegExp | ((room: string) => boolean)
    replay?: { maxCount?: number, maxBytes?: number }
    hold?: { maxCount?: number, maxBytes?: number }
  }
  /**
   * Session recovery (off by default): a route with `sessions: true` gives each connection a resume token;
   * a client that reconnects within `window` ms (default 120000) gets its id, rooms, kept data, missed room
   * messages and up to `maxUnicast` (100) unicast messages back; the last `maxReplies` (256) replies are
   * kept for request de-duplication. `store`: default an in-memory `MemorySessions`; pass a `RedisSessions`
   * so that a client may resume on another instance.
   */
  sessions?: false | {
    store?: SessionStore
    window?: number
    maxUnicast?: number
    maxReplies?: number
  }
  /**
   * A rolling restart on `app.close()` (off by default; `app.realtime.drain()` runs it on demand): new
   * upgrades get 503 with Retry-After, and the clients, in batches of `batch` (100) spread over `spread` ms
   * (10000), get a `reconnect` message with a jittered delay and a 1012 close.
   */
  drain?: boolean | { spread?: number, batch?: number }
}
