// Cluster-wide counts (issue 15): with the Redis adapter each instance publishes its counts on one timer and reads
// the others'; `app.realtime.inspect.cluster()` pages them with totals; a closed instance leaves at once, a dead one
// when its entry expires; entries that are not ours are ignored; the admin page's disconnect reaches every instance.
import t from 'tap'
import { Redis } from 'ioredis'
import { RedisAdapter, type InstanceCounts } from '../index.js'
import { connect } from '../lib/testing.js'
import { parseCounts } from '../lib/cluster.js'
import { realtimeApp } from './helpers/app.js'
import { until } from './helpers/wait.js'
import { startRedisServer } from './helpers/redis-server.js'
import { closeInstance, redisClient, redisInstance, type Instance } from './helpers/instances.js'

const KEY = 'frt:{instances}'
const admin = { path: '/admin', interval: 100, onRequest: async () => {} }

function entry (id: string, extra: Partial<InstanceCounts> = {}): string {
  return JSON.stringify({
    id,
    at: Date.now(),
    connections: 5,
    rooms: 2,
    members: 7,
    messagesIn: 100,
    messagesOut: 200,
    errors: 1,
    messagesInRate: 1.5,
    messagesOutRate: 3,
    errorRate: 0,
    closes: { 1000: 2 },
    errorCodes: { internal: 1 },
    ...extra
  })
}

t.test('two instances on one Redis: each sees both, with totals, a page at a time', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const one = await redisInstance(redisClient(redis.url), { countsInterval: 100 }, { admin })
  t.teardown(() => closeInstance(one))
  const two: Instance = await redisInstance(redisClient(redis.url), { countsInterval: 100 })
  let twoClosed = false
  t.teardown(() => twoClosed ? undefined : closeInstance(two))
  const idOne = (one.adapter as RedisAdapter).id
  const idTwo = (two.adapter as RedisAdapter).id

  const a1 = await connect(one.app, '/chat', { headers: { 'x-user': 'alice' } })
  const a2 = await connect(one.app, '/chat')
  const b1 = await connect(two.app, '/chat', { headers: { 'x-user': 'bob' } })
  t.teardown(() => Promise.all([a1, a2, b1].map((c) => c.close())))
  await a1.request('enter' as never, { room: 'r' } as never)
  await a2.request('enter' as never, { room: 'r' } as never)
  await a2.request('enter' as never, { room: 's' } as never)
  await b1.request('enter' as never, { room: 'r' } as never)
  // One close with a code, counted by the admin page's recorder on instance one.
  const gone = await connect(one.app, '/chat')
  await gone.close(4403)

  const view = () => one.app.realtime.inspect.cluster()
  await until(() => view().cluster?.totals.instances === 2 && view().cluster?.totals.connections === 3 &&
    view().cluster?.totals.closes['4403'] === 1, 'both instances counted')
  const { instance, cluster } = view()
  t.match(instance, { id: idOne, connections: 2, rooms: 2, members: 3, errors: 0, closes: { 4403: 1 }, errorCodes: {} })
  t.ok(cluster !== null)
  if (cluster === null) return
  t.same(cluster.instances.map((i) => i.id), [idOne, idTwo].sort(), 'by id')
  t.match(cluster.instances.find((i) => i.id === idTwo), { connections: 1, rooms: 1, members: 1, closes: {}, errorCodes: {} })
  t.match(cluster.totals, { instances: 2, connections: 3, rooms: 3, members: 4, errors: 0 })
  t.equal(cluster.ignored, 0)
  t.ok(cluster.at > 0 && cluster.at <= Date.now())
  // Instance two sees the same cluster (its own counts taken now).
  await until(() => two.app.realtime.inspect.cluster().cluster?.totals.closes['4403'] === 1, 'two reads one\'s counts')

  // Pages of one instance.
  const first = one.app.realtime.inspect.cluster({ limit: 1 }).cluster
  t.equal(first?.instances.length, 1)
  t.equal(first?.next, first?.instances[0].id)
  const second = one.app.realtime.inspect.cluster({ limit: 1, cursor: first?.next }).cluster
  t.equal(second?.instances.length, 1)
  t.equal(second?.next, null)
  t.not(second?.instances[0].id, first?.instances[0].id)
  t.equal(second?.totals.instances, 2, 'totals are over every instance, whatever the page')
  t.throws(() => one.app.realtime.inspect.cluster({ limit: 0 }), { code: 'FRT_ERR_INSPECT_QUERY' })
  t.throws(() => one.app.realtime.inspect.cluster({ cursor: 5 as never }), { code: 'FRT_ERR_INSPECT_QUERY' })

  // Rates: steady traffic on two shows on one's view (a rate is over one interval: the traffic lasts until seen).
  const state = { sending: true }
  const traffic = (async () => {
    while (state.sending) {
      b1.send('say' as never, { room: 'r', text: 'x' } as never)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })()
  t.teardown(() => { state.sending = false })
  await until(() => {
    const seen = view().cluster
    return (seen?.instances.find((i) => i.id === idTwo)?.messagesInRate ?? 0) > 0 && (seen?.totals.messagesOutRate ?? 0) > 0
  }, 'rates from two in the cluster view')
  state.sending = false
  await traffic
  t.pass('two\'s rates in one\'s view')

  // The admin page's snapshot carries the cluster, and its disconnect reaches bob on the other instance.
  const page = await connect(one.app, '/admin/live')
  t.teardown(() => page.close())
  const snapshot = await page.next('snapshot' as never)
  t.match(snapshot.data, { cluster: { totals: { instances: 2 }, instances: [{ id: String }, { id: String }] } })
  t.equal(await page.request('disconnect' as never, { userId: 'bob' } as never), 0, 'none of bob\'s sockets here')
  t.match(await b1.closed, { code: 4401, reason: 'Disconnected by an admin' }, 'closed on the other instance')

  // Closing an instance removes its entry at once (not 3 intervals later, when it would expire).
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  t.equal(await raw.hexists(KEY, idTwo), 1)
  twoClosed = true
  await closeInstance(two)
  t.equal(await raw.hexists(KEY, idTwo), 0, 'removed by the closing instance')
  await until(() => view().cluster?.totals.instances === 1, 'two gone')
  t.same(view().cluster?.instances.map((i) => i.id), [idOne])
})

