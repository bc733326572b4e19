// The RedisAdapter's own behaviour, on a real redis-server: its options, hostile
// messages on its channels, and Redis failing under it (killed and restarted,
// frozen with SIGSTOP, an instance dying without cleanup).
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { RedisAdapter, type RedisAdapterOptions } from '../index.js'
import { connect, type TestClient } from '../lib/testing.js'
import { startRedisServer, type RedisServer } from './helpers/redis-server.js'
import { closeInstance, redisClient, redisInstance, route, until, type Instance } from './helpers/instances.js'
import type { RealtimeOptions } from '../types/options.js'

type Client = TestClient<any, any>
const WAIT = { timeout: 20_000 }

async function server (t: Test): Promise<RedisServer> {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  return redis
}

async function instance (t: Test, redis: RedisServer, options: Omit<RedisAdapterOptions, 'client'> = {},
  logs?: string[], plugin: RealtimeOptions = {}): Promise<Instance> {
  const created = await redisInstance(redisClient(redis.url), options, plugin, true, logs)
  t.teardown(() => closeInstance(created))
  return created
}

async function member (t: Test, instance: Instance, room: string, user?: string): Promise<Client> {
  const client = await connect<typeof route>(instance.app, '/chat', { headers: user === undefined ? {} : { 'x-user': user }, timeout: WAIT.timeout })
  t.teardown(() => client.close())
  await client.request('enter', { room })
  return client
}

const said = (client: Client) => client.received.filter((m) => m.type === 'said')

t.test('options are checked once, with a coded error naming the field', async (t) => {
  const client = {
    defineCommand (this: Record<string, unknown>, name: string) { this[name] = async () => 0 },
    duplicate () { return {} },
    status: 'ready'
  }
  const cases: Array<[unknown, RegExp]> = [
    [null, /options must be an object/],
    [{}, /client must be an ioredis/],
    [{ client: { defineCommand () {} } }, /client must be an ioredis/],
    [{ client, prefix: 1 }, /prefix must be a string/],
    [{ client, sharded: 'yes' }, /sharded must be a boolean/],
    [{ client, presence: 1 }, /presence must be a boolean/],
    [{ client, publishTimeout: 0 }, /publishTimeout must be a positive integer/],
    [{ client, maxInFlight: 1.5 }, /maxInFlight must be a positive integer/],
    [{ client, presenceTtl: -1 }, /presenceTtl/],
    [{ client, seqTtl: '1' }, /seqTtl/],
    [{ client, history: null }, /history must be an object/],
    [{ client, history: 5 }, /history must be an object/]
  ]
  for (const [options, message] of cases) {
    t.throws(() => new RedisAdapter(options as RedisAdapterOptions), { code: 'FRT_ERR_ADAPTER_INVALID', message }, String(message))
  }
  const adapter = new RedisAdapter({ client, prefix: 'x:', maxInFlight: 5 })
  t.match(adapter.options, { prefix: 'x:', sharded: false, presence: true, publishTimeout: 2000, maxInFlight: 5, presenceTtl: 30000, seqTtl: 86400000 })
  t.ok(Object.isFrozen(adapter.options))
  t.equal(adapter.subscriber, null, 'nothing is opened before the app attaches it')
  t.match(adapter.id, /^[\w-]{16}$/)
})

t.test('one adapter per app; the caller\'s client is never closed', async (t) => {
  const redis = await server(t)
  const a = await instance(t, redis)
  await t.rejects((a.adapter as RedisAdapter).attach({ log: a.app.log, disconnectUser: () => 0 }), { code: 'FRT_ERR_ADAPTER_INVALID', message: /one app/ })
  const subscriber = (a.adapter as RedisAdapter).subscriber as Redis
  t.equal(subscriber.status, 'ready')
  // close() removes this instance's presence entries even when members are still in rooms.
  const onA = await member(t, a, 'r', 'ada')
  const admin = a.client as Redis
  t.equal(await admin.exists('frt:{r}:p:' + (a.adapter as RedisAdapter).id), 1)
  await (a.adapter as RedisAdapter).close()
  t.equal(await admin.exists('frt:{r}:p:' + (a.adapter as RedisAdapter).id), 0, 'its presence hash is gone')
  t.equal(await admin.exists('frt:{r}:p'), 0, 'and so is the room\'s instance set')
  await onA.close()
  await a.app.close()
  t.equal((a.adapter as RedisAdapter).subscriber, null)
  t.equal(a.client?.status, 'ready', 'the app\'s client is still open')
  t.equal(await (a.client as Redis).ping(), 'PONG')
  await t.resolves((a.adapter as RedisAdapter).close(), 'closing twice is fine')
})

