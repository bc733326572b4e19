// The room history stores. One suite, historySuite(), runs against every store:
// MemoryHistory on an injected clock, RedisHistory on a real redis-server and on
// a real 3-node Redis Cluster. Then each store's own concerns: for Redis the one
// script that numbers, keeps and publishes, epochs after a restart without
// persistence, de-duplication of a retried publish, the key layout.
//
// Time: the memory store's clock is injected. Redis trims by age on its own
// clock, so the age tests there use a short maxAge and wait past it (time is the
// subject; the margins only ever make the wait longer).
import t, { type Test } from 'tap'
import { Clock } from '@tapjs/clock'
import { Cluster, Redis } from 'ioredis'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemoryHistory, type MemoryHistoryOptions } from '../lib/history/memory.js'
import { RedisHistory, type RedisHistoryOptions } from '../lib/history/redis.js'
import { roomEventParts } from '../lib/protocol.js'
import type { HistoryRead, HistoryStore, RoomPosition } from '../types/history.js'
import { startRedisServer } from './helpers/redis-server.js'
import { redisBackends } from './helpers/redis-backends.js'

const EPOCH = /^[\w-]{8,22}$/
const WIDE = { maxCount: 10_000, maxBytes: 100 * 1024 * 1024 }

interface Made {
  store: HistoryStore
  /** Lose the room's history the way this backend loses it (released room, FLUSHALL). */
  lose (room: string): Promise<void>
  /** Let at least `ms` pass on the store's clock. */
  advance (ms: number): Promise<void>
}

interface Target {
  name: string
  make (t: Test, options?: { maxCount?: number, maxAge?: number }): Promise<Made>
}

let rooms = 0
const newRoom = (): string => `room-${++rooms}`

/** The frame the store builds for message `text` at `seq`. */
function frame (room: string, seq: number, text: string): string {
  const [head, tail] = roomEventParts('said', room, { text })
  return head + seq + tail
}

async function say (store: HistoryStore, room: string, text: string, options?: { id?: string, skipped?: number }): Promise<{ seq: number, epoch: string, duplicate: boolean }> {
  const [head, tail] = roomEventParts('said', room, { text })
  return await store.append(room, head, tail, options)
}

function texts (read: HistoryRead): string[] {
  if (!read.recovered) return [`not recovered: ${read.reason}`]
  return read.frames.map((f) => (JSON.parse(f.toString()) as { data: { text: string } }).data.text)
}

