// Per-message tracing on node:diagnostics_channel: a subscriber sees start/end (and asyncStart/asyncEnd)
// for every handled message, with the thrown error on error, and the envelope's W3C traceparent.
import t from 'tap'
import dc from 'node:diagnostics_channel'
import { AsyncLocalStorage } from 'node:async_hooks'
import Fastify from 'fastify'
import Type from 'typebox'
import realtime, { MESSAGE_CHANNEL, type MessageContext } from '../index.js'
import { connect } from '../lib/testing.js'
import { traced, validTraceparent } from '../lib/tracing.js'

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

async function build (t: Tap.Test) {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { heartbeat: false })
  app.realtime('/t', {
    messages: {
      sync: { schema: Type.Null(), handler: () => 'sync-result' },
      async: { schema: Type.Null(), handler: async () => { await new Promise((resolve) => setImmediate(resolve)); return 'async-result' } },
      throws: { schema: Type.Null(), handler: () => { throw new Error('sync boom') } },
      rejects: { schema: Type.Null(), handler: async () => { throw new Error('async boom') } },
      store: { schema: Type.Null(), handler: () => storage.getStore() }
    }
  })
  return app
}

const storage = new AsyncLocalStorage<string>()

function record (t: Tap.Test) {
  const events: Array<[string, MessageContext]> = []
  const channel = dc.tracingChannel(MESSAGE_CHANNEL)
  const handlers = {
    start: (ctx: unknown) => events.push(['start', { ...(ctx as MessageContext) }]),
    end: (ctx: unknown) => events.push(['end', { ...(ctx as MessageContext) }]),
    asyncStart: (ctx: unknown) => events.push(['asyncStart', { ...(ctx as MessageContext) }]),
    asyncEnd: (ctx: unknown) => events.push(['asyncEnd', { ...(ctx as MessageContext) }]),
    error: (ctx: unknown) => events.push(['error', { ...(ctx as MessageContext) }])
  }
  channel.subscribe(handlers)
  t.teardown(() => channel.unsubscribe(handlers))
  return events
}

t.test('start/end for a sync handler, with route, type, connId, message id and traceparent', async (t) => {
  const app = await build(t)
  const events = record(t)
  const client = await connect(app, '/t')
  client.sendRaw(JSON.stringify({ type: 'sync', data: null, id: 'm1', traceparent: TP }))
  await new Promise((resolve) => client.socket.once('message', resolve))
  t.same(events.map(([name]) => name), ['start', 'end'])
  const connId = app.realtime.inspect.connections().items[0].id
  t.match(events[0][1], { route: '/t', type: 'sync', connId, messageId: 'm1', traceparent: TP })
  t.equal(events[1][1].result, 'sync-result')
  await client.close()
})

t.test('asyncStart/asyncEnd for an async handler; error carries what was thrown, sync and async', async (t) => {
  const app = await build(t)
  const events = record(t)
  const client = await connect(app, '/t')
  t.equal(await client.request('async', null), 'async-result')
  t.same(events.map(([name]) => name), ['start', 'end', 'asyncStart', 'asyncEnd'])
  t.equal(events[3][1].result, 'async-result')
  t.equal(events[0][1].traceparent, undefined, 'no traceparent sent')

  events.length = 0
  await client.request('throws', null).catch(() => {})
  t.same(events.map(([name]) => name), ['start', 'error', 'end'])
  t.match(events[1][1].error, { message: 'sync boom' })

  events.length = 0
  const err = await client.request('rejects', null).catch((e) => e)
  t.equal(err.error.code, 'internal', 'the client still gets the error reply')
  t.same(events.map(([name]) => name), ['start', 'end', 'error', 'asyncStart', 'asyncEnd'])
  t.match(events[2][1].error, { message: 'async boom' })
  await client.close()
})

t.test('an invalid traceparent is ignored, not refused', async (t) => {
  const app = await build(t)
  const events = record(t)
  const client = await connect(app, '/t')
  client.sendRaw(JSON.stringify({ type: 'sync', data: null, id: 1, traceparent: 'nonsense' }))
  await new Promise((resolve) => client.socket.once('message', resolve))
  t.equal(events[0][1].traceparent, undefined)
  await client.close()
})

t.test('a store bound to the start channel is active inside the handler (how OTel contexts propagate)', async (t) => {
  const app = await build(t)
  const channel = dc.tracingChannel(MESSAGE_CHANNEL)
  channel.start.bindStore(storage, (ctx) => `span-for-${(ctx as MessageContext).type}`)
  t.teardown(() => channel.start.unbindStore(storage))
  t.ok(traced())
  const client = await connect(app, '/t')
  t.equal(await client.request('store', null), 'span-for-store')
  await client.close()
})

t.test('no subscriber: nothing is published and the plain path runs', async (t) => {
  t.notOk(traced())
  const app = await build(t)
  const client = await connect(app, '/t')
  t.equal(await client.request('sync', null), 'sync-result')
  t.equal(await client.request('async', null), 'async-result')
  await client.close()
})

t.test('traceparent validation follows W3C Trace Context', async (t) => {
  t.equal(validTraceparent(TP), TP)
  t.equal(validTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future'), '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future', 'a later version may add fields')
  for (const bad of [
    undefined, 7, '', 'nonsense',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra', // version 00 has exactly 4 fields
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', // version ff is invalid
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01', // all-zero trace id
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', // all-zero parent id
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', // upper case
    '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01', // short trace id
    '0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-' + 'x'.repeat(600)
  ]) {
    t.equal(validTraceparent(bad), undefined, String(bad).slice(0, 70))
  }
})
