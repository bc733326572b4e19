import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { realtimeApp, registeredApp } from './helpers/app.js'
import realtime, { type RealtimeOptions } from '../index.js'
import { connect } from '../lib/testing.js'
import { statusOf } from './helpers/upgrade.js'

const build = (t: Test, options: RealtimeOptions) => realtimeApp(t, { options, routes: { '/ws': { messages: {} } } })

const origin = (value: string) => ({ headers: { origin: value } })

t.test('only exact scheme, host and port pass; look-alikes get 403 before the upgrade', async (t) => {
  // Entries are normalized: case, default port.
  const app = await build(t, { origins: ['https://APP.example.com:443', 'http://localhost:5173'] })
  for (const ok of ['https://app.example.com', 'http://localhost:5173']) {
    t.equal(await statusOf(connect(app, '/ws', origin(ok))), 101, ok)
  }
  for (const bad of [
    'https://app.example.com.evil.io',
    'http://app.example.com',
    'https://app.example.com:8443',
    'null',
    'https://evil.io',
    'https://app.example.com/',
    'https://sub.app.example.com',
    'http://localhost:5174',
    ''
  ]) {
    t.equal(await statusOf(connect(app, '/ws', origin(bad))), 403, JSON.stringify(bad))
  }
  t.equal(app.realtime.stats().connections, 0)
})

t.test('a missing Origin is allowed by default, refused with missingOrigin: deny', async (t) => {
  const open = await build(t, { origins: ['https://app.example.com'] })
  await (await connect(open, '/ws')).close()
  const strict = await build(t, { origins: ['https://app.example.com'], missingOrigin: 'deny' })
  t.equal(await statusOf(connect(strict, '/ws')), 403)
  await (await connect(strict, '/ws', origin('https://app.example.com'))).close()
})

t.test('origins: "*" turns the Origin check off', async (t) => {
  const app = await build(t, { origins: '*' })
  await (await connect(app, '/ws', origin('https://anything.example'))).close()
})

t.test('allow-list entries must be bare origins', async (t) => {
  for (const bad of ['null', 'app.example.com', 'https://app.example.com/', 'https://app.example.com/path',
    'https://user@app.example.com', 'https://app.example.com?x', 'file:///tmp', '*']) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(realtime, { origins: [bad] }).ready() }, { code: 'FRT_ERR_OPTIONS_INVALID', message: /origins\.0/ }, bad)
  }
})

t.test('plain requests skip the check; the app\'s own route hooks still run after it', async (t) => {
  const seen: string[] = []
  const app = await registeredApp(t, { origins: ['https://app.example.com'] })
  app.realtime('/ws', {
    messages: {},
    onRequest: [async () => { seen.push('onRequest') }],
    preHandler: [async () => { seen.push('preHandler') }]
  })
  await app.ready()
  t.equal((await app.inject({ method: 'GET', url: '/ws', headers: { origin: 'https://evil.io' } })).statusCode, 426)
  t.equal(await statusOf(connect(app, '/ws', origin('https://evil.io'))), 403)
  t.same(seen, ['onRequest', 'preHandler'], 'a refused upgrade never reached them')
  await (await connect(app, '/ws', origin('https://app.example.com'))).close()
  t.same(seen, ['onRequest', 'preHandler', 'onRequest', 'preHandler'])
})

t.test('auth options are checked at register', async (t) => {
  for (const [options, field] of [
    [{ auth: { userId: 'sub' } }, 'auth.userId'],
    [{ auth: { sources: ['query'] } }, 'auth.sources'],
    [{ auth: { unknown: 1 } }, 'auth'],
    [{ missingOrigin: 'maybe' }, 'missingOrigin'],
    [{ connections: { perIp: -1 } }, 'connections.perIp']
  ] as const) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(realtime, options as never) }, { code: 'FRT_ERR_OPTIONS_INVALID', message: new RegExp(field.replace('.', '\\.')) }, field)
  }
})
