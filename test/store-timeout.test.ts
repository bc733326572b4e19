// A dead or hung Redis behind a shared rate limit: frames wait at most `rateLimit.storeTimeout`, then the
// documented fail-open policy applies. The client is an ioredis client with default options, as
// @fastify/redis makes it (offline queue on, 20 retries per request: ~73 s before a command fails).
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import Type from 'typebox'
import { Redis } from 'ioredis'
import realtime, { RedisStore, type RouteDefinition } from '../index.js'
import { connect } from '../lib/testing.js'
import { BoundedStore } from '../lib/timeout.js'
import { startRedisServer, type RedisServer } from './helpers/redis-server.js'
import { within } from './helpers/wait.js'

const STORE_TIMEOUT = 300
const route = {
  rateLimit: { shared: { key: 'ip', rate: 1000, burst: 1000 } },
  messages: { echo: { schema: Type.String(), handler: (_conn, data) => data } }
} satisfies RouteDefinition<any, any>

async function build (t: Test, redis: RedisServer) {
  const client = new Redis(redis.url)
  // The app's own listener (README: Scaling out); without one ioredis prints "Unhandled error event".
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { rateLimit: { store: new RedisStore({ client }), storeTimeout: STORE_TIMEOUT } })
  app.realtime('/ws', route)
  await app.ready()
  return app
}

for (const signal of ['SIGKILL', 'SIGSTOP'] as const) {
  t.test(`Redis ${signal === 'SIGKILL' ? 'killed' : 'hung'}: frames wait at most storeTimeout, then go through`, async (t) => {
    const redis = await startRedisServer()
    t.teardown(() => redis.stop())
    const app = await build(t, redis)
    const client = await connect<typeof route>(app, '/ws')
    t.equal(await client.request('echo', 'before'), 'before', 'Redis answers')
    await redis.kill(signal)
    const started = performance.now()
    const first = client.request('echo', 'during', { timeout: 10_000 })
    client.sendRaw('{"type":"ping"}')
    const second = client.request('echo', 'behind it', { timeout: 10_000 })
    t.equal(await within(first), 'during', 'let through (fail-open)')
    t.equal(await within(second), 'behind it')
    await within(client.next('pong', { timeout: 10_000 }))
    const waited = performance.now() - started
    t.ok(waited >= STORE_TIMEOUT - 20, `waited for the store (${Math.round(waited)} ms)`)
    // The frames behind the first fail fast: the store is down while the first call is unanswered.
    t.ok(waited < STORE_TIMEOUT + 250, `but not longer than storeTimeout (${Math.round(waited)} ms)`)
    let errors = app.realtime.stats().rateLimitErrors
    t.equal(errors, 2, 'both counted as store failures')
    // Back: the next call probes the store, and shared limits count in Redis again.
    await (signal === 'SIGSTOP' ? redis.kill('SIGCONT') : redis.restart())
    let answered = false
    while (!answered) {
      t.equal(await within(client.request('echo', 'probe', { timeout: 10_000 })), 'probe')
      answered = app.realtime.stats().rateLimitErrors === errors
      errors = app.realtime.stats().rateLimitErrors
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    t.pass('the store answers again')
    await client.close()
  })
}

t.test('the bound: late answers are ignored, a down store fails fast until it answers, close rejects what waits', async (t) => {
  // The bound's timer is unref'd (it must not keep an app alive): hold the event loop open for this test.
  const hold = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(hold))
  type Result = { allowed: boolean, remaining: number, retryAfter: number }
  const ok: Result = { allowed: true, remaining: 0, retryAfter: 0 }
  const releases: Array<(value: Result) => void> = []
  const slow = { take: () => new Promise<Result>((resolve) => { releases.push(resolve) }) }
  const bounded = new BoundedStore(slow, 50)
  await t.rejects(bounded.take('k', 1, 1) as Promise<unknown>, { code: 'FRT_ERR_STORE_TIMEOUT', statusCode: 503 })
  t.equal(bounded.down, true)
  await t.rejects(bounded.take('k', 1, 1) as Promise<unknown>, { code: 'FRT_ERR_STORE_TIMEOUT' }, 'fails fast while the first is unanswered')
  t.equal(releases.length, 2, 'the store was still asked')
  releases[0](ok)
  releases[1](ok)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(bounded.down, false, 'an answer, even late, brings it back')
  const fast = bounded.take('k', 1, 1)
  releases[2](ok)
  t.same(await fast, ok)

  const failing = new BoundedStore({ take: async () => { throw new Error('down') } }, 50)
  await t.rejects(failing.take('k', 1, 1) as Promise<unknown>, { message: 'down' })
  t.equal(failing.down, false, 'an error reply is an answer')

  // A call refused while down is still made; its late failure is swallowed, not an unhandled rejection.
  const flaky = new BoundedStore({ take: () => new Promise<Result>((_resolve, reject) => setTimeout(() => reject(new Error('late')), 60)) }, 20)
  await t.rejects(flaky.take('k', 1, 1) as Promise<unknown>, { code: 'FRT_ERR_STORE_TIMEOUT' })
  await t.rejects(flaky.take('k', 1, 1) as Promise<unknown>, { code: 'FRT_ERR_STORE_TIMEOUT' })
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(flaky.down, false)

  // Many calls in flight: one timer expires them in deadline order, compacting the queue as it drains.
  // (Outcomes are taken at once: a call failed fast must not sit unhandled while the test waits.)
  const pile = new BoundedStore(slow, 1000)
  const waits: Array<Promise<string>> = []
  const take = (): Promise<string> => (pile.take('k', 1, 1) as Promise<unknown>).then(() => 'answered', () => 'timed out')
  for (let i = 0; i < 1500; i++) waits.push(take())
  await new Promise((resolve) => setTimeout(resolve, 300))
  for (let i = 0; i < 1500; i++) waits.push(take())
  t.equal(pile.waiting, 3000)
  const outcomes = await Promise.all(waits)
  t.equal(outcomes.filter((o) => o === 'timed out').length, 3000)
  t.equal(pile.waiting, 0)

  const held = new BoundedStore(slow, 60_000)
  const pending = held.take('k', 1, 1) as Promise<unknown>
  held.close()
  held.close()
  await t.rejects(pending, { code: 'FRT_ERR_STORE_TIMEOUT' })
  t.equal(held.waiting, 0)
})