t.test('garbage on our channels is dropped and counted, never delivered, never fatal', async (t) => {
  const redis = await server(t)
  const a = await instance(t, redis)
  const b = await instance(t, redis)
  const onA = await member(t, a, 'g', 'ada')
  const onB = await member(t, b, 'g')
  const rogue = new Redis(redis.url)
  t.teardown(() => rogue.disconnect())
  const garbage = [
    'hello', '', 'frt1', 'frt2' + '0'.repeat(30), 'frt1x' + 'a'.repeat(16) + '1:{}', 'frt10' + 'a'.repeat(16) + ':{}',
    'frt10' + 'a'.repeat(16) + '1x:{}', 'frt10' + 'a'.repeat(16) + '12345678901234567:{}', 'frt10' + 'a'.repeat(16) + '1:not json',
    'frt10' + 'a'.repeat(16) + '1:{"unterminated"', Buffer.from([0xff, 0xfe, 0x00])
  ]
  for (const message of garbage) await rogue.publish('frt:{g}', message)
  const control = ['frtc0' + 'a'.repeat(16) + '{bad json', 'frtc0' + 'a'.repeat(16) + '{"type":"reboot"}', 'frtc0short', 'nope',
    'frtc0' + 'a'.repeat(16) + '{"type":"disconnectUser","userId":42}',
    'frtc0' + 'a'.repeat(16) + '{"type":"disconnectUser","userId":"ada","reason":7}']
  for (const message of control) await rogue.publish('frt:control', message)
  await rogue.publish('frt:{elsewhere}', 'not subscribed: never seen')
  const expected = garbage.length + control.length
  await until(() => a.app.realtime.stats().adapterInvalid === expected && b.app.realtime.stats().adapterInvalid === expected,
    `both to count the garbage (${expected})`, 2000).catch((err: Error) => { throw new Error(err.message + JSON.stringify([a.app.realtime.stats(), b.app.realtime.stats()])) })
  // A hand-made valid envelope from a stranger is a message like any other.
  await rogue.publish('frt:{g}', 'frt10' + 'z'.repeat(16) + '7:{"type":"said","room":"g","seq":7,"data":{"text":"forged but valid"}}')
  t.equal((await onA.next('said', WAIT)).data.text, 'forged but valid')
  a.app.realtime.to('g').emit('said', { text: 'still working' })
  t.equal((await onB.next('said', WAIT)).data.text, 'forged but valid')
  t.equal((await onB.next('said', WAIT)).data.text, 'still working')
  t.equal(onA.closed instanceof Promise, true)
  t.equal(a.app.realtime.stats().connections, 1, 'ada was not disconnected by a malformed command')
  // A corrupt presence entry of another instance is skipped and counted.
  await rogue.sadd('frt:{g}:p', 'intruder')
  await rogue.hset('frt:{g}:p:intruder', 'conn-1', '{broken', 'conn-2', '42', 'conn-3', '"eve"')
  const members = (await a.app.realtime.presence('g')).members.map((m) => m.userId).sort()
  t.same(members, ['ada', 'eve', null])
  t.equal(a.app.realtime.stats().adapterInvalid, expected + 2)
})

t.test('plain publish() carries a frame without a cluster seq', async (t) => {
  const redis = await server(t)
  const a = await instance(t, redis)
  const b = await instance(t, redis)
  const onB = await member(t, b, 'plain')
  a.adapter.publish('plain', Buffer.from('{"type":"said","room":"plain","data":{"text":"raw"}}'), true)
  t.same(await onB.next('said', WAIT), { type: 'said', room: 'plain', data: { text: 'raw' } })
})

