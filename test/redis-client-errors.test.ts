// The app's Redis client without an 'error' listener (as @fastify/redis makes it): one warning per outage
// from us instead of ioredis's "[ioredis] Unhandled error event" on every reconnect.
import t from 'tap'
import Fastify from 'fastify'
import Type from 'typebox'
import { Redis } from 'ioredis'
import realtime, { RedisAdapter, RedisStore } from '../index.js'
import { connect } from '../lib/testing.js'
import { startRedisServer } from './helpers/redis-server.js'
import { logCollector } from './helpers/upgrade.js'
import { until } from './helpers/wait.js'

t.test('a client with no error listener gets ours: one warn per outage, info when back, removed on close', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const printed: unknown[] = []
  const original = console.error
  console.error = (...args: unknown[]) => { printed.push(args) }
  t.teardown(() => { console.error = original })
  const logs = logCollector()
  const app = Fastify({ logger: { stream: logs } })
  await app.register(realtime, {
    rateLimit: { store: new RedisStore({ client }), storeTimeout: 200 },
    adapter: new RedisAdapter({ client })
  })
  app.realtime('/ws', {
    rateLimit: { shared: { key: 'ip', rate: 100, burst: 100 } },
    messages: { echo: { schema: Type.String(), handler: (_conn, data) => data } }
  })
  await app.ready()
  t.equal(client.listenerCount('error'), 1, 'one listener for the store and the adapter')
  const ws = await connect(app, '/ws')
  await redis.kill('SIGKILL')
  await until(() => logs.lines.some((l) => l.includes('Redis client error')), 'the warning')
  // Let ioredis fail to reconnect a few more times.
  await new Promise((resolve) => setTimeout(resolve, 300))
  const warnings = logs.lines.filter((l) => l.includes('Redis client error'))
  t.equal(warnings.length, 1, 'one warning for the outage')
  t.equal(JSON.parse(warnings[0]).level, 40)
  await redis.restart()
  await until(() => logs.lines.some((l) => l.includes('Redis client ready again')), 'the all-clear')
  t.same(printed.filter((args) => String((args as unknown[])[0]).includes('[ioredis]')), [], 'ioredis printed nothing')
  await ws.close()
  await app.close()
  t.equal(client.listenerCount('error'), 0, 'removed on close')
})

t.test("the app's own listener is left alone", async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const mine = (): void => {}
  client.on('error', mine)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { rateLimit: { store: new RedisStore({ client }) } })
  await app.ready()
  t.same(client.listeners('error'), [mine])
})
