import t from 'tap'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import Type from 'typebox'
import { registeredApp } from './helpers/app.js'
import realtime from '../index.js'
import { connect } from '../lib/testing.js'

const messages = { echo: { schema: Type.String(), handler: (_conn: unknown, data: string) => data } }

t.test('the upgrade runs the route and app hooks before any socket exists', async (t) => {
  const app = await registeredApp(t)
  let opened = 0
  app.realtime('/private', {
    onRequest: async (request, reply) => {
      if (request.headers.authorization !== 'Bearer ok') await reply.code(401).send({ error: 'nope' })
    },
    onOpen: () => { opened++ },
    messages
  })
  await app.ready()
  const err = await connect(app, '/private').catch((e) => e)
  t.equal(err.statusCode, 401)
  t.equal(opened, 0)
  t.equal(app.realtime.stats().connections, 0)
  const client = await connect(app, '/private', { headers: { authorization: 'Bearer ok' } })
  t.equal(await client.request('echo', 'in'), 'in')
  t.equal(opened, 1)
})

t.test('route schemas for the querystring validate the upgrade request', async (t) => {
  const app = await registeredApp(t)
  app.realtime('/q', {
    schema: { querystring: Type.Object({ room: Type.String({ minLength: 1 }) }, { additionalProperties: false }) },
    onOpen: (conn) => { conn.log.info('ok') },
    messages
  })
  await app.ready()
  t.equal((await connect(app, '/q').catch((e) => e)).statusCode, 400)
  t.equal(await (await connect(app, '/q?room=a')).request('echo', 'x'), 'x')
})

t.test('routes follow prefixes, encapsulated hooks and config', async (t) => {
  const app = await registeredApp(t)
  const seen: string[] = []
  await app.register(async (child) => {
    child.addHook('onRequest', async (request) => { seen.push(`hook:${request.routeOptions.config.tag}`) })
    child.realtime('/live', { config: { tag: 'v1' }, messages })
  }, { prefix: '/v1' })
  app.realtime('/outside', { messages })
  await app.ready()
  t.equal(await (await connect(app, '/v1/live')).request('echo', 'a'), 'a')
  t.same(seen, ['hook:v1'])
  t.equal(await (await connect(app, '/outside')).request('echo', 'b'), 'b')
  t.same(seen, ['hook:v1'], 'the encapsulated hook did not run outside its context')
  t.equal((await connect(app, '/live').catch((e) => e)).statusCode, 404)
})

t.test('works when the app registered @fastify/websocket itself', async (t) => {
  const app = Fastify()
  await app.register(websocket, { options: { maxPayload: 100 } })
  await app.register(realtime)
  app.realtime('/r', { messages })
  await app.ready()
  const client = await connect(app, '/r')
  t.equal(await client.request('echo', 'own'), 'own')
  client.sendRaw(JSON.stringify({ type: 'echo', data: 'x'.repeat(200) }))
  t.equal((await client.closed).code, 1009, 'the app\'s ws options apply')
  const other = await connect(app, '/r')
  await app.close()
  t.ok((await other.closed).code > 1000, 'app.close() still closes our sockets')
  t.equal(app.realtime.stats().connections, 0)
})

t.test('a route declared with no messages still accepts pings', async (t) => {
  const app = await registeredApp(t)
  app.realtime('/feed', { messages: {}, emits: { tick: Type.Number() } })
  await app.ready()
  const client = await connect(app, '/feed')
  client.sendRaw('{"type":"ping"}')
  await client.next('pong')
})
