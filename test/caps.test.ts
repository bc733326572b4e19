import t, { type Test } from 'tap'
import Type from 'typebox'
import type { FastifyInstance } from 'fastify'
import type { RouteDefinition, RealtimeOptions } from '../index.js'
import { connect } from '../lib/testing.js'
import { statusOf } from './helpers/upgrade.js'
import { buildApp } from './helpers/auth.js'
import { upgrade, type UpgradeResult } from './helpers/upgrade.js'
import { until } from './helpers/wait.js'

const route = { messages: { m: { schema: Type.Null(), handler: () => null } } } satisfies RouteDefinition<any, any>

async function listen (t: Test, options: RealtimeOptions,
  setup: (app: FastifyInstance) => void = (app) => { app.realtime('/ws', route) }) {
  const app = await buildApp(t, options)
  setup(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const open: UpgradeResult[] = []
  t.teardown(() => { for (const res of open) res.socket?.destroy() })
  const from = async (localAddress: string, headers: Record<string, string> = {}, path = '/ws') => {
    const res = await upgrade(port, path, { localAddress, headers })
    open.push(res)
    return res
  }
  return { app, from }
}

t.test('the N+1st connection from one address gets 429 with Retry-After; other addresses are not affected', async (t) => {
  const { from } = await listen(t, { connections: { perIp: 2, retryAfter: 7 } })
  t.equal((await from('127.0.0.2')).status, 101)
  const second = await from('127.0.0.2')
  t.equal(second.status, 101)
  const third = await from('127.0.0.2')
  t.equal(third.status, 429)
  t.equal(third.headers['retry-after'], '7')
  t.equal(JSON.parse(third.body).code, 'FRT_ERR_CAPS_ADDRESS')
  t.equal((await from('127.0.0.3')).status, 101, 'another address has its own count')

  second.socket?.destroy()
  // Closing a socket gives its slot back (the close reaches the server asynchronously).
  let again: UpgradeResult | undefined
  for (let i = 0; i < 100 && again?.status !== 101; i++) {
    again = await from('127.0.0.2')
    if (again.status !== 101) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(again?.status, 101)
})

t.test('sockets still in their handshake count', async (t) => {
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  let waiting = 0
  const { from } = await listen(t, { connections: { perIp: 2 } }, (app) => {
    app.realtime('/ws', { ...route, onRequest: async () => { waiting++; await gate } })
  })
  const pending = [from('127.0.0.4'), from('127.0.0.4')]
  await until(() => waiting === 2, 'two handshakes to be in progress')
  t.equal((await from('127.0.0.4')).status, 429, 'refused while the first two are not upgraded yet')
  release()
  t.same((await Promise.all(pending)).map((r) => r.status), [101, 101])
})

t.test('a refused handshake gives its slot back', async (t) => {
  const { app, from } = await listen(t, { connections: { perIp: 1 } }, (app) => {
    app.realtime('/ws', { ...route, auth: 'handshake' })
  })
  for (let i = 0; i < 3; i++) {
    t.equal((await from('127.0.0.5', { authorization: 'Bearer nope' })).status, 401)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  let ok: UpgradeResult | undefined
  for (let i = 0; i < 100 && ok?.status !== 101; i++) {
    ok = await from('127.0.0.5', { authorization: `Bearer ${(app as unknown as { sign: (s: string) => string }).sign('ann')}` })
    if (ok.status !== 101) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.equal(ok?.status, 101)
})

t.test('per-user cap after auth: 429 for the same user, others pass', async (t) => {
  const { app, from } = await listen(t, { connections: { perUser: 1 } }, (app) => {
    app.realtime('/ws', { ...route, auth: 'handshake' })
    app.realtime('/anon', route)
  })
  const sign = (app as unknown as { sign: (s: string) => string }).sign
  const ann = { authorization: `Bearer ${sign('ann')}` }
  t.equal((await from('127.0.0.6', ann)).status, 101)
  const again = await from('127.0.0.7', ann)
  t.equal(again.status, 429, 'from another address too')
  t.equal(JSON.parse(again.body).code, 'FRT_ERR_CAPS_USER')
  t.equal((await from('127.0.0.6', { authorization: `Bearer ${sign('bob')}` })).status, 101)
  t.equal((await from('127.0.0.6', {}, '/anon')).status, 101, 'no user, no per-user cap')
})

t.test('the instance cap answers 503', async (t) => {
  const { from } = await listen(t, { connections: { max: 2 } })
  t.equal((await from('127.0.0.8')).status, 101)
  t.equal((await from('127.0.0.9')).status, 101)
  const full = await from('127.0.0.10')
  t.equal(full.status, 503)
  t.equal(full.headers['retry-after'], '5')
  t.equal(JSON.parse(full.body).code, 'FRT_ERR_CAPS_TOTAL')
})

t.test('caps hold with the in-memory test client too (no address: no per-IP count)', async (t) => {
  const app = await buildApp(t, { connections: { max: 1, perIp: 1 } })
  app.realtime('/ws', route)
  await app.ready()
  const one = await connect(app, '/ws')
  t.equal(await statusOf(connect(app, '/ws')), 503)
  await one.close()
  await until(() => app.realtime.stats().connections === 0)
  const two = await connect(app, '/ws')
  await two.close()
  t.equal((await app.inject({ method: 'GET', url: '/ws' })).statusCode, 426, 'plain requests take no slot')
})

t.test('the per-user cap skips users without an id, and plain requests', async (t) => {
  const { app, from } = await listen(t, { connections: { perUser: 1 } }, (app) => {
    app.realtime('/ws', { ...route, auth: 'handshake' })
  })
  // Neither `sub` nor `id`: nothing to count the connection against.
  const noId = { authorization: `Bearer ${app.jwt.sign({ name: 'nobody' } as never)}` }
  t.equal((await from('127.0.0.11', noId)).status, 101)
  t.equal((await from('127.0.0.11', noId)).status, 101, 'not capped as one user')
  t.equal((await app.inject({ method: 'GET', url: '/ws' })).statusCode, 426, 'a plain GET reaches the route, not the cap')
})
