import t, { type Test } from 'tap'
import Fastify from 'fastify'
import Type from 'typebox'
import { realtimeApp, registeredApp } from './helpers/app.js'
import realtime, {
  MemoryAdapter, MemoryBus, type Connection, type FanoutAdapter, type FanoutReceive, type RouteDefinition, type SchemaMap
} from '../index.js'
import { connect } from '../lib/testing.js'
import { serializeRoomEvent } from '../lib/protocol.js'
import { isRoomName } from '../lib/rooms.js'
import type { RealtimeOptions } from '../types/options.js'

const RoomData = Type.Object({ room: Type.String() })
const SayData = Type.Object({ room: Type.String(), text: Type.String() })

// Declared through a generic so that handlers get typed data and `typeof chat` types the app-level emitter.
const define = <In extends SchemaMap, Emits extends SchemaMap>(definition: RouteDefinition<In, Emits>) => definition

const chat = define({
  messages: {
    enter: { schema: RoomData, handler: async (conn, data) => { await conn.join(data.room); return [...conn.rooms] } },
    exit: { schema: RoomData, handler: (conn, data) => conn.leave(data.room) },
    say: { schema: SayData, handler: (conn, data) => { conn.to(data.room).except(conn).emit('said', { text: data.text }) } },
    shout: { schema: SayData, handler: (conn, data) => { conn.to(data.room).emit('said', { text: data.text }) } },
    undeclared: { schema: RoomData, handler: (conn, data) => { conn.to(data.room).emit('nope' as 'said', { text: '' }) } }
  },
  emits: { said: Type.Object({ text: Type.String() }) }
})

const build = (t: Test, options: RealtimeOptions = {}, extra: Pick<RouteDefinition<any, any>, 'joinable' | 'presence'> = {}) =>
  realtimeApp(t, { options: { heartbeat: false, ...options }, routes: { '/chat': { ...chat, ...extra } } })

t.test('a room message is serialized once with room and seq', async (t) => {
  t.equal(serializeRoomEvent('said', 'lobby', 3, { text: 'hi' }), '{"type":"said","room":"lobby","seq":3,"data":{"text":"hi"}}')
  t.equal(serializeRoomEvent('tick', 'a:b', 1, undefined), '{"type":"tick","room":"a:b","seq":1}')
})

t.test('join, broadcast with and without the sender, seq per room, leave', async (t) => {
  const app = await build(t)
  const alice = await connect(app, '/chat')
  const bob = await connect(app, '/chat')
  t.same(await alice.request('enter', { room: 'lobby' }), ['lobby'])
  t.same(await bob.request('enter', { room: 'lobby' }), ['lobby'])
  t.same(await bob.request('enter', { room: 'other' }), ['lobby', 'other'])
  t.same(await bob.request('enter', { room: 'other' }), ['lobby', 'other'], 'joining twice is a no-op')
  t.match(app.realtime.stats(), { rooms: 2, members: 3 })

  await alice.request('say', { room: 'lobby', text: 'one' })
  t.same(await bob.next('said'), { type: 'said', room: 'lobby', seq: 1, data: { text: 'one' } })
  await alice.request('shout', { room: 'lobby', text: 'two' })
  t.same(await alice.next('said'), { type: 'said', room: 'lobby', seq: 2, data: { text: 'two' } }, 'the sender gets it without except')
  t.same(await bob.next('said'), { type: 'said', room: 'lobby', seq: 2, data: { text: 'two' } })
  await bob.request('shout', { room: 'other', text: 'three' })
  t.same(await bob.next('said'), { type: 'said', room: 'other', seq: 1, data: { text: 'three' } }, 'seq is per room')

  t.equal(await bob.request('exit', { room: 'lobby' }), true)
  t.equal(await bob.request('exit', { room: 'lobby' }), false, 'leaving a room not joined')
  await alice.request('shout', { room: 'lobby', text: 'four' })
  t.same((await alice.next('said')).seq, 3)
  t.equal(alice.received.filter((m) => m.type === 'said').length, 2, 'the sender did not get its own "say"')
  t.equal(bob.received.filter((m) => m.room === 'lobby').length, 2, 'bob got nothing after leaving')
  t.match(app.realtime.stats(), { rooms: 2, members: 2 })
  await alice.close()
  await bob.close()
})

