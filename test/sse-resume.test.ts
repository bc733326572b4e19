// Resuming an SSE stream by `Last-Event-ID` (PROTOCOL.md 1.3), as a browser's
// own EventSource does when it reconnects: each stream writes its cursor as a
// position-only event; a stream request carrying it gets, on each join of
// those rooms (the client's room:join or a handler's conn.join), the missed
// messages through the recovery history, with `recovered: true`, or a clean
// `recovered: false`. With sessions the cursor holds the session's current
// token. In memory and with the Redis adapter on a real redis-server.
import t from 'tap'
import { once } from 'node:events'
import Type from 'typebox'
import { Redis } from 'ioredis'
import { listeningApp } from './helpers/app.js'
import { openStream, type StreamClient } from './helpers/sse.js'
import { wireClient } from './helpers/wire.js'
import { until } from './helpers/wait.js'
import { startRedisServer } from './helpers/redis-server.js'
import { RedisAdapter, type RealtimeOptions } from '../index.js'

const said = Type.Object({ text: Type.String() })

function chat (extra: Record<string, unknown> = {}): object {
  return { sse: true, joinable: true, history: true, messages: {}, emits: { said, note: said }, ...extra }
}

async function setup (t: Tap.Test, options: RealtimeOptions = {}, routes: Record<string, object> = { '/chat': chat() }) {
  const { app, port, url } = await listeningApp(t, {
    userFromHeader: true,
    options: { heartbeat: false, rateLimit: false, history: {}, ...options },
    routes
  })
  return { app, url, http: (path = '/chat') => `http://127.0.0.1:${port}${path}` }
}

/**
 * The stream's cursor once it settled: the last event is a position-only one (written after the tick's messages),
 * and, with `from`, one that came at or after that many events.
 */
async function settledCursor (stream: StreamClient, from = 0): Promise<string> {
  await until(() => {
    const last = stream.events[stream.events.length - 1]
    return stream.events.length > from && last.data === undefined && !last.comment && last.id !== undefined
  }, 'the cursor after the last message')
  return stream.events[stream.events.length - 1].id as string
}

/** The room messages a stream got, as `room#seq:text`, in arrival order. */
function received (stream: StreamClient, room?: string): string[] {
  return stream.events.filter((e) => e.data?.seq !== undefined && (room === undefined || e.data.room === room))
    .map((e) => `${e.data.room as string}#${e.data.seq as number}:${e.data.data.text as string}`)
}

function emit (app: any, room: string, text: string): void {
  app.realtime.to(room).emit('said', { text })
}

async function drop (app: any, stream: StreamClient, left: number): Promise<void> {
  stream.close()
  await until(() => app.realtime.stats().connections === left, 'the server to see the stream go')
}

/** N messages to two rooms while the stream is down: all arrive once, in order, recovered. */
async function twoRooms (t: Tap.Test, options: RealtimeOptions): Promise<void> {
  const { app, url, http } = await setup(t, options)
  // Someone stays in both rooms (in memory, a room's history lives as long as the room).
  const keeper = await wireClient(url('/chat'))
  t.teardown(() => keeper.ws.terminate())
  for (const room of ['a', 'b']) await keeper.request('room:join', { room })
  const stream = await openStream(http())
  for (const room of ['a', 'b']) {
    t.match((await stream.post({ type: 'room:join', id: room, data: { room } })).body.data, { room, seq: Number, epoch: String })
  }
  for (let i = 0; i < 2; i++) { emit(app, 'a', `a${i}`); emit(app, 'b', `b${i}`) }
  await until(() => received(stream).length === 4, 'the live messages')
  const cursor = await settledCursor(stream)
  const [, a, b] = cursor.split(';')
  t.match(a, /^\d+\.[\w-]{8,22}\.a$/)
  t.match(b, /^\d+\.[\w-]{8,22}\.b$/)
  t.equal(stream.events.filter((e) => e.id !== undefined && e.data !== undefined).length, 0, 'no message carries an id')
  const seqA = Number(a.split('.')[0])
  const seqB = Number(b.split('.')[0])
  await drop(app, stream, 1)
  const N = 25
  for (let i = 2; i < 2 + N; i++) { emit(app, 'a', `a${i}`); emit(app, 'b', `b${i}`) }
  await until(() => keeper.room('b').length === 2 + N, 'the keeper to hear them all')
  const before = app.realtime.stats()
  const back = await openStream(http(), { 'last-event-id': cursor })
  t.teardown(() => back.close())
  t.same((await back.post({ type: 'room:join', id: 1, data: { room: 'a' } })).body.data,
    { room: 'a', seq: seqA + N, epoch: a.split('.')[1], recovered: true })
  t.same((await back.post({ type: 'room:join', id: 2, data: { room: 'b' } })).body.data,
    { room: 'b', seq: seqB + N, epoch: b.split('.')[1], recovered: true })
  await until(() => received(back).length === 2 * N, 'the replays')
  const expect = (room: string, seq: number): string[] =>
    Array.from({ length: N }, (_v, i) => `${room}#${seq + 1 + i}:${room}${i + 2}`)
  t.same(received(back, 'a'), expect('a', seqA), 'a: every missed message, once, in order')
  t.same(received(back, 'b'), expect('b', seqB), 'b: every missed message, once, in order')
  emit(app, 'a', 'live')
  await until(() => received(back, 'a').length === N + 1, 'live after the replay')
  t.equal(received(back, 'a')[N], `a#${seqA + N + 1}:live`)
  const after = app.realtime.stats()
  t.equal(after.joinsRecovered - before.joinsRecovered, 2)
  t.equal(after.replayedMessages - before.replayedMessages, 2 * N)
  // The new stream writes its own cursor, at the newest positions.
  t.match(await settledCursor(back), new RegExp(`^1;${seqA + N + 1}\\.[\\w-]+\\.a;${seqB + N}\\.[\\w-]+\\.b$`))
}

