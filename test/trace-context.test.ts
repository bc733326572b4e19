// W3C trace context end to end (issue 15): a client's `traceparent` continues through the handler, into what the
// handler sends (conn.emit, conn.to(room).emit, app.realtime.to(room).emit), across the Redis publish, and onto
// every instance's `fastify-realtime:deliver` event; bad traceparents are dropped, never propagated.
import t from 'tap'
import dc from 'node:diagnostics_channel'
import Type from 'typebox'
import { Redis } from 'ioredis'
import { DELIVER_CHANNEL, MESSAGE_CHANNEL, MemoryAdapter, MemoryBus, RedisAdapter, type DeliverContext, type MessageContext } from '../index.js'
import { roomHeader, readRoomEnvelope, type RoomEnvelope } from '../lib/adapters/envelope.js'
import { activeTraceparent, frameType } from '../lib/trace-context.js'
import { connect } from '../lib/testing.js'
import { realtimeApp } from './helpers/app.js'
import { client, startServer } from './helpers/client.js'
import { until } from './helpers/wait.js'
import { startRedisServer } from './helpers/redis-server.js'
import { closeInstance, redisClient, redisInstance } from './helpers/instances.js'

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
const SPAN = '00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01'
const ORIGIN = 'abcdefghijklmnop'

/** Every delivery event while the test runs. */
function deliveries (t: Tap.Test): DeliverContext[] {
  const seen: DeliverContext[] = []
  const listener = (msg: unknown): void => { seen.push({ ...(msg as DeliverContext) }) }
  dc.subscribe(DELIVER_CHANNEL, listener)
  t.teardown(() => dc.unsubscribe(DELIVER_CHANNEL, listener))
  return seen
}

t.test('the envelope: a trace only when given, behind flags 2 and 3; a bad one makes the envelope invalid', async (t) => {
  const out: RoomEnvelope = { volatile: false, seq: 0, frame: Buffer.alloc(0), traceparent: undefined }
  const other = Buffer.from('0000000000000000')
  const read = (message: string): string => readRoomEnvelope(Buffer.from(message), other, out)
  t.equal(roomHeader(ORIGIN, false), 'frt10' + ORIGIN, 'without a trace: the header of before, byte for byte')
  t.equal(roomHeader(ORIGIN, true, TP), 'frt13' + ORIGIN + TP)
  // A later version's extra fields are not carried: its first 55 characters are the trace.
  t.equal(roomHeader(ORIGIN, false, '01' + TP.slice(2) + '-extra'), 'frt12' + ORIGIN + '01' + TP.slice(2))

  t.equal(read(roomHeader(ORIGIN, false, TP) + '7:{"a":1}'), 'ok')
  t.match(out, { volatile: false, seq: 7, traceparent: TP })
  t.equal(out.frame.toString(), '{"a":1}')
  t.equal(read(roomHeader(ORIGIN, true, TP) + '8:{}'), 'ok')
  t.match(out, { volatile: true, seq: 8, traceparent: TP })
  // An old instance's header (flags 0 and 1) reads as before, without a trace.
  t.equal(read(roomHeader(ORIGIN, true) + '9:{}'), 'ok')
  t.match(out, { volatile: true, seq: 9, traceparent: undefined })

  for (const bad of [
    'frt14' + ORIGIN + '1:{}', // an unknown flag
    'frt1/' + ORIGIN + '1:{}',
    'frt12' + ORIGIN + TP.toUpperCase() + '1:{}', // upper-case hex
    'frt12' + ORIGIN + '00-' + '0'.repeat(32) + '-00f067aa0ba902b7-01' + '1:{}', // all-zero trace id
    'frt12' + ORIGIN + 'ff' + TP.slice(2) + '1:{}', // version ff
    'frt12' + ORIGIN + '1:{}' + 'x'.repeat(60), // the flag says a trace, none is there
    'frt12' + ORIGIN + TP + ':{}' // a trace, no seq
  ]) t.equal(read(bad), 'invalid', bad.slice(0, 30))
})

