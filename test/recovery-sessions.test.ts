// Sessions (PROTOCOL.md 1.1, one instance, in memory): the `session` message,
// resume by `resume.<token>`, what comes back (id, rooms incl. server joins,
// kept data, unicast sent while away, missed room messages), presence that does
// not flap, refusals (used twice, other user, expired), a second resume, a drop
// before anything was received, request de-duplication, bounds, and dropped
// sessions waiting on one timer for all until their window passes.
import t from 'tap'
import Type from 'typebox'
import { listeningApp } from './helpers/app.js'
import { wireClient, type WireClient } from './helpers/wire.js'
import { until } from './helpers/wait.js'
import { MemorySessions, type RealtimeOptions } from '../index.js'

const Room = Type.Object({ room: Type.String() })

interface Server {
  app: any
  url: string
  opens: Array<{ id: string, recovered: boolean, data: unknown }>
  conns: Map<string, any>
  runs: Map<string, number>
}

async function setup (t: Tap.Test, options: RealtimeOptions = {}): Promise<Server> {
  const opens: Server['opens'] = []
  const conns = new Map<string, any>()
  const runs = new Map<string, number>()
  const { app, url } = await listeningApp(t, {
    userFromHeader: true,
    options: { heartbeat: false, rateLimit: false, subprotocols: ['chat.v1'], history: {}, sessions: { window: 5000 }, ...options },
    routes: {
      '/chat': {
        joinable: true,
        presence: true,
        history: true,
        sessions: true,
        keep: (conn: any) => conn.data,
        onOpen: (conn: any) => {
          opens.push({ id: conn.id, recovered: conn.recovered, data: conn.data })
          conns.set(conn.id, conn)
        },
        messages: {
          enter: { schema: Room, handler: async (conn: any, data: any) => { await conn.join(data.room); return true } },
          remember: { schema: Type.Object({ note: Type.String() }), handler: (conn: any, data: any) => { conn.data = { note: data.note }; return true } },
          count: {
            schema: Type.Object({ key: Type.String() }),
            handler: (conn: any, data: any) => { runs.set(data.key, (runs.get(data.key) ?? 0) + 1); return { runs: runs.get(data.key) } }
          },
          fail: { schema: Type.Null(), handler: () => { throw Object.assign(new Error('no'), { statusCode: 409, code: 'nope' }) } }
        },
        emits: { said: Type.Object({ text: Type.String() }), note: Type.Object({ n: Type.Integer() }) }
      }
    }
  })
  return { app, url: url('/chat'), opens, conns, runs }
}

async function open (t: Tap.Test, server: Server, user = 'ann', token?: string): Promise<{ c: WireClient, session: any }> {
  const c = await wireClient(server.url, {
    headers: { 'x-user': user },
    // An application protocol too: ws clients want one selected when they offer any (as with bearer.).
    protocols: token === undefined ? ['chat.v1'] : ['chat.v1', 'resume.' + token]
  })
  t.teardown(() => c.ws.terminate())
  const session = await c.next((f) => f.type === 'session', 'session message')
  return { c, session: session.data }
}

/** Drops the socket without a close frame and waits until the server saw it go. */
async function drop (c: WireClient, server: Server): Promise<void> {
  const before = server.app.realtime.stats().connections
  c.ws.terminate()
  await c.closed
  await until(() => server.app.realtime.stats().connections === before - 1, 'the server saw the drop')
}

function emit (app: any, room: string, n: number, from = 0): void {
  for (let i = 0; i < n; i++) app.realtime.to(room).emit('said', { text: `m${from + i}` })
}

t.test('the session message comes first; the protocol selector never picks a resume entry', async (t) => {
  const server = await setup(t)
  const { c, session } = await open(t, server, 'ann', 'A'.repeat(24))
  t.equal(c.frames[0].type, 'session')
  t.match(session, { token: /^[\w-]{24}$/, window: 5000, recovered: false })
  t.equal(c.ws.protocol, 'chat.v1', 'the resume entry is never selected')
  t.equal(server.app.realtime.stats().sessionsRefused, 1, 'an unknown token is refused quietly')
  t.equal(server.opens[0].recovered, false)
})

