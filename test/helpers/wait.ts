// Waiting, in one place. `until` polls a condition that another side of a
// socket (or another process) makes true; `within` bounds a promise of an
// event. The bounds are generous: they only catch a hang, never a slow machine.
// Prefer awaiting the event itself (`once`, a client's `next`) where one exists.

/** Resolves once `check` holds, looking after every `step` ms; fails after `timeout` ms naming `what`. */
export async function until (check: () => boolean | Promise<boolean>, what = 'condition', timeout = 20_000, step = 5): Promise<void> {
  const deadline = Date.now() + timeout
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, step))
  }
}

/**
 * The promise, or a rejection naming `what` after `timeout` ms. Our own timers are unref'd and injectWS
 * streams hold no handle, so a test waiting only on them would let the process exit; this ref'd timer
 * keeps it alive.
 */
export function within<T> (promise: Promise<T>, what = 'result', timeout = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no ${what} within ${timeout} ms`)), timeout) })
  ]).finally(() => clearTimeout(timer))
}

/**
 * Waits until the wall clock is just past a whole second. A JWT's `exp` is in whole seconds, so a token signed
 * for 1 s at 12:00:00.990 expires 10 ms later; signed right after this, it lives about a full second.
 */
export async function startOfSecond (): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5))
}
