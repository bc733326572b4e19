import t, { type Test } from 'tap'
import Fastify from 'fastify'
import Type from 'typebox'
import { Redis } from 'ioredis'
import { realtimeApp, registeredApp } from './helpers/app.js'
import realtime, { defineRoute, type RealtimeOptions } from '../index.js'
import { connect } from '../lib/testing.js'
import { RedisStore } from '../lib/stores/redis.js'
import { startRedisServer } from './helpers/redis-server.js'
import { until } from './helpers/wait.js'
import type { RateLimitStore } from '../types/store.js'

function counting () {
  const seen: Record<string, number> = { say: 0, typing: 0, upload: 0 }
  const route = defineRoute({
    messages: {
      say: { schema: Type.String(), handler: () => { seen.say++ } },
      typing: { schema: Type.Null(), rateLimit: { rate: 1, burst: 2 }, handler: () => { seen.typing++ } },
      upload: { schema: Type.Null(), rateLimit: { cost: 10 }, handler: () => { seen.upload++ } },
      expensive: {
        schema: Type.Null(),
        handler: async (conn) => { await conn.consume('expensive', { rate: 1, burst: 1 }); return 'done' }
      }
    }
  })
  return { seen, route }
}

async function build (t: Test, options: RealtimeOptions = {}, routeLimit?: object) {
  const { seen, route } = counting()
  const app = await realtimeApp(t, { options, userFromHeader: true, routes: { '/r': { ...route, rateLimit: routeLimit as never } } })
  return { app, seen }
}

t.test('a flood of 1,000 messages processes at most burst + rate and closes with 4429', async (t) => {
  const { app, seen } = await build(t)
  const client = await connect(app, '/r')
  const started = performance.now()
  for (let i = 0; i < 1000; i++) client.sendRaw(JSON.stringify({ type: 'say', data: 'x', id: i }))
  const { code, reason } = await client.closed
  const seconds = (performance.now() - started) / 1000
  t.equal(code, 4429)
  t.equal(reason, 'Rate limit exceeded')
  // Defaults: burst 100, 50/s; a slow machine only earns the limiter more refill, which the bound allows.
  t.ok(seen.say >= 100, `the burst went through (${seen.say})`)
  t.ok(seen.say <= 100 + Math.ceil(50 * seconds) + 1, `no more than burst + rate x ${seconds.toFixed(3)} s (${seen.say})`)
  const refusal = client.received.find((m) => m.type === 'error')
  t.match(refusal, { id: Number, error: { code: 'rate_limited', message: 'Too many messages' } })
  t.ok(refusal.error.retryAfter > 0 && refusal.error.retryAfter <= 20, `retryAfter ${refusal.error.retryAfter} ms`)
  t.equal(client.received.filter((m) => m.type === 'error').length, 21, 'budget 20 + the refusal that broke it')
  await until(() => app.realtime.stats().connections === 0)
  t.ok(app.realtime.stats().rateLimited >= 21)
})

t.test('rate and burst are configurable per plugin and per route; pings count', async (t) => {
  const { app, seen } = await build(t, { rateLimit: { rate: 1, burst: 5, budget: 100 } }, { burst: 3 })
  const client = await connect(app, '/r')
  client.sendRaw('{"type":"ping"}')
  client.send('say', 'a')
  client.send('say', 'b')
  client.send('say', 'c')
  const refusal = await client.next('error')
  t.equal(refusal.error.code, 'rate_limited')
  t.equal(seen.say, 2, 'the route burst of 3 was one ping and two messages')
})

t.test('per-type limits and costs apply independently', async (t) => {
  const { app, seen } = await build(t, { rateLimit: { rate: 1, burst: 25, budget: 100 } })
  const client = await connect(app, '/r')
  for (let i = 0; i < 4; i++) client.send('typing', null)
  for (let i = 0; i < 3; i++) client.send('upload', null)
  client.send('say', 'still fine')
  await client.next('error')
  await client.next('error')
  await client.next('error')
  await until(() => seen.say === 1, 'the say to be processed')
  t.equal(seen.typing, 2, 'typing has its own burst of 2')
  t.equal(seen.upload, 2, 'an upload costs 10 of the 25 (2 typing took 2, 2 uploads 20)')
  t.equal(client.received.filter((m) => m.type === 'error').length, 3)
})

