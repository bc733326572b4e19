// The rate-limit stores. One suite, storeSuite(), runs against every store:
// the memory store on an injected clock, and the Redis store on a real
// redis-server and on a real Redis Cluster. Then each store's own concerns.
//
// Time: the memory store's clock is injected, so its numbers are exact. Redis
// uses its own clock, so the Redis runs let real time pass, and every
// assertion is one that a slow machine cannot break: denials are asserted only
// with rates so slow (one token per 1000 s) that no test lasts long enough to
// refill one, and refills only after a sleep long enough to guarantee them.
import t, { type Test } from 'tap'
import { Clock } from '@tapjs/clock'
import { Cluster, Redis } from 'ioredis'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemoryStore } from '../lib/stores/memory.js'
import { RedisStore } from '../lib/stores/redis.js'
import type { RateLimitResult, RateLimitStore } from '../types/store.js'
import { startRedisCluster, startRedisServer } from './helpers/redis-server.js'

/** One token per 1000 s: nothing refills within a test, however slow the machine. */
const SLOW = 0.001
const SLOW_TOKEN_MS = 1000 / SLOW

interface StoreUnderTest {
  store: RateLimitStore
  /** Let at least `ms` pass on the store's clock. */
  advance (ms: number): Promise<void>
}

interface Target {
  name: string
  /** Whether the store's clock stands still between takes (an injected clock). */
  exact: boolean
  make (t: Test): Promise<StoreUnderTest>
}

/**
 * `actual` is `expected`, or a little less on a store whose clock runs while the test does (so some
 * refill happened): never more, and never less by more than 10 %.
 */
function nearly (t: Test, target: Target, actual: number, expected: number, message: string): void {
  if (target.exact) t.equal(actual, expected, message)
  else t.ok(actual <= expected && actual >= expected * 0.9, `${message} (${actual} ~ ${expected})`)
}

