// Contender: this plugin, imported from the build (dist/) so the figures are those of the shipped code.
// Started with --adapter memory (default) or --adapter redis --redis URL. When the build or a feature the
// scenario needs is missing, the server reports "skip" with the reason instead of failing the whole run.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import { schemas } from './schemas.mjs'
import { options, serve, Skip } from './common.mjs'

const DIST = new URL('../../dist/index.js', import.meta.url)
const REDIS_ADAPTER = new URL('../../dist/lib/adapters/redis.js', import.meta.url)

// SLOT: the Redis fan-out adapter (option `adapter`, a FanoutAdapter). Returns the plugin options that carry
// room broadcasts through Redis at `url`, and how to release what it opened. Written against the expected
// shape (a RedisAdapter class exported by the package, taking ioredis clients for publishing and
// subscribing); when lib/adapters/redis.ts lands, align this one function with its documented options.
async function redisAdapterOptions (url) {
  const root = await import(DIST)
  const fromModule = existsSync(REDIS_ADAPTER) ? await import(REDIS_ADAPTER) : {}
  const RedisAdapter = root.RedisAdapter ?? fromModule.RedisAdapter
  if (typeof RedisAdapter !== 'function') throw new Skip('Redis adapter not built yet (no RedisAdapter in dist/)')
  const { Redis } = await import('ioredis')
  const publisher = new Redis(url)
  const subscriber = new Redis(url)
  let adapter
  try {
    adapter = new RedisAdapter({ publisher, subscriber })
  } catch (err) {
    await Promise.allSettled([publisher.quit(), subscriber.quit()])
    throw new Skip(`RedisAdapter options differ from the bench's guess: ${err.message}`)
  }
  return {
    pluginOptions: { adapter },
    close: () => Promise.allSettled([publisher.quit(), subscriber.quit()])
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

  const app = Fastify({ logger: false })
  try {
    await app.register(realtime, { ...BENCH_OPTIONS, ...redis?.pluginOptions })
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
    features: { rooms, redis: Boolean(redis), stats: typeof app.realtime.stats === 'function' },
    async close () {
      await app.close()
      await redis?.close()
    }
  }
})
