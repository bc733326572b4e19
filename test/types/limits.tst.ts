import { expect, test } from 'tstyche'
import Fastify from 'fastify'
import Type from 'typebox'
import realtime, { defineRoute, type RateLimitResult, type RateLimitStore } from '../../index.js'

const app = Fastify()

test('rate-limit options and route limits are typed', async () => {
  await app.register(realtime, { rateLimit: { rate: 20, burst: 40, budget: 10 } })
  expect(app.register).type.not.toBeCallableWith(realtime, { rateLimit: { rate: 'fast' } })
  defineRoute({
    rateLimit: { rate: 5, burst: 10, shared: { key: 'user', rate: 100, burst: 200 } },
    messages: {
      typing: { schema: Type.Null(), rateLimit: { rate: 2, burst: 4 }, handler: () => {} },
      upload: {
        schema: Type.Null(),
        rateLimit: { cost: 10 },
        handler: async (conn) => {
          expect(conn.consume('upload', { rate: 1, burst: 3 })).type.toBe<Promise<void>>()
        }
      }
    }
  })
  defineRoute({ rateLimit: { shared: { key: (conn) => conn.request.ip, rate: 1, burst: 1 } }, messages: {} })
  expect(defineRoute).type.not.toBeCallableWith({ rateLimit: { shared: { key: 'tenant', rate: 1, burst: 1 } }, messages: {} })
})

test('app.realtime.rateLimit resolves a RateLimitResult', () => {
  expect(app.realtime.rateLimit('k', { rate: 1, burst: 1 })).type.toBe<Promise<RateLimitResult>>()
})

test('a custom store implements RateLimitStore and is accepted', async () => {
  class CountingStore implements RateLimitStore {
    take (_key: string, _rate: number, burst: number): RateLimitResult {
      return { allowed: true, remaining: burst - 1, retryAfter: 0 }
    }
  }
  await app.register(realtime, { rateLimit: { store: new CountingStore() } })
  expect(app.register).type.not.toBeCallableWith(realtime, { rateLimit: { store: { take: 1 } } })
})