function storeSuite (t: Test, target: Target): void {
  const take = async (store: RateLimitStore, key: string, rate: number, burst: number, cost?: number): Promise<RateLimitResult> =>
    store.take(key, rate, burst, cost)

  t.test('a new bucket is full: burst takes are allowed, then denied', async t => {
    const { store } = await target.make(t)
    for (const remaining of [2, 1, 0]) {
      t.same(await take(store, 'k', SLOW, 3), { allowed: true, remaining, retryAfter: 0 })
    }
    const denied = await take(store, 'k', SLOW, 3)
    t.equal(denied.allowed, false)
    t.equal(denied.remaining, 0)
    nearly(t, target, denied.retryAfter, SLOW_TOKEN_MS, 'retryAfter is the time to refill one token')
  })

  t.test('a denied take consumes nothing', async t => {
    const { store } = await target.make(t)
    t.same(await take(store, 'k', SLOW, 3, 2), { allowed: true, remaining: 1, retryAfter: 0 })
    const denied = await take(store, 'k', SLOW, 3, 2)
    t.equal(denied.allowed, false)
    t.equal(denied.remaining, 1, 'the token is still there')
    nearly(t, target, denied.retryAfter, SLOW_TOKEN_MS, 'one more token is needed')
    t.same(await take(store, 'k', SLOW, 3, 1), { allowed: true, remaining: 0, retryAfter: 0 }, 'and can be taken')
  })

  t.test('a take may cost more than one token', async t => {
    const { store } = await target.make(t)
    t.same(await take(store, 'k', SLOW, 10, 4), { allowed: true, remaining: 6, retryAfter: 0 })
    t.same(await take(store, 'k', SLOW, 10, 4), { allowed: true, remaining: 2, retryAfter: 0 })
    const denied = await take(store, 'k', SLOW, 10, 4)
    t.equal(denied.allowed, false)
    nearly(t, target, denied.retryAfter, 2 * SLOW_TOKEN_MS, 'two more tokens are needed')
    t.same(await take(store, 'k', SLOW, 10, 2), { allowed: true, remaining: 0, retryAfter: 0 })
  })

  t.test('a cost above burst is never allowed, and consumes nothing', async t => {
    const { store } = await target.make(t)
    const denied = await take(store, 'k', SLOW, 2, 3)
    t.equal(denied.allowed, false)
    t.equal(denied.remaining, 2)
    t.ok(denied.retryAfter > 0)
    t.same(await take(store, 'k', SLOW, 2, 2), { allowed: true, remaining: 0, retryAfter: 0 })
  })

  t.test('the default cost is one token', async t => {
    const { store } = await target.make(t)
    t.same(await take(store, 'k', SLOW, 5), { allowed: true, remaining: 4, retryAfter: 0 })
  })

  t.test('keys are independent', async t => {
    const { store } = await target.make(t)
    t.equal((await take(store, 'a', SLOW, 1)).allowed, true)
    t.equal((await take(store, 'a', SLOW, 1)).allowed, false, 'a is empty')
    t.same(await take(store, 'b', SLOW, 2), { allowed: true, remaining: 1, retryAfter: 0 }, 'b is still full')
    t.equal((await take(store, 'a', SLOW, 1)).allowed, false, 'a is still empty')
  })

  t.test('tokens refill over time, at `rate` per second', async t => {
    const { store, advance } = await target.make(t)
    // 10 tokens per second: one every 100 ms.
    t.same(await take(store, 'k', 10, 2, 2), { allowed: true, remaining: 0, retryAfter: 0 })
    const early = await take(store, 'k', 10, 2)
    // On a real clock some time has passed, so this may already be allowed; if it is not, the wait is at most one token's.
    t.ok(early.allowed || (early.retryAfter > 0 && early.retryAfter <= 100), `denied for at most 100 ms (${early.retryAfter})`)
    if (target.exact) t.same(early, { allowed: false, remaining: 0, retryAfter: 100 })
    await advance(250)
    t.same(await take(store, 'k', 10, 2, 2), { allowed: true, remaining: 0, retryAfter: 0 }, 'two tokens after 250 ms')
  })

  t.test('waiting retryAfter is enough', async t => {
    const { store, advance } = await target.make(t)
    let denied: RateLimitResult | undefined
    for (let i = 0; i < 100 && denied === undefined; i++) {
      const result = await take(store, 'k', 10, 1)
      if (!result.allowed) denied = result
    }
    t.ok(denied, 'drained')
    await advance((denied as RateLimitResult).retryAfter)
    t.equal((await take(store, 'k', 10, 1)).allowed, true)
  })

  t.test('refill stops at burst', async t => {
    const { store, advance } = await target.make(t)
    t.same(await take(store, 'k', 10, 2, 2), { allowed: true, remaining: 0, retryAfter: 0 })
    await advance(600)
    // Six tokens' worth of time, but the bucket holds two: nothing is left after taking two.
    t.same(await take(store, 'k', 10, 2, 2), { allowed: true, remaining: 0, retryAfter: 0 })
    t.equal((await take(store, 'k', SLOW, 2, 2)).allowed, false)
  })

  t.test('remaining counts whole tokens', async t => {
    const { store, advance } = await target.make(t)
    t.same(await take(store, 'k', 10, 3, 3), { allowed: true, remaining: 0, retryAfter: 0 })
    await advance(150)
    // 1.5 tokens (a little more on a real clock, less than 3 in any case).
    const result = await take(store, 'k', 10, 3)
    t.equal(result.allowed, true)
    t.equal(Number.isInteger(result.remaining), true)
    t.ok(result.remaining >= 0 && result.remaining <= 1, `remaining ${result.remaining}`)
    if (target.exact) t.equal(result.remaining, 0, '0.5 left, floored')
  })

  t.test('close() can be called, twice', async t => {
    const { store } = await target.make(t)
    await t.resolves(async () => { await store.close?.() }, 'once')
    await t.resolves(async () => { await store.close?.() }, 'twice')
  })
}

// --- the targets ---------------------------------------------------------------

t.test('MemoryStore', async t => {
  storeSuite(t, {
    name: 'memory',
    exact: true,
    async make (t) {
      let now = 1_000_000
      const store = new MemoryStore({ now: () => now })
      t.teardown(() => store.close())
      return { store, advance: async ms => { now += ms } }
    }
  })
})

const redis = await startRedisServer()
t.teardown(() => redis.stop())
const cluster = await startRedisCluster()
t.teardown(() => cluster.stop())

// Redis's clock runs on its own: a sleep, with a margin for timers that fire a little early.
const realAdvance = (ms: number): Promise<void> => sleep(ms + 10)
let bucketPrefix = 0
const newPrefix = (): string => `test:${++bucketPrefix}:`

t.test('RedisStore on a redis-server', async t => {
  const client = new Redis(redis.url)
  t.teardown(() => client.quit())
  storeSuite(t, {
    name: 'redis',
    exact: false,
    async make () {
      return { store: new RedisStore({ client, prefix: newPrefix() }), advance: realAdvance }
    }
  })
})