t.test('frameType reads a room frame\'s type, and nothing from anything else', async (t) => {
  t.equal(frameType(Buffer.from('{"type":"said","room":"r","seq":1}')), 'said')
  t.equal(frameType(Buffer.from('{"type":"a\\"b","room":"r"}')), 'a"b')
  for (const frame of ['{}', '{"x":1}', '{"type":"said"}', '{"type":1,"room":"r"}', '{"type":nope,"room":"r"}']) {
    t.equal(frameType(Buffer.from(frame)), '', frame)
  }
})

t.test('the adapter option is checked', async (t) => {
  t.throws(() => new RedisAdapter({ client: new Redis({ lazyConnect: true }), traceContext: 'yes' as never }),
    { code: 'FRT_ERR_ADAPTER_INVALID', message: /traceContext must be a boolean/ })
})

t.test('across Redis: the sender\'s trace reaches every instance\'s delivery; bad ones are dropped', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const one = await redisInstance(redisClient(redis.url), { traceContext: true })
  t.teardown(() => closeInstance(one))
  const two = await redisInstance(redisClient(redis.url), { traceContext: true })
  t.teardown(() => closeInstance(two))
  const idOne = (one.adapter as RedisAdapter).id
  const idTwo = (two.adapter as RedisAdapter).id
  const sender = await connect(one.app, '/chat')
  const near = await connect(one.app, '/chat')
  const far = await connect(two.app, '/chat')
  const farToo = await connect(two.app, '/chat')
  t.teardown(() => Promise.all([sender, near, far, farToo].map((c) => c.close())))
  for (const c of [sender, near, far, farToo]) await c.request('enter' as never, { room: 'r' } as never)
  const seen = deliveries(t)

  const say = async (text: string, traceparent: unknown): Promise<DeliverContext[]> => {
    seen.length = 0
    sender.sendRaw(JSON.stringify({ type: 'say', data: { room: 'r', text }, traceparent }))
    for (const c of [sender, near, far, farToo]) t.match((await c.next('said' as never)).data, { text })
    await until(() => seen.length === 2, 'a delivery on each instance')
    return [seen.find((d) => d.instance === idOne) as DeliverContext, seen.find((d) => d.instance === idTwo) as DeliverContext]
  }

  const [here, there] = await say('traced', TP)
  t.match(here, { room: 'r', type: 'said', volatile: false, recipients: 2, instance: idOne, traceparent: TP })
  t.match(there, { room: 'r', type: 'said', volatile: false, recipients: 2, instance: idTwo, traceparent: TP })
  t.equal(here.seq, there.seq, 'the same message: one cluster seq')
  t.ok(here.seq > 0)

  // Hostile or broken traceparents: ignored at the envelope, so nothing is carried anywhere.
  for (const bad of ['garbage', TP.toUpperCase(), '00-' + '0'.repeat(32) + '-00f067aa0ba902b7-01', 'ff' + TP.slice(2),
    TP + '-extra', TP + 'x'.repeat(600), 42, { traceparent: TP }, null]) {
    const [a, b] = await say('bad', bad)
    t.equal(a.traceparent, undefined, `dropped here: ${JSON.stringify(bad).slice(0, 20)}`)
    t.equal(b.traceparent, undefined, 'and not propagated')
  }
  // No trace at all: the same bytes as before (flag 0), no trace anywhere.
  const [a, b] = await say('plain', undefined)
  t.equal(a.traceparent, undefined)
  t.equal(b.traceparent, undefined)

  // As the README's snippet does: the handler's span replaces the sender's trace, and every instance links to it.
  const channel = dc.tracingChannel(MESSAGE_CHANNEL)
  const onStart = (ctx: unknown): void => { (ctx as MessageContext).traceparent = SPAN }
  channel.start.subscribe(onStart)
  t.teardown(() => channel.start.unsubscribe(onStart))
  const [c, d] = await say('span', TP)
  t.equal(c.traceparent, SPAN)
  t.equal(d.traceparent, SPAN, 'across Redis: the child of the handler span')
  channel.start.unsubscribe(onStart)

  // A latest message (issue 14's delivery policy) carries its trace too, beside its conflation key.
  seen.length = 0
  const frame = Buffer.from(JSON.stringify({ type: 'said', room: 'r', data: { text: 'latest' } }))
  ;(one.adapter as RedisAdapter).publish('r', frame, false, 'k', TP)
  for (const c of [far, farToo]) t.match((await c.next('said' as never)).data, { text: 'latest' })
  await until(() => seen.length === 1, 'the delivery on the other instance')
  t.match(seen[0], { room: 'r', type: 'said', seq: 0, recipients: 2, instance: idTwo, traceparent: TP })
  t.equal(one.app.realtime.stats().adapterInvalid + two.app.realtime.stats().adapterInvalid, 0, 'every envelope was valid')
})

