import t from 'tap'
import { Clock } from '@tapjs/clock'
import Type from 'typebox'
import type { RouteDefinition } from '../index.js'
import { connect } from '../lib/testing.js'
import { Deadlines } from '../lib/deadlines.js'
import { buildApp } from './helpers/auth.js'
import { startOfSecond, within } from './helpers/wait.js'

const route = {
  auth: 'handshake',
  messages: { echo: { schema: Type.String(), handler: (_conn, data) => data } }
} satisfies RouteDefinition<any, any>

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('a live socket closes with 4401 when its token expires, plus grace', async (t) => {
  const app = await buildApp(t, { auth: { grace: 200 } })
  app.realtime('/ws', route)
  await app.ready()
  await startOfSecond()
  const token = app.sign('ann', 1)
  const exp = (app.jwt.decode(token) as { exp: number }).exp
  const client = await connect<typeof route>(app, '/ws', bearer(token))
  t.equal(await client.request('echo', 'live'), 'live')
  const closed = await within(client.closed)
  t.same(closed, { code: 4401, reason: 'Token expired' })
  t.ok(Date.now() >= exp * 1000 + 200, 'not before exp + grace')
})

t.test('an in-band refresh keeps the socket open past the first exp', async (t) => {
  const app = await buildApp(t)
  app.realtime('/ws', route)
  await app.ready()
  await startOfSecond()
  const first = app.sign('ann', 2)
  const exp = (app.jwt.decode(first) as { exp: number }).exp
  const refreshed = await connect<typeof route>(app, '/ws', bearer(first))
  const control = await connect<typeof route>(app, '/ws', bearer(first))

  refreshed.sendRaw(JSON.stringify({ type: 'auth', id: 'r', data: { token: app.sign('ann', 600) } }))
  const ack = await refreshed.next('ack' as never)
  t.ok(Date.now() < exp * 1000, 'the refresh was acked before the first token expired')
  t.ok((ack.data as { exp: number }).exp > exp, 'the ack carries the new exp')

  t.equal((await within(control.closed)).code, 4401, 'the socket that did not refresh closed')
  await sleep(Math.max(0, exp * 1000 + 100 - Date.now()))
  t.equal(await refreshed.request('echo', 'still'), 'still', 'the refreshed one is open')
  await refreshed.close()
})

t.test('a refused refresh leaves the connection and its deadline as they were', async (t) => {
  const app = await buildApp(t)
  app.realtime('/ws', route)
  await app.ready()
  const client = await connect<typeof route>(app, '/ws', bearer(app.sign('ann', 600)))
  client.sendRaw(JSON.stringify({ type: 'auth', id: 1, data: { token: 'garbage' } }))
  t.match(await client.next('error'), { id: 1, error: { code: 'unauthorized', message: 'The token is invalid' } })
  client.sendRaw(JSON.stringify({ type: 'auth', id: 2, data: { token: app.sign('bob', 600) } }))
  t.match(await client.next('error'), { id: 2, error: { code: 'unauthorized', message: 'The token is for another user' } })
  client.sendRaw(JSON.stringify({ type: 'auth', id: 3, data: {} }))
  t.match(await client.next('error'), { id: 3, error: { code: 'invalid_data' } })
  t.equal(await client.request('echo', 'ok'), 'ok')
  await client.close()
})

t.test('a refresh whose secret provider fails is an internal error', async (t) => {
  let fail = false
  const app = await buildApp(t, {}, {}, {
    secret: async () => { if (fail) throw new Error('vault down'); return 'test-secret-test-secret-test-secret!' }
  })
  app.realtime('/ws', route)
  await app.ready()
  const token = await new Promise<string>((resolve) => { app.jwt.sign({ sub: 'ann' }, {}, (_e: unknown, v: string) => resolve(v)) })
  const client = await connect(app, '/ws', bearer(token))
  fail = true
  client.sendRaw(JSON.stringify({ type: 'auth', id: 1, data: { token } }))
  t.match(await client.next('error'), { id: 1, error: { code: 'internal' } })
  await client.close()
})