t.test('in memory: a resume by Last-Event-ID loses nothing in two rooms', async (t) => {
  await twoRooms(t, {})
})

t.test('with the Redis adapter: a resume by Last-Event-ID loses nothing in two rooms', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const client = new Redis(redis.port, '127.0.0.1', { lazyConnect: false })
  client.on('error', () => {})
  if (client.status !== 'ready') await once(client, 'ready')
  t.teardown(() => client.quit())
  await twoRooms(t, { adapter: new RedisAdapter({ client, history: { maxCount: 500 } }) })
})

t.test('a handler\'s join in onOpen resumes from the cursor too; positions not yet taken stay in the cursor', async (t) => {
  const feed = chat({
    onOpen: (conn: any) => conn.join('news'),
    messages: { quit: { schema: Type.Object({ room: Type.String() }), handler: (conn: any, data: any) => conn.leave(data.room) } }
  })
  const { app, url, http } = await setup(t, {}, { '/feed': feed })
  const keeper = await wireClient(url('/feed'))
  t.teardown(() => keeper.ws.terminate())
  await keeper.request('room:join', { room: 'other' })
  const stream = await openStream(http('/feed'))
  await stream.post({ type: 'room:join', id: 1, data: { room: 'other' } })
  emit(app, 'news', 'n1')
  emit(app, 'other', 'o1')
  await until(() => received(stream).length === 2)
  const cursor = await settledCursor(stream)
  await drop(app, stream, 1)
  emit(app, 'news', 'n2')
  emit(app, 'news', 'n3')
  emit(app, 'other', 'o2')
  await until(() => keeper.room('other').length === 2)
  const back = await openStream(http('/feed'), { 'last-event-id': cursor })
  await until(() => received(back).length === 2)
  t.same(received(back), ['news#2:n2', 'news#3:n3'])
  // `other` was not joined again yet: its old position is still in the cursor for the next reconnect.
  const again = await settledCursor(back)
  t.match(again, /^1;3\.[\w-]+\.news;1\.[\w-]+\.other$/)
  await drop(app, back, 1)
  const third = await openStream(http('/feed'), { 'last-event-id': again })
  t.teardown(() => third.close())
  t.match((await third.post({ type: 'room:join', id: 1, data: { room: 'other' } })).body.data, { seq: 2, recovered: true })
  await until(() => received(third, 'other').length === 1)
  t.same(received(third, 'other'), ['other#2:o2'])
  // A handler's leave, and a client's, take the room out of the cursor.
  let from = third.events.length
  t.equal((await third.post({ type: 'quit', id: 2, data: { room: 'news' } })).body.data, true)
  t.match(await settledCursor(third, from), /^1;2\.[\w-]+\.other$/)
  from = third.events.length
  await third.post({ type: 'room:leave', id: 3, data: { room: 'other' } })
  t.equal(await settledCursor(third, from), '1')
})

