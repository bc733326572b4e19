import t from 'tap'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import Type from 'typebox'
import { registeredApp } from './helpers/app.js'
import realtime, { type RouteDefinition } from '../index.js'
import { connect } from '../lib/testing.js'
import { statusOf } from './helpers/upgrade.js'
import jwt from '@fastify/jwt'
import { SECRET, buildApp, expiredToken, foreignToken, unsignedToken } from './helpers/auth.js'
import { logCollector, upgrade } from './helpers/upgrade.js'

const opened: unknown[] = []
const whoami = {
  auth: 'handshake',
  messages: {
    whoami: { schema: Type.Null(), handler: (conn) => (conn.user as { sub: string }).sub }
  },
  onOpen: (conn) => { opened.push(conn.user) }
} satisfies RouteDefinition<any, any>

t.test('no usable token answers HTTP 401 before any upgrade', async (t) => {
  const app = await buildApp(t)
  app.realtime('/ws', whoami)
  await app.ready()
  opened.length = 0
  const cases: Array<[string, Record<string, string>, string]> = [
    ['no token', {}, 'FRT_ERR_AUTH_TOKEN_MISSING'],
    ['a garbage token', { authorization: 'Bearer not.a.jwt' }, 'FRT_ERR_AUTH_TOKEN_INVALID'],
    ['a token signed with another key', { authorization: `Bearer ${foreignToken('ann')}` }, 'FRT_ERR_AUTH_TOKEN_INVALID'],
    ['an expired token', { authorization: `Bearer ${expiredToken(app, 'ann')}` }, 'FRT_ERR_AUTH_TOKEN_EXPIRED'],
    ['alg: none', { authorization: `Bearer ${unsignedToken('ann')}` }, 'FRT_ERR_AUTH_TOKEN_INVALID'],
    ['a non-Bearer scheme', { authorization: `Basic ${app.sign('ann')}` }, 'FRT_ERR_AUTH_TOKEN_MISSING']
  ]
  for (const [what, headers] of cases) {
    t.equal(await statusOf(connect(app, '/ws', { headers })), 401, what)
  }
  t.equal(app.realtime.stats().connections, 0, 'no connection was accepted')
  t.same(opened, [], 'onOpen never ran')

  // The coded error is what the client reads in the 401 body.
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  for (const [what, headers, code] of cases) {
    const res = await upgrade(port, '/ws', { headers })
    t.equal(res.status, 401, what)
    t.equal(JSON.parse(res.body).code, code, what)
  }
})

t.test('a valid Bearer header puts the verified user on the connection', async (t) => {
  const app = await buildApp(t)
  app.realtime('/ws', whoami)
  await app.ready()
  opened.length = 0
  const client = await connect<typeof whoami>(app, '/ws', { headers: { authorization: `Bearer ${app.sign('ann')}` } })
  t.equal(await client.request('whoami', null), 'ann')
  t.match(opened, [{ sub: 'ann' }], 'onOpen sees conn.user')
  await client.close()
})

t.test('a plain GET on an auth route is not an upgrade and gets 426 without a token check', async (t) => {
  const app = await buildApp(t)
  app.realtime('/ws', whoami)
  const res = await app.inject({ method: 'GET', url: '/ws' })
  t.equal(res.statusCode, 426)
})

t.test('the cookie source reads only the configured cookie', async (t) => {
  const app = await buildApp(t, {
    auth: { sources: ['cookie'], cookieName: 'rt' },
    origins: ['https://app.example.com']
  })
  app.realtime('/ws', whoami)
  await app.ready()
  const token = app.sign('cid')
  const client = await connect<typeof whoami>(app, '/ws', { headers: { cookie: `theme=dark; rt=${token}; x=1` } })
  t.equal(await client.request('whoami', null), 'cid')
  await client.close()
  const quoted = await connect<typeof whoami>(app, '/ws', { headers: { cookie: `rt="${token}"` } })
  t.equal(await quoted.request('whoami', null), 'cid', 'a quoted cookie value')
  await quoted.close()
  t.equal(await statusOf(connect(app, '/ws', { headers: { cookie: `token=${token}; rtx=${token}; broken` } })), 401, 'other cookies are not the token')
  t.equal(await statusOf(connect(app, '/ws', { headers: { authorization: `Bearer ${token}` } })), 401,
    'a source not configured is not read')
})

t.test('cookie auth without an Origin check (origins: "*") is refused at register', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(realtime, { auth: { sources: ['cookie'] }, origins: '*' }).ready() },
    { code: 'FRT_ERR_OPTIONS_INVALID', message: /origins/ })
})

t.test('a bearer subprotocol entry authenticates and is never echoed back', async (t) => {
  const app = await buildApp(t, { subprotocols: ['chat.v1'] })
  app.realtime('/ws', whoami)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const token = app.sign('pat')

  const withApp = await upgrade(port, '/ws', { headers: { 'sec-websocket-protocol': `bearer.${token}, chat.v1` } })
  t.equal(withApp.status, 101)
  t.equal(withApp.headers['sec-websocket-protocol'], 'chat.v1', 'only the allowed application subprotocol is selected')
  t.notOk(JSON.stringify(withApp.headers).includes(token), 'the token is not in the 101 response')
  withApp.socket?.destroy()

  const alone = await upgrade(port, '/ws', { headers: { 'sec-websocket-protocol': `bearer.${token}` } })
  t.equal(alone.status, 101)
  t.equal(alone.headers['sec-websocket-protocol'], undefined, 'no subprotocol rather than the token')
  alone.socket?.destroy()

  const other = await upgrade(port, '/ws', { headers: { 'sec-websocket-protocol': `bearer.${foreignToken('pat')}, chat.v1` } })
  t.equal(other.status, 401)
  const none = await upgrade(port, '/ws', { headers: { 'sec-websocket-protocol': 'chat.v1' } })
  t.equal(none.status, 401, 'an application subprotocol alone is no token')
})

