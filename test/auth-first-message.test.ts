import t, { type Test } from 'tap'
import Type from 'typebox'
import type { RouteDefinition } from '../index.js'
import { connect } from '../lib/testing.js'
import { buildApp, expiredToken, foreignToken, unsignedToken } from './helpers/auth.js'
import { within } from './helpers/wait.js'

const opened: unknown[] = []
const route = {
  auth: 'message',
  messages: {
    whoami: { schema: Type.Null(), handler: (conn) => (conn.user as { sub: string }).sub }
  },
  onOpen: async (conn) => { opened.push((conn.user as { sub: string }).sub) }
} satisfies RouteDefinition<any, any>

async function build (t: Test, timeout = 2000) {
  const app = await buildApp(t, { auth: { timeout } })
  app.realtime('/ws', route)
  app.realtime('/plain', { messages: {} })
  await app.ready()
  opened.length = 0
  return app
}

t.test('an auth first frame is acked, then the route opens with the user', async (t) => {
  const app = await build(t)
  const client = await connect<typeof route>(app, '/ws')
  const token = app.sign('ann', 600)
  client.sendRaw(JSON.stringify({ type: 'auth', data: { token }, id: 'a1' }))
  // Sent before the ack: waits for the verification, then runs in order.
  const early = client.request('whoami', null)
  const ack = await client.next('ack' as never)
  t.equal(ack.id, 'a1')
  t.match(ack.data, { exp: Number })
  t.equal(await early, 'ann')
  t.same(opened, ['ann'], 'onOpen ran once, after auth')
  await client.close()
})

t.test('an auth frame without an id is acked without one', async (t) => {
  const app = await build(t)
  const client = await connect(app, '/ws')
  client.sendRaw(JSON.stringify({ type: 'auth', data: { token: app.sign('bo') } }))
  const ack = await client.next('ack' as never)
  t.notOk('id' in ack)
  await client.close()
})

t.test('no auth frame in time closes with 4408', async (t) => {
  const app = await build(t, 50)
  const client = await connect(app, '/ws')
  t.same(await within(client.closed), { code: 4408, reason: 'No auth message in time' })
  t.same(opened, [])
})

t.test('anything but a good auth frame first closes with 4401', async (t) => {
  const app = await build(t)
  const cases: Array<[string, string | Buffer, string]> = [
    ['another message', JSON.stringify({ type: 'whoami', data: null }), 'The first message must be "auth"'],
    ['a ping', '{"type":"ping"}', 'The first message must be "auth"'],
    ['bad JSON', '{"type":', 'The first message must be "auth"'],
    ['a binary frame', Buffer.from('{"type":"auth"}'), 'The first message must be "auth"'],
    ['no token', '{"type":"auth","data":{}}', 'The auth message needs data.token'],
    ['a garbage token', JSON.stringify({ type: 'auth', data: { token: 'garbage' } }), 'The token is invalid'],
    ['another key', JSON.stringify({ type: 'auth', data: { token: foreignToken('x') } }), 'The token is invalid'],
    ['alg: none', JSON.stringify({ type: 'auth', data: { token: unsignedToken('x') } }), 'The token is invalid'],
    ['expired', JSON.stringify({ type: 'auth', data: { token: expiredToken(app, 'x') } }), 'The token has expired']
  ]
  for (const [what, frame, reason] of cases) {
    const client = await connect(app, '/ws')
    client.sendRaw(frame)
    t.same(await client.closed, { code: 4401, reason }, what)
  }
  t.same(opened, [], 'onOpen never ran')
  t.equal(app.realtime.stats().connections, 0)
})

t.test('a failing secret provider closes with 4500, not 4401', async (t) => {
  const app = await buildApp(t, {}, {}, { secret: async () => { throw new Error('vault down') } })
  app.realtime('/ws', route)
  await app.ready()
  const client = await connect(app, '/ws')
  client.sendRaw(JSON.stringify({ type: 'auth', data: { token: foreignToken('x') } }))
  t.equal((await client.closed).code, 4500)
})

t.test('an auth frame on a route without auth is just an unknown type', async (t) => {
  const app = await build(t)
  const client = await connect(app, '/plain')
  client.sendRaw(JSON.stringify({ type: 'auth', data: { token: app.sign('x') }, id: 1 }))
  t.match(await client.next('error'), { id: 1, error: { code: 'unknown_type' } })
  await client.close()
})

t.test('a route may not declare the reserved auth type', async (t) => {
  const app = await build(t)
  t.throws(() => app.realtime('/x', { messages: { auth: { schema: Type.Null(), handler: () => null } } }),
    { code: 'FRT_ERR_ROUTE_RESERVED_TYPE' })
})
