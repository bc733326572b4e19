import type { Connection } from './route.js'

/** A token bucket: `burst` messages at once, refilled at `rate` per second. */
export interface LimitSpec {
  /** Tokens added per second. */
  rate: number
  /** Bucket capacity: how many may come at once. */
  burst: number
}

/** A limit shared by every connection with the same key (all tabs of a user, all sockets of an IP). */
export interface KeyedLimitSpec extends LimitSpec {
  /**
   * The bucket key: `'user'` (the user id, falling back to the IP for anonymous sockets), `'ip'`, or a
   * function of the connection. A function returning `undefined` exempts the connection.
   */
  key: 'user' | 'ip' | ((conn: Connection<any>) => string | undefined)
}

/** Route-level `rateLimit`. */
export interface RouteLimitOptions extends Partial<LimitSpec> {
  /** Also limit messages across connections sharing a key, through the store (cluster-wide on Redis). */
  shared?: KeyedLimitSpec
}

/** Message-level `rateLimit`: an own bucket per connection for this message type, and its cost. */
export interface MessageLimitOptions extends Partial<LimitSpec> {
  /** Tokens this message takes from the connection-wide bucket. Default 1. */
  cost?: number
}