t.test('subprotocols may not start with the token prefix', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(realtime, { subprotocols: ['bearer.v1'] }).ready() }, { code: 'FRT_ERR_OPTIONS_INVALID' })
})

t.test('an app-registered @fastify/websocket still never echoes the token', async (t) => {
  for (const own of [undefined, (protocols: Set<string>) => [...protocols][0] ?? false]) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(jwt, { secret: SECRET, verify: { algorithms: ['HS256'] } })
    await app.register(websocket, { options: own === undefined ? {} : { handleProtocols: own } })
    await app.register(realtime)
    app.realtime('/ws', whoami)
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const token = app.jwt.sign({ sub: 'pat' })
    const res = await upgrade(port, '/ws', { headers: { 'sec-websocket-protocol': `bearer.${token}, app.v2` } })
    t.equal(res.status, 101, own === undefined ? 'ws defaults' : 'the app\'s handleProtocols')
    t.equal(res.headers['sec-websocket-protocol'], own === undefined ? undefined : 'app.v2')
    res.socket?.destroy()
  }
})

t.test('the query string is read only on routes that opt in, and never logged', async (t) => {
  const logs = logCollector()
  const app = await buildApp(t, {}, { logger: { level: 'trace', stream: logs } })
  app.realtime('/q', { ...whoami, auth: { query: true } })
  app.realtime('/h', whoami)
  await app.ready()
  const token = app.sign('quinn')

  const client = await connect<typeof whoami>(app, `/q?room=a%20b&access_token=${token}`)
  t.equal(await client.request('whoami', null), 'quinn')
  await client.close()
  t.equal(await statusOf(connect(app, `/h?access_token=${token}`)), 401, 'not on a route that did not opt in')
  t.equal(await statusOf(connect(app, `/q?access_token=${foreignToken('quinn')}`)), 401)

  const lines = logs.lines.join('')
  t.ok(lines.includes('"url":"/q?room=a+b"'), 'other parameters are still logged')
  t.ok(lines.includes('"url":"/h"'))
  t.notOk(lines.includes(token), 'the token is in no log line')
  t.notOk(lines.includes('access_token'), 'nor is its parameter')
})

t.test('auth routes need @fastify/jwt, and a valid auth setting', async (t) => {
  const app = await registeredApp(t)
  t.throws(() => app.realtime('/ws', whoami), { code: 'FRT_ERR_AUTH_NO_JWT' })
  const withJwt = await buildApp(t)
  for (const auth of ['cookie', { mode: 'nope' }, { query: 'yes' }, { mode: 'message', query: true }]) {
    t.throws(() => withJwt.realtime('/x', { ...whoami, auth } as never), { code: 'FRT_ERR_ROUTE_INVALID' }, JSON.stringify(auth))
  }
})

t.test('an app-level jwtVerify hook works too: conn.user is request.user', async (t) => {
  const app = await buildApp(t)
  app.addHook('onRequest', async (request) => { await request.jwtVerify() })
  app.realtime('/ws', { ...whoami, auth: undefined })
  await app.ready()
  const client = await connect<typeof whoami>(app, '/ws', { headers: { authorization: `Bearer ${app.sign('app')}` } })
  t.equal(await client.request('whoami', null), 'app')
  await client.close()
})

t.test('a failing secret provider is a 500, not a 401', async (t) => {
  const app = await buildApp(t, {}, {}, { secret: async () => { throw new Error('vault down') } })
  app.realtime('/ws', whoami)
  await app.ready()
  t.equal(await statusOf(connect(app, '/ws', { headers: { authorization: `Bearer ${foreignToken('x')}` } })), 500)
})

t.test('a parameter that merely contains the token marker is left in the URL and never read', async (t) => {
  const app = await buildApp(t)
  app.realtime('/q', { ...whoami, auth: { query: true } })
  app.realtime('/url', { messages: { url: { schema: Type.Null(), handler: (conn) => conn.request.url } } })
  await app.ready()
  t.equal(await statusOf(connect(app, `/q?x=access_token=${app.sign('quinn')}`)), 401)
  const client = await connect(app, '/url?x=access_token=1')
  t.equal(await client.request('url', null), '/url?x=access_token=1', 'the URL is not rewritten')
  await client.close()
})

t.test('an app\'s own handleProtocols may not select a token entry', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwt, { secret: SECRET, verify: { algorithms: ['HS256'] } })
  // It never sees the offered token; a prefixed name it makes up is refused all the same.
  await app.register(websocket, { options: { handleProtocols: () => 'bearer.forged' } })
  await app.register(realtime)
  app.realtime('/ws', whoami)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const res = await upgrade(port, '/ws', { headers: { 'sec-websocket-protocol': `bearer.${app.jwt.sign({ sub: 'pat' })}, app.v2` } })
  t.equal(res.status, 101)
  t.equal(res.headers['sec-websocket-protocol'], undefined, 'no subprotocol rather than a token entry')
  res.socket?.destroy()
})
