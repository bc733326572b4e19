import { expect, test } from 'tstyche'
import { Cluster, Redis } from 'ioredis'
import type { RateLimitResult, RateLimitStore } from '../../types/store.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import { RedisStore } from '../../lib/stores/redis.js'

// A store written the way a user would: async, counting in some other backend.
class FixedWindowStore implements RateLimitStore {
  readonly #counts = new Map<string, number>()

  async take (key: string, rate: number, burst: number, cost = 1): Promise<RateLimitResult> {
    const used = (this.#counts.get(key) ?? 0) + cost
    if (used > burst) return { allowed: false, remaining: burst - used + cost, retryAfter: 1000 / rate }
    this.#counts.set(key, used)
    return { allowed: true, remaining: burst - used, retryAfter: 0 }
  }
}

test('a user-written store implements RateLimitStore', () => {
  expect<FixedWindowStore>().type.toBeAssignableTo<RateLimitStore>()
  // close is optional, and may be synchronous or not.
  expect({ take: () => ({ allowed: true, remaining: 0, retryAfter: 0 }) }).type.toBeAssignableTo<RateLimitStore>()
  expect({ take: () => ({ allowed: true, remaining: 0, retryAfter: 0 }), close: async () => {} }).type.toBeAssignableTo<RateLimitStore>()
})

test('a store must return the whole result', () => {
  expect({ take: () => ({ allowed: true }) }).type.not.toBeAssignableTo<RateLimitStore>()
  expect({ take: () => true }).type.not.toBeAssignableTo<RateLimitStore>()
  expect({ take: (key: number) => ({ allowed: true, remaining: 0, retryAfter: key }) }).type.not.toBeAssignableTo<RateLimitStore>()
})

test('MemoryStore is a RateLimitStore whose take is synchronous', () => {
  expect<MemoryStore>().type.toBeAssignableTo<RateLimitStore>()
  const store = new MemoryStore({ maxKeys: 10, sweepInterval: 0, now: () => 0 })
  expect(store.take('k', 1, 1)).type.toBe<RateLimitResult>()
  expect(store.take('k', 1, 1, 2)).type.toBe<RateLimitResult>()
  expect(store.size).type.toBe<number>()
  expect(new MemoryStore()).type.toBe<MemoryStore>()
  expect(MemoryStore).type.not.toBeConstructableWith({ maxKeys: '10' })
  expect(MemoryStore).type.not.toBeConstructableWith({ now: Date })
})

test('RedisStore is a RateLimitStore over an ioredis Redis or Cluster', () => {
  expect<RedisStore>().type.toBeAssignableTo<RateLimitStore>()
  const store = new RedisStore({ client: new Redis(), prefix: 'app:' })
  expect(store.take('k', 1, 1)).type.toBe<Promise<RateLimitResult>>()
  expect(RedisStore).type.toBeConstructableWith({ client: new Cluster([{ host: '127.0.0.1', port: 7000 }]) })
  expect(RedisStore).type.not.toBeConstructableWith({})
  expect(RedisStore).type.not.toBeConstructableWith({ client: {} })
  expect(RedisStore).type.not.toBeConstructableWith({ client: new Redis(), prefix: 1 })
})
