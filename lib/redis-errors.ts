// The app's Redis client and its 'error' event. An ioredis client with no
// 'error' listener (the one @fastify/redis creates has none) prints
// "[ioredis] Unhandled error event" with a stack on every failed reconnect
// during an outage. fastify-realtime copes with the outage by itself (the
// store fails open, the adapter delivers locally), so when the client given to
// a RedisStore or RedisAdapter has no listener, one is added that logs one
// warning per outage; the app's own listener, when it has one, is left alone.
import type { FastifyBaseLogger } from 'fastify'

interface Emitter {
  on (event: string, listener: (...args: any[]) => void): unknown
  removeListener (event: string, listener: (...args: any[]) => void): unknown
  listenerCount (event: string): number
}

function isEmitter (value: unknown): value is Emitter {
  const e = value as Partial<Emitter> | null | undefined
  return typeof e?.on === 'function' && typeof e.removeListener === 'function' && typeof e.listenerCount === 'function'
}

/**
 * Adds an 'error' listener (and a 'ready' one, to learn the outage ended) to each Redis client held by
 * `holders` (a RedisStore's or RedisAdapter's `client`) that has none. Returns what removes them.
 */
export function watchClientErrors (holders: readonly unknown[], log: FastifyBaseLogger): () => void {
  const clients = new Set<Emitter>()
  for (const holder of holders) {
    const client = (holder as { client?: unknown } | null | undefined)?.client
    if (isEmitter(client) && client.listenerCount('error') === 0) clients.add(client)
  }
  const detach: Array<() => void> = []
  for (const client of clients) {
    let down = false
    const onError = (err: Error): void => {
      if (down) return
      down = true
      log.warn({ err }, 'Redis client error: fastify-realtime keeps serving (see README, "When Redis fails"); ' +
        'this warning is logged once per outage because the client had no \'error\' listener')
    }
    const onReady = (): void => {
      if (down) log.info('Redis client ready again')
      down = false
    }
    client.on('error', onError)
    client.on('ready', onReady)
    detach.push(() => {
      client.removeListener('error', onError)
      client.removeListener('ready', onReady)
    })
  }
  return () => { for (const fn of detach.splice(0)) fn() }
}
