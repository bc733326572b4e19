// The client's less travelled paths, on hand-driven sockets and the fake clock:
// options and defaults, odd frames, listeners that throw, races between a
// socket's end and what was waiting on it.
import t from 'tap'
import { Clock } from '@tapjs/clock'
import { fakeClient, fakeSockets } from './helpers/fake-socket.js'
import { createClient, isRealtimeError, type CloseEvent } from '../lib/client/index.js'

const setup = fakeClient

/** Lets promise callbacks run (the fake clock does not touch microtasks). */
const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await Promise.resolve() }

/** Catches what a throwing listener rethrows from a microtask. */
function catchRethrown (t: Tap.Test): unknown[] {
  const caught: unknown[] = []
  const original = globalThis.queueMicrotask
  globalThis.queueMicrotask = (fn) => original(() => { try { fn() } catch (err) { caught.push(err) } })
  t.teardown(() => { globalThis.queueMicrotask = original })
  return caught
}

t.test('the WebSocket class: the option, else the global, else a clear error', async (t) => {
  const sockets = fakeSockets()
  const global = globalThis as { WebSocket?: unknown }
  const saved = global.WebSocket
  t.teardown(() => { global.WebSocket = saved })
  global.WebSocket = undefined
  // Without a WebSocket the client runs over SSE (lib/client/sse.ts) where fetch is; with neither, an error.
  t.throws(() => createClient('ws://x/', { fallback: false }), { name: 'TypeError', message: /No WebSocket implementation/ })
  global.WebSocket = sockets.WebSocket
  const c = createClient('ws://x/', { ping: false })
  c.close()
  t.equal(sockets.made.length, 1)
})

t.test('the network events default to the global ones when there are some (browsers)', async (t) => {
  const global = globalThis as Record<string, unknown>
  const target = new EventTarget()
  global.addEventListener = target.addEventListener.bind(target)
  global.removeEventListener = target.removeEventListener.bind(target)
  t.teardown(() => { delete global.addEventListener; delete global.removeEventListener })
  const { c, sockets, closes } = setup(t)
  sockets.last().open()
  target.dispatchEvent(new Event('offline'))
  t.match(closes, [{ reason: 'Offline' }])
  target.dispatchEvent(new Event('online'))
  t.equal(sockets.made.length, 2)
  target.dispatchEvent(new Event('online'))
  t.equal(sockets.made.length, 2, 'online while connecting: nothing more')
  sockets.last().open()
  target.dispatchEvent(new Event('online'))
  t.equal(sockets.made.length, 2, 'online while open: nothing')
  t.equal(c.state, 'open')
})

t.test('reconnect: false closes on the first drop; an unknown close code is retried; connect() is a no-op when not closed', async (t) => {
  const { c, sockets, closes } = setup(t, { reconnect: false })
  c.connect()
  t.equal(sockets.made.length, 1)
  sockets.last().open()
  t.equal(await c.ready().then(() => 'open'), 'open', 'ready() when open')
  sockets.last().drop(1006)
  t.match(closes, [{ code: 1006, reconnectIn: undefined }])
  t.equal(c.state, 'closed')

  const other = setup(t)
  other.sockets.last().drop(4999)
  t.match(other.closes, [{ code: 4999, reconnectIn: Number }])
})

t.test('ready() rejects when the client closes first; join waiters reject closed', async (t) => {
  const { c } = setup(t)
  const ready = c.ready()
  const joined = c.join('lobby')
  c.close()
  await t.rejects(ready, { code: 'closed' })
  await t.rejects(joined, { code: 'closed' })
  c.close()
  t.equal(c.state, 'closed', 'close twice: no-op')
})

t.test('a WebSocket constructor that throws (a bad URL) closes the client', async (t) => {
  const clock = new Clock()
  t.teardown(clock.enter())
  class Throwing { constructor () { throw new SyntaxError('Invalid URL') } }
  const errors: unknown[] = []
  const closes: CloseEvent[] = []
  const c = createClient('nope', { WebSocket: Throwing as never, token: () => 'x' })
  c.events.on('error', (err) => errors.push(err))
  c.events.on('close', (event) => closes.push(event))
  await settle()
  t.match(errors, [{ message: 'Invalid URL' }])
  t.match(closes, [{ code: 1006, reconnectIn: undefined }])
  t.equal(c.state, 'closed')
})