function historySuite (t: Test, target: Target): void {
  t.test('a room read before any message has seq 0 and an epoch, the same on every read', async t => {
    const { store } = await target.make(t)
    const room = newRoom()
    const first = await store.since(room, null, WIDE)
    t.match(first, { recovered: true, seq: 0, frames: [] })
    t.match(first.epoch, EPOCH)
    t.same(await store.since(room, null, WIDE), first)
    const appended = await say(store, room, 'a')
    t.same(appended, { seq: 1, epoch: first.epoch, duplicate: false }, 'the first message keeps the epoch the read gave')
  })

  t.test('messages are numbered 1, 2, 3 in one epoch and read back exactly, in order', async t => {
    const { store } = await target.make(t)
    const room = newRoom()
    const epochs = new Set<string>()
    for (let i = 1; i <= 20; i++) {
      const { seq, epoch, duplicate } = await say(store, room, `m${i}`)
      t.equal(seq, i)
      t.equal(duplicate, false)
      epochs.add(epoch)
    }
    t.equal(epochs.size, 1)
    const [epoch] = epochs
    const all = await store.since(room, { seq: 0, epoch }, WIDE)
    t.equal(all.recovered, true)
    t.equal(all.seq, 20)
    t.same((all as { frames: Buffer[] }).frames.map(String), Array.from({ length: 20 }, (_, i) => frame(room, i + 1, `m${i + 1}`)),
      'the bytes are head + seq + tail')
    t.same(texts(await store.since(room, { seq: 17, epoch }, WIDE)), ['m18', 'm19', 'm20'], 'exactly the missed range')
    t.same(await store.since(room, { seq: 20, epoch }, WIDE), { recovered: true, seq: 20, epoch, frames: [] }, 'nothing missed')
  })

  t.test('concurrent appends get distinct seqs and are kept in seq order', async t => {
    const { store } = await target.make(t)
    const room = newRoom()
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => say(store, room, `c${i}`)))
    t.same(results.map((r) => r.seq).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1))
    const read = await store.since(room, { seq: 0, epoch: results[0].epoch }, WIDE)
    const seqs = (read as { frames: Buffer[] }).frames.map((f) => (JSON.parse(f.toString()) as { seq: number }).seq)
    t.same(seqs, Array.from({ length: 50 }, (_, i) => i + 1))
  })

  t.test('rooms are independent', async t => {
    const { store } = await target.make(t)
    const a = newRoom()
    const b = newRoom()
    await say(store, a, 'a1')
    await say(store, a, 'a2')
    const first = await say(store, b, 'b1')
    t.equal(first.seq, 1)
    t.same(texts(await store.since(b, { seq: 0, epoch: first.epoch }, WIDE)), ['b1'])
  })

  t.test('a position from another epoch is refused with the current position', async t => {
    const { store } = await target.make(t)
    const room = newRoom()
    const { epoch } = await say(store, room, 'x')
    t.same(await store.since(room, { seq: 0, epoch: 'another-life' }, WIDE), { recovered: false, seq: 1, epoch, reason: 'epoch' })
  })

  t.test('a position newer than the room is refused (ahead)', async t => {
    const { store } = await target.make(t)
    const room = newRoom()
    await say(store, room, 'x')
    const { epoch } = await say(store, room, 'y')
    t.same(await store.since(room, { seq: 3, epoch }, WIDE), { recovered: false, seq: 2, epoch, reason: 'ahead' })
    t.same(await store.since(room, { seq: 1000, epoch }, WIDE), { recovered: false, seq: 2, epoch, reason: 'ahead' })
    for (const junk of [-1, 0.5, Number.NaN, Infinity]) {
      t.same(await store.since(room, { seq: junk, epoch }, WIDE), { recovered: false, seq: 2, epoch, reason: 'ahead' }, `seq ${junk}`)
    }
  })

  t.test('a range longer than the reader\'s bounds is refused whole (bound), never cut', async t => {
    const { store } = await target.make(t)
    const room = newRoom()
    let epoch = ''
    for (let i = 1; i <= 10; i++) epoch = (await say(store, room, `m${i}`)).epoch
    t.same(await store.since(room, { seq: 0, epoch }, { maxCount: 9, maxBytes: 1e9 }), { recovered: false, seq: 10, epoch, reason: 'bound' })
    t.same(texts(await store.since(room, { seq: 1, epoch }, { maxCount: 9, maxBytes: 1e9 })).length, 9, 'exactly maxCount is fine')
    const size = Buffer.byteLength(frame(room, 10, 'm10'))
    const three = size * 3
    t.same(await store.since(room, { seq: 6, epoch }, { maxCount: 100, maxBytes: three }), { recovered: false, seq: 10, epoch, reason: 'bound' })
    t.same(texts(await store.since(room, { seq: 7, epoch }, { maxCount: 100, maxBytes: three })), ['m8', 'm9', 'm10'], 'exactly maxBytes is fine')
  })

  t.test('more missed than the store keeps: refused (trimmed), never a partial replay', async t => {
    const { store } = await target.make(t, { maxCount: 5 })
    const room = newRoom()
    let epoch = ''
    for (let i = 1; i <= 8; i++) epoch = (await say(store, room, `m${i}`)).epoch
    t.same(await store.since(room, { seq: 2, epoch }, WIDE), { recovered: false, seq: 8, epoch, reason: 'trimmed' })
    t.same(await store.since(room, { seq: 0, epoch }, WIDE), { recovered: false, seq: 8, epoch, reason: 'trimmed' })
    t.same(texts(await store.since(room, { seq: 3, epoch }, WIDE)), ['m4', 'm5', 'm6', 'm7', 'm8'], 'the kept five are complete')
  })

  t.test('messages older than maxAge are trimmed', async t => {
    const { store, advance } = await target.make(t, { maxAge: 300 })
    const room = newRoom()
    const { epoch } = await say(store, room, 'old')
    await advance(400)
    await say(store, room, 'new')
    t.same(await store.since(room, { seq: 0, epoch }, WIDE), { recovered: false, seq: 2, epoch, reason: 'trimmed' })
    t.same(texts(await store.since(room, { seq: 1, epoch }, WIDE)), ['new'])
    await advance(400)
    t.same(await store.since(room, { seq: 1, epoch }, WIDE), { recovered: false, seq: 2, epoch, reason: 'trimmed' },
      'aged out without a new message too')
    t.same(await store.since(room, { seq: 2, epoch }, WIDE), { recovered: true, seq: 2, epoch, frames: [] }, 'the position itself is still good')
  })

  t.test('skipped seqs (numbered elsewhere during an outage) are a hole: a replay over them is refused', async t => {
    const { store } = await target.make(t)
    const room = newRoom()
    await say(store, room, 'm1')
    const { seq, epoch } = await say(store, room, 'm4', { skipped: 2 })
    t.equal(seq, 4, 'the seq skips the two')
    await say(store, room, 'm5')
    t.same(await store.since(room, { seq: 1, epoch }, WIDE), { recovered: false, seq: 5, epoch, reason: 'trimmed' })
    t.same(await store.since(room, { seq: 2, epoch }, WIDE), { recovered: false, seq: 5, epoch, reason: 'trimmed' })
    t.same(texts(await store.since(room, { seq: 3, epoch }, WIDE)), ['m4', 'm5'], 'after the hole it is complete')
  })

  t.test('the same message appended twice (a retrying publisher) is stored once', async t => {
    const { store } = await target.make(t)
    const room = newRoom()
    const first = await say(store, room, 'once', { id: 'inst-1:7' })
    const again = await say(store, room, 'once', { id: 'inst-1:7' })
    t.same(again, { ...first, duplicate: true }, 'the retry gets the first seq')
    const next = await say(store, room, 'next', { id: 'inst-1:8' })
    t.equal(next.seq, 2)
    t.same(texts(await store.since(room, { seq: 0, epoch: first.epoch }, WIDE)), ['once', 'next'])
  })

  t.test('a room whose history is lost starts a new life: new epoch, seq from 1, old positions refused', async t => {
    const { store, lose } = await target.make(t)
    const room = newRoom()
    await say(store, room, 'm1')
    const old = await say(store, room, 'm2')
    await lose(room)
    const now = await store.since(room, null, WIDE)
    t.equal(now.seq, 0)
    t.not(now.epoch, old.epoch, 'a new epoch')
    t.match(now.epoch, EPOCH)
    t.same(await store.since(room, { seq: 2, epoch: old.epoch }, WIDE), { recovered: false, seq: 0, epoch: now.epoch, reason: 'epoch' })
    t.same(await say(store, room, 'again'), { seq: 1, epoch: now.epoch, duplicate: false })
    t.same(await store.since(room, { seq: 1, epoch: old.epoch }, WIDE), { recovered: false, seq: 1, epoch: now.epoch, reason: 'epoch' },
      'never the new life\'s message for the old position')
  })

  t.test('close() can be called, twice', async t => {
    const { store } = await target.make(t)
    await store.close?.()
    await store.close?.()
    t.pass()
  })
}

