// An option either works or fails at declaration/register with a coded error: none is silently ignored.
import t from 'tap'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import realtime from '../index.js'
import { buildApp } from './helpers/auth.js'

t.test('a route auth with plugin-level fields fails at declaration', async (t) => {
  const app = await buildApp(t, { origins: ['https://app.example.com'] })
  for (const auth of [{ sources: ['cookie'] }, { mode: 'handshake', cookieName: 'sid' }, { query: true, timeout: 10 }]) {
    t.throws(() => app.realtime('/ws', { auth: auth as never, messages: {} }),
      { code: 'FRT_ERR_ROUTE_INVALID', message: new RegExp(`"auth\\.${Object.keys(auth).find((k) => k !== 'mode' && k !== 'query')}" is not a route option`) })
  }
})

t.test('ws options the plugin sets itself cannot be given under websocket', async (t) => {
  for (const key of ['maxPayload', 'perMessageDeflate', 'closeTimeout']) {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(realtime, { websocket: { [key]: 1 } }).ready() },
      { code: 'FRT_ERR_OPTIONS_INVALID', message: new RegExp(`websocket\\.${key}.*use that instead`) }, key)
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { maxPayload: 1234, websocket: { clientTracking: true } })
  await app.ready()
  t.equal(app.websocketServer.options.maxPayload, 1234, 'the plugin option works')
})

t.test("with the app's own @fastify/websocket, our ws-level options are refused, not ignored", async (t) => {
  for (const options of [{ maxPayload: 10 }, { perMessageDeflate: true }, { closeTimeout: 10 }, { websocket: {} }]) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(websocket, { options: { maxPayload: 100 } })
    await t.rejects(async () => { await app.register(realtime, options).ready() },
      { code: 'FRT_ERR_OPTIONS_INVALID', message: /@fastify\/websocket itself/ }, JSON.stringify(options))
  }
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(websocket, { options: { maxPayload: 100 } })
  await app.register(realtime, { errorBudget: 3 })
  await app.ready()
  t.equal(app.websocketServer.options.maxPayload, 100)
})