t.test('a typed message refused by the connection bucket takes nothing from its own', async (t) => {
  const { app, seen } = await build(t, { rateLimit: { rate: 0.001, burst: 1, budget: 100 } })
  const client = await connect(app, '/r')
  t.equal(await client.request('say', 'x'), null)
  t.match(await client.request('typing', null).catch((e) => e), { error: { code: 'rate_limited' } })
  t.equal(seen.typing, 0)
})

t.test('a message\'s cost also applies to the shared bucket', async (t) => {
  const { app, seen } = await build(t, {}, { shared: { key: 'ip', rate: 0.001, burst: 15 } })
  const client = await connect(app, '/r')
  t.equal(await client.request('upload', null), null)
  t.match(await client.request('upload', null).catch((e) => e), { error: { code: 'rate_limited' } }, '10 + 10 > 15')
  t.equal(await client.request('say', 'x'), null, 'a cost-1 message still fits')
  t.equal(seen.upload, 1)
})

t.test('a shared per-user limit holds across a user\'s connections', async (t) => {
  const { app, seen } = await build(t, {}, { shared: { key: 'user', rate: 0.001, burst: 3 } })
  const tab1 = await connect(app, '/r', { headers: { 'x-user': 'ada' } })
  const tab2 = await connect(app, '/r', { headers: { 'x-user': 'ada' } })
  const other = await connect(app, '/r', { headers: { 'x-user': 'bob' } })
  const results = []
  for (const client of [tab1, tab2, tab1, tab2]) {
    results.push(await client.request('say', 'x').then(() => 'ok', (e) => e.error.code))
  }
  t.same(results, ['ok', 'ok', 'ok', 'rate_limited'])
  t.equal(await other.request('say', 'x'), null, 'another user has their own bucket')
  t.equal(seen.say, 4)
})

t.test('conn.consume and app.realtime.rateLimit use the same machinery', async (t) => {
  const { app } = await build(t)
  const client = await connect(app, '/r', { headers: { 'x-user': 'ada' } })
  t.equal(await client.request('expensive', null), 'done')
  const err = await client.request('expensive', null).catch((e) => e)
  t.match(err.error, { code: 'rate_limited', message: 'Too many messages; retry later' })
  t.ok(err.error.retryAfter > 0)
  t.match(await app.realtime.rateLimit('export:ada', { rate: 1, burst: 1 }), { allowed: true })
  t.match(await app.realtime.rateLimit('export:ada', { rate: 1, burst: 1 }), { allowed: false, retryAfter: Number })
})

t.test('rateLimit: false turns every limit off', async (t) => {
  const { app, seen } = await build(t, { rateLimit: false }, { shared: { key: 'ip', rate: 1, burst: 1 } })
  const client = await connect(app, '/r')
  for (let i = 0; i < 500; i++) client.send('say', 'x')
  t.equal(await client.request('expensive', null), 'done')
  t.equal(await client.request('expensive', null), 'done')
  t.equal(seen.say, 500)
  t.same(await app.realtime.rateLimit('k', { rate: 1, burst: 1 }), { allowed: true, remaining: 1, retryAfter: 0 })
})

t.test('a failing store lets messages through, logged and counted, in order', async (t) => {
  let calls = 0
  const broken: RateLimitStore = {
    take: async () => { calls++; throw new Error('store down') }
  }
  const { app, seen } = await build(t, { rateLimit: { store: broken } }, { shared: { key: 'ip', rate: 1, burst: 1 } })
  const client = await connect(app, '/r')
  const replies = await Promise.all([client.request('say', 'a'), client.request('say', 'b')])
  t.same(replies, [null, null])
  t.equal(seen.say, 2)
  t.equal(calls, 2)
  t.equal(app.realtime.stats().rateLimitErrors, 2)
  t.same(client.received.map((m) => m.id), [1, 2], 'acks in order')
})

t.test('a key function decides who shares a bucket; undefined exempts', async (t) => {
  const { app, seen } = await build(t, {}, {
    shared: { key: (conn) => conn.request.headers['x-tenant'] as string | undefined, rate: 0.001, burst: 1 }
  })
  const acme1 = await connect(app, '/r', { headers: { 'x-tenant': 'acme' } })
  const acme2 = await connect(app, '/r', { headers: { 'x-tenant': 'acme' } })
  const exempt = await connect(app, '/r')
  t.equal(await acme1.request('say', 'x'), null)
  t.match(await acme2.request('say', 'x').catch((e) => e), { error: { code: 'rate_limited' } })
  for (let i = 0; i < 3; i++) t.equal(await exempt.request('say', 'x'), null)
  t.equal(seen.say, 4)
})