t.test('RedisStore on a Redis Cluster', async t => {
  const client = new Cluster(cluster.nodes)
  t.teardown(() => client.quit())
  storeSuite(t, {
    name: 'redis cluster',
    exact: false,
    async make () {
      return { store: new RedisStore({ client, prefix: newPrefix() }), advance: realAdvance }
    }
  })
})

// --- MemoryStore on its own ----------------------------------------------------

t.test('MemoryStore: take is synchronous', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const result = store.take('k', 1, 1)
  t.not(typeof (result as unknown as Promise<unknown>).then, 'function', 'not a promise')
  t.same(result, { allowed: true, remaining: 0, retryAfter: 0 })
})

t.test('MemoryStore: the default clock is performance.now()', async t => {
  const clock = new Clock()
  t.teardown(clock.enter())
  const store = new MemoryStore({ sweepInterval: 0 })
  t.same(store.take('k', 1, 1), { allowed: true, remaining: 0, retryAfter: 0 })
  t.same(store.take('k', 1, 1), { allowed: false, remaining: 0, retryAfter: 1000 })
  clock.advance(750)
  t.same(store.take('k', 1, 1), { allowed: false, remaining: 0, retryAfter: 250 })
  clock.advance(250)
  t.same(store.take('k', 1, 1), { allowed: true, remaining: 0, retryAfter: 0 })
})

t.test('MemoryStore: a clock that goes back refills nothing and takes nothing', async t => {
  let now = 10_000
  const store = new MemoryStore({ now: () => now, sweepInterval: 0 })
  t.same(store.take('k', 1, 3, 2), { allowed: true, remaining: 1, retryAfter: 0 })
  now = 5_000
  t.same(store.take('k', 1, 3), { allowed: true, remaining: 0, retryAfter: 0 })
  now = 10_000
  t.same(store.take('k', 1, 3), { allowed: false, remaining: 0, retryAfter: 1000 }, 'no refill for the time it went back')
  now = 11_000
  t.same(store.take('k', 1, 3), { allowed: true, remaining: 0, retryAfter: 0 })
})

t.test('MemoryStore: beyond maxKeys the least recently used bucket is dropped', async t => {
  const store = new MemoryStore({ maxKeys: 3, now: () => 0, sweepInterval: 0 })
  // burst 1 and no refill: a kept bucket is empty, a dropped one comes back full.
  const empty = (key: string): boolean => !store.take(key, SLOW, 1).allowed
  for (const key of ['a', 'b', 'c']) t.equal(empty(key), false, `${key} taken`)
  t.equal(store.size, 3)
  t.equal(empty('a'), true, 'a, the oldest, is touched')       // order: b c a
  t.equal(empty('c'), true, 'c, in the middle, is touched')    // order: b a c
  t.equal(empty('c'), true, 'c, the newest, is touched again') // order: b a c
  t.equal(empty('d'), false, 'd is new')                       // b dropped: a c d
  t.equal(store.size, 3)
  t.equal(empty('b'), false, 'b was dropped, so it is full again') // a dropped: c d b
  t.equal(empty('c'), true, 'c was kept')                      // d b c
  t.equal(empty('d'), true, 'd was kept')                      // b c d
  t.equal(empty('a'), false, 'a was dropped after b came back')
  t.equal(store.size, 3)
})

t.test('MemoryStore: memory stays bounded with 100,000 distinct keys', async t => {
  let now = 0
  const store = new MemoryStore({ now: () => now, sweepInterval: 0 })
  let largest = 0
  for (let i = 0; i < 150_000; i++) {
    now += 0.01
    store.take(`client-${i}`, SLOW, 2)
    if (store.size > largest) largest = store.size
  }
  t.equal(largest, 100_000, 'never more than the default maxKeys')
  t.equal(store.take('client-149999', SLOW, 2).remaining, 0, 'a recent bucket is kept')
  t.equal(store.take('client-0', SLOW, 2).remaining, 1, 'an old bucket was dropped, so it starts full')

  const small = new MemoryStore({ maxKeys: 1000, now: () => now, sweepInterval: 0 })
  for (let i = 0; i < 100_000; i++) small.take(`client-${i}`, SLOW, 2)
  t.equal(small.size, 1000)
})

