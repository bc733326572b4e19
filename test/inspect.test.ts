// The inspection API: this instance's connections and rooms, paginated and bounded.
import t from 'tap'
import Fastify from 'fastify'
import jwt from '@fastify/jwt'
import realtime from '../index.js'
import { connect } from '../lib/testing.js'

t.test('connections and rooms page by cursor; every item is listed once', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwt, { secret: 'x'.repeat(32) })
  await app.register(realtime, { heartbeat: false })
  app.realtime('/open', { joinable: true, messages: {} })
  app.realtime('/auth', { auth: 'handshake', joinable: true, messages: {} })
  await app.ready()
  const token = app.jwt.sign({ sub: 'ann' })
  const clients = []
  for (let i = 0; i < 5; i++) clients.push(await connect(app, '/open'))
  const ann = await connect(app, '/auth', { headers: { authorization: `Bearer ${token}` } })
  for (const [i, c] of clients.entries()) await c.request('room:join' as never, { room: `room-${String.fromCharCode(101 - i)}` } as never)
  await ann.request('room:join' as never, { room: 'room-a' } as never)
  await ann.request('room:join' as never, { room: 'room-e' } as never)

  const first = app.realtime.inspect.connections({ limit: 4 })
  t.equal(first.items.length, 4)
  t.type(first.next, 'string')
  // A connection that arrives between pages is listed on a later page; one that left is not.
  await clients[0].close()
  const late = await connect(app, '/open')
  const second = app.realtime.inspect.connections({ limit: 4, cursor: first.next })
  t.equal(second.next, null)
  const ids = [...first.items, ...second.items].map((c) => c.id)
  t.equal(new Set(ids).size, ids.length, 'no connection twice')
  t.equal(second.items.length, 3, 'two left of the first arrivals, ann and the late one')
  const annItem = second.items.find((c) => c.route === '/auth')
  t.match(annItem, { user: 'ann', route: '/auth', rooms: ['room-a', 'room-e'], bufferedBytes: 0 })
  t.ok(annItem!.age >= 0 && annItem!.age < 10_000)
  t.equal(first.items[1].user, null, 'anonymous')
  t.equal(app.realtime.inspect.connections().items.length, 6, 'default limit 100')

  const rooms1 = app.realtime.inspect.rooms({ limit: 2 })
  t.same(rooms1.items.map((r) => r.name), ['room-a', 'room-b'])
  t.equal(rooms1.next, 'room-b')
  const rooms2 = app.realtime.inspect.rooms({ limit: 2, cursor: rooms1.next })
  t.same(rooms2.items.map((r) => r.name), ['room-c', 'room-d'])
  const rooms3 = app.realtime.inspect.rooms({ limit: 2, cursor: rooms2.next })
  t.same(rooms3, { items: [{ name: 'room-e', members: 1, seq: 0 }], next: null }, 'room-e: clients[0] left, ann stays')
  t.same(app.realtime.inspect.rooms().items.find((r) => r.name === 'room-a'), { name: 'room-a', members: 2, seq: 0 })
  app.realtime.to('room-a').emit('x', 1)
  t.equal(app.realtime.inspect.rooms({ limit: 1 }).items[0].seq, 1)

  for (const c of [...clients.slice(1), ann, late]) await c.close()
})

t.test('limits and cursors are checked', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime)
  for (const query of [{ limit: 0 }, { limit: 501 }, { limit: 1.5 }, { cursor: 5 as never }]) {
    t.throws(() => app.realtime.inspect.connections(query), { code: 'FRT_ERR_INSPECT_QUERY' })
  }
  t.throws(() => app.realtime.inspect.connections({ cursor: 'abc' }), { code: 'FRT_ERR_INSPECT_QUERY' })
  t.throws(() => app.realtime.inspect.connections({ cursor: '-1' }), { code: 'FRT_ERR_INSPECT_QUERY' })
  t.throws(() => app.realtime.inspect.rooms({ limit: 1000 }), { code: 'FRT_ERR_INSPECT_QUERY' })
  t.same(app.realtime.inspect.rooms(), { items: [], next: null })
  t.same(app.realtime.inspect.connections({ limit: 500 }), { items: [], next: null })
})
