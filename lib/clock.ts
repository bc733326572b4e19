// A coarse clock for the per-connection token buckets: every inbound frame takes from a bucket, and reading
// performance.now() for each (a call into the runtime) is work the bucket does not need at sub-millisecond
// precision. One interval timer brings the value up to date every RESOLUTION_MS while frames are read and
// stops itself after a quiet interval, so an idle server wakes for nothing.
//
// Precision: the value lags the real clock by at most RESOLUTION_MS (plus timer lateness under load). A
// bucket refills lazily from the time between two takes, so a lagging clock delays refill by that much
// and never loses or invents tokens; a retryAfter can be up to RESOLUTION_MS short.

/** How often the clock is brought up to date while it is read, in ms. */
export const RESOLUTION_MS = 10

let current = 0
let read = false
let timer: ReturnType<typeof setInterval> | null = null

/** Milliseconds on performance.now()'s scale, at most RESOLUTION_MS old. */
export function coarseNow (): number {
  if (timer === null) {
    current = performance.now()
    timer = setInterval(tick, RESOLUTION_MS)
    timer.unref()
  }
  read = true
  return current
}

function tick (): void {
  if (!read) {
    clearInterval(timer as ReturnType<typeof setInterval>)
    timer = null
    return
  }
  read = false
  current = performance.now()
}
