// The client against a real fastify-realtime server: requests, acks and errors,
// timeouts and aborts, messages and rooms, the outbox, and a server restart.
import t from 'tap'
import { WebSocket } from 'ws'
import { client, nextEvent, startServer, stateOf } from './helpers/client.js'
import { until } from './helpers/wait.js'
import { createClient, isRealtimeError, RealtimeError, type GapEvent } from '../lib/client/index.js'

t.test('request resolves with the ack; error replies reject with a typed error', async (t) => {
  const server = await startServer(t)
  const c = client(t, server.url)
  await c.ready()
  t.equal(c.state, 'open')
  t.same(await c.request('echo', { text: 'hi' }), { text: 'hi' })

  const invalid = await c.request('echo', { text: 'x'.repeat(20) }).catch((err: unknown) => err) as RealtimeError
  t.ok(isRealtimeError(invalid))
  t.ok(invalid instanceof RealtimeError)
  t.equal(invalid.code, 'invalid_data')
  t.match(invalid.details, [{ path: '/text' }])
  t.equal(invalid.retriable, false)

  const refused = await c.request('refuse', null).catch((err: unknown) => err) as RealtimeError
  t.match(refused, { code: 'NO_WAY', message: 'No way' })

  const unknown = await (c as any).request('nope', null).catch((err: unknown) => err) as RealtimeError
  t.equal(unknown.code, 'unknown_type')
})

t.test('an id-less error reply is an error event; retryAfter is carried', async (t) => {
  const server = await startServer(t, { plugin: { rateLimit: { rate: 1, burst: 1, budget: 100 } } })
  const c = client(t, server.url)
  await c.ready()
  const errors: RealtimeError[] = []
  c.events.on('error', (err) => errors.push(err))
  c.send('echo', { text: 'a' })
  const limited = await c.request('echo', { text: 'b' }).catch((err: unknown) => err) as RealtimeError
  t.equal(limited.code, 'rate_limited')
  t.type(limited.retryAfter, 'number')
  t.equal(limited.retriable, true)
  c.send('echo', { text: 'c' })
  await new Promise<void>((resolve) => c.events.on('error', () => resolve()))
  t.equal(errors[0].code, 'rate_limited')
})

t.test('request timeout and abort', async (t) => {
  const server = await startServer(t)
  const c = client(t, server.url)
  await c.ready()
  const started = Date.now()
  const timedOut = await c.request('hang', null, { timeout: 100 }).catch((err: unknown) => err) as RealtimeError
  t.equal(timedOut.code, 'timeout')
  t.ok(Date.now() - started >= 95, 'not before its timeout')
  t.equal(timedOut.retriable, true)

  const controller = new AbortController()
  const aborted = c.request('hang', null, { signal: controller.signal }).catch((err: unknown) => err)
  controller.abort()
  t.equal((await aborted as RealtimeError).code, 'aborted')
  const already = await c.request('hang', null, { signal: AbortSignal.abort() }).catch((err: unknown) => err) as RealtimeError
  t.equal(already.code, 'aborted')
  // A late ack of an aborted request is ignored, and the client still works.
  t.same(await c.request('echo', { text: 'ok' }), { text: 'ok' })
})

t.test('emits, room messages with seq, presence events', async (t) => {
  const server = await startServer(t)
  const a = client(t, server.url)
  const b = client(t, server.url)
  const echoed: unknown[] = []
  a.on('echoed', (data, meta) => echoed.push([data, meta]))
  await a.request('echo', { text: 'e' })
  t.same(echoed, [[{ text: 'e' }, {}]])

  await a.join('lobby')
  t.match(a.position('lobby'), { seq: 1, epoch: /^[\w-]{8,22}$/ }, 'a 1.1 join ack carries the position (its own presence:join was seq 1)')
  const joined = new Promise((resolve) => a.on('presence:join', (data, meta) => resolve([data, meta])))
  await b.join('lobby')
  // seq 1 was a's own presence:join, which a does not get.
  t.match(await joined, [{ connId: String, userId: null }, { room: 'lobby', seq: 2 }])
  const said: unknown[] = []
  a.on('said', (data, meta) => said.push([data.text, meta.seq]))
  const off = a.on('said', () => t.fail('removed listener called'))
  off()
  await b.request('say', { room: 'lobby', text: 'one' })
  await b.request('say', { room: 'lobby', text: 'two' })
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(said, [['one', 3], ['two', 4]])
  t.match(a.position('lobby'), { seq: 4, epoch: String })

  const left = new Promise((resolve) => a.on('presence:leave', (data) => resolve(data)))
  await b.leave('lobby')
  t.match(await left, { connId: String })
  t.equal(b.position('lobby'), undefined)
  const refused = await a.join('no spaces allowed').catch((err: unknown) => err) as RealtimeError
  t.equal(refused.code, 'invalid_room')
  t.equal(a.position('no spaces allowed'), undefined, 'a refused room is forgotten')
})

