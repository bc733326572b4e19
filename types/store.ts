// The rate-limit store: where token buckets are counted. The core owns the
// meaning (which key, what rate, what to do when denied); a store only counts.

/** The outcome of one {@link RateLimitStore.take}. */
export interface RateLimitResult {
  /** Whether the tokens were taken. A denied take consumes nothing. */
  allowed: boolean
  /** Whole tokens left in the bucket after this take. */
  remaining: number
  /** Milliseconds until a take of the same cost could be allowed, rounded up (waiting it is enough); 0 when allowed. */
  retryAfter: number
}

/**
 * A token-bucket counter: in memory by default (`MemoryStore`), or shared by
 * every instance through Redis (`RedisStore`).
 */
export interface RateLimitStore {
  /**
   * Take `cost` tokens (default 1) from bucket `key`: capacity `burst`, refilled at `rate` tokens per
   * second; a bucket never seen before is full. `rate` and `burst` must be > 0 and `cost` >= 0: the core
   * checks them once at register, so stores do not check them on every message. A `cost` above `burst`
   * is never allowed. May return synchronously, which the per-message path relies on for speed.
   */
  take (key: string, rate: number, burst: number, cost?: number): RateLimitResult | Promise<RateLimitResult>
  /** Release what the store opened (timers, scripts); never closes a client it was given. */
  close? (): void | Promise<void>
}