t.test('Redis killed and restarted mid-stream: local delivery goes on, the rest resumes by itself, seq shows the gap', async (t) => {
  const redis = await server(t)
  const logsA: string[] = []
  const a = await instance(t, redis, { publishTimeout: 500 }, logsA)
  const b = await instance(t, redis, { publishTimeout: 500 })
  const onA = await member(t, a, 'live')
  const onB = await member(t, b, 'live')
  let n = 0
  const timer = setInterval(() => { a.app.realtime.to('live').emit('said', { text: String(n++) }) }, 5)
  t.teardown(() => clearInterval(timer))
  await until(() => said(onB).length >= 20, 'b to receive the stream')

  await redis.kill('SIGKILL')
  const killedAt = n
  await until(() => said(onA).some((m) => Number(m.data.text) >= killedAt + 20), 'a\'s own member to go on receiving')
  const lastOnB = said(onB).at(-1) as { seq: number, data: { text: string } }
  t.ok(a.app.realtime.stats().adapterDropped > 0, 'broadcasts during the outage are counted as dropped')

  await redis.restart()
  const restartedAt = Date.now()
  const resumedFrom = n
  await until(() => said(onB).some((m) => Number(m.data.text) >= resumedFrom), 'b to receive again after the restart', 30_000)
  const recovery = Date.now() - restartedAt
  t.comment(`b received again ${recovery} ms after Redis answered`)
  clearInterval(timer)

  const onBAll = said(onB)
  const resumed = onBAll.findIndex((m) => Number(m.data.text) > Number(lastOnB.data.text))
  t.not(onBAll[resumed].seq, lastOnB.seq + 1, 'b sees the gap through seq')
  const texts = said(onA).map((m) => Number(m.data.text))
  t.same(texts, [...texts].sort((x, y) => x - y), 'a\'s member got its messages in order throughout')
  t.ok(texts.length >= n - 1, 'and every one of them')
  const outages = logsA.filter((line) => line.includes('Redis fan-out unavailable'))
  t.equal(outages.length, 1, 'the outage is logged once, not per message')
  await until(() => logsA.some((line) => line.includes('Redis fan-out is back')), 'the recovery to be logged')
  t.equal(logsA.filter((line) => line.includes('Redis fan-out is back')).length, 1, 'the recovery is logged, once')
})

t.test('a frozen Redis (SIGSTOP): local delivery goes on and the publish backlog stays bounded', async (t) => {
  const redis = await server(t)
  const a = await instance(t, redis, { publishTimeout: 300, maxInFlight: 20 })
  const onA = await member(t, a, 'frozen')
  await redis.kill('SIGSTOP')
  t.teardown(() => redis.kill('SIGCONT'))
  const N = 500
  for (let i = 0; i < N; i++) a.app.realtime.to('frozen').emit('said', { text: String(i) })
  // Joining a new room while Redis is frozen: the subscription waits publishTimeout at most.
  const startedJoin = Date.now()
  await member(t, a, 'frozen-too')
  t.ok(Date.now() - startedJoin < 20_000, 'a join does not hang on a frozen Redis')
  const queue = (a.client as unknown as { commandQueue: { length: number } }).commandQueue
  t.ok(queue.length <= 20 + 1, `the client's queue holds at most maxInFlight commands (${queue.length})`)
  const got = []
  for (let i = 0; i < N; i++) got.push(await onA.next('said', WAIT))
  t.same(got.map((m) => Number(m.data.text)), Array.from({ length: N }, (_, i) => i), 'every message, in order')
  t.same(got.map((m) => m.seq), Array.from({ length: N }, (_, i) => got[0].seq + i), 'numbered locally without a gap')
  // The join's presence write and presence:join event may still hold a slot or two.
  const { adapterDropped } = a.app.realtime.stats()
  t.ok(adapterDropped >= N - 20 && adapterDropped <= N, `past maxInFlight the broadcasts are dropped and counted (${adapterDropped})`)
  t.ok(a.app.realtime.stats().adapterErrors >= 1, 'the timed-out publishes are counted')
  t.same(await a.app.realtime.presence('frozen').then((p) => p.count), 1, 'presence falls back to this instance')
  await redis.kill('SIGCONT')
  // The next cluster seq skips the messages numbered locally: no gap here, a gap everywhere else.
  await until(() => (a.client as Redis).status === 'ready' && a.app.realtime.stats().adapterErrors > 0, 'redis to thaw')
  await (a.client as Redis).ping()
  a.app.realtime.to('frozen').emit('said', { text: 'thawed' })
  const thawed = await onA.next('said', WAIT)
  t.same([thawed.data.text, thawed.seq], ['thawed', got[N - 1].seq + 1], 'this instance\'s members see no gap')
})