// --- the targets ---------------------------------------------------------------

t.test('MemoryHistory', async t => {
  historySuite(t, {
    name: 'memory',
    async make (t, options = {}) {
      let now = 1_000_000
      const store = new MemoryHistory({ ...options, now: () => now })
      t.teardown(() => store.close())
      return { store, lose: async (room) => store.release(room), advance: async (ms) => { now += ms } }
    }
  })
})

const backends = await redisBackends(t, 'h')
const { redis, cluster, slot } = backends
const newPrefix = backends.prefix

backends.each(t, 'RedisHistory', (t, client, name) => {
  historySuite(t, {
    name,
    async make (t, options = {}) {
      const prefix = newPrefix()
      return {
        store: new RedisHistory({ client, prefix, ...options }),
        // The room's keys, on the room's slot (FLUSHALL would be per cluster node).
        lose: async (room) => { await client.del(`${prefix}{${room}}:h`, `${prefix}{${room}}:x`) },
        advance: async (ms) => { await sleep(ms + 20) }
      }
    }
  })
})

// --- MemoryHistory on its own ---------------------------------------------------

t.test('MemoryHistory: append and since are synchronous', async t => {
  const store = new MemoryHistory({ sweepInterval: 0 })
  const [head, tail] = roomEventParts('said', 'r', null)
  const appended = store.append('r', head, tail)
  t.not(typeof (appended as unknown as Promise<unknown>).then, 'function')
  t.equal(appended.seq, 1)
  t.equal(store.since('r', null, WIDE).seq, 1)
})

