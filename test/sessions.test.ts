// The session stores and resume tokens. One suite, sessionSuite(), runs against
// every store: MemorySessions on an injected clock, RedisSessions on a real
// redis-server and on a real 3-node Redis Cluster. Then each store's own
// concerns (memory bounds and the sweep timer; Redis key layout, expiry by TTL,
// a session that outlives its instance being killed).
import t, { type Test } from 'tap'
import { Clock } from '@tapjs/clock'
import { Redis } from 'ioredis'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemorySessions, type MemorySessionsOptions } from '../lib/sessions/memory.js'
import { RedisSessions, type RedisSessionsOptions } from '../lib/sessions/redis.js'
import { isResumeToken, newEpoch, newResumeToken, resumeKey, epochSource } from '../lib/recovery-ids.js'
import type { SessionState, SessionStore } from '../types/session.js'
import { redisBackends } from './helpers/redis-backends.js'

const LIMITS = { maxUnicast: 100, maxReplies: 256 }
const WINDOW = 120_000

interface Made {
  store: SessionStore
  /** Let at least `ms` pass on the store's clock. */
  advance (ms: number): Promise<void>
}

interface Target {
  name: string
  make (t: Test): Promise<Made>
}

function state (userKey: string | null, extra: Partial<SessionState> = {}): SessionState {
  return {
    connId: 'c0a8-1',
    userKey,
    rooms: [
      { room: 'lobby', position: { seq: 41, epoch: 'k3f9a0c2' } },
      { room: 'server-joined', position: null }
    ],
    data: { cart: [1, 2], nested: { ok: true } },
    ...extra
  }
}