t.test('trimmed history: recovered: false and nothing replayed', async (t) => {
  const { app, url, http } = await setup(t, { history: { replay: { maxCount: 5 } } })
  const keeper = await wireClient(url('/chat'))
  t.teardown(() => keeper.ws.terminate())
  await keeper.request('room:join', { room: 'a' })
  const stream = await openStream(http())
  await stream.post({ type: 'room:join', id: 1, data: { room: 'a' } })
  emit(app, 'a', 'x')
  await until(() => received(stream).length === 1)
  const cursor = await settledCursor(stream)
  await drop(app, stream, 1)
  for (let i = 0; i < 10; i++) emit(app, 'a', `m${i}`)
  const before = app.realtime.stats().joinsNotRecovered
  const back = await openStream(http(), { 'last-event-id': cursor })
  t.teardown(() => back.close())
  t.match((await back.post({ type: 'room:join', id: 1, data: { room: 'a' } })).body.data, { room: 'a', seq: 11, recovered: false })
  t.equal(app.realtime.stats().joinsNotRecovered - before, 1)
  emit(app, 'a', 'live')
  await until(() => received(back).length === 1)
  t.same(received(back), ['a#12:live'], 'no replay, live only')
})

t.test('hostile Last-Event-IDs: ignored, or recovered: false; never a crash or a wrong replay', async (t) => {
  const { app, url, http } = await setup(t)
  const keeper = await wireClient(url('/chat'))
  t.teardown(() => keeper.ws.terminate())
  const { data: { epoch } } = await keeper.request('room:join', { room: 'a' })
  for (let i = 0; i < 3; i++) emit(app, 'a', `m${i}`)
  await until(() => keeper.room('a').length === 3)
  const join = async (lastEventId: string): Promise<any> => {
    const stream = await openStream(http(), { 'last-event-id': lastEventId })
    const { body } = await stream.post({ type: 'room:join', id: 1, data: { room: 'a' } })
    // Nothing replayed either way (the replay would come before the ack).
    t.same(received(stream), [], lastEventId.slice(0, 40))
    stream.close()
    return body.data
  }
  for (const ignored of ['x'.repeat(5000), '1;1.' + epoch + '.bad room', '41:a', '1;1.' + epoch + '.a;1.' + epoch + '.a', '\u00e9']) {
    t.same(await join(ignored), { room: 'a', seq: 3, epoch }, 'ignored: a fresh join')
  }
  t.same(await join('1;1.AAAAAAAAAAAA.a'), { room: 'a', seq: 3, epoch, recovered: false }, 'another life of the room')
  t.same(await join(`1;9.${epoch}.a`), { room: 'a', seq: 3, epoch, recovered: false }, 'a position from the future')
  t.same(await join('1;0..a'), { room: 'a', seq: 3, epoch, recovered: false }, 'an unknown position')
  t.same(await join(`1;t=${'A'.repeat(24)}`), { room: 'a', seq: 3, epoch }, 'a token on a route without sessions: nothing')
  await until(() => app.realtime.stats().connections === 1)
  t.equal(app.realtime.stats().replayedMessages, 0)
})

t.test('past the cursor\'s bound: rooms left out are answered recovered: false, the listed ones resume', async (t) => {
  const { app, url, http } = await setup(t)
  const names = Array.from({ length: 16 }, (_v, i) => `${'r'.repeat(120)}${i}`)
  const keeper = await wireClient(url('/chat'))
  t.teardown(() => keeper.ws.terminate())
  const stream = await openStream(http())
  for (const room of names) {
    await keeper.request('room:join', { room })
    await stream.post({ type: 'room:join', id: room, data: { room } })
  }
  emit(app, names[0], 'x')
  await until(() => received(stream).length === 1)
  const cursor = await settledCursor(stream)
  t.ok(cursor.length <= 2048 && cursor.endsWith(';+'), `${cursor.length} characters, truncated`)
  await drop(app, stream, 1)
  emit(app, names[0], 'missed')
  emit(app, names[15], 'missed')
  const back = await openStream(http(), { 'last-event-id': cursor })
  t.teardown(() => back.close())
  t.match((await back.post({ type: 'room:join', id: 1, data: { room: names[0] } })).body.data, { seq: 2, recovered: true })
  t.match((await back.post({ type: 'room:join', id: 2, data: { room: names[15] } })).body.data, { seq: 1, recovered: false })
  await until(() => received(back).length === 1)
  t.same(received(back), [`${names[0]}#2:missed`])
  // The next cursor says rooms are still missing.
  t.ok((await settledCursor(back)).endsWith(';+'))
})