t.test('traceContext off (the default): the sender\'s own delivery has the trace, the envelope does not carry it', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const one = await redisInstance(redisClient(redis.url))
  t.teardown(() => closeInstance(one))
  const two = await redisInstance(redisClient(redis.url))
  t.teardown(() => closeInstance(two))
  const sender = await connect(one.app, '/chat')
  const far = await connect(two.app, '/chat')
  t.teardown(() => Promise.all([sender.close(), far.close()]))
  for (const c of [sender, far]) await c.request('enter' as never, { room: 'r' } as never)
  const seen = deliveries(t)
  // What goes through Redis, read by a plain subscriber.
  const spy = new Redis(redis.url)
  t.teardown(() => spy.disconnect())
  const published: string[] = []
  spy.on('message', (_channel: string, message: string) => published.push(message))
  await spy.subscribe('frt:{r}')
  sender.sendRaw(JSON.stringify({ type: 'say', data: { room: 'r', text: 'x' }, traceparent: TP }))
  await far.next('said' as never)
  await until(() => seen.length === 2 && published.length === 1, 'both deliveries')
  t.equal(seen.find((d) => d.instance === (one.adapter as RedisAdapter).id)?.traceparent, TP)
  t.equal(seen.find((d) => d.instance === (two.adapter as RedisAdapter).id)?.traceparent, undefined)
  t.match(published[0], /^frt10/, 'flag 0: what an older instance reads')
  t.notMatch(published[0], /4bf92f35/)
})

const roomRoute = {
  joinable: true,
  messages: {
    // Synchronous: the room emit and the unicast emit carry the message's own trace.
    now: { schema: Type.Null(), handler: (conn: any) => { conn.to('r').emit('said', 'now'); conn.emit('said', 'direct') } },
    // A unicast emit to a socket already closing reaches nobody.
    bye: { schema: Type.Null(), handler: (conn: any) => { conn.close(1000); conn.emit('said', 'gone') } },
    // After an await: the trace is known only with a tracing subscriber (async context).
    later: {
      schema: Type.Null(),
      handler: async (conn: any) => {
        await new Promise((resolve) => setImmediate(resolve))
        conn.to('r').emit('said', 'later')
      }
    }
  },
  emits: { said: Type.String() }
}

