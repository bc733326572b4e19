// One suite for every fan-out adapter: the in-process MemoryAdapter on a shared
// MemoryBus, the RedisAdapter on a real redis-server (pub/sub and sharded
// pub/sub) and on a real three-master Redis Cluster. Each instance is an app
// of its own with its own adapter and Redis clients.
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { MemoryAdapter, MemoryBus } from '../index.js'
import { connect, type TestClient } from '../lib/testing.js'
import { startRedisCluster, startRedisServer } from './helpers/redis-server.js'
import {
  buildApp, closeInstance, clusterClient, redisClient, redisInstance, route, until, type ClientFactory, type Instance
} from './helpers/instances.js'

type Client = TestClient<any, any>

interface Backend {
  /** A new instance of the app on this backend. */
  instance (presence?: boolean): Promise<Instance>
  /** How many instances listen to `room` now. */
  listeners (room: string): Promise<number>
  /** Whether seq is numbered across instances. */
  clusterSeq: boolean
}

const WAIT = { timeout: 20_000 }

async function instances (t: Test, backend: Backend, n: number, presence = false): Promise<Instance[]> {
  const out: Instance[] = []
  for (let i = 0; i < n; i++) {
    const instance = await backend.instance(presence)
    t.teardown(() => closeInstance(instance))
    out.push(instance)
  }
  return out
}

async function member (t: Test, instance: Instance, room: string, user?: string): Promise<Client> {
  const client = await connect<typeof route>(instance.app, '/chat', { headers: user === undefined ? {} : { 'x-user': user }, timeout: WAIT.timeout })
  t.teardown(() => client.close())
  await client.request('enter', { room })
  return client
}

async function texts (client: Client, n: number): Promise<Array<{ text: string, seq: number }>> {
  const out = []
  for (let i = 0; i < n; i++) {
    const msg = await client.next('said', WAIT)
    out.push({ text: (msg.data as { text: string }).text, seq: msg.seq as number })
  }
  return out
}