t.test('the token provider: non-Error failures, and a client closed (or reopened) while it runs', async (t) => {
  const { c, sockets, errors } = setup(t, {
    // eslint-disable-next-line prefer-promise-reject-errors
    token: () => Promise.reject({ message: 'plain object' })
  })
  await settle()
  t.match(errors, [{ code: 'token_provider', message: 'plain object' }])
  t.equal(sockets.made.length, 0)
  c.close()

  let release!: (token: string) => void
  const slow = setup(t, { token: () => new Promise<string>((resolve) => { release = resolve }) })
  await settle()
  slow.c.close()
  release('late')
  await settle()
  t.equal(slow.sockets.made.length, 0, 'a token that comes after close opens nothing')

  let fail!: (err: Error) => void
  const failing = setup(t, { token: () => new Promise<string>((_resolve, reject) => { fail = reject }) })
  await settle()
  failing.c.close()
  fail(new Error('late failure'))
  await settle()
  t.same(failing.errors, [], 'a failure after close is not reported')
})

t.test('odd frames are ignored; an error frame without details still rejects with a code', async (t) => {
  const { c, sockets, errors } = setup(t)
  const socket = sockets.last()
  socket.open()
  socket.onmessage?.({ data: 'not json' })
  socket.onmessage?.({ data: 'null' })
  socket.onmessage?.({ data: '{"type":7}' })
  socket.onmessage?.({ data: '{"type":"ack","id":999}' })
  socket.onmessage?.({ data: '{"type":"nobody-listens","data":1}' })
  socket.receive({ type: 'error' })
  t.match(errors, [{ code: 'internal', message: '' }])
  const pending = c.request('x', null)
  socket.receive({ type: 'error', id: socket.sent[0].id, error: {} })
  t.match(await pending.catch((err: unknown) => err), { code: 'internal' })
  socket.receive({ type: 'reconnect', data: { after: 'soon' } })
  socket.receive({ type: 'session', data: {} })
  t.equal(c.state, 'open')
  t.ok(isRealtimeError({ name: 'RealtimeError' }), 'across bundles: by name')
  t.notOk(isRealtimeError(null))
})

t.test('a listener that throws does not stop the others; the error is rethrown asynchronously', async (t) => {
  const caught = catchRethrown(t)
  const { c, sockets } = setup(t)
  const seen: string[] = []
  c.on('said', () => { throw new Error('listener 1') })
  c.on('said', () => { seen.push('listener 2') })
  c.events.on('state', () => { throw new Error('state listener') })
  sockets.last().open()
  sockets.last().receive({ type: 'said', data: {} })
  await settle()
  t.same(seen, ['listener 2'])
  t.match(caught, [{ message: 'state listener' }, { message: 'listener 1' }])
})

