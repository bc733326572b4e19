// The client side of protocol 1.1 (sessions, join `since`, request
// de-duplication, room positions) against a scripted ws server that plays the
// contract frame by frame over real sockets. The real server's side is being
// built in issue 12; test/client-recovery.test.ts runs the same paths end to end.
import t from 'tap'
import { client, nextEvent, scriptedServer, stateOf } from './helpers/client.js'
import type { GapEvent, RealtimeError } from '../lib/client/index.js'

const isType = (type: string) => (frame: any) => frame.type === type

t.test('a resumed session: rooms restored (no re-join), in-flight requests resent with their ids, then the outbox', async (t) => {
  const server = await scriptedServer(t)
  const c = client<any>(t, server.url, { session: true })
  const said: Array<[string, number | undefined]> = []
  c.on('said', (data, meta) => said.push([data.text, meta.seq]))
  const gaps: GapEvent[] = []
  c.events.on('gap', (gap) => gaps.push(gap))

  const first = await server.connection(1)
  t.same(first.protocols, ['chat.v1'], 'no resume entry on the first connect')
  first.send({ type: 'session', data: { token: 'T1', window: 120000, recovered: false } })
  await c.ready()
  const joining = c.join('lobby')
  const join = await first.next(isType('room:join'))
  t.same(join.data, { room: 'lobby' }, 'a first join has no since')
  first.send({ type: 'ack', id: join.id, data: { room: 'lobby', seq: 5, epoch: 'e1' } })
  await joining
  t.same(c.position('lobby'), { seq: 5, epoch: 'e1' })
  first.send({ type: 'said', room: 'lobby', seq: 6, data: { text: 'a' } })
  const inFlight = c.request('echo', { text: 'x' })
  const echo = await first.next(isType('echo'))
  first.socket.terminate()
  await stateOf(c, 'reconnecting')
  t.equal(c.send('say', { room: 'lobby', text: 'queued' }), true)

  const second = await server.connection(2)
  t.same(second.protocols, ['chat.v1', 'resume.T1'], 'the session token as a subprotocol entry')
  second.send({
    type: 'session',
    data: { token: 'T2', window: 120000, recovered: true, rooms: [{ room: 'lobby', seq: 7, epoch: 'e1', recovered: true }] }
  })
  // The missed message, and an at-least-once duplicate of one already seen.
  second.send({ type: 'said', room: 'lobby', seq: 6, data: { text: 'a' } })
  second.send({ type: 'said', room: 'lobby', seq: 7, data: { text: 'b' } })
  const resent = await second.next()
  t.same(resent, echo, 'the same frame, same id: the server answers it once')
  second.send({ type: 'ack', id: echo.id, data: { text: 'x' } })
  t.same(await inFlight, { text: 'x' })
  t.match(await second.next(), { type: 'say', data: { text: 'queued' } }, 'the outbox after the resend')
  await stateOf(c, 'open')
  t.notOk(second.frames.some(isType('room:join')), 'a restored room is not joined again')
  t.same(said, [['a', 6], ['b', 7]], 'the duplicate dropped')
  t.same(gaps, [])

  // Tokens are single use: the next reconnect offers the new one.
  second.socket.terminate()
  const third = await server.connection(3)
  t.same(third.protocols, ['chat.v1', 'resume.T2'])
})