t.test('a dead instance vanishes when its entry expires; entries that are not counts are ignored', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const one = await redisInstance(redisClient(redis.url), { countsInterval: 100 })
  t.teardown(() => closeInstance(one))
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  const view = () => one.app.realtime.inspect.cluster().cluster
  const soon = (ms: number): number => Date.now() + ms

  // A ghost that stopped publishing: there until its expiry, then gone (and removed from Redis).
  await raw.hset(KEY, 'ghost', `${soon(600)}:${entry('ghost')}`)
  await until(() => view()?.totals.instances === 2, 'the ghost counted')
  t.match(view()?.totals, { instances: 2, connections: 5, members: 7, messagesInRate: 1.5, closes: { 1000: 2 }, errorCodes: { internal: 1 } })
  await until(() => view()?.totals.instances === 1, 'the ghost expired')
  t.equal(await raw.hexists(KEY, 'ghost'), 0, 'removed from Redis on the way')

  // Hostile or broken entries: malformed values are removed by the script, the rest ignored by the core.
  const big = entry('big', { closes: Object.fromEntries(Array.from({ length: 2000 }, (_, i) => ['k' + i, 1])) })
  await raw.hset(KEY, 'nocolon', 'garbage', 'notime', 'abc:{}', 'json', `${soon(60_000)}:not json`,
    'negative', `${soon(60_000)}:${entry('negative', { connections: -1 })}`,
    'string', `${soon(60_000)}:${entry('string', { members: '7' as never })}`,
    'array', `${soon(60_000)}:[1]`, 'null', `${soon(60_000)}:null`,
    'labels', `${soon(60_000)}:${entry('labels', { closes: [1] as never })}`,
    'label', `${soon(60_000)}:${entry('label', { errorCodes: { x: 'y' } as never })}`,
    'longlabel', `${soon(60_000)}:${entry('longlabel', { errorCodes: { ['x'.repeat(40)]: 1 } })}`,
    'many', `${soon(60_000)}:${entry('many', { closes: Object.fromEntries(Array.from({ length: 65 }, (_, i) => ['k' + i, 1])) })}`,
    'big', `${soon(60_000)}:${big}`, 'x'.repeat(65), `${soon(60_000)}:${entry('long id')}`,
    'proto', `${soon(60_000)}:${entry('proto').replace('"closes":{', '"closes":{"__proto__":3,')}`)
  await until(() => (view()?.ignored ?? 0) > 0, 'a read with them')
  const cluster = view()
  t.equal(cluster?.ignored, 11)
  t.same(cluster?.instances.map((i) => i.id).sort(), [(one.adapter as RedisAdapter).id, 'proto'].sort())
  t.equal(Object.getOwnPropertyDescriptor(cluster?.totals.closes, '__proto__')?.value, 3, 'a hostile label stays a plain key')
  t.equal(Object.getPrototypeOf(cluster?.totals.closes), null)
  t.equal(await raw.hexists(KEY, 'nocolon'), 0)
  t.equal(await raw.hexists(KEY, 'notime'), 0)
  t.ok(await raw.pttl(KEY) > 0, 'the hash expires when nobody writes any more')

  // Redis refuses the script (the key holds another type): an adapter error; the last read stays.
  await raw.del(KEY)
  await raw.set(KEY, 'not a hash')
  const before = one.app.realtime.stats().adapterErrors
  await until(() => one.app.realtime.stats().adapterErrors > before, 'a refused exchange')
  t.ok(view() !== null)
  await raw.del(KEY)
  await until(() => view()?.ignored === 0 && view()?.totals.instances === 1, 'exchanges again')

  // A Redis that does not answer: one exchange waits, and the timer's ticks meanwhile send no more (4 ticks in
  // 450 ms would be 4 scripts; after SIGCONT at most one more tick may slip in before INFO is read).
  await raw.config('RESETSTAT')
  await redis.kill('SIGSTOP')
  await new Promise((resolve) => setTimeout(resolve, 450))
  await redis.kill('SIGCONT')
  const stats = await raw.info('commandstats')
  const calls = Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0) + Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0)
  t.ok(calls >= 1 && calls <= 2, `${calls} script call(s) while Redis was stopped`)
})