t.test('MemoryStore: the sweep drops buckets that are full again', async t => {
  const clock = new Clock()
  t.teardown(clock.enter())
  const store = new MemoryStore({ sweepInterval: 1000 })
  t.teardown(() => store.close())
  // 1 token per second, burst 3: cost 1 refills in 1 s, cost 3 in 3 s.
  for (const [key, cost] of [['a', 1], ['b', 3], ['c', 1], ['d', 3], ['e', 1]] as const) {
    store.take(key, 1, 3, cost)
  }
  t.equal(store.size, 5)
  clock.advance(1000)
  t.equal(store.size, 2, 'a (first), c (middle) and e (last) are full again and dropped')
  t.equal(store.take('b', 1, 3, 3).allowed, false, 'b kept: it is still refilling')
  clock.advance(1000)
  t.equal(store.size, 2, 'b and d not full yet')
  clock.advance(2000)
  t.equal(store.size, 0, 'all full again, all dropped')
  t.same(store.take('a', 1, 3), { allowed: true, remaining: 2, retryAfter: 0 }, 'a dropped bucket starts full')
})

t.test('MemoryStore: sweepInterval 0 turns the sweep off; close() stops it', async t => {
  const clock = new Clock()
  t.teardown(clock.enter())
  const off = new MemoryStore({ sweepInterval: 0 })
  const closed = new MemoryStore({ sweepInterval: 1000 })
  off.take('k', 1, 1)
  closed.take('k', 1, 1)
  closed.close()
  closed.close()
  clock.advance(5000)
  t.equal(off.size, 1, 'no sweep')
  t.equal(closed.size, 1, 'no sweep after close()')
  t.same(closed.take('k', 1, 1), { allowed: true, remaining: 0, retryAfter: 0 }, 'a closed store still counts')
})

t.test('MemoryStore: its sweep timer does not keep the process alive', async t => {
  const timers = (): number => process.getActiveResourcesInfo().filter(type => type === 'Timeout').length
  const before = timers()
  const store = new MemoryStore({ sweepInterval: 10 })
  t.teardown(() => store.close())
  t.equal(timers(), before, 'the timer is unref\'d')
})

t.test('MemoryStore: bad options are rejected with FRT_ERR_STORE_INVALID naming the field', async t => {
  const bad: Array<[unknown, RegExp]> = [
    [null, /options must be an object/],
    ['fast', /options must be an object/],
    [{ maxKeys: 0 }, /maxKeys must be a positive integer, got 0/],
    [{ maxKeys: 1.5 }, /maxKeys/],
    [{ maxKeys: '10' }, /maxKeys/],
    [{ sweepInterval: -1 }, /sweepInterval must be an integer from 0 to 2147483647 \(ms\), got -1/],
    [{ sweepInterval: 2 ** 31 }, /sweepInterval/],
    [{ sweepInterval: 0.5 }, /sweepInterval/],
    [{ now: 0 }, /now must be a function/]
  ]
  for (const [options, message] of bad) {
    t.throws(() => new MemoryStore(options as never), { code: 'FRT_ERR_STORE_INVALID', name: 'FastifyError', message }, message.source)
  }
  t.throws(() => new MemoryStore({ maxKeys: (() => 1) as never }), { message: /got a function/ })
})

// --- RedisStore on its own -----------------------------------------------------

t.test('RedisStore: two instances on two clients share one bucket', async t => {
  const one = new Redis(redis.url)
  const two = new Redis(redis.url)
  t.teardown(() => Promise.all([one.quit(), two.quit()]))
  const prefix = newPrefix()
  const a = new RedisStore({ client: one, prefix })
  const b = new RedisStore({ client: two, prefix })
  t.same(await a.take('user:1', SLOW, 3), { allowed: true, remaining: 2, retryAfter: 0 })
  t.same(await b.take('user:1', SLOW, 3), { allowed: true, remaining: 1, retryAfter: 0 })
  t.same(await a.take('user:1', SLOW, 3), { allowed: true, remaining: 0, retryAfter: 0 })
  t.equal((await b.take('user:1', SLOW, 3)).allowed, false, 'the limit holds across instances')
  t.equal((await a.take('user:1', SLOW, 3)).allowed, false)
})

t.test('RedisStore: stores with different prefixes do not share buckets', async t => {
  const client = new Redis(redis.url)
  t.teardown(() => client.quit())
  const a = new RedisStore({ client, prefix: newPrefix() })
  const b = new RedisStore({ client, prefix: newPrefix() })
  t.equal((await a.take('k', SLOW, 1)).allowed, true)
  t.equal((await b.take('k', SLOW, 1)).allowed, true)
})