t.test('the app emits to a room from an HTTP route, with except', async (t) => {
  const app = await registeredApp(t, { heartbeat: false })
  let first: Connection | undefined
  app.realtime('/chat', { ...chat, onOpen: (conn) => { first ??= conn } })
  app.post('/announce', async () => {
    app.realtime.to<typeof chat>('lobby').emit('said', { text: 'all' })
    app.realtime.to('lobby').except(first as Connection).emit('said', { text: 'not first' })
    app.realtime.to('lobby').volatile.except().emit('said', { text: 'volatile' })
    app.realtime.to('nobody-here').emit('said', { text: 'lost' })
    return { ok: true }
  })
  await app.ready()
  const a = await connect(app, '/chat')
  const b = await connect(app, '/chat')
  await a.request('enter', { room: 'lobby' })
  await b.request('enter', { room: 'lobby' })
  t.equal((await app.inject({ method: 'POST', url: '/announce' })).statusCode, 200)
  t.same((await a.next('said')).data, { text: 'all' })
  t.same((await a.next('said')).data, { text: 'volatile' })
  t.same([(await b.next('said')).data, (await b.next('said')).data, (await b.next('said')).data],
    [{ text: 'all' }, { text: 'not first' }, { text: 'volatile' }])
  t.same(b.received.map((m) => m.seq).filter((s) => s !== undefined), [1, 2, 3])
  t.equal(app.realtime.stats().rooms, 1, 'emitting to an empty room creates nothing')
  await a.close()
  await b.close()
})

t.test('conn.to checks the route emits', async (t) => {
  const app = await build(t)
  const client = await connect(app, '/chat')
  await client.request('enter', { room: 'lobby' })
  await t.rejects(client.request('undeclared', { room: 'lobby' }), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'internal' } })
  t.equal(app.realtime.stats().handlerErrors, 1)
  await client.close()
})

t.test('room names are validated', async (t) => {
  const app = await build(t)
  const client = await connect(app, '/chat')
  const bad = ['', 'a b', 'x'.repeat(129), 'é', 'a\nb', '"quote"', '<script>', 'a\u0000b']
  for (const room of bad) {
    await t.rejects(client.request('enter', { room }), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'FRT_ERR_ROOM_NAME' } }, JSON.stringify(room))
    t.throws(() => app.realtime.to(room), { code: 'FRT_ERR_ROOM_NAME' })
    await t.rejects(app.realtime.presence(room), { code: 'FRT_ERR_ROOM_NAME' })
  }
  t.throws(() => app.realtime.to(42 as unknown as string), { code: 'FRT_ERR_ROOM_NAME', message: /number/ })
  const long = 'x'.repeat(1000)
  t.throws(() => app.realtime.to(long), { message: /"x{64}"/ }, 'a hostile name is cut in the error message')
  for (const room of ['x'.repeat(128), 'org/42:general', 'user@host.example', 'A-Z_0.9']) {
    t.ok(isRoomName(room), room)
    await client.request('enter', { room })
  }
  t.equal(app.realtime.stats().rooms, 4)
  await client.close()
})

t.test('a connection has a room cap', async (t) => {
  const app = await build(t, { maxRoomsPerConnection: 2 }, { joinable: true })
  const client = await connect(app, '/chat')
  await client.request('enter', { room: 'a' })
  await client.request('room:join', { room: 'b' })
  await t.rejects(client.request('enter', { room: 'c' }), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'FRT_ERR_ROOM_LIMIT', message: /at most 2 rooms/ } })
  await t.rejects(client.request('room:join', { room: 'c' }), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'room_limit' } })
  t.same(await client.request('enter', { room: 'a' }), ['a', 'b'], 'rejoining a room at the cap is fine')
  t.match(await client.request('room:join', { room: 'b' }), { room: 'b', seq: Number, epoch: /^[\w-]{8,22}$/ }, 'the 1.1 ack carries the position')
  t.equal(app.realtime.stats().members, 2)
  await client.close()
})

t.test('client join and leave messages are opt-in', async (t) => {
  const app = await build(t)
  const client = await connect(app, '/chat')
  await t.rejects(client.request('room:join', { room: 'a' }), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'unknown_type' } })
  t.equal(app.realtime.stats().rooms, 0)
  await client.close()
})

