// Contender: this plugin, imported from the build (dist/) so the figures are those of the shipped code.
// Started with --adapter memory (default) or --adapter redis --redis URL; --history turns room history on,
// --metrics the Prometheus metrics (a prom-client Registry nobody scrapes during the run). When the build or a feature the
// scenario needs is missing, the server reports "skip" with the reason instead of failing the whole run.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { schemas } from './schemas.mjs'
import { options, serve, Skip } from './common.mjs'

const DIST = new URL('../../dist/index.js', import.meta.url)
const REDIS_ADAPTER = new URL('../../dist/lib/adapters/redis.js', import.meta.url)

// The Redis fan-out adapter (option `adapter`): a RedisAdapter on the app's own ioredis client, as an app
// gets it from @fastify/redis. The adapter opens its subscriber connection itself (client.duplicate()) and
// closes it with the app; the client is ours to quit, after the app has closed.
async function redisAdapterOptions (url) {
  const root = await import(DIST)
  const fromModule = existsSync(REDIS_ADAPTER) ? await import(REDIS_ADAPTER) : {}
  const RedisAdapter = root.RedisAdapter ?? fromModule.RedisAdapter
  if (typeof RedisAdapter !== 'function') throw new Skip('Redis adapter not built yet (no RedisAdapter in dist/)')
  const { Redis } = await import('ioredis')
  const client = new Redis(url)
  client.on('error', () => {})
  await new Promise((resolve, reject) => {
    client.once('ready', resolve)
    client.once('end', () => reject(new Skip(`Redis at ${url} is not reachable`)))
  })
  let adapter
  try {
    // With --history each room's messages are numbered, kept in a Stream and published by one script.
    adapter = new RedisAdapter({ client, ...(options.history ? { history: {} } : {}) })
  } catch (err) {
    client.disconnect()
    throw new Skip(`RedisAdapter refused its options: ${err.message}`)
  }
  return {
    pluginOptions: { adapter },
    close: () => client.quit().catch(() => client.disconnect())
  }
}

// The defaults, except that the per-connection rate limit (50 messages/s) is raised out of the way: the
// bench's publisher sends thousands a second, and the baselines refuse nothing. The bucket is still taken
// on every message, so its cost stays in the figures ((f) measures it on its own).
const BENCH_OPTIONS = { rateLimit: { rate: 1e9, burst: 1e9 } }

await serve(async () => {
  if (!existsSync(DIST)) throw new Skip(`plugin not built (${fileURLToPath(DIST)} missing)`)
  const { default: realtime } = await import(DIST)
  const redis = options.adapter === 'redis' ? await redisAdapterOptions(options.redis) : null

  const metrics = options.metrics ? { metrics: { registry: new (await import('prom-client')).Registry() } } : {}

  const app = Fastify({ logger: false })
  try {
    await app.register(realtime, { ...BENCH_OPTIONS, ...redis?.pluginOptions, ...(options.history ? { history: {} } : {}), ...metrics })
  } catch (err) {
    await redis?.close()
    throw new Skip(`register failed: ${err.message}`)
  }
  let rooms = typeof app.realtime.to === 'function'
  app.realtime('/ws', {
    messages: {
      join: {
        schema: schemas.join,
        handler: (conn, data) => {
          if (typeof conn.join !== 'function') return { rooms: false }
          return conn.join(data.room)
        }
      },
      pub: {
        schema: schemas.pub,
        handler: (conn, data) => { app.realtime.to(data.room).emit('msg', { t: data.t, body: data.body }) }
      },
      echo: { schema: schemas.echo, handler: (conn, data) => data }
    },
    emits: { msg: schemas.msg }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  rooms = rooms && typeof app.realtime.to === 'function'
  return {
    port: app.server.address().port,
    features: { rooms, redis: Boolean(redis), stats: typeof app.realtime.stats === 'function', metrics: Boolean(options.metrics) },
    async close () {
      await app.close()
      await redis?.close()
    }
  }
})
