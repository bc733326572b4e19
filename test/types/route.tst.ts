import { expect, test } from 'tstyche'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import Type, { type TNull, type TNumber, type TObject } from 'typebox'
import realtime, {
  defineRoute, type Connection, type ConnectionRequest, type MessageHandler, type RealtimeStats, type RouteDefinition, type SchemaMap
} from '../../index.js'
import { connect, type TestClient } from '../../lib/testing.js'
import type { UserType } from '@fastify/jwt'

const app = Fastify()
await app.register(realtime)

test('handlers get data typed from their schema and emit only declared messages', () => {
  app.realtime('/chat', {
    messages: {
      say: {
        schema: Type.Object({ text: Type.String() }),
        handler: (conn, data) => {
          expect(data).type.toBe<{ text: string }>()
          expect(conn.id).type.toBe<string>()
          conn.emit('said', { text: data.text })
          expect(conn.emit).type.not.toBeCallableWith('said', { text: 1 })
          expect(conn.emit).type.not.toBeCallableWith('nope', { text: 'x' })
        }
      },
      count: {
        schema: Type.Integer(),
        handler: async (_conn, n) => {
          expect(n).type.toBe<number>()
          return n + 1
        }
      }
    },
    emits: { said: Type.Object({ text: Type.String() }) },
    onOpen: (conn) => { expect(conn).type.toBe<Connection<{ said: ReturnType<typeof Type.Object<{ text: ReturnType<typeof Type.String> }>> }>>() }
  })
})

test('conn.request offers the fields kept after onOpen; the whole request only by a cast (in onOpen, or on auth routes)', () => {
  expect<Connection['request']>().type.toBe<ConnectionRequest>()
  expect<ConnectionRequest['headers']>().type.toBe<FastifyRequest['headers']>()
  expect<ConnectionRequest['ip']>().type.toBe<string>()
  expect<ConnectionRequest['server']>().type.toBe<FastifyInstance>()
  expect<ConnectionRequest>().type.not.toHaveProperty('raw')
  expect<ConnectionRequest>().type.not.toHaveProperty('jwtVerify')
})

test('Fastify route options are accepted; unknown keys are not', () => {
  app.realtime('/r', {
    onRequest: async (request) => { expect(request.url).type.toBe<string>() },
    config: { anything: true },
    schema: { querystring: Type.Object({ room: Type.String() }) },
    messages: {}
  })
  expect(app.realtime).type.not.toBeCallableWith('/r', { messages: {}, nonsense: true })
  expect(app.realtime).type.not.toBeCallableWith('/r', { emits: {} })
})

test('defineRoute infers the same types as app.realtime', () => {
  defineRoute({
    messages: {
      add: {
        schema: Type.Object({ a: Type.Number() }),
        handler: (conn, data) => {
          expect(data).type.toBe<{ a: number }>()
          expect(conn.emit).type.not.toBeCallableWith('sum', { total: '1' })
          conn.emit('sum', { total: data.a })
        }
      }
    },
    emits: { sum: Type.Object({ total: Type.Number() }) }
  })
})

test('defineRoute keeps each handler\'s return type and stays a RouteDefinition', () => {
  const calc = defineRoute({
    messages: {
      add: { schema: Type.Object({ a: Type.Number() }), handler: async (_conn, data) => data.a + 1 },
      reset: { schema: Type.Null(), handler: () => true, authorize: (conn) => conn.user !== undefined }
    }
  })
  expect(calc.messages.add.handler).type.toBe<MessageHandler<TObject<{ a: TNumber }>, {}, UserType | undefined, Promise<number>>>()
  expect(calc.messages.reset.handler).type.toBe<MessageHandler<TNull, {}, UserType | undefined, boolean>>()
  expect(calc).type.toBeAssignableTo<RouteDefinition<{ add: TObject<{ a: TNumber }>, reset: TNull }, {}>>()
  expect(calc).type.toBeAssignableTo<RouteDefinition<SchemaMap, SchemaMap>>()
  expect(app.realtime).type.toBeCallableWith('/calc', calc)
  // A RouteDefinition written without the third parameter means what it meant: handlers returning unknown.
  expect<RouteDefinition<{ add: TNull }, {}>['messages']['add']['handler']>().type.toBe<MessageHandler<TNull, {}, UserType | undefined, unknown>>()
})

test('defineRoute still refuses a wrong key, a handler for other data and an undeclared emit', () => {
  expect(defineRoute).type.not.toBeCallableWith({ messages: { a: { schema: Type.Null(), handler: () => 1, authorise: () => true } } })
  expect(defineRoute).type.not.toBeCallableWith({ messages: { a: { schema: Type.Null(), handler: () => 1 } }, onOpn: () => {} })
  expect(defineRoute).type.not.toBeCallableWith({ messages: { a: { schema: Type.Null(), handler: (_c: unknown, d: string) => d } } })
  expect(defineRoute).type.not.toBeCallableWith({ messages: { a: { handler: () => 1 } } })
  defineRoute({
    messages: {
      a: {
        schema: Type.Null(),
        handler: (conn) => { expect(conn.emit).type.not.toBeCallableWith('nope', 1) }
      }
    },
    emits: { said: Type.Null() }
  })
})

test('app.realtime returns the instance and has stats', () => {
  expect(app.realtime('/x', { messages: {} })).type.toBe<FastifyInstance>()
  expect(app.realtime.stats()).type.toBe<RealtimeStats>()
})

test('the test client is typed from a route definition', async () => {
  const chat = defineRoute({
    messages: {
      say: {
        schema: Type.Object({ text: Type.String() }),
        handler: (conn, data) => { conn.emit('said', { text: data.text, at: 1 }) }
      }
    },
    emits: { said: Type.Object({ text: Type.String(), at: Type.Number() }) }
  })
  app.realtime('/chat', chat)
  const client = await connect<typeof chat>(app, '/chat')
  expect(client.send).type.toBeCallableWith('say', { text: 'x' })
  expect(client.send).type.not.toBeCallableWith('say', { text: 1 })
  expect(client.send).type.not.toBeCallableWith('shout', { text: 'x' })
  const said = await client.next('said')
  expect(said.data).type.toBe<{ text: string, at: number }>()
  expect(client.next).type.not.toBeCallableWith('unknown')

  const loose = await connect(app, '/any')
  expect(loose).type.toBe<TestClient>()
  expect(loose.send).type.toBeCallableWith('anything', { any: 'thing' })
})

test('the SSE fallback: a plugin option and a route option, both booleans', () => {
  expect(app.register).type.toBeCallableWith(realtime, { sse: true, auth: { ticketTtl: 10_000 } })
  expect(app.register).type.not.toBeCallableWith(realtime, { sse: 'yes' })
  expect(app.realtime).type.toBeCallableWith('/sse', { sse: true, messages: {} })
  expect(app.realtime).type.not.toBeCallableWith('/sse', { sse: 1, messages: {} })
})