t.test('joins and leaves racing the socket and each other', async (t) => {
  const { c, clock, sockets, closes, errors, gaps } = setup(t)
  const socket = sockets.last()
  socket.open()
  const frame = (n: number) => socket.sent[n]
  // Left before the ack: the ack is ignored, the join rejects.
  const joining = c.join('a')
  const leaving = c.leave('a')
  await t.rejects(joining, { code: 'aborted' })
  socket.receive({ type: 'ack', id: frame(0).id, data: { room: 'a', seq: 1, epoch: 'e' } })
  socket.receive({ type: 'ack', id: frame(1).id, data: null })
  await leaving
  t.equal(c.position('a'), undefined)
  // Refused after a leave: nothing is reported.
  const b = c.join('b').catch((err: unknown) => err)
  const leftB = c.leave('b')
  socket.receive({ type: 'error', id: frame(2).id, error: { code: 'forbidden', message: 'no' } })
  socket.receive({ type: 'ack', id: frame(3).id, data: null })
  await leftB
  t.match(await b, { code: 'aborted' })
  t.same(errors, [])
  // Two callers of one room share the ack.
  const c1 = c.join('c')
  const c2 = c.join('c')
  socket.receive({ type: 'ack', id: frame(4).id, data: { room: 'c', seq: 3, epoch: 'e1' } })
  socket.receive({ type: 'ack', id: frame(5).id, data: { room: 'c', seq: 3, epoch: 'e1' } })
  await Promise.all([c1, c2])
  // Away: a leave is remembered, a join waits for the next socket.
  socket.drop()
  await c.leave('c')
  const later = c.join('d')
  clock.advance(closes[0].reconnectIn as number)
  const second = sockets.last()
  second.open()
  t.match(second.sent, [{ type: 'room:join', data: { room: 'd' } }], 'no leave: no session brought c back')
  // The socket drops before the re-join's ack: the next one joins again, and the caller still waits.
  second.drop()
  await settle()
  t.equal(c.state, 'reconnecting')
  clock.advance(closes[1].reconnectIn as number)
  const third = sockets.last()
  third.open()
  third.receive({ type: 'ack', id: third.sent[0].id, data: { room: 'd', seq: 7, epoch: 'e2' } })
  await later
  await settle()
  t.equal(c.state, 'open')
  t.same(gaps, [])
  // A re-join whose history is gone with the same epoch (trimmed): unrecovered.
  third.receive({ type: 'said', room: 'd', seq: 8, data: {} })
  third.drop()
  clock.advance(closes[2].reconnectIn as number)
  const fourth = sockets.last()
  fourth.open()
  await settle()
  t.same(fourth.sent[0].data, { room: 'd', since: { seq: 8, epoch: 'e2' } })
  fourth.receive({ type: 'ack', id: fourth.sent[0].id, data: { room: 'd', seq: 90, epoch: 'e2', recovered: false } })
  t.same(gaps, [{ room: 'd', reason: 'unrecovered', last: 8, seq: 90 }])
})

t.test('a session that restores rooms the client did not track, with and without their history', async (t) => {
  const { c, sockets, gaps } = setup(t, { session: true })
  const socket = sockets.last()
  socket.open()
  socket.receive({
    type: 'session',
    data: {
      token: 'T',
      recovered: true,
      rooms: [{ room: 'x', seq: 4, epoch: 'e', recovered: true }, { room: 'y', seq: 9, epoch: 'e', recovered: false }]
    }
  })
  t.equal(c.state, 'open')
  t.same(c.position('x'), { seq: undefined, epoch: 'e' })
  t.same(c.position('y'), { seq: 9, epoch: 'e' })
  t.same(gaps, [])
  t.same(socket.sent, [], 'server-side joins: nothing to join')
})

t.test('token refresh: scheduled with the ping timer; a token provider failure is reported', async (t) => {
  const jwt = (expInSeconds: number) => `h.${btoa(JSON.stringify({ exp: expInSeconds })).replace(/=+$/, '')}.s`
  let calls = 0
  let mode: 'ok' | 'throw' = 'ok'
  const { clock, sockets, errors } = setup(t, {
    ping: { interval: 60_000, timeout: 10_000 },
    refreshBefore: 1000,
    token: () => {
      calls++
      if (mode === 'throw') throw new Error('no token today')
      return jwt(Math.floor(Date.now() / 1000) + 10)
    }
  })
  await settle()
  const socket = sockets.last()
  socket.open()
  // exp in about 10 s, refresh 1 s before it: well before the ping.
  clock.advance(9500)
  await settle()
  t.equal(calls, 2, 'refreshed before exp')
  t.match(socket.sent, [{ type: 'auth' }])
  const refreshed = Math.floor(Date.now() / 1000) + 3600
  socket.receive({ type: 'ack', id: socket.sent[0].id, data: { exp: refreshed } })
  mode = 'throw'
  clock.advance(refreshed * 1000 - Date.now())
  await settle()
  t.match(errors, [{ code: 'token_provider' }])
  t.equal(calls, 3)
})

t.test('a refresh whose socket dropped while the token provider ran sends nothing', async (t) => {
  const jwt = (exp: number) => `h.${btoa(JSON.stringify({ exp }))}.s`
  let release!: (token: string) => void
  let calls = 0
  const { clock, sockets } = setup(t, {
    refreshBefore: 1000,
    token: () => ++calls === 1 ? jwt(Math.floor(Date.now() / 1000) + 5) : new Promise<string>((resolve) => { release = resolve })
  })
  await settle()
  const socket = sockets.last()
  socket.open()
  clock.advance(5000)
  await settle()
  t.equal(calls, 2)
  socket.drop()
  release(jwt(0))
  await settle()
  t.same(socket.sent, [])
})