t.test('MemoryHistory: bounded by count, bytes and age per room, whatever is sent', async t => {
  let now = 0
  // Each bound alone binds: count with small frames, bytes with large ones, age with a slow stream.
  const cases = [
    { name: 'count', options: { maxCount: 100 }, step: 0, text: 'x', count: 100 },
    // 261-byte frames: 15 fit in 4096.
    { name: 'bytes', options: { maxBytes: 4096 }, step: 0, text: 'y'.repeat(200), count: 15 },
    // One message every 10 ms, kept 1000 ms.
    { name: 'age', options: { maxAge: 1000 }, step: 10, text: 'z', count: 100 }
  ]
  for (const { name, options, step, text, count } of cases) {
    now = 0
    const store = new MemoryHistory({ ...options, now: () => now, sweepInterval: 0 })
    let largest = 0
    let largestBytes = 0
    for (let i = 0; i < 20_000; i++) {
      now += step
      await say(store, name, text)
      largest = Math.max(largest, store.kept(name).count)
      largestBytes = Math.max(largestBytes, store.kept(name).bytes)
    }
    t.equal(largest, count, `${name}: never more than ${count} kept`)
    if (name === 'bytes') t.ok(largestBytes <= 4096, `bytes: never more than maxBytes (${largestBytes})`)
    const { seq, epoch } = store.since(name, null, WIDE)
    t.equal(seq, 20_000)
    t.equal(store.since(name, { seq: seq - 10, epoch }, WIDE).recovered, true, `${name}: the newest are kept and complete`)
  }

  const store = new MemoryHistory({ maxBytes: 4096, now: () => now, sweepInterval: 0 })
  // A message bigger than maxBytes is not kept at all: a read over it is refused.
  await say(store, 'big', 'y'.repeat(5000))
  t.same(store.kept('big'), { count: 0, bytes: 0 })
  t.match(store.since('big', { seq: 0, epoch: store.since('big', null, WIDE).epoch }, WIDE), { recovered: false, reason: 'trimmed' })
})

t.test('MemoryHistory: a message id is remembered while its message is kept', async t => {
  const store = new MemoryHistory({ maxCount: 2, sweepInterval: 0 })
  t.equal((await say(store, 'r', 'a', { id: 'x' })).seq, 1)
  t.equal((await say(store, 'r', 'a', { id: 'x' })).duplicate, true)
  await say(store, 'r', 'b')
  await say(store, 'r', 'c')
  t.same(await say(store, 'r', 'a', { id: 'x' }), { seq: 4, epoch: store.since('r', null, WIDE).epoch, duplicate: false },
    'trimmed away, so forgotten: a late retry is a new message')
})

t.test('MemoryHistory: release frees the room; the sweep frees an idle room\'s messages', async t => {
  const clock = new Clock()
  t.teardown(clock.enter())
  const store = new MemoryHistory({ maxAge: 5000, sweepInterval: 1000 })
  t.teardown(() => store.close())
  await say(store, 'a', 'one')
  await say(store, 'b', 'two')
  t.equal(store.rooms, 2)
  store.release('a')
  t.equal(store.rooms, 1)
  t.same(store.kept('a'), { count: 0, bytes: 0 })
  clock.advance(4000)
  t.equal(store.kept('b').count, 1, 'not aged yet')
  clock.advance(1000)
  t.same(store.kept('b'), { count: 0, bytes: 0 }, 'swept once older than maxAge, with no append or read')
  t.equal(store.since('b', null, WIDE).seq, 1, 'the seq and epoch stay while the room lives')
})

