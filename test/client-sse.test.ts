// The client's fallback: when the WebSocket cannot be opened (a proxy refusing
// the upgrade) it connects over SSE + POST by itself, says so (`transport`, and a
// `transport` event), works the same (requests, errors, rooms), and goes back to
// a WebSocket once one can be opened.
import t from 'tap'
import type { AddressInfo } from 'node:net'
import { registeredApp } from './helpers/app.js'
import { chat, client, SECRET } from './helpers/client.js'
import { startOfSecond, until } from './helpers/wait.js'
import jwt from '@fastify/jwt'
import Fastify from 'fastify'
import realtime from '../index.js'
import { SseSocket } from '../lib/client/sse.js'

async function blockableServer (t: Tap.Test) {
  const blocked = { value: true }
  const app = await registeredApp(t, { rateLimit: false, heartbeat: false, subprotocols: ['chat.v1'] })
  // A proxy that breaks upgrades: every WebSocket handshake gets 403 while `blocked`.
  app.addHook('onRequest', async (request, reply) => {
    if (request.ws && blocked.value) await reply.code(403).send('no upgrades here')
  })
  app.realtime('/chat', { ...chat, sse: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, blocked, url: `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/chat` }
}

t.test('falls back to SSE when the upgrade is refused, then upgrades back', async (t) => {
  const { app, blocked, url } = await blockableServer(t)
  const c = client(t, url, { reconnect: { base: 10, cap: 50 }, fallback: true })
  const transports: string[] = []
  c.events.on('transport', (transport) => transports.push(transport))
  await c.ready()
  t.equal(c.transport, 'sse')
  t.same(transports, ['sse'])
  t.same(await c.request('echo', { text: 'hi' }), { text: 'hi' })
  const invalid = await c.request('echo', { text: 'x'.repeat(20) }).catch((err: unknown) => err)
  t.match(invalid, { code: 'invalid_data' })
  await c.join('lobby')
  const heard = new Promise((resolve) => c.on('said', resolve))
  t.equal(await c.request('say', { room: 'lobby', text: 'over sse' }), true)
  t.same(await heard, { text: 'over sse' })
  // Messages without an id go in order, one POST after another.
  const echoed: string[] = []
  c.on('echoed', (data) => echoed.push(data.text))
  for (const text of ['1', '2', '3', '4', '5']) c.send('echo', { text })
  await until(() => echoed.length === 5, 'five echoes')
  t.same(echoed, ['1', '2', '3', '4', '5'])

  // A close by the server reaches the client as its code, and it reconnects over SSE (upgrades still fail).
  const closed = new Promise<{ code: number }>((resolve) => c.events.on('close', resolve))
  await c.request('closeMe', { code: 4500 })
  t.equal((await closed).code, 4500)
  await c.ready()
  t.equal(c.transport, 'sse')

  // The proxy lets upgrades through again: the next probe finds it and the client moves over.
  blocked.value = false
  await until(() => c.transport === 'websocket', 'the upgrade back to WebSocket')
  await c.ready()
  t.same(transports, ['sse', 'websocket'])
  t.same(await c.request('say', { room: 'lobby', text: 'over ws' }), true, 'the room was re-joined')
  await until(() => app.realtime.stats().connections === 1, 'the SSE connection to close')
})

t.test('the fallback carries the token in a header and maps a refused token to 4401', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwt, { secret: SECRET, sign: { algorithm: 'HS256' }, verify: { algorithms: ['HS256'] } })
  await app.register(realtime, { rateLimit: false, heartbeat: false, subprotocols: ['chat.v1'] })
  app.addHook('onRequest', async (request, reply) => { if (request.ws) await reply.code(403).send('') })
  app.realtime('/chat', { ...chat, sse: true, auth: 'handshake' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/chat`
  const c = client(t, url, { token: () => app.jwt.sign({ sub: 'ann' }), fallback: true })
  await c.ready()
  t.equal(c.transport, 'sse')
  t.same(await c.request('echo', { text: 'a' }), { text: 'a' })

  const refused = new SseSocket(url, ['bearer.nope'])
  const closed = await new Promise<{ code: number }>((resolve) => { refused.onclose = resolve })
  t.equal(closed.code, 4401)
})

t.test('the fallback socket: a POST refused for its token closes with 4401, a POST whose stream is gone with 1006', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwt, { secret: SECRET, sign: { algorithm: 'HS256' }, verify: { algorithms: ['HS256'] } })
  // A long grace keeps the stream open past the token's exp; its POSTs are verified afresh.
  await app.register(realtime, { rateLimit: false, heartbeat: false, auth: { grace: 60_000 } })
  app.realtime('/chat', { ...chat, sse: true, auth: 'handshake' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/chat`
  await startOfSecond()
  const short = new SseSocket(url, [`bearer.${app.jwt.sign({ sub: 'ann', exp: Math.floor(Date.now() / 1000) + 1 })}`])
  await new Promise((resolve) => { short.onopen = resolve })
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const refused = new Promise<{ code: number }>((resolve) => { short.onclose = resolve })
  short.send('{"type":"echo","id":1,"data":{"text":"a"}}')
  t.equal((await refused).code, 4401)

  const socket = new SseSocket(url, [`bearer.${app.jwt.sign({ sub: 'bob' })}`])
  await new Promise((resolve) => { socket.onopen = resolve })
  const lost = new Promise<{ code: number }>((resolve) => { socket.onclose = resolve })
  socket.send('{"type":"hang","id":1,"data":null}')
  await until(() => app.realtime.stats().messagesIn === 1, 'the hanging request to arrive')
  app.realtime.disconnectUser('bob')
  t.equal((await lost).code, 4401, 'the stream\'s own close code, whichever came first')
  socket.close()
  t.equal(socket.readyState, 3)
})

t.test('over SSE the client resumes its session (the resume token as the stream\'s cursor): rooms joined by the server come back', async (t) => {
  const app = await registeredApp(t, { rateLimit: false, heartbeat: false, subprotocols: ['chat.v1'], sessions: {}, history: {} })
  let blocked = true
  app.addHook('onRequest', async (request, reply) => { if (request.ws && blocked) await reply.code(403).send('') })
  const opens: boolean[] = []
  app.realtime('/chat', {
    ...chat,
    sse: true,
    sessions: true,
    history: true,
    onOpen: async (conn: any) => {
      opens.push(conn.recovered)
      if (!conn.recovered) await conn.join('private')
    }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/chat`
  // Someone else keeps the room (and its history, in memory) alive.
  const keeper = client(t, url, { fallback: true })
  await keeper.ready()
  const c = client(t, url, { reconnect: { base: 10, cap: 50 }, fallback: true, session: true })
  const heard: string[] = []
  c.on('said', (data) => heard.push(data.text))
  await c.ready()
  t.equal(c.transport, 'sse')
  app.realtime.to('private').emit('said', { text: 'one' })
  await until(() => heard.length === 1, 'the first message')
  const opened: boolean[] = []
  c.events.on('open', (info: { recovered: boolean }) => opened.push(info.recovered))
  const closes: number[] = []
  c.events.on('close', (event: { code: number }) => closes.push(event.code))
  // The server drops it (not a 1000: the session waits), and the room gets a message meanwhile.
  await c.request('closeMe', { code: 4500 })
  await until(() => closes.length === 1, 'the close')
  app.realtime.to('private').emit('said', { text: 'two' })
  await until(() => opened.length === 1, 'the reconnect')
  t.same(opened, [true], 'resumed')
  await until(() => heard.length === 2, 'the missed message')
  t.same(heard, ['one', 'two'])
  t.same(opens, [false, false, true], 'the keeper, the client, the client resumed')
  t.equal(app.realtime.stats().sessionsResumed, 1)

  // Upgrades work again: the probe that finds out opens without the resume token this stream has used (it
  // would be refused, and open a session of its own for nothing).
  blocked = false
  await until(() => c.transport === 'websocket' && keeper.transport === 'websocket', 'the upgrades back')
  await c.ready()
  t.equal(app.realtime.stats().sessionsRefused, 0, 'no used token presented')
})
