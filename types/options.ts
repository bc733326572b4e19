import type { RateLimitStore } from './store.js'
import type { AuthOptions, ConnectionCapsOptions } from './auth.js'
import type { FanoutAdapter } from './adapter.js'

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
   * Origin allow-list: exact `scheme://host[:port]` entries. An upgrade from another origin (or `null`) gets
   * HTTP 403. Unset: no Origin check (required when `auth.sources` includes `cookie`).
   */
  origins?: string[]
  /**
   * Every route also answers over Server-Sent Events + HTTP POST (for clients whose WebSocket upgrade is blocked),
   * unless its definition says `sse: false`. Default false: only routes whose definition says `sse: true` do.
   */
  sse?: boolean
  /** What an upgrade without an Origin header gets when `origins` is set: `'allow'` (default) or `'deny'` (HTTP 403). */
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
    store?: RateLimitStore
  }
}
