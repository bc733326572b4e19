import { expect, test } from 'tstyche'
import { Cluster, Redis } from 'ioredis'
import type { SessionAppend, SessionState, SessionStore, SessionTaken } from '../../types/session.js'
import { MemorySessions } from '../../lib/sessions/memory.js'
import { RedisSessions } from '../../lib/sessions/redis.js'

// A store written the way a user would: a plain map, no lists kept.
class MapSessions implements SessionStore {
  readonly #states = new Map<string, SessionState>()
  save (key: string, state: SessionState): void { this.#states.set(key, state) }
  append (key: string, _items: SessionAppend): boolean { return this.#states.has(key) }
  async take (key: string, userKey: string | null): Promise<SessionTaken> {
    const state = this.#states.get(key)
    if (state === undefined) return { found: false, reason: 'missing' }
    if (state.userKey !== userKey) return { found: false, reason: 'user' }
    this.#states.delete(key)
    return { found: true, state, unicast: [], replies: [] }
  }
}

test('a user-written store implements SessionStore', () => {
  expect<MapSessions>().type.toBeAssignableTo<SessionStore>()
  expect<MemorySessions>().type.toBeAssignableTo<SessionStore>()
  expect<RedisSessions>().type.toBeAssignableTo<SessionStore>()
})

test('a take that found the session carries its state; one that did not, a known reason', () => {
  expect<{ found: true, unicast: [], replies: [] }>().type.not.toBeAssignableTo<SessionTaken>()
  expect<{ found: false, reason: 'expired' }>().type.not.toBeAssignableTo<SessionTaken>()
})

test('RedisSessions takes an ioredis Redis or Cluster', () => {
  expect(new RedisSessions({ client: new Redis() })).type.toBe<RedisSessions>()
  expect(new RedisSessions({ client: new Cluster([]) })).type.toBe<RedisSessions>()
})