t.test('a store that throws synchronously is treated like one that rejects', async (t) => {
  const broken: RateLimitStore = { take: () => { throw new Error('boom') } }
  const { app, seen } = await build(t, { rateLimit: { store: broken } }, { shared: { key: 'user', rate: 1, burst: 1 } })
  const client = await connect(app, '/r', { headers: { 'x-user': 'ada' } })
  t.equal(await client.request('say', 'a'), null)
  t.equal(seen.say, 1)
  t.equal(app.realtime.stats().rateLimitErrors, 1)
})

t.test('bad limits fail at register or declaration with coded errors', async (t) => {
  for (const rateLimit of [{ rate: 0 }, { burst: -1 }, { budget: 0 }, { store: {} }, { nope: 1 }]) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(realtime, { rateLimit } as never) }, { code: 'FRT_ERR_OPTIONS_INVALID' }, JSON.stringify(rateLimit))
    await app.close()
  }
  const app = await registeredApp(t)
  const messages = { m: { schema: Type.Null(), handler: () => {} } }
  for (const rateLimit of [5, { rate: 'fast' }, { shared: { key: 'user', rate: 1 } }, { shared: { key: 'nope', rate: 1, burst: 1 } }]) {
    t.throws(() => app.realtime('/bad', { messages, rateLimit } as never), { code: 'FRT_ERR_ROUTE_INVALID' }, JSON.stringify(rateLimit))
  }
  for (const rateLimit of [{ rate: 1 }, { cost: 0 }, { cost: Infinity }]) {
    t.throws(() => app.realtime('/bad', { messages: { m: { ...messages.m, rateLimit } } } as never), { code: 'FRT_ERR_ROUTE_INVALID' }, JSON.stringify(rateLimit))
  }
})

t.test('on a RedisStore, a shared limit holds across two app instances', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const clients = [new Redis(redis.port, redis.host), new Redis(redis.port, redis.host)]
  t.teardown(() => Promise.all(clients.map((c) => c.quit())))
  const apps = []
  for (const client of clients) {
    const { app, seen } = await build(t, { rateLimit: { store: new RedisStore({ client }) } },
      { shared: { key: 'user', rate: 0.001, burst: 4 } })
    apps.push({ app, seen })
  }
  const sockets = await Promise.all(apps.map(({ app }) => connect(app, '/r', { headers: { 'x-user': 'ada' } })))
  const results = []
  for (let i = 0; i < 6; i++) {
    results.push(await sockets[i % 2].request('say', 'x').then(() => 'ok', (e) => e.error.code))
  }
  t.same(results, ['ok', 'ok', 'ok', 'ok', 'rate_limited', 'rate_limited'])
  t.equal(apps[0].seen.say + apps[1].seen.say, 4, 'one budget for both instances')
  t.equal(clients[0].status, 'ready', 'the store never quits the app\'s client')
})

// One queue owner: frames that arrive while the store answers, then while an async authorize
// answers, all wait and reach the handler in order (they were once dropped between the two steps).
for (const failing of [false, true]) {
  t.test(`an async shared limit then an async authorize keep every message, in order (store ${failing ? 'failing' : 'answering'})`, async (t) => {
    const order: string[] = []
    const store: RateLimitStore = {
      take: async () => {
        if (failing) throw new Error('store down')
        return { allowed: true, remaining: 9, retryAfter: 0 }
      }
    }
    const app = await realtimeApp(t, {
      options: { rateLimit: { store } },
      routes: {
        '/r': {
          rateLimit: { shared: { key: 'ip', rate: 1, burst: 10 } },
          authorize: async () => true,
          messages: { say: { schema: Type.String(), handler: (_conn: unknown, data: string) => { order.push(data) } } }
        }
      }
    })
    const client = await connect(app, '/r')
    const replies = await Promise.all(['a', 'b', 'c'].map((text) => client.request('say', text)))
    t.same(replies, [null, null, null])
    t.same(order, ['a', 'b', 'c'])
    t.equal(app.realtime.stats().rateLimitErrors, failing ? 3 : 0)
  })
}
