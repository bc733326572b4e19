import { expect, test } from 'tstyche'
import { Cluster, Redis } from 'ioredis'
import type { HistoryAppended, HistoryRead, HistoryStore, RoomPosition } from '../../types/history.js'
import { MemoryHistory } from '../../lib/history/memory.js'
import { RedisHistory } from '../../lib/history/redis.js'

// A store written the way a user would: async, keeping everything in some other backend.
class ArrayHistory implements HistoryStore {
  readonly #rooms = new Map<string, Buffer[]>()

  async append (room: string, head: string, tail: string): Promise<HistoryAppended> {
    const frames = this.#rooms.get(room) ?? []
    frames.push(Buffer.from(head + (frames.length + 1) + tail))
    this.#rooms.set(room, frames)
    return { seq: frames.length, epoch: 'only-life', duplicate: false }
  }

  async since (room: string, since: RoomPosition | null): Promise<HistoryRead> {
    const frames = this.#rooms.get(room) ?? []
    if (since !== null && since.epoch !== 'only-life') return { recovered: false, seq: frames.length, epoch: 'only-life', reason: 'epoch' }
    return { recovered: true, seq: frames.length, epoch: 'only-life', frames: frames.slice(since?.seq ?? frames.length) }
  }
}

test('a user-written store implements HistoryStore; release and close are optional', () => {
  expect<ArrayHistory>().type.toBeAssignableTo<HistoryStore>()
  expect<MemoryHistory>().type.toBeAssignableTo<HistoryStore>()
  expect<RedisHistory>().type.toBeAssignableTo<HistoryStore>()
})

test('a refusal carries no frames and a reason; a recovered read carries frames', () => {
  expect<{ recovered: false, seq: 1, epoch: 'e', frames: [] }>().type.not.toBeAssignableTo<HistoryRead>()
  expect<{ recovered: true, seq: 1, epoch: 'e', reason: 'epoch' }>().type.not.toBeAssignableTo<HistoryRead>()
  expect<{ recovered: false, seq: 1, epoch: 'e', reason: 'lost' }>().type.not.toBeAssignableTo<HistoryRead>()
})

test('RedisHistory takes an ioredis Redis or Cluster', () => {
  expect(new RedisHistory({ client: new Redis() })).type.toBe<RedisHistory>()
  expect(new RedisHistory({ client: new Cluster([]), publish: { header: 'h', sharded: true } })).type.toBe<RedisHistory>()
  expect(RedisHistory).type.not.toBeConstructableWith({ client: {} })
})