t.test('MemoryHistory: its sweep timer does not keep the process alive; close stops it', async t => {
  const timers = (): number => process.getActiveResourcesInfo().filter(type => type === 'Timeout').length
  const before = timers()
  const store = new MemoryHistory({ sweepInterval: 10 })
  t.equal(timers(), before, 'the timer is unref\'d')
  store.close()
  store.close()
  const clock = new Clock()
  t.teardown(clock.enter())
  const stopped = new MemoryHistory({ maxAge: 10, sweepInterval: 100 })
  await say(stopped, 'r', 'x')
  stopped.close()
  clock.advance(1000)
  t.equal(stopped.kept('r').count, 1, 'no sweep after close()')
})

t.test('MemoryHistory: epochs of two lives and of two stores differ', async t => {
  const one = new MemoryHistory({ sweepInterval: 0 })
  const two = new MemoryHistory({ sweepInterval: 0 })
  const epochs = new Set<string>()
  for (let i = 0; i < 100; i++) {
    epochs.add(one.since('r', null, WIDE).epoch)
    one.release('r')
  }
  epochs.add(two.since('r', null, WIDE).epoch)
  t.equal(epochs.size, 101)
})

t.test('MemoryHistory: bad options are rejected with FRT_ERR_HISTORY_INVALID naming the field', async t => {
  const bad: Array<[unknown, RegExp]> = [
    [null, /options must be an object/],
    [{ maxCount: 0 }, /maxCount must be a positive integer, got 0/],
    [{ maxAge: 1.5 }, /maxAge/],
    [{ maxBytes: '10' }, /maxBytes/],
    [{ sweepInterval: -1 }, /sweepInterval must be an integer from 0/],
    [{ sweepInterval: 2 ** 31 }, /sweepInterval/],
    [{ now: 1 }, /now must be a function/],
    [{ maxCount: () => 1 }, /got a function/]
  ]
  for (const [options, message] of bad) {
    t.throws(() => new MemoryHistory(options as MemoryHistoryOptions), { code: 'FRT_ERR_HISTORY_INVALID', message }, message.source)
  }
})

// --- RedisHistory on its own ----------------------------------------------------

/** The messages `subscriber` gets on `event`, and a promise of the first `count` of them. */
function receive (subscriber: Redis | Cluster, event: 'message' | 'smessage', count: number): { got: string[], arrived: Promise<void> } {
  const got: string[] = []
  const arrived = new Promise<void>((resolve) => {
    subscriber.on(event, (_channel: string, message: string) => { if (got.push(message) === count) resolve() })
  })
  return { got, arrived }
}

function parts (room: string, text: string): [string, string] {
  return roomEventParts('said', room, { text })
}

t.test('RedisHistory: one script numbers, keeps and publishes; the channel gets the adapter\'s envelope in seq order', async t => {
  const client = new Redis(redis.url)
  const subscriber = new Redis(redis.url)
  t.teardown(() => { subscriber.disconnect(); return client.quit() })
  const prefix = newPrefix()
  const store = new RedisHistory({ client, prefix, publish: { header: 'frt10ORIGINORIGINORIG', sharded: false } })
  const { got, arrived } = receive(subscriber, 'message', 5)
  await subscriber.subscribe(`${prefix}{pub}`)
  for (let i = 1; i <= 5; i++) await store.append('pub', ...parts('pub', `m${i}`))
  await arrived
  t.same(got, Array.from({ length: 5 }, (_, i) => `frt10ORIGINORIGINORIG${i + 1}:${frame('pub', i + 1, `m${i + 1}`)}`))
  const read = await store.since('pub', null, WIDE)
  t.equal(read.seq, 5, 'published and kept under the same seqs')
})

t.test('RedisHistory: a retried publish is stored once and delivered once', async t => {
  const client = new Redis(redis.url)
  const subscriber = new Redis(redis.url)
  t.teardown(() => { subscriber.disconnect(); return client.quit() })
  const prefix = newPrefix()
  const store = new RedisHistory({ client, prefix, publish: { header: 'H', sharded: false }, dedupeTtl: 300 })
  const { got, arrived } = receive(subscriber, 'message', 2)
  await subscriber.subscribe(`${prefix}{dup}`)
  const first = await store.append('dup', ...parts('dup', 'once'), { id: 'i:1' })
  const retry = await store.append('dup', ...parts('dup', 'once'), { id: 'i:1' })
  t.same(retry, { ...first, duplicate: true })
  const marker = await store.append('dup', ...parts('dup', 'marker'))
  await arrived
  // Anything published twice would have arrived before the marker, which was published after the retry.
  t.same(got, [`H1:${frame('dup', 1, 'once')}`, `H2:${frame('dup', 2, 'marker')}`], 'published once')
  t.equal(marker.seq, 2)
  t.equal(await client.xlen(`${prefix}{dup}:x`), 2, 'stored once')
  const ttl = await client.pttl(`${prefix}{dup}:d:i:1`)
  t.ok(ttl > 0 && ttl <= 300, `the id is remembered for dedupeTtl (${ttl})`)
  await sleep(350)
  t.equal((await store.append('dup', ...parts('dup', 'once'), { id: 'i:1' })).duplicate, false, 'forgotten after dedupeTtl')
})

