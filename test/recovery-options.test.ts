// Recovery options checked at register and at route declaration (coded errors,
// frozen), and the drain on demand: 503 + Retry-After for new upgrades, a
// `reconnect` advice then 1012 for every client.
import t from 'tap'
import Type from 'typebox'
import Fastify from 'fastify'
import realtime, { MemoryHistory, MemorySessions } from '../index.js'
import { resolveOptions } from '../lib/options.js'
import { listeningApp } from './helpers/app.js'
import { wireClient } from './helpers/wire.js'
import { upgrade } from './helpers/upgrade.js'

t.test('plugin options: defaults, checks, frozen', async (t) => {
  const off = resolveOptions({})
  t.equal(off.history, false)
  t.equal(off.sessions, false)
  t.equal(off.drain, false)
  const on = resolveOptions({ history: { rooms: /^doc:/g }, sessions: {}, drain: true })
  t.match(on.history, { store: null, replay: { maxCount: 1000, maxBytes: 1048576 }, hold: { maxCount: 10000 } })
  t.ok(Object.isFrozen(on.history))
  t.equal((on.history as any).rooms('doc:1'), true)
  t.equal((on.history as any).rooms('doc:2'), true, 'a global RegExp is not stateful')
  t.equal((on.history as any).rooms('chat'), false)
  t.same(on.sessions, { store: null, window: 120000, maxUnicast: 100, maxReplies: 256 })
  t.same(on.drain, { spread: 10000, batch: 100 })
  t.equal((resolveOptions({ history: { rooms: (room) => room === 'x' } }).history as any).rooms('x'), true)
  const store = new MemoryHistory({ sweepInterval: 0 })
  t.equal((resolveOptions({ history: { store } }).history as any).store, store)
  const bad: Array<[string, unknown]> = [
    ['history.store', { history: { store: {} } }],
    ['history.rooms', { history: { rooms: 'doc' } }],
    ['sessions.store', { sessions: { store: { save () {} } } }],
    ['sessions.window', { sessions: { window: 0 } }],
    ['drain.batch', { drain: { batch: 0 } }],
    ['subprotocols', { subprotocols: ['resume.x'] }]
  ]
  for (const [field, options] of bad) {
    t.throws(() => resolveOptions(options as any), { code: 'FRT_ERR_OPTIONS_INVALID', message: new RegExp(field.split('.')[0]) }, field)
  }
})

t.test('route options: history and sessions need the plugin options; keep and snapshot are functions', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { heartbeat: false })
  const base = { messages: {} }
  for (const [what, extra] of [
    ['history', { history: true }],
    ['sessions', { sessions: true }],
    ['history', { history: 'yes' }],
    ['keep', { keep: 1 }],
    ['snapshot', { snapshot: {} }],
    ['snapshotTimeout', { snapshotTimeout: 0 }]
  ] as const) {
    t.throws(() => app.realtime('/x', { ...base, ...extra } as any), { code: 'FRT_ERR_ROUTE_INVALID', message: new RegExp(what) }, what)
  }
  await app.ready()
  await t.resolves(app.realtime.drain(), 'nobody to tell')
})

t.test('stores passed in are not ours to close; ours are', async (t) => {
  const sessions = new MemorySessions({ sweepInterval: 0 })
  const { app } = await listeningApp(t, { options: { heartbeat: false, history: {}, sessions: { store: sessions } } })
  await app.close()
  sessions.save('k', { connId: 'c', userKey: null, rooms: [], data: null }, 1000)
  t.equal(sessions.size, 1, 'still usable')
})

t.test('drain on demand: new upgrades get 503 with Retry-After; each client gets reconnect advice then 1012', async (t) => {
  const { app, port, url } = await listeningApp(t, {
    options: { heartbeat: false },
    routes: { '/chat': { messages: { ping2: { schema: Type.Null(), handler: () => true } } } }
  })
  const clients = await Promise.all([0, 1, 2].map(() => wireClient(url('/chat'))))
  const draining = app.realtime.drain({ spread: 300, batch: 2 })
  const codes = await Promise.all(clients.map((c) => c.closed))
  t.same(codes, [1012, 1012, 1012])
  for (const c of clients) {
    const advice = c.frames.find((f) => f.type === 'reconnect')
    t.ok(advice !== undefined && advice.data.after >= 0 && advice.data.after <= 300, 'advice within the window')
  }
  const refused = await upgrade(port, '/chat')
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '1')
  await draining
  await app.realtime.drain()
  t.equal(app.realtime.stats().connections, 0)
  await t.rejects(app.realtime.drain({ spread: -1 }), { code: 'FRT_ERR_OPTIONS_INVALID' })
  await t.rejects(app.realtime.drain({ batch: 0 }), { code: 'FRT_ERR_OPTIONS_INVALID' })
  await t.resolves(app.realtime.drain(null as any), 'null: the defaults (and a second drain does nothing)')
})