function sessionSuite (t: Test, target: Target): void {
  t.test('a saved session is taken once by its user, with its state, unicast messages and replies', async t => {
    const { store } = await target.make(t)
    const key = resumeKey(newResumeToken())
    await store.save(key, state('alice'), WINDOW)
    t.equal(await store.append(key, { ...LIMITS, unicast: ['{"type":"dm","data":1}'], replies: [{ id: 7, frame: '{"type":"ack","id":7,"data":null}' }] }, WINDOW), true)
    t.equal(await store.append(key, { ...LIMITS, unicast: ['{"type":"dm","data":2}'], replies: [{ id: 'r8', frame: '{"type":"ack","id":"r8","data":2}' }] }, WINDOW), true)
    const taken = await store.take(key, 'alice')
    t.same(taken, {
      found: true,
      state: state('alice'),
      unicast: ['{"type":"dm","data":1}', '{"type":"dm","data":2}'],
      replies: [{ id: 7, frame: '{"type":"ack","id":7,"data":null}' }, { id: 'r8', frame: '{"type":"ack","id":"r8","data":2}' }]
    })
    t.same(await store.take(key, 'alice'), { found: false, reason: 'missing' }, 'single use: the second take finds nothing')
    t.equal(await store.append(key, { ...LIMITS, unicast: ['late'] }, WINDOW), false, 'nothing is added to a taken session')
    t.same(await store.take(key, 'alice'), { found: false, reason: 'missing' })
  })

  t.test('two concurrent takes: exactly one gets the session', async t => {
    const { store } = await target.make(t)
    const key = resumeKey(newResumeToken())
    await store.save(key, state('bob'), WINDOW)
    const results = await Promise.all(Array.from({ length: 10 }, () => store.take(key, 'bob')))
    t.equal(results.filter((r) => r.found).length, 1)
  })

  t.test('another user\'s take is refused and spends nothing: the owner can still resume', async t => {
    const { store } = await target.make(t)
    const key = resumeKey(newResumeToken())
    await store.save(key, state('alice'), WINDOW)
    t.same(await store.take(key, 'mallory'), { found: false, reason: 'user' })
    t.same(await store.take(key, null), { found: false, reason: 'user' }, 'an anonymous taker is another user too')
    t.equal((await store.take(key, 'alice')).found, true)
  })

  t.test('an anonymous session is bound to anonymity', async t => {
    const { store } = await target.make(t)
    const key = resumeKey(newResumeToken())
    await store.save(key, state(null), WINDOW)
    t.same(await store.take(key, 'alice'), { found: false, reason: 'user' })
    t.match(await store.take(key, null), { found: true, state: { userKey: null } })
  })

  t.test('an unknown key finds nothing', async t => {
    const { store } = await target.make(t)
    t.same(await store.take(resumeKey(newResumeToken()), 'alice'), { found: false, reason: 'missing' })
    t.equal(await store.append(resumeKey(newResumeToken()), { ...LIMITS, replies: [{ id: 1, frame: 'x' }] }, WINDOW), false)
  })

  t.test('a session expires after its ttl; append and save push the expiry back', async t => {
    const { store, advance } = await target.make(t)
    const expiring = resumeKey(newResumeToken())
    const kept = resumeKey(newResumeToken())
    await store.save(expiring, state('alice'), 300)
    await store.save(kept, state('alice'), 300)
    await advance(200)
    t.equal(await store.append(kept, LIMITS, 300), true, 'an empty append only extends')
    await advance(200)
    t.same(await store.take(expiring, 'alice'), { found: false, reason: 'missing' }, 'expired')
    t.equal(await store.append(expiring, { ...LIMITS, unicast: ['x'] }, 300), false)
    t.match(await store.take(kept, 'alice'), { found: true, unicast: [], replies: [] }, 'extended')
  })

  t.test('save replaces the state and keeps the lists', async t => {
    const { store } = await target.make(t)
    const key = resumeKey(newResumeToken())
    await store.save(key, state('alice'), WINDOW)
    await store.append(key, { ...LIMITS, replies: [{ id: 1, frame: 'one' }] }, WINDOW)
    const moved = state('alice', { rooms: [{ room: 'other', position: { seq: 3, epoch: 'e'.repeat(16) } }], data: null })
    await store.save(key, moved, WINDOW)
    t.same(await store.take(key, 'alice'), { found: true, state: moved, unicast: [], replies: [{ id: 1, frame: 'one' }] })
  })

  t.test('unicast messages and replies are bounded: the newest are kept', async t => {
    const { store } = await target.make(t)
    const key = resumeKey(newResumeToken())
    await store.save(key, state('alice'), WINDOW)
    for (let i = 0; i < 30; i++) {
      await store.append(key, { maxUnicast: 5, maxReplies: 8, unicast: [`u${i}`], replies: [{ id: i, frame: `r${i}` }] }, WINDOW)
    }
    await store.append(key, { maxUnicast: 5, maxReplies: 8, unicast: ['a', 'b', 'c'] }, WINDOW)
    const taken = await store.take(key, 'alice')
    t.match(taken, { found: true })
    if (!taken.found) return
    t.same(taken.unicast, ['u28', 'u29', 'a', 'b', 'c'])
    t.same(taken.replies.map((r) => r.id), [22, 23, 24, 25, 26, 27, 28, 29])
  })

  t.test('the state is a copy: changing the saved object afterwards changes nothing', async t => {
    const { store } = await target.make(t)
    const key = resumeKey(newResumeToken())
    const saved = state('alice')
    await store.save(key, saved, WINDOW)
    saved.rooms.push({ room: 'later', position: null });
    (saved.data as { cart: number[] }).cart.push(3)
    t.same((await store.take(key, 'alice') as { state: SessionState }).state, state('alice'))
  })

  t.test('close() can be called, twice', async t => {
    const { store } = await target.make(t)
    await store.close?.()
    await store.close?.()
    t.pass()
  })
}

// --- resume tokens ----------------------------------------------------------------

t.test('resume tokens: 144 random bits in base64url; only their hash is a key', async t => {
  const tokens = new Set(Array.from({ length: 1000 }, newResumeToken))
  t.equal(tokens.size, 1000)
  for (const token of tokens) {
    t.equal(isResumeToken(token), true)
    t.equal(Buffer.from(token, 'base64url').length, 18)
  }
  const [token] = tokens
  t.equal(resumeKey(token), resumeKey(token), 'the same token, the same key')
  t.not(resumeKey(token), token)
  t.equal(resumeKey(token).length, 43, 'a SHA-256 in base64url')
  for (const bad of [undefined, null, 42, '', 'short', token + 'x', token.slice(1) + '!', token.slice(1) + '=']) {
    t.equal(isResumeToken(bad), false, `refused: ${String(bad)}`)
  }
})