t.test('parseCounts refuses what the script cannot see', async (t) => {
  t.equal(parseCounts('', entry('a')), null, 'an empty id')
  t.match(parseCounts('a', entry('a')), { id: 'a', connections: 5 })
  t.equal(parseCounts('a', entry('a', { at: Infinity })), null)
})

t.test('without an adapter that shares counts: this instance only', async (t) => {
  const app = await realtimeApp(t, { options: { heartbeat: false } })
  const view = app.realtime.inspect.cluster()
  t.equal(view.cluster, null)
  t.match(view.instance, { id: String, connections: 0, rooms: 0, members: 0, messagesInRate: 0, closes: {}, errorCodes: {} })

  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const off = await redisInstance(redisClient(redis.url), { countsInterval: false })
  t.teardown(() => closeInstance(off))
  t.equal(off.app.realtime.inspect.cluster().cluster, null, 'countsInterval: false')
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  t.equal(await raw.exists(KEY), 0, 'nothing written')
})

t.test('the countsInterval option is checked', async (t) => {
  const client = new Redis({ lazyConnect: true })
  for (const countsInterval of [99, 1.5, '1000', true]) {
    t.throws(() => new RedisAdapter({ client, countsInterval: countsInterval as never }),
      { code: 'FRT_ERR_ADAPTER_INVALID', message: /countsInterval must be false or an integer of at least 100/ }, String(countsInterval))
  }
})
