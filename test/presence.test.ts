import t, { type Test } from 'tap'
import Type from 'typebox'
import { realtimeApp } from './helpers/app.js'
import { type Connection, type RouteDefinition } from '../index.js'
import { connect } from '../lib/testing.js'

const RoomData = Type.Object({ room: Type.String() })

const route: RouteDefinition<{ enter: typeof RoomData }, {}> = {
  joinable: true,
  messages: {
    enter: { schema: RoomData, handler: (conn, data) => conn.join(data.room) }
  }
}

async function build (t: Test, presence: boolean) {
  const conns: Connection[] = []
  const app = await realtimeApp(t, {
    options: { heartbeat: false },
    userFromHeader: (name) => name === 'numeric' ? { id: 42 } : { sub: name },
    routes: { '/room': { ...route, presence, onOpen: (conn) => { conns.push(conn) } } }
  })
  return { app, conns }
}

const settle = () => new Promise((resolve) => setImmediate(resolve))

t.test('presence lists the members of a room with their user ids', async (t) => {
  const { app, conns } = await build(t, false)
  const alice = await connect(app, '/room', { headers: { 'x-user': 'alice' } })
  const anon = await connect(app, '/room')
  const numeric = await connect(app, '/room', { headers: { 'x-user': 'numeric' } })
  for (const client of [alice, anon, numeric]) await client.request('room:join', { room: 'lobby' })
  await alice.request('room:join', { room: 'side' })

  const pending = app.realtime.presence('lobby')
  t.ok(pending instanceof Promise, 'presence is asynchronous, so an adapter can make it cluster-wide')
  t.same(await pending, {
    count: 3,
    members: [
      { connId: conns[0].id, userId: 'alice' },
      { connId: conns[1].id, userId: null },
      { connId: conns[2].id, userId: '42' }
    ]
  })
  t.same(await app.realtime.presence('side'), { count: 1, members: [{ connId: conns[0].id, userId: 'alice' }] })
  t.same(await app.realtime.presence('nobody'), { count: 0, members: [] })

  await anon.close()
  await numeric.request('room:leave', { room: 'lobby' })
  while (app.realtime.stats().connections > 2) await settle()
  t.same(await app.realtime.presence('lobby'), { count: 1, members: [{ connId: conns[0].id, userId: 'alice' }] })
  t.equal(alice.received.filter((m) => m.type.startsWith('presence:')).length, 0, 'no presence events unless asked')
  await alice.close()
  await numeric.close()
})

t.test('presence events on join, leave and close', async (t) => {
  const { app, conns } = await build(t, true)
  const alice = await connect(app, '/room', { headers: { 'x-user': 'alice' } })
  const bob = await connect(app, '/room', { headers: { 'x-user': 'bob' } })
  const carol = await connect(app, '/room', { headers: { 'x-user': 'carol' } })
  await alice.request('room:join', { room: 'lobby' })
  await bob.request('enter', { room: 'lobby' })
  t.same(await alice.next('presence:join'),
    { type: 'presence:join', room: 'lobby', seq: 2, data: { connId: conns[1].id, userId: 'bob' } },
    'presence events are room messages: room and seq')
  await carol.request('room:join', { room: 'lobby' })
  t.same((await alice.next('presence:join')).data, { connId: conns[2].id, userId: 'carol' })
  t.same((await bob.next('presence:join')).data, { connId: conns[2].id, userId: 'carol' })
  await bob.request('room:leave', { room: 'lobby' })
  t.same(await alice.next('presence:leave'),
    { type: 'presence:leave', room: 'lobby', seq: 4, data: { connId: conns[1].id, userId: 'bob' } })
  await carol.close()
  t.same((await alice.next('presence:leave')).data, { connId: conns[2].id, userId: 'carol' }, 'closing announces the leave')

  t.equal(carol.received.filter((m) => m.type === 'presence:join').length, 0, 'the joiner is not told about itself')
  t.same(alice.received.filter((m) => m.room === 'lobby').map((m) => m.seq), [2, 3, 4, 5],
    'alice saw every event after her own join, in seq order')
  t.same(await app.realtime.presence('lobby'), { count: 1, members: [{ connId: conns[0].id, userId: 'alice' }] })
  await alice.close()
  await bob.close()
})
