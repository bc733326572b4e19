import { expect, test } from 'tstyche'
import Type, { type TNumber } from 'typebox'
import { defineRoute, type RouteDefinition } from '../../index.js'
import {
  createClient, RealtimeError, type ConnectionState, type GapEvent, type KnownErrorCode, type RealtimeClient
} from '../../lib/client/index.js'

const chat = defineRoute({
  joinable: true,
  messages: {
    say: {
      schema: Type.Object({ room: Type.String(), text: Type.String() }),
      handler: (conn, data) => { conn.emit('said', { text: data.text, at: 1 }); return true }
    },
    ping2: { schema: Type.Null(), handler: () => 1 }
  },
  emits: {
    said: Type.Object({ text: Type.String(), at: Type.Number() })
  }
})

const client = createClient<typeof chat>('wss://example.com/chat')

test('createClient is typed from the route', () => {
  expect(chat).type.toBeAssignableTo<RouteDefinition<any, any>>()
  expect(client).type.toBe<RealtimeClient<typeof chat>>()
  expect(client.state).type.toBe<ConnectionState>()
})

test('a wrong message name or payload is a compile error', () => {
  expect(client.send).type.toBeCallableWith('say', { room: 'a', text: 'hi' })
  expect(client.send).type.toBeCallableWith('ping2', null)
  expect(client.send).type.not.toBeCallableWith('shout', { room: 'a', text: 'hi' })
  expect(client.send).type.not.toBeCallableWith('say', { room: 'a', text: 1 })
  expect(client.send).type.not.toBeCallableWith('say', { room: 'a' })
  expect(client.request).type.toBeCallableWith('say', { room: 'a', text: 'hi' }, { timeout: 100, signal: new AbortController().signal })
  expect(client.request).type.not.toBeCallableWith('said', { text: 'x', at: 1 })
  expect(client.request).type.not.toBeCallableWith('say', { text: 'hi' })
})

test('acks: typed from defineRoute by each handler\'s (awaited) return type', async () => {
  expect(await client.request('say', { room: 'a', text: 'hi' })).type.toBe<boolean>()
  expect(await client.request('ping2', null)).type.toBe<number>()
  const calc = defineRoute({
    messages: {
      add: { schema: Type.Object({ a: Type.Number() }), handler: async (_conn, data) => ({ sum: data.a + 1 }) },
      name: { schema: Type.Null(), handler: () => 'ada' },
      nothing: { schema: Type.Null(), handler: () => {} },
      either: { schema: Type.Number(), handler: (_conn, n) => n > 0 ? Promise.resolve('up' as const) : null }
    }
  })
  expect(calc).type.toBeAssignableTo<RouteDefinition<any, any>>()
  const typed = createClient<typeof calc>('wss://example.com/calc')
  expect(await typed.request('add', { a: 1 })).type.toBe<{ sum: number }>()
  expect(await typed.request('name', null)).type.toBe<string>()
  expect(await typed.request('nothing', null)).type.toBe<void>()
  expect(await typed.request('either', 1)).type.toBe<'up' | null>()
  expect(typed.request).type.not.toBeCallableWith('add', { a: '1' })
  expect(typed.request).type.not.toBeCallableWith('sub', { a: 1 })
  expect(typed.request).type.not.toBeCallableWith('name', undefined)
})

test('acks: typed from a definition kept as a plain literal too; unknown from a RouteDefinition annotation', async () => {
  const literal = {
    messages: {
      add: { schema: Type.Object({ a: Type.Number() }), handler: async (_conn: unknown, data: { a: number }) => ({ sum: data.a + 1 }) }
    }
  }
  expect(literal.messages.add.handler).type.toBeCallableWith(null, { a: 1 })
  expect(await createClient<typeof literal>('wss://x/y').request('add', { a: 1 })).type.toBe<{ sum: number }>()
  const annotated: RouteDefinition<{ add: TNumber }, {}> = { messages: { add: { schema: Type.Number(), handler: () => 1 } } }
  expect(annotated).type.toBeAssignableTo<RouteDefinition<any, any>>()
  expect(await createClient<typeof annotated>('wss://x/y').request('add', 1)).type.toBe<unknown>()
})

test('on: emits and presence events typed, with room meta; unknown names refused', () => {
  client.on('said', (data, meta) => {
    expect(data).type.toBe<{ text: string, at: number }>()
    expect(meta.room).type.toBe<string | undefined>()
    expect(meta.seq).type.toBe<number | undefined>()
  })
  client.on('presence:join', (data) => {
    expect(data).type.toBe<{ connId: string, userId: string | null }>()
  })
  expect(client.on).type.not.toBeCallableWith('shouted', () => {})
  expect(client.on).type.not.toBeCallableWith('said', (data: { text: number }) => data)
})

test('client events and error codes are typed', () => {
  client.events.on('state', (state, previous) => {
    expect(state).type.toBe<ConnectionState>()
    expect(previous).type.toBe<ConnectionState>()
  })
  client.events.on('gap', (gap) => { expect(gap).type.toBe<GapEvent>() })
  client.events.on('error', (err) => { expect(err).type.toBe<RealtimeError>() })
  expect(client.events.on).type.not.toBeCallableWith('nope', () => {})
  const err = new RealtimeError('timeout', 'x')
  expect(err.code).type.toBe<KnownErrorCode | (string & {})>()
  expect(err.retryAfter).type.toBe<number | undefined>()
  expect<'timeout'>().type.toBeAssignableTo<KnownErrorCode>()
  expect<'invalid_data'>().type.toBeAssignableTo<KnownErrorCode>()
  expect<'connection_lost'>().type.toBeAssignableTo<KnownErrorCode>()
  expect<'nonsense'>().type.not.toBeAssignableTo<KnownErrorCode>()
})

test('the transport in use, and the fallback option', () => {
  expect(client.transport).type.toBe<'websocket' | 'sse' | undefined>()
  client.events.on('transport', (transport) => { expect(transport).type.toBe<'websocket' | 'sse'>() })
  expect(createClient).type.toBeCallableWith('wss://example.com/chat', { fallback: false })
  expect(createClient).type.not.toBeCallableWith('wss://example.com/chat', { fallback: 'sse' })
})

test('an untyped client accepts any message', () => {
  const any = createClient('wss://example.com/x')
  expect(any.send).type.toBeCallableWith('whatever', { x: 1 })
  expect(any.request('whatever', 1)).type.toBe<Promise<unknown>>()
})