function suite (name: string, backend: (t: Test) => Promise<Backend>): void {
  t.test(name, async (t) => {
    const b = await backend(t)

    t.test('an emit on A reaches every member on A, B and C exactly once, in order', async (t) => {
      const [a, bb, c] = await instances(t, b, 3)
      const members = [await member(t, a, 'shared'), await member(t, a, 'shared'), await member(t, bb, 'shared'), await member(t, c, 'shared')]
      const N = 50
      for (let i = 0; i < N; i++) a.app.realtime.to('shared').emit('said', { text: `a${i}` })
      for (const client of members) {
        const got = await texts(client, N)
        t.same(got.map((m) => m.text), Array.from({ length: N }, (_, i) => `a${i}`), 'every message, in order')
        const first = got[0].seq
        t.same(got.map((m) => m.seq), Array.from({ length: N }, (_, i) => first + i), 'seq one more each time')
      }
      // One more round trip through every instance: nothing else is on its way.
      c.app.realtime.to('shared').emit('said', { text: 'end' })
      for (const client of members) {
        t.equal((await client.next('said', WAIT)).data.text, 'end')
        t.equal(client.received.filter((m) => m.type === 'said').length, N + 1, 'exactly once')
      }
      t.match(a.app.realtime.stats(), { adapterErrors: 0, adapterDropped: 0, adapterInvalid: 0 })
    })

    t.test('emits from several instances: one seq for the room when the backend numbers it', async (t) => {
      const all = await instances(t, b, 3)
      const members = []
      for (const instance of all) members.push(await member(t, instance, 'many'))
      const N = 20
      for (let i = 0; i < N; i++) {
        for (const [k, instance] of all.entries()) instance.app.realtime.to('many').emit('said', { text: `${k}:${i}` })
      }
      const seen = []
      for (const client of members) seen.push(await texts(client, N * all.length))
      for (const got of seen) {
        for (let k = 0; k < all.length; k++) {
          const own = got.filter((m) => m.text.startsWith(`${k}:`)).map((m) => m.text)
          t.same(own, Array.from({ length: N }, (_, i) => `${k}:${i}`), 'each sender in its order')
        }
        if (b.clusterSeq) {
          t.same(got.map((m) => m.seq), Array.from({ length: N * all.length }, (_, i) => got[0].seq + i), 'no gap, no repeat')
        }
      }
      if (b.clusterSeq) {
        t.same(seen[1], seen[0], 'every member saw the same messages in the same order')
        t.same(seen[2], seen[0])
      }
    })

    t.test('an instance listens only to rooms it has members in', async (t) => {
      const [a, bb, c] = await instances(t, b, 3)
      const onA = await member(t, a, 'interest')
      t.equal(await b.listeners('interest'), 1)
      const onB = await member(t, bb, 'interest')
      const onB2 = await member(t, bb, 'interest')
      t.equal(await b.listeners('interest'), 2, 'one subscription per instance, not per member')
      c.app.realtime.to('interest').emit('said', { text: 'from c, no member there' })
      t.equal((await onA.next('said', WAIT)).data.text, 'from c, no member there')
      t.equal((await onB.next('said', WAIT)).data.text, 'from c, no member there')
      await onB.request('exit', { room: 'interest' })
      t.equal(await b.listeners('interest'), 2, 'b still has a member')
      await onB2.request('exit', { room: 'interest' })
      await until(async () => await b.listeners('interest') === 1, 'b to unsubscribe')
      t.equal(await b.listeners('interest'), 1, 'b unsubscribed when its last member left')
      a.app.realtime.to('interest').emit('said', { text: 'after' })
      t.equal((await onA.next('said', WAIT)).data.text, 'after')
      t.equal(onB2.received.filter((m) => m.type === 'said').length, 1, 'nothing for b after it left')
    })

    t.test('presence lists the members of every instance', async (t) => {
      const [a, bb, c] = await instances(t, b, 3, true)
      await member(t, a, 'lobby', 'ada')
      const onB = await member(t, bb, 'lobby', 'bob')
      await member(t, bb, 'lobby')
      const users = async (instance: Instance) =>
        (await instance.app.realtime.presence('lobby')).members.map((m) => m.userId ?? 'anon').sort()
      // A join is visible at once on its own instance; on the others once its presence write has landed.
      for (const instance of [a, bb, c]) {
        await until(async () => (await users(instance)).join() === 'ada,anon,bob', 'presence to converge')
        t.same(await users(instance), ['ada', 'anon', 'bob'])
      }
      t.equal((await c.app.realtime.presence('lobby')).count, 3)
      const joined = await member(t, c, 'lobby', 'cyd')
      let event = await onB.next('presence:join', WAIT)
      // The first may be the anonymous member's, who joined on b after bob.
      if ((event.data as { userId: string | null }).userId === null) event = await onB.next('presence:join', WAIT)
      const cyd = (await c.app.realtime.presence('lobby')).members.find((m) => m.userId === 'cyd')
      t.same(event.data, cyd, 'presence events cross instances')
      await onB.close()
      await until(async () => (await users(a)).join() === 'ada,anon,cyd', 'bob to leave presence')
      await joined.request('exit', { room: 'lobby' })
      await until(async () => (await users(bb)).join() === 'ada,anon', 'cyd to leave presence')
      t.equal((await users(a)).join(), 'ada,anon', 'leaving and closing remove members everywhere')
    })

    t.test('disconnectUser closes the user\'s sockets on every instance', async (t) => {
      const [a, bb, c] = await instances(t, b, 3)
      const onB = await member(t, bb, 'r', 'mallory')
      const onC = await member(t, c, 'r', 'mallory')
      const other = await member(t, c, 'r', 'alice')
      t.equal(a.app.realtime.disconnectUser('mallory', 'Banned'), 0, 'it returns how many it closed here')
      t.same(await onB.closed, { code: 4401, reason: 'Banned' })
      t.same(await onC.closed, { code: 4401, reason: 'Banned' })
      const here = await member(t, a, 'r', 'mallory')
      t.equal(bb.app.realtime.disconnectUser('mallory'), 0)
      t.same(await here.closed, { code: 4401, reason: 'Access revoked' })
      other.send('say', { room: 'r', text: 'still here' })
      t.equal((await other.next('said', WAIT)).data.text, 'still here')
    })
  })
}

suite('MemoryAdapter on a shared MemoryBus', async () => {
  const bus = new MemoryBus()
  return {
    clusterSeq: false,
    async instance (presence = false) {
      const adapter = new MemoryAdapter(bus)
      return { app: await buildApp(adapter, {}, presence), adapter, client: null }
    },
    async listeners (room) { return bus.rooms.get(room)?.size ?? 0 }
  }
})

async function redisBackend (factory: ClientFactory, numsub: (room: string) => Promise<number>, sharded?: boolean): Promise<Backend> {
  return {
    clusterSeq: true,
    instance: (presence = false) => redisInstance(factory, { sharded, presenceTtl: 60_000 }, {}, presence),
    listeners: numsub
  }
}

suite('RedisAdapter on redis-server (pub/sub)', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  return redisBackend(redisClient(redis.url), async (room) => {
    const [, n] = await admin.pubsub('NUMSUB', `frt:{${room}}`) as [string, number]
    return n
  })
})

suite('RedisAdapter on redis-server (sharded pub/sub)', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  return redisBackend(redisClient(redis.url), async (room) => {
    const [, n] = await admin.pubsub('SHARDNUMSUB', `frt:{${room}}`) as [string, number]
    return n
  }, true)
})

suite('RedisAdapter on a Redis Cluster (sharded pub/sub)', async (t) => {
  const cluster = await startRedisCluster()
  t.teardown(() => cluster.stop())
  const admins = cluster.nodes.map(({ port }) => new Redis(port, '127.0.0.1'))
  t.teardown(() => { for (const admin of admins) admin.disconnect() })
  return redisBackend(clusterClient(cluster.nodes), async (room) => {
    // A shard channel lives on the node of its slot; the others answer 0.
    let n = 0
    for (const admin of admins) n += (await admin.pubsub('SHARDNUMSUB', `frt:{${room}}`) as [string, number])[1]
    return n
  })
})
