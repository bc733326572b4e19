import { expect, test } from 'tstyche'
import Fastify from 'fastify'
import Type from 'typebox'
import realtime, {
  defineRoute, type DeliveryMap, type DeliveryPolicy, type Emitter, type FanoutAdapter, type RealtimeStats, type RoomEmitter
} from '../../index.js'

const app = Fastify()
await app.register(realtime)

const Price = Type.Object({ symbol: Type.String(), bid: Type.Number() })
const Cursor = Type.Object({ user: Type.String(), x: Type.Number(), y: Type.Number() })
const Said = Type.Object({ text: Type.String() })

test('delivery is keyed by the route\'s emits, and a latest key function gets the emit\'s data', () => {
  const ticker = defineRoute({
    messages: {
      watch: {
        schema: Type.Object({ room: Type.String() }),
        handler: (conn, data) => {
          conn.to(data.room).latest('AAPL').emit('price', { symbol: 'AAPL', bid: 1 })
          conn.to(data.room).latest('AAPL').except(conn).volatile.emit('said', { text: 'x' })
          expect(conn.to(data.room).latest('AAPL')).type.toBe<RoomEmitter<{ price: typeof Price, cursor: typeof Cursor, said: typeof Said }>>()
          expect(conn.to(data.room).latest).type.not.toBeCallableWith(1)
          expect(conn.to(data.room).latest('k').emit).type.not.toBeCallableWith('price', { symbol: 1, bid: 1 })
          conn.latest(data.room).emit('cursor', { user: 'u', x: 1, y: 2 })
          conn.volatile.emit('said', { text: 'hi' })
          expect(conn.latest('k').emit).type.not.toBeCallableWith('nope', {})
          expect(conn.volatile.emit).type.not.toBeCallableWith('said', { text: 1 })
          expect(conn.latest).type.not.toBeCallableWith(undefined)
        }
      }
    },
    emits: { price: Price, cursor: Cursor, said: Said },
    delivery: {
      price: {
        latest: (data) => {
          expect(data).type.toBe<{ symbol: string, bid: number }>()
          return data.symbol
        }
      },
      cursor: 'volatile',
      said: 'reliable'
    }
  })
  app.realtime('/ticker', ticker)
})

test('a bad delivery does not type-check', () => {
  const emits = { price: Price }
  expect(app.realtime).type.not.toBeCallableWith('/x', { messages: {}, emits, delivery: { nope: 'reliable' } })
  expect(app.realtime).type.not.toBeCallableWith('/x', { messages: {}, emits, delivery: { price: 'fast' } })
  expect(app.realtime).type.not.toBeCallableWith('/x', { messages: {}, emits, delivery: { price: { latest: (d: { symbol: string }) => d.symbol.length } } })
  expect(app.realtime).type.not.toBeCallableWith('/x', { messages: {}, emits, delivery: { price: { latest: 'symbol' } } })
})

test('the policy types, the app-wide target, stats and the adapter contract', () => {
  expect<DeliveryPolicy<{ id: string }>>().type.toBeAssignableFrom({ latest: (d: { id: string }) => d.id })
  expect<DeliveryPolicy>().type.toBeAssignableFrom('volatile' as const)
  expect<DeliveryMap<{ price: typeof Price }>>().type.toBeAssignableFrom({ price: 'reliable' as const })
  app.realtime.to('feed').latest('AAPL').emit('anything', { symbol: 'AAPL' })
  expect(app.realtime.to('feed').latest('k')).type.toBe<RoomEmitter>()
  expect<RealtimeStats['conflated']>().type.toBe<number>()
  expect<Emitter<{ said: typeof Said }>['emit']>().type.not.toBeCallableWith('said', { text: 1 })
  // An adapter written before `latest` still implements the contract; one that carries it takes a 4th argument.
  const old: FanoutAdapter = { subscribe () {}, unsubscribe () {}, publish (_room: string, _frame: Buffer, _volatile: boolean) {} }
  const carrying: FanoutAdapter = {
    subscribe (_room, receive) { receive('r', Buffer.from('{}'), false, undefined, 'key') },
    unsubscribe () {},
    publish (_room: string, _frame: Buffer, _volatile: boolean, latest?: string) { expect(latest).type.toBe<string | undefined>() }
  }
  expect([old, carrying]).type.toBe<FanoutAdapter[]>()
})
