// Joins with positions (PROTOCOL.md 1.1): every ack carries { room, seq, epoch };
// a join with `since` gets the missed messages, then the ack, then live, with no
// gap and no duplicate, or a clean `recovered: false`; a sync of a room already
// joined; snapshots at the ack's seq; volatile messages carry no seq. In memory.
import t from 'tap'
import Type from 'typebox'
import { listeningApp } from './helpers/app.js'
import { wireClient, seqs, type Frame } from './helpers/wire.js'
import { until } from './helpers/wait.js'
import { MemoryHistory, type RealtimeOptions } from '../index.js'

const Room = Type.Object({ room: Type.String() })
function route (extra: Record<string, unknown> = {}): object {
  return {
    joinable: true,
    history: true,
    messages: {
      enter: { schema: Room, handler: async (conn: any, data: any) => { await conn.join(data.room); return true } },
      say: {
        schema: Type.Object({ room: Type.String(), text: Type.String() }),
        handler: (conn: any, data: any) => { conn.to(data.room).emit('said', { text: data.text }); return true }
      },
      shout: {
        schema: Type.Object({ room: Type.String(), text: Type.String() }),
        handler: (conn: any, data: any) => { conn.to(data.room).volatile.emit('said', { text: data.text }); return true }
      },
      poke: {
        schema: Room,
        handler: (conn: any, data: any) => { conn.to(data.room).volatile.emit('poked', undefined); return true }
      }
    },
    emits: { said: Type.Object({ text: Type.String() }), poked: Type.Any() },
    ...extra
  }
}

async function setup (t: Tap.Test, options: RealtimeOptions = {}, extra: Record<string, unknown> = {}) {
  return await listeningApp(t, {
    options: { heartbeat: false, rateLimit: false, history: {}, ...options },
    routes: { '/chat': route(extra) }
  })
}

function emit (app: any, room: string, n: number, from = 0): void {
  for (let i = 0; i < n; i++) app.realtime.to(room).emit('said', { text: `m${from + i}` })
}

t.test('every join ack carries { room, seq, epoch }; without since, no recovered and no replay', async (t) => {
  const { app, url } = await setup(t)
  const a = await wireClient(url('/chat'))
  t.teardown(() => a.ws.terminate())
  const ack = await a.request('room:join', { room: 'lobby' })
  t.match(ack.data, { room: 'lobby', seq: 0, epoch: /^[\w-]{8,22}$/ })
  t.notOk('recovered' in ack.data)
  emit(app, 'lobby', 3)
  await a.next((f) => f.seq === 3)
  const b = await wireClient(url('/chat'))
  t.teardown(() => b.ws.terminate())
  const ackB = await b.request('room:join', { room: 'lobby' })
  t.same(ackB.data, { room: 'lobby', seq: 3, epoch: ack.data.epoch }, 'same epoch while the room lives')
  t.same(b.room('lobby'), [], 'a join without since replays nothing')
})

t.test('join with since: the missed messages, then the ack, then live: no gap, no duplicate', async (t) => {
  const { app, url } = await setup(t)
  const keeper = await wireClient(url('/chat'))
  t.teardown(() => keeper.ws.terminate())
  const { data: { epoch } } = await keeper.request('room:join', { room: 'lobby' })
  emit(app, 'lobby', 5)
  const c = await wireClient(url('/chat'))
  t.teardown(() => c.ws.terminate())
  const ack = await c.request('room:join', { room: 'lobby', since: { seq: 2, epoch } }, 'j1')
  t.same(ack.data, { room: 'lobby', seq: 5, epoch, recovered: true })
  emit(app, 'lobby', 2, 5)
  await c.next((f) => f.seq === 7)
  const order = c.frames.map((f) => f.type === 'ack' ? 'ack' : f.seq)
  t.same(order, [3, 4, 5, 'ack', 6, 7], 'replay, ack, live')
  t.same(c.room('lobby').map((f) => f.data.text), ['m2', 'm3', 'm4', 'm5', 'm6'])
  t.equal(app.realtime.stats().joinsRecovered, 1)
  t.equal(app.realtime.stats().replayedMessages, 3)
})

