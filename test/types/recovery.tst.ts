import { expect, test } from 'tstyche'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import Type from 'typebox'
import realtime, {
  MemoryHistory, MemorySessions, RedisAdapter, RedisSessions, type RealtimeOptions, type RealtimeStats
} from '../../index.js'

test('the recovery options of the plugin', () => {
  expect<RealtimeOptions>().type.toBeAssignableFrom({ history: {}, sessions: {}, drain: true })
  expect<RealtimeOptions>().type.toBeAssignableFrom({
    history: { store: new MemoryHistory(), rooms: /^doc:/, replay: { maxCount: 10 }, hold: { maxBytes: 1024 } },
    sessions: { store: new MemorySessions(), window: 60_000, maxUnicast: 10, maxReplies: 10 },
    drain: { spread: 5000, batch: 50 }
  })
  expect<RealtimeOptions>().type.toBeAssignableFrom({ sessions: { store: new RedisSessions({ client: new Redis() }) } })
  expect<RealtimeOptions>().type.not.toBeAssignableFrom({ history: true })
  expect<RealtimeOptions>().type.not.toBeAssignableFrom({ sessions: { window: '2m' } })
  expect(new RedisAdapter({ client: new Redis(), history: { maxCount: 10, maxAge: 1000 } })).type.toBeAssignableTo<RealtimeOptions['adapter']>()
})

test('route options, conn.data and conn.recovered, stats and drain', async () => {
  const app = Fastify()
  await app.register(realtime, { history: {}, sessions: {} })
  app.realtime('/doc', {
    history: true,
    sessions: true,
    keep: (conn) => {
      expect(conn.data).type.toBe<unknown>()
      expect(conn.recovered).type.toBe<boolean>()
      return conn.data
    },
    snapshot: async (room, conn) => ({ room, id: conn.id }),
    snapshotTimeout: 1000,
    messages: { edit: { schema: Type.Object({ op: Type.String() }), handler: (conn) => { conn.data = { n: 1 } } } }
  })
  expect(app.realtime.drain()).type.toBe<Promise<void>>()
  expect(app.realtime.drain({ spread: 1000 })).type.toBe<Promise<void>>()
  expect<RealtimeStats['sessionsResumed']>().type.toBe<number>()
  expect(app.realtime('/x', { messages: {}, history: 'yes' })).type.toRaiseError()
})