t.test('epochs: 8-22 base64url characters, never repeated', async t => {
  const epochs = new Set<string>()
  const source = epochSource()
  const other = epochSource()
  for (let i = 0; i < 1000; i++) {
    epochs.add(newEpoch())
    epochs.add(source())
    epochs.add(other())
  }
  t.equal(epochs.size, 3000)
  for (const epoch of epochs) t.match(epoch, /^[\w-]{8,22}$/)
})

// --- the targets ---------------------------------------------------------------

t.test('MemorySessions', async t => {
  sessionSuite(t, {
    name: 'memory',
    async make (t) {
      let now = 1_000_000
      const store = new MemorySessions({ now: () => now })
      t.teardown(() => store.close())
      return { store, advance: async (ms) => { now += ms } }
    }
  })
})

const backends = await redisBackends(t, 's')
const { redis, slot } = backends
const newPrefix = backends.prefix

backends.each(t, 'RedisSessions', (t, client, name) => {
  sessionSuite(t, {
    name,
    async make () {
      return { store: new RedisSessions({ client, prefix: newPrefix() }), advance: async (ms) => { await sleep(ms + 20) } }
    }
  })
})

// --- MemorySessions on its own -------------------------------------------------

t.test('MemorySessions: synchronous', async t => {
  const store = new MemorySessions({ sweepInterval: 0 })
  store.save('k', state('a'), WINDOW)
  const taken = store.take('k', 'a')
  t.not(typeof (taken as unknown as Promise<unknown>).then, 'function')
  t.equal(taken.found, true)
})

t.test('MemorySessions: bounded by maxSessions, dropping the session saved longest ago', async t => {
  const store = new MemorySessions({ maxSessions: 1000, sweepInterval: 0 })
  for (let i = 0; i < 50_000; i++) store.save(`k${i}`, state('a'), WINDOW)
  t.equal(store.size, 1000)
  t.equal(store.take('k49000', 'a').found, true, 'the newest are kept')
  t.equal(store.take('k48999', 'a').found, false, 'older ones were dropped')
  // A re-save counts as recent.
  const small = new MemorySessions({ maxSessions: 2, sweepInterval: 0 })
  small.save('a', state('u'), WINDOW)
  small.save('b', state('u'), WINDOW)
  small.save('a', state('u'), WINDOW)
  small.save('c', state('u'), WINDOW)
  t.equal(small.take('b', 'u').found, false, 'b was saved longest ago')
  t.equal(small.take('a', 'u').found, true)
})

t.test('MemorySessions: one sweep timer drops expired sessions; it is unref\'d; close stops it', async t => {
  const clock = new Clock()
  t.teardown(clock.enter())
  const store = new MemorySessions({ sweepInterval: 1000 })
  for (let i = 0; i < 100; i++) store.save(`short${i}`, state('a'), 1500)
  store.save('long', state('a'), 10_000)
  t.equal(store.size, 101)
  clock.advance(1000)
  t.equal(store.size, 101, 'none expired yet')
  clock.advance(1000)
  t.equal(store.size, 1, 'swept without anyone taking them')
  store.close()
  store.close()
  clock.advance(20_000)
  t.equal(store.size, 1, 'no sweep after close()')
  const timers = (): number => process.getActiveResourcesInfo().filter(type => type === 'Timeout').length
  clock.exit()
  const before = timers()
  const unrefd = new MemorySessions({ sweepInterval: 10 })
  t.equal(timers(), before)
  unrefd.close()
})