t.test('not recoverable: newer than the room, another epoch, more missed than a replay may hold: recovered false, nothing replayed', async (t) => {
  const { app, url } = await setup(t, { history: { replay: { maxCount: 10 } } })
  const keeper = await wireClient(url('/chat'))
  t.teardown(() => keeper.ws.terminate())
  const { data: { epoch } } = await keeper.request('room:join', { room: 'lobby' })
  emit(app, 'lobby', 15)
  const cases: Array<[string, object]> = [
    ['position ahead', { seq: 30, epoch }],
    ['another epoch', { seq: 3, epoch: 'AAAAAAAAAAAAAAAA' }],
    ['more missed than kept', { seq: 0, epoch }]
  ]
  for (const [i, [what, since]] of cases.entries()) {
    const c = await wireClient(url('/chat'))
    t.teardown(() => c.ws.terminate())
    const ack = await c.request('room:join', { room: 'lobby', since })
    t.same(ack.data, { room: 'lobby', seq: 15 + i, epoch, recovered: false }, what)
    emit(app, 'lobby', 1, 100)
    const live = await c.next((f) => f.type === 'said')
    t.same(seqs(c.room('lobby')), [live.seq], `${what}: no replay, live continues`)
  }
  t.equal(app.realtime.stats().joinsNotRecovered, 3)
})

t.test('more missed than the history keeps: recovered false, nothing replayed (never part of it); within it: replayed whole', async (t) => {
  const store = new MemoryHistory({ maxCount: 5, sweepInterval: 0 })
  t.teardown(() => store.close())
  const { app, url } = await setup(t, { history: { store } })
  const keeper = await wireClient(url('/chat'))
  t.teardown(() => keeper.ws.terminate())
  const { data: { epoch } } = await keeper.request('room:join', { room: 'lobby' })
  emit(app, 'lobby', 8)
  await keeper.next((f) => f.seq === 8)
  const late = await wireClient(url('/chat'))
  t.teardown(() => late.ws.terminate())
  t.same((await late.request('room:join', { room: 'lobby', since: { seq: 2, epoch } })).data, { room: 'lobby', seq: 8, epoch, recovered: false })
  t.same(late.room('lobby'), [], 'nothing replayed')
  const recent = await wireClient(url('/chat'))
  t.teardown(() => recent.ws.terminate())
  t.same((await recent.request('room:join', { room: 'lobby', since: { seq: 3, epoch } })).data, { room: 'lobby', seq: 8, epoch, recovered: true })
  t.same(seqs(recent.room('lobby')), [4, 5, 6, 7, 8], 'the five kept')
})

t.test('a bad since is invalid_data; a route without history ignores since', async (t) => {
  const { url } = await setup(t)
  const c = await wireClient(url('/chat'))
  t.teardown(() => c.ws.terminate())
  for (const since of [{ seq: -1, epoch: 'abcdefgh' }, { seq: 1.5, epoch: 'abcdefgh' }, { seq: 1, epoch: 'short' }, 'x', null]) {
    const reply = await c.request('room:join', { room: 'lobby', since })
    t.equal(reply.error?.code, 'invalid_data', JSON.stringify(since))
  }
  const plain = await listeningApp(t, { options: { heartbeat: false, history: {} }, routes: { '/plain': { ...route(), history: false } } })
  const d = await wireClient(plain.url('/plain'))
  t.teardown(() => d.ws.terminate())
  const ack = await d.request('room:join', { room: 'lobby', since: { seq: 3, epoch: 'abcdefgh' } })
  t.notOk('recovered' in ack.data)
})

t.test('sync: a join with since of a room the server joined, on a route without joinable', async (t) => {
  const { app, url } = await setup(t, {}, { joinable: false })
  const c = await wireClient(url('/chat'))
  t.teardown(() => c.ws.terminate())
  await c.request('enter', { room: 'news' })
  emit(app, 'news', 2)
  await c.next((f) => f.seq === 2)
  const first = c.room('news')[0]
  const { data } = await c.request('room:join', { room: 'news', since: { seq: 1, epoch: 'unknownEpoch1' } })
  t.match(data, { room: 'news', seq: 2, recovered: false })
  const sync = await c.request('room:join', { room: 'news', since: { seq: 0, epoch: data.epoch } })
  t.same(sync.data, { room: 'news', seq: 2, epoch: data.epoch, recovered: true })
  t.same(c.room('news').map((f) => f.seq), [1, 2, 1, 2], 'the sync replayed 1 and 2 again (the client drops them by seq)')
  t.same(c.room('news')[2], first)
  const refused = await c.request('room:join', { room: 'other', since: { seq: 0, epoch: data.epoch } })
  t.equal(refused.error?.code, 'unknown_type', 'a room not joined still needs joinable')
  const leave = await c.request('room:leave', { room: 'news' })
  t.equal(leave.error?.code, 'unknown_type')
})