t.test('RedisHistory: sharded publishing uses SPUBLISH', async t => {
  const client = new Cluster(cluster.nodes)
  const subscriber = new Cluster(cluster.nodes, { shardedSubscribers: true })
  t.teardown(async () => { subscriber.disconnect(); await client.quit() })
  const prefix = newPrefix()
  const store = new RedisHistory({ client, prefix, publish: { header: 'S', sharded: true } })
  const { got, arrived } = receive(subscriber, 'smessage', 1)
  await subscriber.ssubscribe(`${prefix}{sharded}`)
  await store.append('sharded', ...parts('sharded', 'hello'))
  await arrived
  t.same(got, [`S1:${frame('sharded', 1, 'hello')}`])
})

t.test('RedisHistory: the key layout: hash, stream of <ms>-<seq> entries, all on the room\'s slot, expiring', async t => {
  const client = new Redis(redis.url)
  t.teardown(() => client.quit())
  const prefix = newPrefix()
  const store = new RedisHistory({ client, prefix, ttl: 60_000 })
  const { epoch } = await store.append('lay', ...parts('lay', 'a'))
  await store.append('lay', ...parts('lay', 'b'))
  const hash = await client.hgetall(`${prefix}{lay}:h`)
  t.equal(hash.e, epoch)
  t.equal(hash.s, '2')
  const entries = await client.xrange(`${prefix}{lay}:x`, '-', '+')
  t.same(entries.map(([id]) => id.split('-')[1]), ['1', '2'], 'the seq is in the entry id')
  t.same(entries.map(([, fields]) => fields), [['d', frame('lay', 1, 'a')], ['d', frame('lay', 2, 'b')]])
  const [seconds] = await client.time()
  t.ok(Math.abs(Number(entries[1][0].split('-')[0]) - Number(seconds) * 1000) < 5000, 'the ms is Redis time')
  for (const key of [`${prefix}{lay}:h`, `${prefix}{lay}:x`]) {
    const ttl = await client.pttl(key)
    t.ok(ttl > 50_000 && ttl <= 60_000, `${key} expires with ttl (${ttl})`)
  }
  const slots = await Promise.all([`${prefix}{lay}:h`, `${prefix}{lay}:x`, `${prefix}{lay}:d:x`, `${prefix}{lay}`].map(slot))
  t.equal(new Set(slots).size, 1, 'hash, stream, dedupe keys and channel share one slot')
  t.not(await slot(`${prefix}{other}:h`), slots[0], 'another room hashes elsewhere (these two names do)')
})

t.test('RedisHistory: the stream is bounded in Redis itself, by count (exact MAXLEN) and by age (MINID)', async t => {
  const client = new Redis(redis.url)
  t.teardown(() => client.quit())
  const prefix = newPrefix()
  const byCount = new RedisHistory({ client, prefix, maxCount: 50 })
  let largest = 0
  for (let i = 0; i < 300; i++) {
    await byCount.append('count', ...parts('count', `m${i}`))
    if (i % 10 === 0) largest = Math.max(largest, await client.xlen(`${prefix}{count}:x`))
  }
  t.equal(largest, 50)
  t.equal(await client.xlen(`${prefix}{count}:x`), 50)
  const byAge = new RedisHistory({ client, prefix, maxAge: 200 })
  for (let i = 0; i < 20; i++) await byAge.append('age', ...parts('age', `m${i}`))
  await sleep(250)
  await byAge.append('age', ...parts('age', 'last'))
  t.equal(await client.xlen(`${prefix}{age}:x`), 1, 'the aged entries are gone from Redis, not only hidden')
})