t.test('client join and leave with joinable: true', async (t) => {
  const app = await build(t, {}, { joinable: true })
  const client = await connect(app, '/chat')
  t.match(await client.request('room:join', { room: 'lobby' }), { room: 'lobby', seq: Number, epoch: /^[\w-]{8,22}$/ }, 'the 1.1 ack carries the position')
  t.equal(app.realtime.stats().members, 1)
  app.realtime.to('lobby').emit('said', { text: 'hi' })
  t.same(await client.next('said'), { type: 'said', room: 'lobby', seq: 1, data: { text: 'hi' } })
  t.equal(await client.request('room:leave', { room: 'lobby' }), null)
  t.equal(app.realtime.stats().rooms, 0)
  client.send('room:join', { room: 'quiet' })
  client.send('room:leave', { room: 'quiet' })
  client.send('room:join', { room: 'quiet' })
  await client.request('room:join', { room: 'quiet' })
  t.equal(app.realtime.stats().members, 1, 'messages without an id are handled in order and not acked')
  t.equal(client.received.filter((m) => m.type === 'ack').length, 3)

  for (const data of [{ room: 'a b' }, { room: 7 }, {}, null, 'lobby', undefined]) {
    await t.rejects(client.request('room:join', data as never), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'invalid_room', message: /1-128 characters/ } })
  }
  await t.rejects(client.request('room:leave', { room: '' }), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'invalid_room' } })
  t.equal(app.realtime.stats().protocolErrors, 7, 'bad room names count against the error budget')
  await client.close()
})

t.test('who may join: the joinable hook', async (t) => {
  const calls: string[] = []
  const app = await build(t, {}, {
    joinable: async (conn, room) => {
      calls.push(room)
      t.equal(conn.closed, false, 'the hook sees the open connection that asks')
      if (room === 'teapot') throw Object.assign(new Error('No tea'), { statusCode: 418, code: 'teapot' })
      if (room === 'broken') throw new Error('database down')
      return room.startsWith('public:')
    }
  })
  const client = await connect(app, '/chat')
  t.match(await client.request('room:join', { room: 'public:1' }), { room: 'public:1', seq: Number, epoch: /^[\w-]{8,22}$/ }, 'the 1.1 ack carries the position')
  await t.rejects(client.request('room:join', { room: 'secret' }),
    { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'forbidden', message: 'Not allowed to join "secret"' } })
  await t.rejects(client.request('room:join', { room: 'teapot' }), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'teapot', message: 'No tea' } })
  await t.rejects(client.request('room:join', { room: 'broken' }), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'internal' } })
  t.same(calls, ['public:1', 'secret', 'teapot', 'broken'])
  t.same((await app.realtime.presence('secret')).count, 0, 'a refused join leaves no membership')
  t.match(app.realtime.stats(), { rooms: 1, members: 1, handlerErrors: 2, protocolErrors: 0 }, 'the throwing hooks count as handler errors')
  t.equal(await client.request('room:leave', { room: 'secret' }), null, 'leaving never needs the hook')
  t.equal(calls.length, 4)
  await client.close()
})

t.test('a synchronous joinable hook, and one that throws', async (t) => {
  const app = await build(t, {}, {
    joinable: (_conn, room) => {
      if (room === 'throws') throw new Error('bug')
      return room === 'ok' ? true : ('yes' as unknown as boolean)
    }
  })
  const client = await connect(app, '/chat')
  t.match(await client.request('room:join', { room: 'ok' }), { room: 'ok', seq: Number, epoch: /^[\w-]{8,22}$/ }, 'the 1.1 ack carries the position')
  await t.rejects(client.request('room:join', { room: 'truthy' }), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'forbidden' } }, 'only true allows')
  await t.rejects(client.request('room:join', { room: 'throws' }), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'internal' } })
  t.equal(app.realtime.stats().members, 1)
  await client.close()
})

t.test('a join allowed after the socket closed adds nothing', async (t) => {
  let release!: (ok: boolean) => void
  let asked!: () => void
  const askedP = new Promise<void>((resolve) => { asked = resolve })
  const app = await build(t, {}, {
    joinable: () => new Promise<boolean>((resolve) => { release = resolve; asked() })
  })
  const client = await connect(app, '/chat')
  client.send('room:join', { room: 'late' })
  await askedP
  await client.close()
  while (app.realtime.stats().connections > 0) await new Promise((resolve) => setImmediate(resolve))
  release(true)
  await new Promise((resolve) => setImmediate(resolve))
  t.match(app.realtime.stats(), { rooms: 0, members: 0 })
})

