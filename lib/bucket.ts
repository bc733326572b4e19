// The token bucket, shared by the per-connection limits (lib/limits.ts) and the
// in-memory store (lib/stores/memory.ts), so the refill arithmetic exists once.
export class TokenBucket {
  tokens: number
  /** When `tokens` was last brought up to date (ms, on the owner's clock). */
  stamp: number

  constructor (burst: number, now: number) {
    this.tokens = burst
    this.stamp = now
  }

  /**
   * Takes `cost` tokens from a bucket of capacity `burst` refilled at `rate` per second. Returns 0 when
   * allowed, else the ms until it would be; a denied take consumes nothing. Refill is lazy, for the time
   * since the last take; a clock that went back refills nothing.
   */
  take (now: number, rate: number, burst: number, cost: number): number {
    if (now > this.stamp) {
      this.tokens = Math.min(burst, this.tokens + (now - this.stamp) * rate / 1000)
      this.stamp = now
    }
    if (this.tokens >= cost) {
      this.tokens -= cost
      return 0
    }
    return Math.ceil((cost - this.tokens) * 1000 / rate)
  }
}
