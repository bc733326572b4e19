// The SSE transport with real HTTP clients: a route declared once answers a
// WebSocket and an event stream + POSTs alike, with the same validation,
// handlers, rooms, presence, limits and close codes.
import t from 'tap'
import { Type } from 'typebox'
import { listeningApp, openSocket, registeredApp } from './helpers/app.js'
import type { AddressInfo } from 'node:net'
import { openStream, post } from './helpers/sse.js'
import { until, within } from './helpers/wait.js'
import nodeHttp from 'node:http'

const chat = {
  sse: true,
  joinable: true,
  presence: true,
  messages: {
    say: {
      schema: Type.Object({ room: Type.String(), text: Type.String({ maxLength: 20 }) }),
      handler: (conn: any, data: { room: string, text: string }) => {
        conn.to(data.room).emit('said', { from: conn.user?.sub ?? null, text: data.text })
        return { ok: true }
      }
    },
    hello: {
      schema: Type.Object({}),
      handler: (conn: any) => { conn.emit('hi', { transport: conn.socket.writeFrame === undefined ? 'ws' : 'sse' }) }
    },
    later: {
      schema: Type.Object({ ms: Type.Integer() }),
      handler: async (_conn: any, data: { ms: number }) => {
        await new Promise((resolve) => setTimeout(resolve, data.ms))
        return data.ms
      }
    }
  },
  emits: { said: Type.Object({ from: Type.Any(), text: Type.String() }), hi: Type.Object({ transport: Type.String() }) }
}

async function sseApp (t: Tap.Test, spec: Parameters<typeof listeningApp>[1] = {}) {
  const { app, port, url } = await listeningApp(t, { userFromHeader: true, routes: { '/chat': chat }, ...spec })
  return { app, url, http: `http://127.0.0.1:${port}/chat` }
}

t.test('a stream opens with the headers that turn buffering off and a session event', async (t) => {
  const { app, http } = await sseApp(t)
  const stream = await openStream(http)
  t.equal(stream.status, 200)
  t.match(stream.headers['content-type'], /^text\/event-stream/)
  t.equal(stream.headers['cache-control'], 'no-cache, no-transform')
  t.equal(stream.headers['x-accel-buffering'], 'no')
  t.match(stream.session, /^[\w-]{24}$/)
  t.equal(app.realtime.stats().connections, 1)
  stream.close()
  await stream.ended
})

t.test('a plain GET is still told to upgrade; a route without sse answers no stream', async (t) => {
  const { http: sse, url } = await sseApp(t, { routes: { '/chat': chat, '/ws-only': { messages: {} } } })
  const http = sse
  const plain = await fetch(http)
  t.equal(plain.status, 426)
  const bare = await new Promise<number>((resolve) => nodeHttp.get(sse, (res) => { res.resume(); resolve(res.statusCode as number) }))
  t.equal(bare, 426, 'a GET without Accept')
  await t.rejects(openStream(http.replace('/chat', '/ws-only')), { status: 426 })
  t.equal((await post(http.replace('/chat', '/ws-only'), '{}')).status, 404)
  t.ok(url('/chat'))
})

t.test('messages, acks, errors and handler emits over POSTs', async (t) => {
  const { http } = await sseApp(t)
  const stream = await openStream(http)
  // The ack comes back in the POST's response.
  const acked = await stream.post({ type: 'say', id: 1, data: { room: 'r', text: 'x' } })
  t.same(acked, { status: 200, body: { type: 'ack', id: 1, data: { ok: true } } })
  // An async handler's ack too, and string ids stay strings.
  t.same((await stream.post({ type: 'later', id: 'a', data: { ms: 20 } })).body, { type: 'ack', id: 'a', data: 20 })
  // Validation.
  const invalid = await stream.post({ type: 'say', id: 2, data: { room: 'r', text: 'y'.repeat(30) } })
  t.equal(invalid.body.type, 'error')
  t.equal(invalid.body.id, 2)
  t.equal(invalid.body.error.code, 'invalid_data')
  t.equal((await stream.post({ type: 'nope', id: 3 })).body.error.code, 'unknown_type')
  // Without an id: accepted; an error that has no id to carry still answers this POST.
  t.equal((await stream.post({ type: 'hello', data: {} })).status, 202)
  t.same(await stream.next((d) => d.type === 'hi'), { type: 'hi', data: { transport: 'sse' } })
  t.equal((await stream.post('')).body.error.code, 'bad_json', 'an empty body')
  const bodiless = await fetch(http, { method: 'POST', headers: { 'realtime-session': stream.session } })
  t.equal((await bodiless.json()).error.code, 'bad_json', 'no body at all')
  const bad = await stream.post('{nope')
  t.equal(bad.status, 200)
  t.equal(bad.body.error.code, 'bad_json')
  // A ping is answered by its pong.
  // (it carries the ping's id, as every reply to a message with an id does)
  t.same((await stream.post({ type: 'ping', id: 9 })).body, { type: 'pong', id: 9 })
  stream.close()
})