t.test('closing leaves every room and frees empty ones; onClose still sees the rooms', async (t) => {
  const seen: string[][] = []
  const app = await registeredApp(t, { heartbeat: false })
  app.realtime('/chat', {
    ...chat,
    onClose: async (conn) => {
      seen.push([...conn.rooms])
      await conn.join('after-close')
    }
  })
  await app.ready()
  const a = await connect(app, '/chat')
  const b = await connect(app, '/chat')
  for (const room of ['r1', 'r2', 'r3']) await a.request('enter', { room })
  await b.request('enter', { room: 'r1' })
  t.match(app.realtime.stats(), { rooms: 3, members: 4 })
  await a.close()
  while (app.realtime.stats().connections > 1) await new Promise((resolve) => setImmediate(resolve))
  t.same(seen, [['r1', 'r2', 'r3']])
  t.match(app.realtime.stats(), { rooms: 1, members: 1 }, 'r2 and r3 freed, r1 kept for b; no join after close')
  t.same((await app.realtime.presence('r1')).count, 1)
  await b.close()
  while (app.realtime.stats().connections > 0) await new Promise((resolve) => setImmediate(resolve))
  t.match(app.realtime.stats(), { rooms: 0, members: 0 })
})

t.test('route and plugin options are checked', async (t) => {
  const app = await registeredApp(t)
  t.throws(() => app.realtime('/a', { ...chat, joinable: 'yes' as unknown as boolean }),
    { code: 'FRT_ERR_ROUTE_INVALID', message: /"joinable" must be a boolean or a function/ })
  t.throws(() => app.realtime('/b', { ...chat, presence: 1 as unknown as boolean }),
    { code: 'FRT_ERR_ROUTE_INVALID', message: /"presence" must be a boolean/ })

  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ maxRoomsPerConnection: 0 }, /maxRoomsPerConnection/],
    [{ heartbeat: true }, /heartbeat/],
    [{ heartbeat: { interval: 0 } }, /heartbeat/],
    [{ heartbeat: { every: 5 } }, /heartbeat/],
    [{ slowConsumer: { hardLimit: 0 } }, /slowConsumer/],
    [{ slowConsumer: { softLimit: 10, hardLimit: 5 } }, /slowConsumer\.softLimit: must not exceed slowConsumer\.hardLimit/],
    [{ adapter: 'redis' }, /adapter: must have subscribe, unsubscribe and publish methods/],
    [{ adapter: { publish () {}, subscribe () {} } }, /adapter: must have/]
  ]
  for (const [options, message] of cases) {
    const bad = Fastify()
    await t.rejects(async () => { await bad.register(realtime, options as RealtimeOptions).ready() }, { code: 'FRT_ERR_OPTIONS_INVALID', message },
      JSON.stringify(options))
    await bad.close()
  }
  const ok = Fastify()
  await ok.register(realtime, { heartbeat: { interval: 1000 }, slowConsumer: { softLimit: 10 }, adapter: new MemoryAdapter() })
  await ok.ready()
  await ok.close()
})

t.test('apps sharing a MemoryBus fan out to each other exactly once', async (t) => {
  const bus = new MemoryBus()
  const apps = []
  for (let i = 0; i < 3; i++) apps.push(await build(t, { adapter: new MemoryAdapter(bus) }, { joinable: true }))
  const [a, b, c] = apps
  const onA = await connect(a, '/chat')
  const onA2 = await connect(a, '/chat')
  const onB = await connect(b, '/chat')
  const onC = await connect(c, '/chat')
  for (const client of [onA, onA2, onB]) await client.request('room:join', { room: 'shared' })
  await onC.request('room:join', { room: 'elsewhere' })
  t.equal(bus.rooms.get('shared')?.size, 2, 'one subscription per instance, not per member')

  await onA.request('say', { room: 'shared', text: 'from a' })
  t.same(await onB.next('said'), { type: 'said', room: 'shared', seq: 1, data: { text: 'from a' } })
  t.same((await onA2.next('said')).data, { text: 'from a' })
  c.realtime.to('shared').emit('said', { text: 'from c, no member there' })
  t.same((await onB.next('said')).data, { text: 'from c, no member there' })
  t.same((await onA.next('said')).data, { text: 'from c, no member there' })
  b.realtime.to('shared').volatile.emit('said', { text: 'volatile from b' })
  t.same((await onA.next('said')).data, { text: 'volatile from b' })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(onB.received.filter((m) => m.type === 'said').length, 3, 'b got its own broadcast once')
  t.equal(onA.received.filter((m) => m.type === 'said').length, 2)
  t.equal(onC.received.filter((m) => m.type === 'said').length, 0, 'no traffic for a room c has no member in')

  await onB.request('room:leave', { room: 'shared' })
  t.equal(bus.rooms.get('shared')?.size, 1, 'b unsubscribed when its last member left')
  for (const client of [onA, onA2, onB, onC]) await client.close()
  await a.close()
  t.notOk(bus.rooms.has('shared'), 'no subscription left once the members are gone')
})