t.test('an instance that dies without cleanup leaves presence within the expiry', async (t) => {
  const redis = await server(t)
  const ttl = 1000
  const a = await instance(t, redis, { presenceTtl: ttl })
  const c = await instance(t, redis, { presenceTtl: ttl })
  await member(t, a, 'p', 'ada')
  await member(t, c, 'p', 'cyd')
  const users = async () => (await a.app.realtime.presence('p')).members.map((m) => m.userId).sort().join()
  t.equal(await users(), 'ada,cyd')
  // Alive, the entries outlive several expiries: the refresh keeps them.
  await new Promise((resolve) => setTimeout(resolve, ttl * 2))
  t.equal(await users(), 'ada,cyd', 'refreshed while alive')
  // Dead: no refresh (its client is gone), no subscriber, no cleanup.
  c.client?.disconnect()
  ;((c.adapter as RedisAdapter).subscriber as Redis).disconnect()
  const diedAt = Date.now()
  await until(async () => await users() === 'ada', 'cyd to expire', 10_000, 20)
  const gone = Date.now() - diedAt
  t.comment(`cyd left presence ${gone} ms after its instance died (ttl ${ttl} ms)`)
  // The expiry itself is Redis's; the margin only absorbs a slow machine's polling.
  t.ok(gone <= ttl + 3000, 'within the expiry')
  c.app.realtime.disconnectUser('nobody')
  t.ok(c.app.realtime.stats().adapterDropped >= 1, 'a disconnectUser that cannot be sent is counted')
})

t.test('presence entries lost with a Redis restart are written again by the refresh', async (t) => {
  const redis = await server(t)
  const a = await instance(t, redis, { presenceTtl: 300 })
  const b = await instance(t, redis, { presenceTtl: 300 })
  await member(t, a, 'again', 'ada')
  t.same((await b.app.realtime.presence('again')).members.map((m) => m.userId), ['ada'])
  await redis.restart()
  await until(async () => (await b.app.realtime.presence('again')).count === 1, 'ada to be back in presence')
  t.same((await b.app.realtime.presence('again')).members.map((m) => m.userId), ['ada'], 'ada is listed again')
})

t.test('without presence, only the local members are listed', async (t) => {
  const redis = await server(t)
  const a = await instance(t, redis, { presence: false })
  const b = await instance(t, redis, { presence: false })
  await member(t, a, 'np', 'ada')
  const onB = await member(t, b, 'np', 'bob')
  t.same((await b.app.realtime.presence('np')).members.map((m) => m.userId), ['bob'])
  await onB.request('exit', { room: 'np' })
  t.equal((await b.app.realtime.presence('np')).count, 0)
})

t.test('presence failures in Redis are counted and presence falls back to this instance', async (t) => {
  const redis = await server(t)
  const a = await instance(t, redis, { presenceTtl: 150 })
  await member(t, a, 'wt', 'ada')
  const rogue = new Redis(redis.url)
  t.teardown(() => rogue.disconnect())
  // The room's instance set replaced by a string: SADD and SMEMBERS fail with WRONGTYPE.
  await rogue.del('frt:{wt}:p')
  await rogue.set('frt:{wt}:p', 'not a set')
  await until(() => a.app.realtime.stats().adapterErrors > 0, 'the refresh to fail')
  const errors = a.app.realtime.stats().adapterErrors
  await member(t, a, 'wt', 'bea')
  t.same((await a.app.realtime.presence('wt')).members.map((m) => m.userId), ['ada', 'bea'])
  t.ok(a.app.realtime.stats().adapterErrors > errors, 'the failed listing is counted')
  await rogue.del('frt:{wt}:p')
  await until(async () => await rogue.sismember('frt:{wt}:p', (a.adapter as RedisAdapter).id) === 1, 'the refresh to write it again')
  t.equal(await rogue.sismember('frt:{wt}:p', (a.adapter as RedisAdapter).id), 1, 'repaired by the refresh')
})
