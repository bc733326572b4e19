// Reconnect delays: full jitter (AWS's "Exponential Backoff And Jitter"), so a
// fleet of clients dropped together spreads its returns over the whole window.

export interface BackoffOptions {
  /** ms; the first window. Default 500. */
  base: number
  /** ms; the largest window. Default 30 000. */
  cap: number
}

/** `random(0, min(cap, base * 2^attempt))`; `attempt` counts from 0. */
export function fullJitter (attempt: number, options: BackoffOptions, random: () => number): number {
  // 2^31 already passes any sane cap; the bound keeps the power finite.
  const window = Math.min(options.cap, options.base * 2 ** Math.min(attempt, 31))
  return Math.floor(random() * window)
}