t.test('RedisStore: never quits, disconnects or redefines on the caller\'s client', async t => {
  const client = new Redis(redis.url)
  t.teardown(() => client.quit())
  const calls: string[] = []
  for (const method of ['quit', 'disconnect', 'defineCommand'] as const) {
    const original = client[method].bind(client) as (...args: unknown[]) => unknown
    Object.assign(client, { [method]: (...args: unknown[]) => { calls.push(method); return original(...args) } })
  }
  const first = new RedisStore({ client })
  const second = new RedisStore({ client, prefix: 'other:' })
  t.same(calls, ['defineCommand'], 'the script is defined once per client')
  t.equal((await first.take(`${newPrefix()}k`, SLOW, 1)).allowed, true)
  t.equal((await second.take(`${newPrefix()}k`, SLOW, 1)).allowed, true)
  await first.close()
  await second.close()
  t.same(calls, ['defineCommand'], 'no quit, no disconnect')
  t.equal(client.status, 'ready')
  t.equal(await client.ping(), 'PONG', 'the client still works')
})

t.test('RedisStore: the bucket is a hash on the Redis clock that expires when full again', async t => {
  const client = new Redis(redis.url)
  t.teardown(() => client.quit())
  const prefix = newPrefix()
  const store = new RedisStore({ client, prefix })

  await store.take('k', 10, 5, 2)
  const [seconds, micros] = await client.time()
  const hash = await client.hgetall(`${prefix}k`)
  t.same(Object.keys(hash).sort(), ['tokens', 'ts'])
  t.equal(Number(hash.tokens), 3)
  t.ok(Math.abs(Number(hash.ts) - (Number(seconds) * 1000 + Number(micros) / 1000)) < 5000, 'ts is Redis time in ms')
  const ttl = await client.pttl(`${prefix}k`)
  t.ok(ttl > 0 && ttl <= 200, `expires when two tokens are back (${ttl} ms)`)

  // Free (cost 0) on a full bucket: it stays full, so nothing is stored at all.
  t.same(await store.take('free', 10, 5, 0), { allowed: true, remaining: 5, retryAfter: 0 })
  t.equal(await client.exists(`${prefix}free`), 0)
  // Denied: nothing consumed, so nothing written either.
  t.equal((await store.take('denied', 10, 5, 6)).allowed, false)
  t.equal(await client.exists(`${prefix}denied`), 0)
})

t.test('RedisStore: a Redis error is wrapped in FRT_ERR_STORE_REDIS with its cause', async t => {
  const client = new Redis(redis.url)
  t.teardown(() => client.quit())
  const prefix = newPrefix()
  await client.set(`${prefix}k`, 'not a hash')
  const store = new RedisStore({ client, prefix })
  const err = await store.take('k', 1, 1).then(() => undefined, (err: Error) => err)
  t.match(err, { code: 'FRT_ERR_STORE_REDIS', name: 'FastifyError', message: /Redis rate-limit store failed: .*WRONGTYPE/ })
  t.match((err as Error).cause, { message: /WRONGTYPE/ })
})

t.test('RedisStore: keeps working after Redis restarts (the script is loaded again)', async t => {
  const server = await startRedisServer()
  t.teardown(() => server.stop())
  const client = new Redis(server.url)
  t.teardown(() => client.quit())
  const store = new RedisStore({ client })
  t.same(await store.take('k', SLOW, 2), { allowed: true, remaining: 1, retryAfter: 0 })
  await server.restart()
  // A new server knows neither the script nor the bucket (no persistence).
  t.same(await store.take('k', SLOW, 2), { allowed: true, remaining: 1, retryAfter: 0 })
})

t.test('RedisStore: bad options are rejected with FRT_ERR_STORE_INVALID naming the field', async t => {
  const client = new Redis(redis.url, { lazyConnect: true })
  const bad: Array<[unknown, RegExp]> = [
    [undefined, /options must be an object/],
    [null, /options must be an object/],
    [{}, /client must be an ioredis Redis or Cluster client/],
    [{ client: null }, /client must be/],
    [{ client: { quit () {} } }, /client must be/],
    [{ client, prefix: 1 }, /prefix must be a string/]
  ]
  for (const [options, message] of bad) {
    t.throws(() => new RedisStore(options as never), { code: 'FRT_ERR_STORE_INVALID', message }, message.source)
  }
  t.equal(client.status, 'wait', 'a rejected client is left alone')
})
