// What `conn.request` is over a connection's life (issue 14, memory per connection): the whole upgrade request
// in onOpen; after it, on a route without auth, only the fields of ConnectionRequest, so the Fastify request and
// its IncomingMessage can be collected; on a route with auth, the whole request for good (token refreshes).
import t from 'tap'
import Type from 'typebox'
import type { FastifyRequest } from 'fastify'
import type { Connection } from '../index.js'
import { connect } from '../lib/testing.js'
import { once } from 'node:events'
import { listeningApp, openSocket, realtimeApp } from './helpers/app.js'
import { buildApp } from './helpers/auth.js'

const FIELDS = ['id', 'ip', 'host', 'protocol', 'url', 'method', 'headers', 'query', 'params', 'log', 'server', 'user']

function routeSeeing (seen: { open?: unknown, later?: Connection['request'], user?: unknown }) {
  return {
    onOpen: (conn: Connection) => {
      seen.open = conn.request
      t.ok((conn.request as FastifyRequest).raw, 'onOpen sees the whole request, raw included')
    },
    messages: {
      look: {
        schema: Type.Null(),
        handler: (conn: Connection) => {
          seen.later = conn.request
          seen.user = conn.user
          return { url: conn.request.url, ip: conn.request.ip, query: conn.request.query, tenant: conn.request.headers['x-tenant'] }
        }
      }
    }
  }
}

t.test('a route without auth keeps the fields handlers read and lets the request go', async (t) => {
  const seen: { open?: unknown, later?: Connection['request'], user?: unknown } = {}
  // A real socket: ip, protocol and host come from it.
  const { app, url } = await listeningApp(t, { routes: { '/plain': routeSeeing(seen) }, userFromHeader: true })
  const ws = await openSocket(url('/plain?room=a&x=1'), { headers: { 'x-tenant': 'acme', 'x-user': 'ann' } })
  ws.send('{"type":"look","id":1,"data":null}')
  const [reply] = await once(ws, 'message')
  t.same(JSON.parse(String(reply)), { type: 'ack', id: 1, data: { url: '/plain?room=a&x=1', ip: '127.0.0.1', query: { room: 'a', x: '1' }, tenant: 'acme' } })
  const kept = seen.later as Connection['request']
  t.not(kept, seen.open, 'not the request onOpen saw')
  t.same(Object.keys(kept).sort(), [...FIELDS].sort(), 'exactly these fields')
  t.equal((kept as Partial<FastifyRequest>).raw, undefined, 'no IncomingMessage')
  t.equal(kept.server, app)
  t.equal(kept.method, 'GET')
  t.equal(kept.protocol, 'http')
  t.equal(kept.id, (seen.open as FastifyRequest).id)
  t.equal(kept.log, (seen.open as FastifyRequest).log)
  t.same(seen.user, { sub: 'ann' }, 'a user an app hook set stays conn.user')
  for (const name of ['connection', 'upgrade', 'sec-websocket-key', 'sec-websocket-version']) {
    t.equal(kept.headers[name], undefined, `the handshake's ${name} header is not kept`)
  }
  t.equal(kept.headers['x-tenant'], 'acme')
  t.equal(kept.headers['x-user'], 'ann')
  t.ok(typeof kept.headers.host === 'string' && kept.host === kept.headers.host)
  ws.close()
  await once(ws, 'close')

  // Empty query and params: one shared frozen object, not one per connection.
  const seenA: { later?: Connection['request'] } = {}
  const seenB: { later?: Connection['request'] } = {}
  const appB = await realtimeApp(t, { routes: { '/a': routeSeeing(seenA), '/b': routeSeeing(seenB) } })
  const a = await connect(appB, '/a')
  const b = await connect(appB, '/b')
  await a.request('look', null)
  await b.request('look', null)
  const [ka, kb] = [seenA.later, seenB.later] as Array<Connection['request']>
  t.same(ka.query, {})
  t.equal(ka.query, kb.query, 'the empty query is shared')
  t.equal(ka.params, kb.params, 'so are the empty params')
  t.ok(Object.isFrozen(ka.query))
  t.equal((ka as { user?: unknown }).user, undefined, 'anonymous')
  await a.close()
  await b.close()
})

t.test('an async onOpen: the request is kept whole until it resolves', async (t) => {
  let during: unknown
  let after: unknown
  const app = await realtimeApp(t, {
    routes: {
      '/slow': {
        onOpen: async (conn: Connection) => {
          await new Promise((resolve) => setImmediate(resolve))
          during = (conn.request as FastifyRequest).raw
        },
        messages: { look: { schema: Type.Null(), handler: (conn: Connection) => { after = (conn.request as Partial<FastifyRequest>).raw; return null } } }
      }
    }
  })
  const client = await connect(app, '/slow')
  await client.request('look', null)
  t.ok(during, 'the whole request during onOpen')
  t.equal(after, undefined, 'the kept fields after it')
  await client.close()
})

t.test('a route with auth keeps the whole request (token refreshes are verified on it)', async (t) => {
  let request: unknown
  const app = await buildApp(t)
  app.realtime('/secure', {
    auth: 'handshake',
    messages: { look: { schema: Type.Null(), handler: (conn) => { request = conn.request; return null } } }
  })
  await app.ready()
  const client = await connect(app, '/secure', { headers: { authorization: `Bearer ${app.sign('zoe')}` } })
  await client.request('look', null)
  t.ok((request as FastifyRequest).raw, 'the Fastify request, raw included')
  t.equal(typeof (request as FastifyRequest).jwtVerify, 'function')
  await client.close()
})
