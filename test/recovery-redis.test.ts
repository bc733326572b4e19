// Recovery across instances on a real redis-server (issue 12, "Done when"):
// a client drops for 2 s while its room gets 100 messages and resumes on the
// other instance; joins with since over the Redis stream, with five messages
// published while the history is read; one instance's Redis connections
// killed under 20 msg/s (members gap-free after backfill); a quiet room
// backfilled once its instance's subscriber is back; a retried append (its
// answer lost for real, through test/helpers/redis-proxy.ts) stored and
// delivered once; Redis restarted without persistence (new epoch,
// recovered: false); a 3-node cluster.
import t from 'tap'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import Type from 'typebox'
import { Cluster, Redis } from 'ioredis'
import realtime, { RedisAdapter, RedisSessions } from '../index.js'
import { startRedisCluster, startRedisServer } from './helpers/redis-server.js'
import { startRedisProxy } from './helpers/redis-proxy.js'
import { wireClient, type WireClient } from './helpers/wire.js'
import { until } from './helpers/wait.js'

const Room = Type.Object({ room: Type.String() })

interface Node {
  opens: Array<{ id: string, recovered: boolean, data: unknown }>
  app: FastifyInstance
  url: string
  client: Redis | Cluster
  adapter: RedisAdapter
}

async function node (t: Tap.Test, make: () => Redis | Cluster, sessions = true): Promise<Node> {
  const client = make()
  client.on('error', () => {})
  if (client.status !== 'ready') await once(client, 'ready')
  const adapter = new RedisAdapter({ client, history: { maxCount: 500 }, publishTimeout: 1000 })
  const app = Fastify()
  app.addHook('onRequest', async (request) => {
    const name = request.headers['x-user']
    if (typeof name === 'string') Object.assign(request, { user: { sub: name } })
  })
  await app.register(realtime, {
    heartbeat: false,
    rateLimit: false,
    subprotocols: ['chat.v1'],
    adapter,
    history: {},
    sessions: sessions ? { store: new RedisSessions({ client }), window: 10_000 } : false
  })
  const opens: Node['opens'] = []
  app.realtime('/chat', {
    joinable: true,
    presence: true,
    history: true,
    sessions,
    keep: (conn: any) => conn.data,
    onOpen: (conn: any) => { opens.push({ id: conn.id, recovered: conn.recovered, data: conn.data }) },
    messages: {
      enter: { schema: Room, handler: async (conn: any, data: any) => { await conn.join(data.room); return true } }
    },
    emits: { said: Type.Object({ n: Type.Integer() }) }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => {
    await app.close()
    client.disconnect()
  })
  return { opens, app, client, adapter, url: `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/chat` }
}

async function connect (t: Tap.Test, n: Node, user: string, token?: string): Promise<WireClient> {
  const c = await wireClient(n.url, { headers: { 'x-user': user }, protocols: token === undefined ? ['chat.v1'] : ['chat.v1', 'resume.' + token] })
  t.teardown(() => c.ws.terminate())
  return c
}

function said (c: WireClient, room: string): number[] {
  return c.room(room, 'said').map((f) => f.seq as number)
}

/** Every numbered room message (presence events are numbered too). */
function numbered (c: WireClient, room: string): number[] {
  return c.room(room).filter((f) => f.seq !== undefined).map((f) => f.seq as number)
}

function consecutive (seqs: number[]): boolean {
  return seqs.every((seq, i) => i === 0 || seq === seqs[i - 1] + 1)
}

t.test('on one redis-server', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const make = (): Redis => new Redis(redis.url)

  t.test('a client drops for 2 s while its room gets 100 messages and resumes on the other instance: 100/100 in order, no duplicate, no presence flap', async (t) => {
    const a = await node(t, make)
    const b = await node(t, make)
    const watcher = await connect(t, b, 'bob')
    await watcher.next((f) => f.type === 'session')
    await watcher.request('room:join', { room: 'lobby' })
    const c = await connect(t, a, 'ann')
    const { data: session } = await c.next((f) => f.type === 'session')
    await c.request('room:join', { room: 'lobby' })
    await c.request('enter', { room: 'news' })
    await watcher.next((f) => f.type === 'presence:join')
    b.app.realtime.to('lobby').emit('said', { n: 0 })
    const last = (await c.next((f) => f.type === 'said')).seq as number
    c.ws.terminate()
    await until(() => a.app.realtime.stats().detachedSessions === 1, 'detached on a')
    // 100 messages over the 2 s away, from the other instance.
    for (let n = 1; n <= 100; n++) {
      b.app.realtime.to('lobby').emit('said', { n })
      if (n % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 200))
    }
    await watcher.next((f) => f.type === 'said' && f.data.n === 100)
    const back = await connect(t, b, 'ann', session.token)
    const resumed = await back.next((f) => f.type === 'session')
    t.match(resumed.data, { recovered: true, rooms: [{ room: 'lobby', seq: last + 100, recovered: true }, { room: 'news', recovered: true }] })
    await back.next((f) => f.type === 'said' && f.data.n === 100)
    t.same(back.room('lobby', 'said').map((f) => f.data.n), Array.from({ length: 100 }, (_, i) => i + 1), '100/100, in order, once')
    t.ok(consecutive(numbered(back, 'lobby')))
    await until(() => a.app.realtime.stats().detachedSessions === 0, 'instance a dropped its waiting copy')
    t.equal(a.app.realtime.stats().members, 0)
    // The watcher saw ann join once and never leave.
    t.same(watcher.frames.filter((f) => f.type.startsWith('presence:')).map((f) => f.type), ['presence:join'])
    const everywhere = await b.app.realtime.presence('lobby')
    t.equal(everywhere.members.filter((m) => m.userId === 'ann').length, 1)
    b.app.realtime.to('lobby').emit('said', { n: 101 })
    const live = await back.next((f) => f.type === 'said' && f.data.n === 101)
    t.equal(live.seq, last + 101, 'live continues from the next seq')
  })

  t.test('across instances, a resume token presented by another user or a second time is refused; its owner resumes once', async (t) => {
    const a = await node(t, make)
    const b = await node(t, make)
    const c = await connect(t, a, 'ann')
    const { data: first } = await c.next((f) => f.type === 'session')
    await c.request('room:join', { room: 'tokens' })
    c.ws.terminate()
    await until(() => a.app.realtime.stats().detachedSessions === 1, 'detached on a')
    const thief = await connect(t, b, 'eve', first.token)
    t.match((await thief.next((f) => f.type === 'session')).data, { recovered: false }, 'another user: refused')
    const owner = await connect(t, b, 'ann', first.token)
    const { data: resumed } = await owner.next((f) => f.type === 'session')
    t.match(resumed, { recovered: true, rooms: [{ room: 'tokens' }] }, 'the owner still can, on the other instance')
    const again = await connect(t, a, 'ann', first.token)
    t.match((await again.next((f) => f.type === 'session')).data, { recovered: false, rooms: undefined }, 'used: refused')
    t.equal(a.app.realtime.stats().sessionsRefused + b.app.realtime.stats().sessionsRefused, 2)
    t.equal(b.opens.filter((o) => o.recovered).length, 1)
  })

  t.test('join with since across instances: the replay from the stream, five messages published around the read merged once', async (t) => {
    const a = await node(t, make, false)
    const b = await node(t, make, false)
    const keeper = await connect(t, a, 'k')
    const { data: { epoch } } = await keeper.request('room:join', { room: 'r5' })
    for (let n = 0; n < 20; n++) a.app.realtime.to('r5').emit('said', { n })
    await keeper.next((f) => f.type === 'said' && f.data.n === 19)
    const from = said(keeper, 'r5')[4]
    for (let round = 0; round < 5; round++) {
      const c = await connect(t, b, 'c' + round)
      const acked = c.request('room:join', { room: 'r5', since: { seq: from, epoch } })
      // Five published from the other instance while b reads the history.
      for (let n = 0; n < 5; n++) a.app.realtime.to('r5').emit('said', { n: 100 + n })
      const ack = await acked
      t.equal(ack.data.recovered, true)
      a.app.realtime.to('r5').emit('said', { n: 999 })
      await c.next((f) => f.type === 'said' && f.data.n === 999)
      const seqs = numbered(c, 'r5')
      t.equal(seqs[0], from + 1, `round ${round}: the replay starts right after the position`)
      t.ok(consecutive(seqs), `round ${round}: no gap, no duplicate (${seqs.join(',')})`)
    }
  })

  t.test("one instance's Redis connections killed (Redis alive) under 20 msg/s: members on every instance see every message, no gap", async (t) => {
    const a = await node(t, make, false)
    const b = await node(t, make, false)
    const members = [await connect(t, a, 'x'), await connect(t, b, 'y')]
    for (const m of members) await m.request('room:join', { room: 'blip' })
    let n = 0
    const timer = setInterval(() => { a.app.realtime.to('blip').emit('said', { n: n++ }) }, 50)
    t.teardown(() => clearInterval(timer))
    await members[1].next((f) => f.type === 'said' && f.data.n === 5)
    const admin = make()
    t.teardown(() => admin.disconnect())
    // Both of b's connections (its client and its subscriber), and only those; Redis keeps every message meanwhile.
    for (const connection of [b.client, b.adapter.subscriber]) {
      const { localPort } = (connection as { stream: { localPort: number } }).stream
      t.equal(await admin.call('CLIENT', 'KILL', 'ADDR', `127.0.0.1:${localPort}`), 1, "one of b's connections killed")
    }
    const killedAt = n
    await until(() => n > killedAt + 20, 'a second of messages after the kill')
    clearInterval(timer)
    const end = n - 1
    await until(() => members.every((m) => m.room('blip', 'said').at(-1)?.data.n === end), 'both have the last message', 15_000)
    for (const m of members) {
      t.same(m.room('blip', 'said').map((f) => f.data.n), Array.from({ length: end + 1 }, (_, i) => i), 'every message once, in order')
      t.ok(consecutive(numbered(m, 'blip')), 'gap-free seqs')
    }
    t.equal(b.adapter.stats().adapterResubscribes, 1)
    t.ok(b.app.realtime.stats().backfills >= 1, 'b read what its subscription missed from the stream')
    t.equal(b.app.realtime.stats().backfillGaps, 0)
  })

  t.test("a quiet room: what was published while one instance's subscriber was cut reaches its members with nothing after it", async (t) => {
    const a = await node(t, make, false)
    // b's connections come back 300 ms after a drop: the messages below are published while its subscriber is away.
    const b = await node(t, () => new Redis(redis.url, { retryStrategy: () => 300 }), false)
    const x = await connect(t, a, 'x')
    const y = await connect(t, b, 'y')
    for (const m of [x, y]) await m.request('room:join', { room: 'quiet' })
    for (let n = 0; n < 3; n++) a.app.realtime.to('quiet').emit('said', { n })
    await y.next((f) => f.type === 'said' && f.data.n === 2)
    const admin = make()
    t.teardown(() => admin.disconnect())
    const { localPort } = (b.adapter.subscriber as { stream: { localPort: number } }).stream
    t.equal(await admin.call('CLIENT', 'KILL', 'ADDR', `127.0.0.1:${localPort}`), 1, "b's subscriber connection killed, and only it")
    // Redis freed it before answering: these are never sent to b. Then nothing more is published.
    for (let n = 3; n < 6; n++) a.app.realtime.to('quiet').emit('said', { n })
    await x.next((f) => f.type === 'said' && f.data.n === 5)
    await y.next((f) => f.type === 'said' && f.data.n === 5, 'the missed messages, with no message after them', 5000)
    t.same(y.room('quiet', 'said').map((f) => f.data.n), [0, 1, 2, 3, 4, 5], 'each once, in order')
    t.ok(consecutive(numbered(y, 'quiet')))
    t.same(said(y, 'quiet'), said(x, 'quiet'), 'the same seqs on both instances')
    t.equal(b.adapter.stats().adapterResubscribes, 1)
    t.equal(b.app.realtime.stats().backfills, 1)
    t.equal(b.app.realtime.stats().backfillGaps, 0)
  })

  t.test('the same message published twice by a retrying instance (the answer to its first append lost) is stored once and delivered once', async (t) => {
    const proxy = await startRedisProxy(redis.port)
    t.teardown(() => proxy.close())
    // a's connections go through the proxy, b's straight to Redis.
    const a = await node(t, () => new Redis(proxy.port, '127.0.0.1', { retryStrategy: () => 20 }), false)
    const b = await node(t, make, false)
    const members = [await connect(t, a, 'x'), await connect(t, b, 'y')]
    for (const m of members) await m.request('room:join', { room: 'retry' })
    a.app.realtime.to('retry').emit('said', { n: 1 })
    for (const m of members) await m.next((f) => f.type === 'said' && f.data.n === 1)
    const before = proxy.connections
    // Redis runs the append of n: 2 (numbered, kept, published); its answer never reaches a: the connection drops.
    const lost = proxy.loseReplyTo('"data":{"n":2}')
    a.app.realtime.to('retry').emit('said', { n: 2 })
    await lost
    // ioredis sends the unanswered script again on its new connection: the same message id.
    await until(() => a.client.status === 'ready' && proxy.connections === before + 1, 'a reconnected')
    a.app.realtime.to('retry').emit('said', { n: 3 })
    for (const m of members) await m.next((f) => f.type === 'said' && f.data.n === 3)
    for (const m of members) {
      t.same(m.room('retry', 'said').map((f) => f.data.n), [1, 2, 3], 'delivered once')
      t.ok(consecutive(numbered(m, 'retry')), 'no seq taken twice')
    }
    const admin = make()
    t.teardown(() => admin.disconnect())
    const stored = await admin.xrange('frt:{retry}:x', '-', '+')
    const frames = stored.map(([, fields]) => JSON.parse(fields[1]))
    t.same(frames.filter((f) => f.type === 'said').map((f) => f.data.n), [1, 2, 3], 'stored once')
    t.same(frames.map((f) => f.seq), Array.from({ length: frames.length }, (_, i) => i + 1), 'one entry per seq')
    t.equal(await admin.hget('frt:{retry}:h', 's'), String(said(members[1], 'retry').at(-1)), 'the seq was taken once')
  })

  t.test('the instance holding the session is SIGKILLed: the client resumes on another with its rooms (also a server join) and data', async (t) => {
    const loader = process.execArgv.filter((arg) => arg.startsWith('--import=') && arg.includes('typescript'))
    const child = spawn(process.execPath, [...loader, '--input-type=module', '-e', `
      import Fastify from 'fastify'
      import Type from 'typebox'
      import { Redis } from 'ioredis'
      import realtime, { RedisAdapter, RedisSessions } from './index.js'
      const client = new Redis(${JSON.stringify(redis.url)})
      await new Promise((resolve) => client.once('ready', resolve))
      const app = Fastify()
      app.addHook('onRequest', async (request) => { request.user = { sub: request.headers['x-user'] } })
      await app.register(realtime, { heartbeat: false, rateLimit: false, subprotocols: ['chat.v1'],
        adapter: new RedisAdapter({ client, history: {} }), history: {}, sessions: { store: new RedisSessions({ client }) } })
      app.realtime('/chat', { joinable: true, history: true, sessions: true, keep: (conn) => conn.data,
        messages: {
          enter: { schema: Type.Object({ room: Type.String() }), handler: async (conn, data) => { await conn.join(data.room); return true } },
          remember: { schema: Type.Object({ note: Type.String() }), handler: (conn, data) => { conn.data = data; return true } }
        } })
      await app.listen({ port: 0, host: '127.0.0.1' })
      console.log(app.server.address().port)
    `], { stdio: ['ignore', 'pipe', 'inherit'] })
    t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
    const [line] = await once(child.stdout as NodeJS.ReadableStream, 'data') as [Buffer]
    const owner = { url: `ws://127.0.0.1:${line.toString().trim()}/chat` } as Node
    const c = await connect(t, owner, 'ann')
    const { data: session } = await c.next((f) => f.type === 'session')
    await c.request('room:join', { room: 'k-lobby' })
    await c.request('enter', { room: 'k-news' })
    await c.request('remember', { note: 'mine' })
    // Saved on each change; the kill leaves no chance to save anything more.
    await new Promise((resolve) => setTimeout(resolve, 50))
    child.kill('SIGKILL')
    await once(child, 'exit')
    const b = await node(t, make)
    b.app.realtime.to('k-news').emit('said', { n: 1 })
    const back = await connect(t, b, 'ann', session.token)
    const resumed = await back.next((f) => f.type === 'session')
    t.match(resumed.data, { recovered: true, rooms: [{ room: 'k-lobby', recovered: true }, { room: 'k-news', recovered: true }] })
    await back.next((f) => f.type === 'said' && f.data.n === 1)
    t.match(b.opens.at(-1), { recovered: true, data: { note: 'mine' } })
  })

  t.test('Redis restarted without persistence: the epoch changes, an old position is told recovered: false', async (t) => {
    const a = await node(t, make, false)
    const c = await connect(t, a, 'z')
    const { data: { epoch } } = await c.request('room:join', { room: 'gone' })
    for (let n = 0; n < 3; n++) a.app.realtime.to('gone').emit('said', { n })
    await c.next((f) => f.type === 'said' && f.data.n === 2)
    const at = said(c, 'gone').at(-1) as number
    await redis.restart()
    await until(() => a.client.status === 'ready', 'client back')
    await until(async () => {
      const d = await connect(t, a, 'w')
      const ack = await d.request('room:join', { room: 'gone', since: { seq: at, epoch } })
      d.ws.terminate()
      return ack.data.recovered === false && ack.data.epoch !== epoch
    }, 'a new epoch, not recovered')
    t.pass('the old position is refused with the new epoch')
  })
})

t.test('on a 3-node Redis Cluster: history, since and replay (keys of a room on one slot)', async (t) => {
  const cluster = await startRedisCluster()
  t.teardown(() => cluster.stop())
  const make = (): Cluster => new Cluster(cluster.nodes)
  const a = await node(t, make, false)
  const b = await node(t, make, false)
  const keeper = await connect(t, a, 'k')
  const { data: { epoch } } = await keeper.request('room:join', { room: 'c1' })
  for (let n = 0; n < 10; n++) a.app.realtime.to('c1').emit('said', { n })
  await keeper.next((f) => f.type === 'said' && f.data.n === 9)
  const seqs = said(keeper, 'c1')
  const c = await connect(t, b, 'c')
  const ack = await c.request('room:join', { room: 'c1', since: { seq: seqs[2], epoch } })
  t.match(ack.data, { recovered: true, epoch })
  t.same(said(c, 'c1'), seqs.slice(3), 'the said messages after the position, in order (presence events are numbered too)')
  t.ok(consecutive(numbered(c, 'c1')))
})