t.test('a dropped client resumes: same id, rooms (also server joins), kept data, missed messages in order; presence does not flap', async (t) => {
  const server = await setup(t)
  const watcher = await open(t, server, 'bob')
  await watcher.c.request('room:join', { room: 'lobby' })
  const { c, session } = await open(t, server)
  await c.request('room:join', { room: 'lobby' })
  await c.request('enter', { room: 'news' })
  await c.request('remember', { note: 'kept' })
  emit(server.app, 'lobby', 3)
  const last = (await c.next((f) => f.room === 'lobby' && f.data?.text === 'm2')).seq as number
  const newsAt = server.app.realtime.stats().members > 0 ? 1 : 0
  const firstId = server.opens[1].id
  await drop(c, server)
  await until(() => server.app.realtime.stats().detachedSessions === 1, 'detached')
  emit(server.app, 'lobby', 100, 3)
  emit(server.app, 'news', 2)
  server.conns.get(firstId).emit('note', { n: 1 })
  const back = await open(t, server, 'ann', session.token)
  t.match(back.session, {
    recovered: true,
    rooms: [{ room: 'lobby', seq: last + 100, recovered: true }, { room: 'news', seq: newsAt + 2, recovered: true }]
  })
  t.not(back.session.token, session.token, 'a new token')
  await back.c.next((f) => f.room === 'news' && f.seq === newsAt + 2)
  const order = back.c.frames.map((f) => f.type === 'said' ? `${f.room}:${f.seq}` : f.type)
  t.equal(order[0], 'session')
  t.equal(order[1], 'note', 'the unicast sent while away comes right after the session message')
  const lobby = back.c.room('lobby').map((f) => f.seq)
  t.same(lobby, Array.from({ length: 100 }, (_, i) => last + 1 + i), '100/100 missed, in order, no duplicate')
  t.same(back.c.room('news').map((f) => f.data.text), ['m0', 'm1'])
  t.same(server.opens[2], { id: firstId, recovered: true, data: { note: 'kept' } })
  const presence = watcher.c.frames.filter((f) => f.type.startsWith('presence:'))
  t.same(presence.map((f) => f.type), ['presence:join'], 'the watcher saw ann join once, never leave')
  // Live continues.
  emit(server.app, 'lobby', 1, 200)
  await back.c.next((f) => f.room === 'lobby' && f.seq === last + 101)
  t.equal(server.app.realtime.stats().sessionsResumed, 1)
})

t.test('a token works once; another user cannot use it (and does not spend it); resume a second time', async (t) => {
  const server = await setup(t)
  const first = await open(t, server)
  await first.c.request('room:join', { room: 'lobby' })
  await drop(first.c, server)
  const thief = await open(t, server, 'eve', first.session.token)
  t.equal(thief.session.recovered, false, 'another user: refused')
  t.not(server.opens.at(-1)?.id, server.opens[0].id)
  const second = await open(t, server, 'ann', first.session.token)
  t.equal(second.session.recovered, true, 'the owner still can')
  await drop(second.c, server)
  const replay = await open(t, server, 'ann', first.session.token)
  t.equal(replay.session.recovered, false, 'a used token is refused')
  const third = await open(t, server, 'ann', second.session.token)
  t.equal(third.session.recovered, true, 'a resumed connection resumes again with its own token')
  t.same(third.session.rooms.map((r: any) => r.room), ['lobby'])
  t.equal(server.opens.at(-1)?.id, server.opens[0].id)
  t.equal(server.app.realtime.stats().sessionsRefused, 2)
})

t.test('a session that dropped before receiving anything resumes', async (t) => {
  const server = await setup(t)
  const first = await open(t, server)
  await drop(first.c, server)
  const back = await open(t, server, 'ann', first.session.token)
  t.match(back.session, { recovered: true, rooms: [] })
})

t.test('a re-sent request id gets the first reply, the handler ran once, also across a resume', async (t) => {
  const server = await setup(t)
  const first = await open(t, server)
  const one = await first.c.request('count', { key: 'a' }, 'x1')
  const again = await first.c.request('count', { key: 'a' }, 'x1')
  t.same(again, one)
  const failed = await first.c.request('fail', null, 'x2')
  t.equal(failed.error?.code, 'nope')
  await new Promise((resolve) => setImmediate(resolve))
  await drop(first.c, server)
  const back = await open(t, server, 'ann', first.session.token)
  const resent = await back.c.request('count', { key: 'a' }, 'x1')
  t.same(resent.data, { runs: 1 })
  t.same((await back.c.request('fail', null, 'x2')).error?.code, 'nope')
  t.equal(server.runs.get('a'), 1)
})

