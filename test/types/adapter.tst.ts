import { expect, test } from 'tstyche'
import { EventEmitter } from 'node:events'
import { Cluster, Redis } from 'ioredis'
import Fastify from 'fastify'
import realtime, {
  MemoryAdapter, RedisAdapter, type FanoutAdapter, type FanoutCore, type FanoutReceive, type FanoutStats,
  type PresenceMember, type RedisAdapterOptions
} from '../../index.js'

// An adapter written the way a user would: over some message bus, with the optional cluster features.
class BusAdapter implements FanoutAdapter {
  readonly #bus = new EventEmitter()
  readonly #members = new Map<string, PresenceMember[]>()
  #core: FanoutCore | null = null

  attach (core: FanoutCore): void { this.#core = core }
  subscribe (room: string, receive: FanoutReceive): void {
    this.#bus.on(room, (frame: Buffer, volatile: boolean, seq: number) => receive(room, frame, volatile, seq))
  }

  async unsubscribe (room: string): Promise<void> { this.#bus.removeAllListeners(room) }
  publish (room: string, frame: Buffer, volatile: boolean): void { this.#bus.emit(room, frame, volatile) }
  sequence (room: string, head: string, tail: string, volatile: boolean, done: (seq: number) => void): void {
    this.#bus.emit(room, Buffer.from(head + 1 + tail), volatile, 1)
    done(1)
  }

  addMember (room: string, member: PresenceMember): void { this.#members.set(room, [...this.#members.get(room) ?? [], member]) }
  removeMember (room: string, member: PresenceMember): void {
    this.#members.set(room, (this.#members.get(room) ?? []).filter((m) => m.connId !== member.connId))
  }

  async remoteMembers (): Promise<PresenceMember[]> { return [] }
  disconnectUser (userId: string, reason?: string): void { this.#core?.disconnectUser(userId, reason) }
  /** The bus came back after a drop: the core reads what its history rooms missed. */
  reconnected (rooms: string[]): void { this.#core?.resubscribed?.(rooms) }
  stats (): FanoutStats { return { adapterErrors: 0, adapterDropped: 0, adapterInvalid: 0 } }
  close (): void { this.#bus.removeAllListeners() }
}

test('a user-written adapter implements FanoutAdapter and is accepted by the plugin', () => {
  expect<BusAdapter>().type.toBeAssignableTo<FanoutAdapter>()
  expect<FanoutCore['resubscribed']>().type.toBe<((rooms: readonly string[]) => void) | undefined>()
  expect(Fastify().register(realtime, { adapter: new BusAdapter() })).type.not.toRaiseError()
  // Only the three methods are required.
  expect({ subscribe () {}, unsubscribe () {}, publish () {} }).type.toBeAssignableTo<FanoutAdapter>()
  expect({ subscribe () {}, publish () {} }).type.not.toBeAssignableTo<FanoutAdapter>()
  expect({ subscribe () {}, unsubscribe () {}, publish () {}, sequence: (room: number) => room }).type.not.toBeAssignableTo<FanoutAdapter>()
  expect({ subscribe () {}, unsubscribe () {}, publish () {}, stats: () => ({ adapterErrors: 0 }) }).type.not.toBeAssignableTo<FanoutAdapter>()
  expect<MemoryAdapter>().type.toBeAssignableTo<FanoutAdapter>()
  expect<RedisAdapter>().type.toBeAssignableTo<FanoutAdapter>()
})

test('RedisAdapter takes an ioredis Redis or Cluster and checked options', () => {
  expect(new RedisAdapter({ client: new Redis() })).type.toBe<RedisAdapter>()
  expect(new RedisAdapter({ client: new Cluster([]), sharded: true })).type.toBe<RedisAdapter>()
  expect(new RedisAdapter({
    client: new Redis(), prefix: 'app:', publishTimeout: 500, maxInFlight: 100, presence: false, presenceTtl: 10_000, seqTtl: 60_000
  })).type.toBe<RedisAdapter>()
  expect<RedisAdapterOptions>().type.not.toBeAssignableFrom({})
  expect<RedisAdapterOptions>().type.not.toBeAssignableFrom({ client: {} })
  expect<RedisAdapterOptions>().type.not.toBeAssignableFrom({ client: new Redis(), publishTimeout: '1s' })
  expect(new RedisAdapter({ client: new Redis(), traceContext: true, countsInterval: false })).type.toBe<RedisAdapter>()
  expect(new RedisAdapter({ client: new Redis(), countsInterval: 2000 })).type.toBe<RedisAdapter>()
  expect<RedisAdapterOptions>().type.not.toBeAssignableFrom({ client: new Redis(), countsInterval: true })
  expect<RedisAdapterOptions>().type.not.toBeAssignableFrom({ client: new Redis(), traceContext: 'on' })
  expect<RedisAdapterOptions>().type.not.toBeAssignableFrom({ client: new Redis(), sharded: 'auto' })
  expect(new RedisAdapter({ client: new Redis() }).stats()).type.toBe<FanoutStats>()
})

test('stats carry the adapter counters; disconnectUser returns the local count', () => {
  const app = Fastify()
  expect(app.realtime.stats().adapterDropped).type.toBe<number>()
  expect(app.realtime.stats().adapterInvalid).type.toBe<number>()
  expect(app.realtime.disconnectUser('u1')).type.toBe<number>()
})