t.test('rooms and presence: WebSocket and SSE members of one room hear each other', async (t) => {
  const { url, http } = await sseApp(t)
  const ws = await openSocket(url('/chat'), { headers: { 'x-user': 'wendy' } })
  const frames: any[] = []
  let wake = (): void => {}
  ws.on('message', (raw) => { frames.push(JSON.parse(raw.toString())); wake() })
  const wsFrame = (match: (f: any) => boolean): Promise<any> => within((async () => {
    for (;;) {
      const found = frames.find(match)
      if (found !== undefined) return found
      await new Promise<void>((resolve) => { wake = resolve })
    }
  })())
  const stream = await openStream(http, { 'x-user': 'sam' })
  ws.send(JSON.stringify({ type: 'room:join', id: 1, data: { room: 'lobby' } }))
  await wsFrame((f) => f.type === 'ack')
  // A join ack carries the room's position (protocol 1.1): the WebSocket member's join and its presence came first.
  t.match((await stream.post({ type: 'room:join', id: 1, data: { room: 'lobby' } }, { 'x-user': 'sam' })).body,
    { type: 'ack', id: 1, data: { room: 'lobby', seq: Number, epoch: String } })
  const join = await wsFrame((f) => f.type === 'presence:join')
  t.equal(join.data.userId, 'sam')
  await stream.post({ type: 'say', id: 2, data: { room: 'lobby', text: 'from sse' } }, { 'x-user': 'sam' })
  const fromSse = await stream.next((d) => d.type === 'said')
  t.same(fromSse.data, { from: 'sam', text: 'from sse' })
  ws.send(JSON.stringify({ type: 'say', data: { room: 'lobby', text: 'from ws' } }))
  const fromWs = await stream.next((d) => d.type === 'said')
  t.same(fromWs.data, { from: 'wendy', text: 'from ws' })
  // Room messages are the same bytes for every member: no id (a route without history writes no cursor either).
  t.same(stream.events.filter((e) => e.id !== undefined), [])
  // The stream closing leaves the room: the ws member hears it.
  stream.close()
  t.equal((await wsFrame((f) => f.type === 'presence:leave')).data.userId, 'sam')
  ws.close()
})

t.test('sessions: unknown, of another route, missing, duplicate ids, and after the stream closed', async (t) => {
  const { http } = await sseApp(t, { routes: { '/chat': chat, '/other': { ...chat } } })
  const stream = await openStream(http)
  t.equal((await post(http, '{"type":"hello"}', { 'realtime-session': 'x'.repeat(24) })).status, 404)
  t.equal((await post(http.replace('/chat', '/other'), '{"type":"hello"}', { 'realtime-session': stream.session })).status, 404)
  t.equal((await post(http, '{"type":"hello"}')).status, 400, 'no session and no auth: nothing to ticket')
  const slow = stream.post({ type: 'later', id: 5, data: { ms: 200 } })
  t.equal((await stream.post({ type: 'later', id: 5, data: { ms: 1 } })).status, 409)
  t.equal((await slow).body.data, 200)
  const waiting = stream.post({ type: 'later', id: 6, data: { ms: 5000 } })
  // Let the POST arrive before closing.
  await stream.post({ type: 'ping', id: 'p' })
  stream.close()
  t.equal((await waiting).status, 410, 'a reply never comes once the stream is gone')
  t.equal((await stream.post({ type: 'hello' })).status, 404)
})

t.test('rate limits: rate_limited replies, then the stream ends with 4429', async (t) => {
  const { http } = await sseApp(t, { options: { rateLimit: { rate: 0.001, burst: 2, budget: 1 } } })
  const stream = await openStream(http)
  t.equal((await stream.post({ type: 'ping', id: 1 })).body.type, 'pong')
  t.equal((await stream.post({ type: 'ping', id: 2 })).body.type, 'pong')
  t.equal((await stream.post({ type: 'ping', id: 3 })).body.error.code, 'rate_limited')
  t.equal((await stream.post({ type: 'ping', id: 4 })).body.error.code, 'rate_limited')
  t.same((await stream.next((d) => d.type === 'sse:close')).data, { code: 4429, reason: 'Rate limit exceeded' })
  await stream.ended
})