t.test('opaque tokens and JWTs without exp: no refresh', async (t) => {
  for (const token of ['opaque', `h.${btoa('{"sub":"x"}')}.s`]) {
    const clock = new Clock()
    const exit = clock.enter()
    const sockets = fakeSockets()
    let calls = 0
    const c = createClient('ws://x/', { WebSocket: sockets.WebSocket, ping: false, token: () => { calls++; return token } })
    await settle()
    sockets.last().open()
    clock.advance(24 * 3600_000)
    t.equal(calls, 1, token)
    t.same(sockets.last().protocols, [`bearer.${token}`])
    c.close()
    exit()
  }
})

t.test('a socket given up by the connect timeout that opens late is ignored', async (t) => {
  const { clock, sockets, closes, c } = setup(t, { connectTimeout: 1000 })
  const first = sockets.last()
  clock.advance(1000)
  t.match(closes, [{ code: 1006, reason: 'Connect timeout' }])
  t.same(first.closedWith, [4000, 'Connect timeout'])
  first.open()
  t.equal(c.state, 'connecting')
  clock.advance(closes[0].reconnectIn as number)
  sockets.last().open()
  t.equal(c.state, 'open')
})

t.test('a resumed session whose room lost its history: gap, then the server\'s position', async (t) => {
  const { clock, sockets, closes, gaps, c } = setup(t, { session: true })
  const first = sockets.last()
  first.open()
  first.receive({ type: 'session', data: { token: 'T1', recovered: false } })
  first.receive({ type: 'said', room: 'y', seq: 3, data: {} })
  first.drop()
  clock.advance(closes[0].reconnectIn as number)
  const second = sockets.last()
  second.open()
  second.receive({ type: 'session', data: { token: 'T2', recovered: true, rooms: [{ room: 'y', seq: 9, epoch: 'e', recovered: false }] } })
  t.same(gaps, [{ room: 'y', reason: 'unrecovered', last: 3, seq: 9 }])
  t.same(c.position('y'), { seq: 9, epoch: 'e' })
})

t.test('a refused token refresh is reported with the server\'s code', async (t) => {
  const jwt = (exp: number) => `h.${btoa(JSON.stringify({ exp }))}.s`
  const { clock, sockets, errors } = setup(t, { refreshBefore: 1000, token: () => jwt(Math.floor(Date.now() / 1000) + 5) })
  await settle()
  const socket = sockets.last()
  socket.open()
  clock.advance(5000)
  await settle()
  socket.receive({ type: 'error', id: socket.sent[0].id, error: { code: 'unauthorized', message: 'Token for another user' } })
  await settle()
  t.match(errors, [{ code: 'unauthorized' }])
})

t.test('a message sent from a state or open listener goes after the outbox', async (t) => {
  const { clock, sockets, closes, c } = setup(t)
  sockets.last().open()
  sockets.last().drop()
  c.send('say', { text: 'queued' })
  c.events.on('state', (state) => { if (state === 'open') c.send('say', { text: 'from state' }) })
  c.events.on('open', () => c.send('say', { text: 'from open' }))
  clock.advance(closes[0].reconnectIn as number)
  sockets.last().open()
  t.same(sockets.last().sent.map((frame) => frame.data.text), ['queued', 'from state', 'from open'])
})

t.test('the SSE fallback is loaded on first use; a client closed meanwhile opens nothing', async (t) => {
  const global = globalThis as { WebSocket?: unknown, fetch: typeof fetch }
  const saved = { WebSocket: global.WebSocket, fetch: global.fetch }
  t.teardown(() => Object.assign(global, saved))
  global.WebSocket = undefined
  let fetched = 0
  global.fetch = (async () => { fetched++; throw new Error('offline') }) as typeof fetch
  const closedEarly = createClient('ws://x/', { ping: false, reconnect: false })
  closedEarly.close()
  const open = createClient('ws://x/', { ping: false, reconnect: false })
  t.teardown(() => open.close())
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(fetched, 1, 'the stream of the client left open, and only that one')
  t.equal(closedEarly.state, 'closed')
})
