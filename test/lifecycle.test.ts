import t from 'tap'
import Fastify from 'fastify'
import createError from '@fastify/error'
import Type from 'typebox'
import WebSocket from 'ws'
import { registeredApp } from './helpers/app.js'
import realtime, { type Connection } from '../index.js'
import { connect } from '../lib/testing.js'
import { until } from './helpers/wait.js'

const echo = { schema: Type.String(), handler: (_conn: unknown, data: string) => data }

t.test('a connection has an id, the upgrade request, the user and a child logger', async (t) => {
  const app = await registeredApp(t, {}, { logger: { level: 'silent' } })
  let seen: Connection | undefined
  app.addHook('onRequest', async (request) => { (request as any).user = { sub: 'u1' } })
  app.realtime('/r', {
    onOpen: (conn) => { seen = conn },
    messages: { echo }
  })
  await app.ready()
  const client = await connect(app, '/r?room=a')
  t.equal(await client.request('echo', 'hi'), 'hi')
  t.match(seen!.id, /^[0-9a-f-]{36}$/)
  t.equal(seen!.request.url, '/r?room=a')
  t.same(seen!.user, { sub: 'u1' })
  t.equal((seen!.log as any).bindings().connId, seen!.id)
  t.equal(seen!.closed, false)
  const other = await connect(app, '/r')
  t.equal(await other.request('echo', 'x'), 'x')
  t.equal(app.realtime.stats().connections, 2)
})

t.test('an async onOpen holds messages until it resolves, in order', async (t) => {
  const app = await registeredApp(t)
  const order: string[] = []
  app.realtime('/r', {
    onOpen: async () => { await new Promise((resolve) => setTimeout(resolve, 30)); order.push('open') },
    messages: { echo: { schema: Type.String(), handler: (_conn, data) => { order.push(data); return data } } }
  })
  await app.ready()
  const client = await connect(app, '/r')
  const replies = await Promise.all([client.request('echo', 'a'), client.request('echo', 'b')])
  t.same(replies, ['a', 'b'])
  t.same(order, ['open', 'a', 'b'])
})

t.test('onOpen refusing with a 4xx status closes with 4000 + status', async (t) => {
  const app = await registeredApp(t)
  const Forbidden = createError('FORBIDDEN', 'Not in this room', 403)
  app.realtime('/sync', { onOpen: () => { throw new Forbidden() }, messages: { echo } })
  app.realtime('/async', { onOpen: async () => { throw new Forbidden() }, messages: { echo } })
  app.realtime('/broken', { onOpen: () => { throw new Error('bug') }, messages: { echo } })
  await app.ready()
  for (const path of ['/sync', '/async']) {
    const client = await connect(app, path)
    client.send('echo', 'dropped')
    t.same(await client.closed, { code: 4403, reason: 'Not in this room' }, path)
    t.equal(client.received.length, 0, 'nothing was dispatched')
  }
  const broken = await connect(app, '/broken')
  t.same(await broken.closed, { code: 4500, reason: 'Internal error' })
  t.equal(app.realtime.stats().handlerErrors, 3)
})

t.test('onClose runs once with the code and reason; its failure is logged, not thrown', async (t) => {
  const app = await registeredApp(t)
  const closes: Array<[number, string]> = []
  app.realtime('/r', { onClose: (_conn, code, reason) => { closes.push([code, reason]) }, messages: { echo } })
  app.realtime('/throws', { onClose: () => { throw new Error('x') }, messages: { echo } })
  app.realtime('/rejects', { onClose: async () => { throw new Error('x') }, messages: { echo } })
  await app.ready()
  const client = await connect(app, '/r')
  await client.close(4000, 'bye')
  await until(() => closes.length === 1)
  t.same(closes, [[4000, 'bye']])
  for (const path of ['/throws', '/rejects']) await (await connect(app, path)).close()
  await until(() => app.realtime.stats().handlerErrors === 2, 'both onClose failures counted')
  t.equal(app.realtime.stats().connections, 0)
})

t.test('app.close() closes every socket with 1001 and leaves nothing behind', async (t) => {
  const app = Fastify()
  await app.register(realtime)
  app.realtime('/r', { messages: { echo } })
  await app.ready()
  const clients = await Promise.all([connect(app, '/r'), connect(app, '/r'), connect(app, '/r')])
  const started = Date.now()
  await app.close()
  for (const client of clients) t.same(await client.closed, { code: 1001, reason: 'Server shutting down' })
  t.ok(Date.now() - started < 2000, 'the handshakes completed before the grace ran out')
  t.equal(app.realtime.stats().connections, 0)
})

t.test('app.close() terminates a peer that never answers the close after the grace', async (t) => {
  const app = Fastify()
  await app.register(realtime, { shutdownGrace: 100 })
  app.realtime('/r', { messages: { echo } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const ws = new WebSocket(`ws://127.0.0.1:${port}/r`)
  await new Promise((resolve) => ws.once('open', resolve))
  ;(ws as any)._socket.pause() // the peer stops reading: it will never see the close frame
  const closed = new Promise<number>((resolve) => ws.once('close', resolve))
  await app.close()
  t.equal(app.realtime.stats().connections, 0, 'terminated after the grace')
  ;(ws as any)._socket.resume()
  // The close frame may still sit in the peer's buffers; either way the TCP
  // connection is gone.
  t.ok([1001, 1006].includes(await closed), 'the peer saw the connection end')
})

t.test('a plain HTTP GET on a real-time route answers 426', async (t) => {
  const app = await registeredApp(t)
  app.realtime('/r', { messages: { echo } })
  const res = await app.inject('/r')
  t.equal(res.statusCode, 426)
  t.equal(res.json().code, 'FRT_ERR_ROUTE_UPGRADE_REQUIRED')
})