t.test('maxPayload bounds a POST body (413)', async (t) => {
  const { http } = await sseApp(t, { options: { maxPayload: 100 } })
  const stream = await openStream(http)
  t.equal((await stream.post({ type: 'say', data: { room: 'r', text: 'x'.repeat(200) } })).status, 413)
  stream.close()
})

t.test('caps and origins apply to streams; POSTs need an allowed Origin', async (t) => {
  const { http } = await sseApp(t, { options: { connections: { max: 1 }, origins: ['http://good.test'] } })
  const stream = await openStream(http)
  await t.rejects(openStream(http), { status: 503 }, 'the total cap counts streams')
  await t.rejects(openStream(http, { origin: 'http://evil.test' }), { status: 403 })
  t.equal((await stream.post({ type: 'ping', id: 1 }, { origin: 'http://evil.test' })).status, 403)
  t.equal((await stream.post({ type: 'ping', id: 1 }, { origin: 'http://good.test' })).body.type, 'pong')
  stream.close()
  await stream.ended
  // The slot came back with the stream.
  const again = await openStream(http)
  again.close()
})

t.test('shutdown ends every stream with 1001 and onClose runs', async (t) => {
  const closes: number[] = []
  const { app, http } = await sseApp(t, { routes: { '/chat': { ...chat, onClose: (_c: unknown, code: number) => { closes.push(code) } } } })
  const stream = await openStream(http)
  await app.close()
  t.same((await stream.next((d) => d.type === 'sse:close')).data, { code: 1001, reason: 'Server shutting down' })
  await stream.ended
  t.same(closes, [1001])
})

t.test('a client that goes away closes the connection with 1006', async (t) => {
  const closed: number[] = []
  const chatWithClose: any = { ...chat }
  const done = new Promise<void>((resolve) => {
    chatWithClose.onClose = (_c: unknown, code: number) => { closed.push(code); resolve() }
  })
  const { http } = await sseApp(t, { routes: { '/chat': chatWithClose } })
  const stream = await openStream(http)
  stream.close()
  await within(done)
  t.same(closed, [1006])
})

t.test('a stream that does not drain is cut with 4008, and its response destroyed after closeTimeout', async (t) => {
  const { app, http } = await sseApp(t, {
    options: { closeTimeout: 50, slowConsumer: { softLimit: 256 * 1024, softTimeout: 60_000, hardLimit: 1024 * 1024 } }
  })
  const stream = await openStream(http)
  await stream.post({ type: 'room:join', id: 1, data: { room: 'firehose' } })
  stream.pause()
  const big = 'x'.repeat(16 * 1024)
  // Written until the buffer passes the hard limit (the kernel's buffers fill first); the cut ends the loop.
  for (let i = 0; i < 100_000 && app.realtime.stats().slowConsumerCloses === 0; i++) {
    app.realtime.to('firehose').emit('said', { from: null, text: big })
    if (i % 16 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(app.realtime.stats().slowConsumerCloses, 1)
  // Its close event waits behind the backlog the client never reads: the response is destroyed instead.
  await until(() => app.realtime.stats().connections === 0, 'the stalled stream to be destroyed')
  t.equal(app.realtime.stats().members, 0, 'it left its room')
  stream.close()
})

t.test('the heartbeat writes comment lines', async (t) => {
  const { http } = await sseApp(t, { options: { heartbeat: { interval: 20, timeout: 20 } } })
  const stream = await openStream(http)
  await within((async () => {
    while (!stream.events.some((e) => e.comment)) await new Promise((resolve) => setTimeout(resolve, 10))
  })())
  t.equal((await stream.post({ type: 'ping', id: 1 })).body.type, 'pong', 'still open after several sweeps')
  stream.close()
})

t.test('the global option turns every route on; a route may opt out', async (t) => {
  const { http } = await sseApp(t, { options: { sse: true }, routes: { '/chat': { messages: {} }, '/no': { messages: {}, sse: false } } })
  const stream = await openStream(http)
  t.equal(stream.status, 200)
  await t.rejects(openStream(http.replace('/chat', '/no')), { status: 426 })
  stream.close()
})

t.test('a route\'s sse must be a boolean; no stream opens once shutdown began', async (t) => {
  const app = await registeredApp(t, {}, { return503OnClosing: false })
  app.realtime('/chat', chat)
  t.throws(() => app.realtime('/bad', { sse: 'yes', messages: {} } as never), { code: 'FRT_ERR_ROUTE_INVALID' })
  let late: number | undefined
  // After the plugin's own preClose (the shutdown), while the server still listens.
  app.addHook('preClose', async () => {
    late = await openStream(http).then(() => 200, (err: { status: number }) => err.status)
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const http = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/chat`
  const stream = await openStream(http)
  await app.close()
  await stream.ended
  t.equal(late, 503)
})