t.test('a session that could not be resumed: re-join with since, replay, then resend only what is safe, then the outbox', async (t) => {
  const server = await scriptedServer(t)
  const c = client<any>(t, server.url, { session: true })
  const said: number[] = []
  c.on('said', (_data, meta) => said.push(meta.seq as number))
  const gaps: GapEvent[] = []
  c.events.on('gap', (gap) => gaps.push(gap))
  const first = await server.connection(1)
  first.send({ type: 'session', data: { token: 'T1', window: 120000, recovered: false } })
  await c.ready()
  const joining = c.join('lobby')
  const join = await first.next(isType('room:join'))
  first.send({ type: 'ack', id: join.id, data: { room: 'lobby', seq: 3, epoch: 'e1' } })
  await joining
  // A room the server put us in, which a fresh session does not bring back.
  first.send({ type: 'said', room: 'server-room', seq: 9, data: { text: 's' } })
  const lost = c.request('echo', { text: 'lost' }).catch((err: unknown) => err)
  const safe = c.request('echo', { text: 'safe' }, { resend: true })
  await first.next(isType('echo'))
  await first.next(isType('echo'))
  first.socket.terminate()
  await stateOf(c, 'reconnecting')
  c.send('say', { room: 'lobby', text: 'queued' })

  const second = await server.connection(2)
  second.send({ type: 'session', data: { token: 'T2', window: 120000, recovered: false } })
  const rejoin = await second.next()
  t.same(rejoin.type, 'room:join', 'the re-join comes first')
  t.same(rejoin.data, { room: 'lobby', since: { seq: 3, epoch: 'e1' } })
  second.send({ type: 'said', room: 'lobby', seq: 4, data: { text: 'missed' } })
  second.send({ type: 'ack', id: rejoin.id, data: { room: 'lobby', seq: 4, epoch: 'e1', recovered: true } })
  t.match(await second.next(), { type: 'echo', data: { text: 'safe' } }, 'then the request marked resend')
  t.match(await second.next(), { type: 'say', data: { text: 'queued' } }, 'then the outbox')
  t.match(await lost, { code: 'connection_lost', retriable: true })
  second.send({ type: 'ack', id: second.frames[1].id, data: { text: 'safe' } })
  t.same(await safe, { text: 'safe' })
  t.same(said, [9, 4])
  t.same(gaps, [{ room: 'server-room', reason: 'unrecovered', last: 9, seq: undefined }])
  t.equal(c.position('server-room'), undefined, 'forgotten')
})

t.test('gaps: a room that cannot be recovered, a seq jump, a new numbering; duplicates dropped', async (t) => {
  const server = await scriptedServer(t)
  const c = client<any>(t, server.url)
  const said: number[] = []
  c.on('said', (_data, meta) => said.push(meta.seq as number))
  const gaps: GapEvent[] = []
  c.events.on('gap', (gap) => gaps.push(gap))
  const first = await server.connection(1)
  await c.ready()
  const joining = c.join('lobby')
  const join = await first.next(isType('room:join'))
  first.send({ type: 'ack', id: join.id, data: { room: 'lobby', seq: 10, epoch: 'e1' } })
  await joining
  for (const seq of [11, 11, 10, 14, 15, 1, 2]) first.send({ type: 'said', room: 'lobby', seq, data: { text: '' } })
  await new Promise<void>((resolve) => c.on('said', (_d, meta) => { if (meta.seq === 2) resolve() }))
  t.same(said, [11, 14, 15, 1, 2])
  t.same(gaps, [
    { room: 'lobby', reason: 'jump', last: 11, seq: 14 },
    { room: 'lobby', reason: 'epoch', last: 15, seq: 1 }
  ])
  gaps.length = 0
  first.socket.terminate()
  const second = await server.connection(2)
  const rejoin = await second.next(isType('room:join'))
  t.same(rejoin.data.since, { seq: 2, epoch: 'e1' })
  second.send({ type: 'ack', id: rejoin.id, data: { room: 'lobby', seq: 40, epoch: 'e2', recovered: false } })
  await stateOf(c, 'open')
  t.same(gaps, [{ room: 'lobby', reason: 'epoch', last: 2, seq: 40 }])
  t.same(c.position('lobby'), { seq: 40, epoch: 'e2' })
  // A refused re-join forgets the room and reports it.
  second.socket.terminate()
  const third = await server.connection(3)
  const refused = await third.next(isType('room:join'))
  const error = nextEvent<RealtimeError>(c, 'error')
  third.send({ type: 'error', id: refused.id, error: { code: 'forbidden', message: 'Not allowed to join "lobby"' } })
  t.match(await error, { code: 'forbidden' })
  await stateOf(c, 'open')
  t.equal(c.position('lobby'), undefined)
})