t.test('a 1000 close ends the session at once: presence leave, no resume', async (t) => {
  const server = await setup(t)
  const watcher = await open(t, server, 'bob')
  await watcher.c.request('room:join', { room: 'lobby' })
  const first = await open(t, server)
  await first.c.request('room:join', { room: 'lobby' })
  first.c.ws.close(1000)
  await watcher.c.next((f) => f.type === 'presence:leave')
  t.equal(server.app.realtime.stats().detachedSessions, 0)
  const back = await open(t, server, 'ann', first.session.token)
  t.equal(back.session.recovered, false)
})

t.test('the window passes: the leave is announced once, the resume refused; the unicast buffer is bounded', async (t) => {
  const store = new MemorySessions({ sweepInterval: 50 })
  t.teardown(() => store.close())
  const server = await setup(t, { sessions: { window: 300, maxUnicast: 3, store } })
  const watcher = await open(t, server, 'bob')
  await watcher.c.request('room:join', { room: 'lobby' })
  const first = await open(t, server)
  await first.c.request('room:join', { room: 'lobby' })
  await drop(first.c, server)
  const conn = server.conns.get(server.opens[1].id)
  for (let n = 0; n < 10; n++) conn.emit('note', { n })
  const early = await open(t, server, 'ann', first.session.token)
  t.same(early.c.frames.filter((f) => f.type === 'note').map((f) => f.data.n), [7, 8, 9], 'the newest maxUnicast kept')
  await drop(early.c, server)
  await watcher.c.next((f) => f.type === 'presence:leave', 'leave after the window', 3000)
  t.equal(watcher.c.frames.filter((f) => f.type === 'presence:leave').length, 1)
  t.equal(server.app.realtime.stats().detachedSessions, 0)
  const late = await open(t, server, 'ann', early.session.token)
  t.equal(late.session.recovered, false)
  // Only the two live sessions (bob's, the late one) are kept: the expired one was taken out when its window passed.
  t.equal(store.size, 2)
})

t.test('the replies kept are bounded (maxReplies); 0 keeps none', async (t) => {
  for (const maxReplies of [1, 0]) {
    const server = await setup(t, { sessions: { window: 5000, maxReplies } })
    const first = await open(t, server)
    await first.c.request('count', { key: 'b' + maxReplies }, 'y1')
    await first.c.request('count', { key: 'b' + maxReplies }, 'y2')
    await first.c.request('count', { key: 'b' + maxReplies }, 'y1')
    await until(() => server.runs.get('b' + maxReplies) === 3, `maxReplies ${maxReplies}: y1 is no longer kept, processed again`)
    t.equal(server.runs.get('b' + maxReplies), 3)
  }
})

t.test('memory stays bounded: dropped sessions wait on one timer for all and are swept, here and in the store, when their window passes', async (t) => {
  const WINDOW = 1000
  const store = new MemorySessions({ sweepInterval: 0 })
  t.teardown(() => store.close())
  const server = await setup(t, { sessions: { window: WINDOW, store } })
  const clients: WireClient[] = []
  for (let i = 0; i < 20; i++) {
    const { c } = await open(t, server, `u${i}`)
    await c.request('room:join', { room: 'lobby' })
    clients.push(c)
  }
  t.equal(store.size, 20)
  // The timers armed while the 20 drop (a window's delay: a session's deadline).
  const delays: number[] = []
  const real = globalThis.setTimeout
  globalThis.setTimeout = ((fn: () => void, delay?: number, ...args: unknown[]) => {
    delays.push(delay ?? 0)
    return real(fn, delay, ...args)
  }) as typeof setTimeout
  t.teardown(() => { globalThis.setTimeout = real })
  for (const c of clients) await drop(c, server)
  globalThis.setTimeout = real
  t.equal(server.app.realtime.stats().detachedSessions, 20)
  t.equal(delays.filter((delay) => delay > WINDOW / 2 && delay <= WINDOW).length, 1, 'one timer for the 20 windows')
  await until(() => server.app.realtime.stats().detachedSessions === 0, 'every window passed', 5000)
  t.equal(server.app.realtime.stats().members, 0, 'out of their rooms')
  t.equal(store.size, 0, 'and out of the store (its own sweep is off here: taken out when the window passed)')
})