t.test('MemorySessions: bad options are rejected with FRT_ERR_SESSION_INVALID naming the field', async t => {
  const bad: Array<[unknown, RegExp]> = [
    [null, /options must be an object/],
    [{ maxSessions: 0 }, /maxSessions must be a positive integer, got 0/],
    [{ sweepInterval: -1 }, /sweepInterval must be an integer from 0/],
    [{ sweepInterval: 1.5 }, /sweepInterval/],
    [{ now: 'soon' }, /now must be a function/],
    [{ maxSessions: () => 1 }, /got a function/]
  ]
  for (const [options, message] of bad) {
    t.throws(() => new MemorySessions(options as MemorySessionsOptions), { code: 'FRT_ERR_SESSION_INVALID', message }, message.source)
  }
})

// --- RedisSessions on its own --------------------------------------------------

t.test('RedisSessions: the key layout: one hash and two lists on one slot, expiring by TTL; no token stored', async t => {
  const client = new Redis(redis.url)
  t.teardown(() => client.quit())
  const prefix = newPrefix()
  const store = new RedisSessions({ client, prefix })
  const token = newResumeToken()
  const key = resumeKey(token)
  await store.save(key, state('alice'), 60_000)
  await store.append(key, { ...LIMITS, unicast: ['u'], replies: [{ id: 1, frame: 'r' }] }, 60_000)
  const hash = await client.hgetall(`${prefix}{${key}}`)
  t.same(hash, { u: '"alice"', s: JSON.stringify(state('alice')) })
  t.same(await client.lrange(`${prefix}{${key}}:u`, 0, -1), ['u'])
  t.same(await client.lrange(`${prefix}{${key}}:r`, 0, -1), ['[1,"r"]'])
  for (const suffix of ['', ':u', ':r']) {
    const ttl = await client.pttl(`${prefix}{${key}}${suffix}`)
    t.ok(ttl > 50_000 && ttl <= 60_000, `expires (${ttl})`)
  }
  const keys = await client.keys(`${prefix}*`)
  t.notOk(keys.some((k) => k.includes(token)), 'the token itself is nowhere')
  t.equal(keys.length, 3)
  const slots = await Promise.all(keys.map(slot))
  t.equal(new Set(slots).size, 1, 'one slot')
})

t.test('RedisSessions: a session outlives the instance that saved it (killed outright) and resumes through another client', async t => {
  const owner = new Redis(redis.url)
  const other = new Redis(redis.url)
  t.teardown(() => other.quit())
  const prefix = newPrefix()
  const key = resumeKey(newResumeToken())
  await new RedisSessions({ client: owner, prefix }).save(key, state('alice'), WINDOW)
  // What SIGKILL leaves: a connection dropped without a word, nothing written at disconnect.
  owner.disconnect()
  t.match(await new RedisSessions({ client: other, prefix }).take(key, 'alice'), { found: true, state: state('alice') })
})

t.test('RedisSessions: a failing Redis rejects with FRT_ERR_SESSION_REDIS', async t => {
  const client = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null })
  client.on('error', () => {})
  const store = new RedisSessions({ client })
  await t.rejects(store.save('k', state('a'), 1), { code: 'FRT_ERR_SESSION_REDIS' })
  await t.rejects(store.append('k', LIMITS, 1), { code: 'FRT_ERR_SESSION_REDIS' })
  await t.rejects(store.take('k', 'a'), { code: 'FRT_ERR_SESSION_REDIS' })
})

t.test('RedisSessions: scripts defined once per client; bad options are rejected with FRT_ERR_SESSION_INVALID', async t => {
  const names: string[] = []
  const client = { defineCommand (name: string) { names.push(name); (this as unknown as Record<string, unknown>)[name] = () => {} } }
  const first = new RedisSessions({ client })
  const second = new RedisSessions({ client, prefix: 'other:' })
  first.close()
  second.close()
  t.same(names, ['frtSessionSaveV1', 'frtSessionAppendV1', 'frtSessionTakeV1'])
  const bad: Array<[unknown, RegExp]> = [
    [null, /options must be an object/],
    [{}, /client must be an ioredis/],
    [{ client: {} }, /client must be an ioredis/],
    [{ client, prefix: 3 }, /prefix must be a string/]
  ]
  for (const [options, message] of bad) {
    t.throws(() => new RedisSessions(options as RedisSessionsOptions), { code: 'FRT_ERR_SESSION_INVALID', message }, message.source)
  }
})