t.test('RedisHistory: Redis restarted without persistence: a new epoch, old positions refused, never a wrong replay', async t => {
  const own = await startRedisServer()
  t.teardown(() => own.stop())
  const client = new Redis(own.url)
  t.teardown(() => client.disconnect())
  client.on('error', () => {})
  const store = new RedisHistory({ client })
  for (let i = 1; i <= 3; i++) await store.append('life', ...parts('life', `old${i}`))
  const before: RoomPosition = { seq: 3, epoch: (await store.since('life', null, WIDE)).epoch }
  await own.restart()
  await store.append('life', ...parts('life', 'new1'))
  const after = await store.since('life', { seq: 1, epoch: before.epoch }, WIDE)
  t.equal(after.recovered, false)
  t.match(after, { seq: 1, reason: 'epoch' })
  t.not(after.epoch, before.epoch)
  t.same(await store.since('life', before, WIDE), { recovered: false, seq: 1, epoch: after.epoch, reason: 'epoch' })
})

t.test('RedisHistory: a deleted stream (the hash left) starts a new life too', async t => {
  const client = new Redis(redis.url)
  t.teardown(() => client.quit())
  const prefix = newPrefix()
  const store = new RedisHistory({ client, prefix })
  const { epoch } = await store.append('del', ...parts('del', 'a'))
  await client.del(`${prefix}{del}:x`)
  const read = await store.since('del', { seq: 1, epoch }, WIDE)
  t.match(read, { recovered: false, seq: 0, reason: 'epoch' })
  t.not(read.epoch, epoch)
  // And the other way: a hash lost with the stream left behind does not bring the old stream back.
  await store.append('del', ...parts('del', 'b'))
  await client.del(`${prefix}{del}:h`)
  const fresh = await store.since('del', null, WIDE)
  t.equal(fresh.seq, 0)
  t.equal(await client.exists(`${prefix}{del}:x`), 0, 'the old stream is dropped with the new life')
})

t.test('RedisHistory: defines its scripts once per client and never quits it', async t => {
  const client = new Redis(redis.url)
  t.teardown(() => client.quit())
  const calls: string[] = []
  const define = client.defineCommand.bind(client)
  Object.assign(client, { defineCommand: (...args: Parameters<typeof define>) => { calls.push(args[0]); define(...args) } })
  const one = new RedisHistory({ client, prefix: newPrefix() })
  const two = new RedisHistory({ client, prefix: newPrefix() })
  t.same(calls, ['frtHistoryAppendV1', 'frtHistorySinceV1'])
  await one.append('r', ...parts('r', 'x'))
  await two.append('r', ...parts('r', 'x'))
  one.close()
  t.equal(client.status, 'ready')
})

t.test('RedisHistory: a failing Redis rejects with FRT_ERR_HISTORY_REDIS', async t => {
  const client = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null })
  client.on('error', () => {})
  const store = new RedisHistory({ client })
  await t.rejects(store.append('r', 'a', 'b'), { code: 'FRT_ERR_HISTORY_REDIS' })
  await t.rejects(store.since('r', null, WIDE), { code: 'FRT_ERR_HISTORY_REDIS' })
})

t.test('RedisHistory: bad options are rejected with FRT_ERR_HISTORY_INVALID naming the field', async t => {
  const client = { defineCommand () {} }
  const bad: Array<[unknown, RegExp]> = [
    [null, /options must be an object/],
    [{}, /client must be an ioredis/],
    [{ client: { } }, /client must be an ioredis/],
    [{ client, prefix: 1 }, /prefix must be a string/],
    [{ client, maxCount: 0 }, /maxCount must be a positive integer/],
    [{ client, maxAge: -1 }, /maxAge/],
    [{ client, ttl: 1.5 }, /ttl/],
    [{ client, dedupeTtl: '1' }, /dedupeTtl/],
    [{ client, publish: 'yes' }, /publish must be null or/],
    [{ client, publish: { header: 1, sharded: false } }, /publish/],
    [{ client, publish: { header: 'h' } }, /publish/]
  ]
  for (const [options, message] of bad) {
    t.throws(() => new RedisHistory(options as RedisHistoryOptions), { code: 'FRT_ERR_HISTORY_INVALID', message }, message.source)
  }
})