t.test('with sessions the cursor holds the current resume token: the whole session comes back, and again', async (t) => {
  const conns: any[] = []
  const opens: Array<{ recovered: boolean, data: unknown }> = []
  const route = chat({
    sessions: true,
    keep: (conn: any) => conn.data,
    onOpen: async (conn: any) => {
      conns.push(conn)
      opens.push({ recovered: conn.recovered, data: conn.data })
      if (!conn.recovered) conn.data = { n: 1 }
      // Joined again when resumed (already in): a resumed session's rooms take no position from the cursor.
      await conn.join(`private:${conn.user.sub as string}`)
    }
  })
  const { app, url, http } = await setup(t, { sessions: { window: 10_000 } }, { '/s': route })
  // Sam on another device keeps his room alive.
  const keeper = await wireClient(url('/s'), { headers: { 'x-user': 'sam' } })
  t.teardown(() => keeper.ws.terminate())
  await keeper.next((f) => f.type === 'session')
  const stream = await openStream(http('/s'), { 'x-user': 'sam' })
  const session = await stream.next((d) => d.type === 'session')
  emit(app, 'private:sam', 'p1')
  await until(() => received(stream).length === 1)
  const cursor = await settledCursor(stream)
  t.match(cursor, new RegExp(`^1;t=${session.data.token as string};1\\.[\\w-]+\\.private:sam$`))
  await drop(app, stream, 1)
  emit(app, 'private:sam', 'p2')
  conns[1].emit('note', { text: 'while away' })
  // Another user's cursor: a clean fresh session, nothing of sam's.
  const mallory = await openStream(http('/s'), { 'x-user': 'mallory', 'last-event-id': cursor })
  t.match((await mallory.next((d) => d.type === 'session')).data, { recovered: false })
  t.same(received(mallory), [])
  mallory.close()
  const back = await openStream(http('/s'), { 'x-user': 'sam', 'last-event-id': cursor })
  const resumed = await back.next((d) => d.type === 'session')
  t.match(resumed.data, { recovered: true, rooms: [{ room: 'private:sam', recovered: true }] })
  t.not(resumed.data.token, session.data.token, 'the token rotated')
  t.same((await back.next((d) => d.type === 'note')).data, { text: 'while away' })
  await until(() => received(back).length === 1)
  t.same(received(back), ['private:sam#2:p2'])
  t.same((await back.post({ type: 'room:join', id: 1, data: { room: 'private:sam' } })).body.data,
    { room: 'private:sam', seq: 2, epoch: resumed.data.rooms[0].epoch }, 'a plain join: the session restored the room')
  t.same(opens.slice(2), [{ recovered: false, data: null }, { recovered: true, data: { n: 1 } }], 'mallory fresh, sam resumed with his data')
  // The cursor now holds the new token; the used one resumes nothing.
  const next = await settledCursor(back)
  t.match(next, new RegExp(`^1;t=${resumed.data.token as string};2\\.`))
  await drop(app, back, 1)
  emit(app, 'private:sam', 'p3')
  const reused = await openStream(http('/s'), { 'x-user': 'sam', 'last-event-id': cursor })
  t.match((await reused.next((d) => d.type === 'session')).data, { recovered: false })
  reused.close()
  const third = await openStream(http('/s'), { 'x-user': 'sam', 'last-event-id': next })
  t.teardown(() => third.close())
  t.match((await third.next((d) => d.type === 'session')).data, { recovered: true })
  await until(() => received(third).length === 1)
  t.same(received(third), ['private:sam#3:p3'])
})

t.test('a route without history takes no positions from the cursor; without sessions, no token', async (t) => {
  const { app, http } = await setup(t, { sessions: {} }, { '/s': chat({ history: false, sessions: true, onOpen: (conn: any) => conn.join('a') }) })
  const epoch = 'AAAAAAAAAAAA'
  const stream = await openStream(http('/s'), { 'last-event-id': `1;t=${'A'.repeat(24)};3.${epoch}.a;3.${epoch}.b;+` })
  t.match((await stream.next((d) => d.type === 'session')).data, { recovered: false })
  t.same(Object.keys((await stream.post({ type: 'room:join', id: 1, data: { room: 'b' } })).body.data), ['room', 'seq', 'epoch'])
  t.equal(app.realtime.stats().joinsNotRecovered, 0)
  // Its cursor is the session's token only.
  t.match(await settledCursor(stream), /^1;t=[\w-]{24}$/)
  stream.close()
})

t.test('rooms outside the plugin\'s history.rooms are not in the cursor', async (t) => {
  const { http } = await setup(t, { history: { rooms: (room: string) => room !== 'plain' } })
  const stream = await openStream(http())
  await stream.post({ type: 'room:join', id: 1, data: { room: 'plain' } })
  t.equal(await settledCursor(stream), '1')
  const from = stream.events.length
  await stream.post({ type: 'room:join', id: 2, data: { room: 'kept' } })
  t.match(await settledCursor(stream, from), /^1;0\.[\w-]+\.kept$/)
  stream.close()
})