t.test('volatile messages on a history room carry no seq and are not kept', async (t) => {
  const { url } = await setup(t)
  const a = await wireClient(url('/chat'))
  t.teardown(() => a.ws.terminate())
  const { data: { epoch } } = await a.request('room:join', { room: 'lobby' })
  await a.request('say', { room: 'lobby', text: 'kept' })
  await a.request('shout', { room: 'lobby', text: 'gone' })
  await a.request('say', { room: 'lobby', text: 'kept too' })
  await a.request('poke', { room: 'lobby' })
  await a.next((f) => f.type === 'poked')
  t.same(a.room('lobby', 'poked'), [{ type: 'poked', room: 'lobby' }], 'no data, no seq')
  t.same(a.room('lobby', 'said').map((f) => [f.seq, f.data.text]), [[1, 'kept'], [undefined, 'gone'], [2, 'kept too']])
  const b = await wireClient(url('/chat'))
  t.teardown(() => b.ws.terminate())
  await b.request('room:join', { room: 'lobby', since: { seq: 0, epoch } })
  t.same(b.room('lobby', 'said').map((f) => f.data.text), ['kept', 'kept too'])
  t.same(b.room('lobby', 'poked'), [], 'not kept')
})

t.test('a room freed and created again has a new epoch: the old position is refused', async (t) => {
  const { app, url } = await setup(t)
  const a = await wireClient(url('/chat'))
  const { data: { epoch } } = await a.request('room:join', { room: 'lobby' })
  emit(app, 'lobby', 2)
  await a.next((f) => f.seq === 2)
  a.ws.close()
  await a.closed
  await until(() => app.realtime.stats().rooms === 0, 'room freed')
  const b = await wireClient(url('/chat'))
  t.teardown(() => b.ws.terminate())
  const ack = await b.request('room:join', { room: 'lobby', since: { seq: 2, epoch } })
  t.equal(ack.data.recovered, false)
  t.equal(ack.data.seq, 0)
  t.not(ack.data.epoch, epoch)
})

t.test('snapshot: the state at seq N in the ack, live from N + 1, while messages keep coming', async (t) => {
  let state = 0
  let loads = 0
  const { app, url } = await setup(t, {}, {
    // Captured when called (as a transaction snapshot would be), answered later.
    snapshot: async (room: string) => {
      loads++
      const at = state
      await new Promise((resolve) => setTimeout(resolve, 50))
      return { room, at }
    }
  })
  const keeper = await wireClient(url('/chat'))
  t.teardown(() => keeper.ws.terminate())
  await keeper.request('room:join', { room: 'doc' })
  // The app applies each change to its state before emitting it; 50 msg/s.
  const timer = setInterval(() => { state++; app.realtime.to('doc').emit('said', { text: String(state) }) }, 20)
  t.teardown(() => clearInterval(timer))
  const c = await wireClient(url('/chat'))
  t.teardown(() => c.ws.terminate())
  const ack = await c.request('room:join', { room: 'doc' })
  t.equal(ack.data.snapshot.at, ack.data.seq, 'the state is the one at the ack seq')
  const n = ack.data.seq as number
  await c.next((f) => f.seq === n + 5)
  clearInterval(timer)
  const live = c.room('doc').map((f) => f.seq)
  t.same(live.slice(0, 5), [n + 1, n + 2, n + 3, n + 4, n + 5], 'no gap, no duplicate after the snapshot')
  t.ok(loads >= 1)
})

t.test('snapshot: a loader slower than snapshotTimeout fails the join; the connection is in no such room', async (t) => {
  const { app, url } = await setup(t, {}, { snapshot: () => new Promise(() => {}), snapshotTimeout: 50 })
  const c = await wireClient(url('/chat'))
  t.teardown(() => c.ws.terminate())
  const reply = await c.request('room:join', { room: 'doc' })
  t.equal(reply.error?.code, 'FRT_ERR_SNAPSHOT_TIMEOUT')
  t.equal(app.realtime.stats().members, 0)
})

t.test('a member that cannot keep up while its replay is read is closed as a slow consumer', async (t) => {
  const { app, url } = await setup(t, { history: { hold: { maxCount: 2 } } }, {
    // The join waits on the loader while the room gets more than the hold allows.
    snapshot: async () => { emit(app, 'doc', 5); return null }
  })
  const c = await wireClient(url('/chat'))
  c.send({ type: 'room:join', id: 1, data: { room: 'doc' } })
  t.equal(await c.closed, 4008)
  t.equal(app.realtime.stats().slowConsumerCloses, 1)
  t.ok(c.frames.every((f: Frame) => f.type !== 'said'))
})

t.test('a message to a history room with nobody here (memory) is not kept', async (t) => {
  const { app, url } = await setup(t)
  emit(app, 'empty', 3)
  const c = await wireClient(url('/chat'))
  t.teardown(() => c.ws.terminate())
  const ack = await c.request('room:join', { room: 'empty' })
  t.equal(ack.data.seq, 0, 'its history was freed at once')
})