t.test('first-message auth: the resume token rides in the auth frame; leave while away is sent after a resume', async (t) => {
  const server = await scriptedServer(t)
  const c = client<any>(t, server.url, { auth: 'message', session: true, token: () => 'tok' })
  const first = await server.connection(1)
  t.same(first.protocols, ['chat.v1'], 'no bearer entry on a first-message route')
  const auth = await first.next()
  t.match(auth, { type: 'auth', data: { token: 'tok' } })
  t.notOk('resume' in auth.data)
  first.send({ type: 'ack', id: auth.id, data: { exp: null } })
  first.send({ type: 'session', data: { token: 'T1', window: 120000, recovered: false } })
  await c.ready()
  const joining = c.join('lobby')
  const join = await first.next(isType('room:join'))
  first.send({ type: 'ack', id: join.id, data: { room: 'lobby', seq: 1, epoch: 'e1' } })
  await joining
  first.socket.terminate()
  await stateOf(c, 'reconnecting')
  await c.leave('lobby')

  const second = await server.connection(2)
  t.same(second.protocols, ['chat.v1'])
  const auth2 = await second.next()
  t.same(auth2.data, { token: 'tok', resume: 'T1' })
  second.send({ type: 'ack', id: auth2.id, data: { exp: null } })
  second.send({ type: 'session', data: { token: 'T2', window: 120000, recovered: true, rooms: [{ room: 'lobby', seq: 1, epoch: 'e1', recovered: true }] } })
  const leave = await second.next()
  t.match(leave, { type: 'room:leave', data: { room: 'lobby' } }, 'the server restored it, so it is left again')
  second.send({ type: 'ack', id: leave.id, data: null })
  await stateOf(c, 'open')
})

t.test('a session route that never sends its session message: the connect attempt times out and is retried', async (t) => {
  const server = await scriptedServer(t)
  const c = client<any>(t, server.url, { session: true, connectTimeout: 200 })
  await server.connection(1)
  t.match(await nextEvent(c, 'close'), { code: 1006, reason: 'Connect timeout' })
  const second = await server.connection(2)
  second.send({ type: 'session', data: { token: 'T', window: 1000, recovered: false } })
  await c.ready()
})

t.test('a join ack and the live message after it in one read: the position is set before the message', async (t) => {
  const server = await scriptedServer(t)
  const c = client<any>(t, server.url, { session: true, auth: 'message', token: () => 'tok' })
  const gaps: GapEvent[] = []
  c.events.on('gap', (gap) => gaps.push(gap))
  const first = await server.connection(1)
  const auth = await first.next()
  const raw = (first.socket as unknown as { _socket: { cork: () => void, uncork: () => void } })._socket
  // The auth ack and the session message in one TCP write, as a server sends them.
  raw.cork()
  first.send({ type: 'ack', id: auth.id, data: { exp: null } })
  first.send({ type: 'session', data: { token: 'T1', window: 120000, recovered: false } })
  raw.uncork()
  await c.ready()
  const joining = c.join('lobby')
  const join = await first.next(isType('room:join'))
  raw.cork()
  first.send({ type: 'ack', id: join.id, data: { room: 'lobby', seq: 10, epoch: 'e1' } })
  first.send({ type: 'said', room: 'lobby', seq: 11, data: { text: 'live' } })
  raw.uncork()
  await joining
  await new Promise<void>((resolve) => { if (c.position('lobby')?.seq === 11) resolve(); else c.on('said', () => resolve()) })
  t.same(c.position('lobby'), { seq: 11, epoch: 'e1' })
  t.same(gaps, [])
})

t.test('a 1.0 server acks a join with null: no position; a rejoin after a drop reports the gap as unrecovered', async (t) => {
  const server = await scriptedServer(t)
  const c = client(t, server.url)
  const joined = c.join('lobby')
  const first = await server.connection(1)
  const join = await first.next((f) => f.type === 'room:join')
  first.send({ type: 'ack', id: join.id, data: null })
  await joined
  t.same(c.position('lobby'), { seq: undefined, epoch: undefined })
  first.send({ type: 'said', room: 'lobby', seq: 7, data: { text: 'x' } })
  await new Promise((resolve) => setTimeout(resolve, 20))
  const gap = nextEvent<GapEvent>(c, 'gap')
  first.socket.terminate()
  const second = await server.connection(2)
  const rejoin = await second.next((f) => f.type === 'room:join')
  second.send({ type: 'ack', id: rejoin.id, data: null })
  t.match(await gap, { room: 'lobby', reason: 'unrecovered', last: 7, seq: undefined })
  await stateOf(c, 'open')
})