t.test('in one process: the trace of the handler, sync and async, to room and unicast deliveries', async (t) => {
  const bus = new MemoryBus()
  const first = new MemoryAdapter(bus)
  const second = new MemoryAdapter(bus)
  const app = await realtimeApp(t, { options: { heartbeat: false, rateLimit: false, adapter: first }, routes: { '/t': roomRoute } })
  const other = await realtimeApp(t, { options: { heartbeat: false, rateLimit: false, adapter: second }, routes: { '/t': roomRoute } })
  const client = await connect(app, '/t')
  const remote = await connect(other, '/t')
  t.teardown(() => Promise.all([client.close(), remote.close()]))
  await client.request('room:join' as never, { room: 'r' } as never)
  await remote.request('room:join' as never, { room: 'r' } as never)
  const seen = deliveries(t)

  client.sendRaw(JSON.stringify({ type: 'now', data: null, traceparent: TP }))
  await remote.next('said' as never)
  await until(() => seen.length === 3, 'three deliveries')
  t.match(seen.find((d) => d.room === null), { type: 'said', connId: String, recipients: 1, instance: first.id, traceparent: TP }, 'the unicast emit')
  t.match(seen.find((d) => d.room === 'r' && d.instance === first.id), { type: 'said', recipients: 1, traceparent: TP })
  t.match(seen.find((d) => d.room === 'r' && d.instance === second.id), { type: 'said', recipients: 1, traceparent: TP }, 'across the bus')
  t.equal(activeTraceparent(), undefined, 'nothing left behind once the handler returned')

  // An emit from outside a handler has no trace.
  seen.length = 0
  app.realtime.to('r').emit('said', 'app')
  await until(() => seen.length === 2, 'two deliveries')
  t.same(seen.map((d) => d.traceparent), [undefined, undefined])

  // After an await, without a tracing subscriber: no async context is paid for, so no trace (documented).
  seen.length = 0
  client.sendRaw(JSON.stringify({ type: 'later', data: null, traceparent: TP }))
  await until(() => seen.length === 2, 'two deliveries')
  t.same(seen.map((d) => d.traceparent), [undefined, undefined])

  // With a tracing subscriber: the handler's context follows it through the await, and the subscriber's own span
  // (set as ctx.traceparent at start) is what the deliveries link to.
  const channel = dc.tracingChannel(MESSAGE_CHANNEL)
  const handlers = { start (ctx: unknown) { (ctx as MessageContext).traceparent = SPAN }, end () {}, asyncStart () {}, asyncEnd () {}, error () {} }
  channel.subscribe(handlers)
  t.teardown(() => channel.unsubscribe(handlers))
  seen.length = 0
  client.sendRaw(JSON.stringify({ type: 'later', data: null, traceparent: TP }))
  await until(() => seen.length === 2, 'two deliveries')
  t.same(seen.map((d) => d.traceparent), [SPAN, SPAN])
  // A subscriber that writes garbage there: not carried.
  channel.unsubscribe(handlers)
  const garbage = { ...handlers, start (ctx: unknown) { (ctx as MessageContext).traceparent = 'not a trace' } }
  channel.subscribe(garbage)
  t.teardown(() => channel.unsubscribe(garbage))
  seen.length = 0
  client.sendRaw(JSON.stringify({ type: 'later', data: null }))
  await until(() => seen.length === 2, 'two deliveries')
  t.same(seen.map((d) => d.traceparent), [undefined, undefined])
  t.equal(seen[0].type, 'said')

  seen.length = 0
  client.sendRaw(JSON.stringify({ type: 'bye', data: null, traceparent: TP }))
  await client.closed
  await until(() => seen.length === 1, 'the unicast attempt')
  t.match(seen[0], { room: null, recipients: 0, type: 'said' })
})

t.test('the client sends a traceparent when asked, and nothing more when not', async (t) => {
  const server = await startServer(t)
  const c = client(t, server.url)
  await c.ready()
  const seen: MessageContext[] = []
  const onStart = (ctx: unknown): void => { seen.push({ ...(ctx as MessageContext) }) }
  const channel = dc.tracingChannel(MESSAGE_CHANNEL)
  channel.start.subscribe(onStart)
  t.teardown(() => channel.start.unsubscribe(onStart))
  t.same(await c.request('echo', { text: 'a' }, { traceparent: TP }), { text: 'a' })
  t.same(await c.request('echo', { text: 'b' }), { text: 'b' })
  c.send('echo', { text: 'c' }, { traceparent: SPAN })
  await until(() => seen.length === 3, 'three handled messages')
  t.same(seen.map((ctx) => ctx.traceparent), [TP, undefined, SPAN])
})