t.test('the outbox: bounded, volatile sends dropped, requests reject outbox_full, all rejected on close', async (t) => {
  // Nothing listens on port 9 of 127.0.0.1: every attempt fails, the client stays reconnecting.
  const c = createClient<any>('ws://127.0.0.1:9/chat', {
    WebSocket: WebSocket as never, reconnect: { base: 10, cap: 20 }, outbox: 2, ping: false
  })
  t.teardown(() => c.close())
  t.equal(c.send('echo', { text: '1' }), true)
  t.equal(c.send('echo', { text: 'v' }, { volatile: true }), false, 'volatile: dropped, not queued')
  const queued = c.request('echo', { text: '2' }).catch((err: unknown) => err)
  t.equal(c.send('echo', { text: '3' }), false, 'full')
  const full = await c.request('echo', { text: '4' }).catch((err: unknown) => err) as RealtimeError
  t.equal(full.code, 'outbox_full')
  c.close()
  t.equal(((await queued) as RealtimeError).code, 'closed')
  t.equal(c.state, 'closed')
  t.equal(c.send('echo', { text: '5' }), false)
  t.equal(((await c.request('echo', { text: '6' }).catch((err: unknown) => err)) as RealtimeError).code, 'closed')
  await t.rejects(c.ready(), { code: 'closed' })
})

t.test('server restarted mid-conversation: reconnect, re-join, then the outbox, delivered once', async (t) => {
  const server = await startServer(t)
  const c = client(t, server.url, { reconnect: { base: 50, cap: 200 } })
  const states: string[] = []
  c.events.on('state', (state) => states.push(state))
  // The room's messages as the sender sees them (a room emit includes the sender): a second client would race
  // the sender's own reconnect for its join, and miss `queued` whenever the sender re-joined first.
  const said: string[] = []
  c.on('said', (data) => said.push(data.text))
  await c.join('lobby')
  await c.request('say', { room: 'lobby', text: 'before' })

  const closed = nextEvent<{ code: number, reconnectIn: number }>(c, 'close')
  const gap = nextEvent<GapEvent>(c, 'gap')
  await server.app.close()
  t.match(await closed, { code: 1001, reconnectIn: Number })
  t.equal(c.state, 'reconnecting')
  // Queued while the server is down: must reach the server only after lobby is joined again.
  t.equal(c.send('say', { room: 'lobby', text: 'queued' }), true)
  const answered = c.request('say', { room: 'lobby', text: 'queued request' })

  await server.restart()
  await stateOf(c, 'open')
  t.equal(await answered, true, 'the queued request is answered')
  t.same(server.seen.filter((s) => s.startsWith('say:')), ['say:before', 'say:queued', 'say:queued request'],
    'each message processed exactly once, none refused for being early')
  await until(() => said.length === 3)
  t.same(said, ['before', 'queued', 'queued request'], 'the room got both queued messages after the re-join, in order')
  t.match(await gap, { room: 'lobby', reason: 'epoch', last: 2 }, 'a restarted server (no history) has a new epoch: gap')
  t.same(states, ['open', 'reconnecting', 'open'])
})

t.test('a request in flight when the socket drops rejects connection_lost unless marked resend', async (t) => {
  const server = await startServer(t)
  const c = client(t, server.url)
  await c.ready()
  const lost = c.request('hang', null).catch((err: unknown) => err)
  const controller = new AbortController()
  const resent = c.request('hang', null, { resend: true, signal: controller.signal }).catch((err: unknown) => err)
  await c.request('closeMe', { code: 1006 })
  const error = await lost as RealtimeError
  t.equal(error.code, 'connection_lost')
  t.equal(error.retriable, true)
  await stateOf(c, 'reconnecting')
  await stateOf(c, 'open')
  // Without a session the server cannot de-duplicate: the marked one is processed again, on the new socket.
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(server.seen.filter((s) => s === 'hang:'), ['hang:', 'hang:', 'hang:'])
  controller.abort()
  t.equal((await resent as RealtimeError).code, 'aborted')
})