t.test('MemoryAdapter.close() drops only its own subscriptions', async (t) => {
  const bus = new MemoryBus()
  const mine = new MemoryAdapter(bus)
  const other = new MemoryAdapter(bus)
  const got: string[] = []
  mine.subscribe('a', () => { got.push('mine') })
  mine.subscribe('b', () => { got.push('mine') })
  other.subscribe('b', (room, frame) => { got.push(`other ${room} ${frame.toString()}`) })
  mine.close()
  t.same([...bus.rooms.keys()], ['b'])
  mine.publish('b', Buffer.from('x'), false)
  other.publish('b', Buffer.from('y'), false)
  t.same(got, ['other b x'], 'a closed adapter no longer receives; a publisher never receives its own frames')
  other.unsubscribe('b')
  other.unsubscribe('never-subscribed')
  t.equal(bus.rooms.size, 0)
  t.equal(new MemoryAdapter().bus.rooms.size, 0, 'alone by default')
})

t.test('adapter failures are contained', async (t) => {
  const logs: string[] = []
  const adapter: FanoutAdapter = {
    async subscribe (room) { if (room === 'fail') throw new Error('subscribe failed') },
    async unsubscribe () { throw new Error('unsubscribe failed') },
    publish () {}
  }
  const app = await registeredApp(t, { heartbeat: false, adapter }, { logger: { level: 'error', stream: { write: (line: string) => { logs.push(line) } } } })
  app.realtime('/chat', { ...chat, joinable: true })
  await app.ready()
  const client = await connect(app, '/chat')
  await t.rejects(client.request('room:join', { room: 'fail' }), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'internal' } })
  t.match(await client.request('room:join', { room: 'ok' }), { room: 'ok', seq: Number, epoch: /^[\w-]{8,22}$/ }, 'the 1.1 ack carries the position')
  t.equal(await client.request('room:leave', { room: 'ok' }), null)
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(logs.some((line) => line.includes('fan-out adapter failed to unsubscribe')))
  await client.close()
  await t.resolves(app.close(), 'an adapter without close() is fine')
})

t.test('an adapter that numbers messages: a second done is ignored, frames for a room gone are dropped, presence is local', async (t) => {
  let receive: FanoutReceive = () => { t.fail('not subscribed') }
  const dones: Array<(seq: number) => void> = []
  const adapter: FanoutAdapter = {
    subscribe (room, r) { receive = r },
    unsubscribe () {},
    publish () { t.fail('sequence is used instead') },
    sequence (room, head, tail, volatile, done) { dones.push(done) }
  }
  const app = await build(t, { adapter })
  const client = await connect(app, '/chat')
  await client.request('enter', { room: 'r' })
  t.match(await app.realtime.presence('r'), { count: 1, members: [{ connId: String, userId: null }] },
    'an adapter without remoteMembers: this instance\'s members only')
  app.realtime.to('r').emit('said', { text: 'first' })
  app.realtime.to('r').emit('said', { text: 'second' })
  dones[1](0)
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(client.received.filter((m) => m.type === 'said').length, 0, 'the second waits for the first')
  dones[0](7)
  dones[0](70)
  t.same(await client.next('said'), { type: 'said', room: 'r', seq: 7, data: { text: 'first' } })
  t.same(await client.next('said'), { type: 'said', room: 'r', seq: 8, data: { text: 'second' } }, 'not published: numbered locally')
  receive('r', Buffer.from(serializeRoomEvent('said', 'r', 12, { text: 'another instance' })), false, 12)
  t.same(await client.next('said'), { type: 'said', room: 'r', seq: 12, data: { text: 'another instance' } })
  t.equal(await client.request('exit', { room: 'r' }), true)
  receive('r', Buffer.from(serializeRoomEvent('said', 'r', 13, { text: 'late' })), false, 13)
  app.realtime.to('r').emit('said', { text: 'no member here' })
  t.equal(dones.length, 3, 'numbered all the same, for the other instances')
  dones[2](14)
  await client.request('enter', { room: 'other' })
  t.equal(client.received.filter((m) => m.type === 'said').length, 3, 'each delivered once, and nothing after leaving')
  await client.close()
})
