import { expect, test } from 'tstyche'
import Fastify from 'fastify'
import Type from 'typebox'
import realtime, {
  MemoryAdapter, type Connection, type FanoutAdapter, type FanoutReceive, type Presence, type RealtimeStats,
  type RoomEmitter, type RouteDefinition, type SchemaMap
} from '../../index.js'

const app = Fastify()
await app.register(realtime, {
  maxRoomsPerConnection: 16,
  heartbeat: { interval: 30_000, timeout: 10_000 },
  slowConsumer: { softLimit: 1 << 19, softTimeout: 10_000, hardLimit: 1 << 22 },
  adapter: new MemoryAdapter()
})

const Said = Type.Object({ text: Type.String() })
const define = <In extends SchemaMap, Emits extends SchemaMap>(definition: RouteDefinition<In, Emits>) => definition
const chat = define({
  messages: {
    say: {
      schema: Type.Object({ room: Type.String(), text: Type.String() }),
      handler: async (conn, data) => {
        expect(conn.rooms).type.toBe<ReadonlySet<string>>()
        expect(conn.join(data.room)).type.toBe<Promise<void>>()
        expect(conn.leave(data.room)).type.toBe<boolean>()
        conn.to(data.room).except(conn).emit('said', { text: data.text })
        conn.to(data.room).volatile.emit('said', { text: data.text })
        expect(conn.to(data.room).emit).type.not.toBeCallableWith('said', { text: 1 })
        expect(conn.to(data.room).emit).type.not.toBeCallableWith('nope', { text: 'x' })
      }
    }
  },
  emits: { said: Said },
  joinable: async (conn, room) => {
    expect(conn).type.toBe<Connection<{ said: typeof Said }>>()
    expect(room).type.toBe<string>()
    return room.startsWith('public:')
  },
  presence: true
})

test('route room options', () => {
  app.realtime('/chat', chat)
  app.realtime('/open', { messages: {}, joinable: true, presence: false })
  expect(app.realtime).type.not.toBeCallableWith('/bad', { messages: {}, joinable: 'yes' })
  expect(app.realtime).type.not.toBeCallableWith('/bad', { messages: {}, joinable: () => 'yes' })
})

test('app.realtime.to is untyped by default and typed from a route definition', () => {
  expect(app.realtime.to('lobby')).type.toBe<RoomEmitter<SchemaMap>>()
  app.realtime.to('lobby').emit('anything', { at: 1 })
  app.realtime.to<typeof chat>('lobby').emit('said', { text: 'hi' })
  expect(app.realtime.to<typeof chat>('lobby').emit).type.not.toBeCallableWith('said', { text: 1 })
  expect(app.realtime.to<typeof chat>('lobby').emit).type.not.toBeCallableWith('other', {})
  expect(app.realtime.to<typeof chat>('lobby').volatile.except()).type.toBe<RoomEmitter<{ said: typeof Said }>>()
})

test('presence is asynchronous; stats carry the room counters', async () => {
  expect(app.realtime.presence('lobby')).type.toBe<Promise<Presence>>()
  const { members, count } = await app.realtime.presence('lobby')
  expect(count).type.toBe<number>()
  expect(members).type.toBe<Array<{ connId: string, userId: string | null }>>()
  expect(app.realtime.stats()).type.toBe<RealtimeStats>()
  expect(app.realtime.stats().rooms).type.toBe<number>()
  expect(app.realtime.stats().slowConsumerCloses).type.toBe<number>()
})

test('options are checked', () => {
  expect(realtime).type.not.toBeCallableWith(app, { heartbeat: true }, () => {})
  const bad = Fastify()
  expect(bad.register).type.not.toBeCallableWith(realtime, { heartbeat: true })
  expect(bad.register).type.not.toBeCallableWith(realtime, { slowConsumer: { hard: 1 } })
  expect(bad.register).type.not.toBeCallableWith(realtime, { adapter: {} })
})

test('a fan-out adapter is implemented the way a user would', () => {
  class LoggingAdapter implements FanoutAdapter {
    readonly frames: Buffer[] = []
    readonly #receivers = new Map<string, FanoutReceive>()
    subscribe (room: string, receive: FanoutReceive): void { this.#receivers.set(room, receive) }
    async unsubscribe (room: string): Promise<void> { this.#receivers.delete(room) }
    publish (_room: string, frame: Buffer, _volatile: boolean): void { this.frames.push(frame) }
  }
  expect(new LoggingAdapter()).type.toBeAssignableTo<FanoutAdapter>()
  expect(new MemoryAdapter()).type.toBeAssignableTo<FanoutAdapter>()
  expect<FanoutAdapter>().type.not.toBeAssignableFrom({ publish () {} })
})