t.test('expiry still applies when formatUser drops exp; no exp means no deadline', async (t) => {
  const app = await buildApp(t, {}, {}, { formatUser: (p: { sub: string }) => ({ sub: p.sub }) })
  app.realtime('/ws', route)
  await app.ready()
  await startOfSecond()
  const short = await connect(app, '/ws', bearer(app.sign('ann', 1)))
  t.equal((await within(short.closed)).code, 4401)
  const forever = await connect<typeof route>(app, '/ws', bearer(app.jwt.sign({ sub: 'ann' })))
  t.equal(await forever.request('echo', 'x'), 'x')
  await forever.close()
})

t.test('disconnectUser closes every socket of that user and only those', async (t) => {
  const app = await buildApp(t)
  app.realtime('/ws', route)
  app.realtime('/open', { messages: {} })
  await app.ready()
  const a1 = await connect(app, '/ws', bearer(app.sign('ann')))
  const a2 = await connect(app, '/ws', bearer(app.sign('ann')))
  const b = await connect<typeof route>(app, '/ws', bearer(app.sign('bob')))
  const anon = await connect(app, '/open')
  t.equal(app.realtime.disconnectUser('ann'), 2)
  t.equal(app.realtime.disconnectUser('ann'), 0, 'sockets already closing are not counted again')
  t.same(await a1.closed, { code: 4401, reason: 'Access revoked' })
  t.same(await a2.closed, { code: 4401, reason: 'Access revoked' })
  t.equal(await b.request('echo', 'b'), 'b')
  t.equal(app.realtime.disconnectUser('ann'), 0, 'nobody left')
  t.equal(app.realtime.disconnectUser('nobody'), 0)
  await b.close()
  await anon.close()
})

t.test('many refreshes: superseded deadlines are pruned, and the latest token decides', async (t) => {
  // Each auth frame counts against the per-connection message rate; this test is about deadlines.
  const app = await buildApp(t, { rateLimit: false })
  app.realtime('/ws', route)
  await app.ready()
  const client = await connect<typeof route>(app, '/ws', bearer(app.sign('ann', 600)))
  const long = app.sign('ann', 600)
  const n = 1100
  for (let i = 0; i < n; i++) client.sendRaw(JSON.stringify({ type: 'auth', id: i, data: { token: long } }))
  const acks = async () => { while (client.received.filter((m) => m.type === 'ack').length < n) await sleep(10) }
  await within(acks())
  // A shorter-lived newer token is the one that counts now.
  await startOfSecond()
  client.sendRaw(JSON.stringify({ type: 'auth', id: 'last', data: { token: app.sign('ann', 1) } }))
  t.same(await within(client.closed), { code: 4401, reason: 'Token expired' })
})

t.test('Deadlines: one timer, in order, superseded entries pruned', async (t) => {
  const fired: string[] = []
  // Time is the subject here: the fake clock, not sleeps.
  const clock = new Clock()
  t.teardown(clock.enter())
  const deadlines = new Deadlines<string>((item, generation) => { fired.push(`${item}:${generation}`) })
  t.teardown(() => deadlines.clear())
  const now = Date.now()
  deadlines.add(now + 40, 'c', 0)
  deadlines.add(now + 10, 'a', 0)
  deadlines.add(now + 20, 'b', 1)
  deadlines.add(now + 30, 'd', 0)
  deadlines.add(now + 2 ** 33, 'far', 0)
  clock.advance(39)
  t.same(fired, ['a:0', 'b:1', 'd:0'], 'in order of time, not of insertion')
  clock.advance(1)
  t.same(fired, ['a:0', 'b:1', 'd:0', 'c:0'])
  t.equal(deadlines.size, 1, 'the far one waits (its delay is clamped, not fired at once)')

  deadlines.add(Date.now() + 10, 'x', 0)
  deadlines.add(Date.now() + 20, 'y', 0)
  deadlines.prune((item) => item !== 'x')
  t.equal(deadlines.size, 2)
  deadlines.prune((item) => item !== 'far')
  clock.advance(50)
  t.same(fired.slice(4), ['y:0'], 'pruned entries never fire; the timer followed the new head')
  deadlines.prune(() => false)
  t.equal(deadlines.size, 0)
})
