// Prometheus metrics: an app under traffic is scraped at /metrics and each series is checked against what
// the clients sent.
import t from 'tap'
import Fastify from 'fastify'
import Type from 'typebox'
import { Registry, collectDefaultMetrics, register as defaultRegistry } from 'prom-client'
import realtime from '../index.js'
import { connect } from '../lib/testing.js'
import { createMetrics, resolveMetricsOptions } from '../lib/metrics.js'
import { closeLabel, errorLabel, inLabel, outLabel } from '../lib/recorder.js'

async function build (t: Tap.Test, registry: Registry, extra: Record<string, unknown> = {}) {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { metrics: { registry }, heartbeat: false, ...extra })
  app.realtime('/echo', {
    joinable: true,
    messages: {
      say: { schema: Type.Object({ text: Type.String() }), handler: (conn, { text }) => { conn.emit('said', { text }); return text.length } },
      slow: { schema: Type.Null(), handler: async () => { await new Promise((resolve) => setTimeout(resolve, 20)); return 'done' } },
      boom: { schema: Type.Null(), handler: () => { throw new Error('kaput') } },
      nope: { schema: Type.Null(), handler: async () => { throw Object.assign(new Error('no'), { statusCode: 409, code: 'app_specific' }) } }
    },
    emits: { said: Type.Object({ text: Type.String() }) }
  })
  app.realtime('/other', { messages: { hi: { schema: Type.Null(), handler: () => null } } })
  app.get('/metrics', async (_request, reply) => {
    reply.type(registry.contentType)
    return registry.metrics()
  })
  return app
}

// `name{labels} value` lines of the exposition format, as a map.
async function scrape (app: Awaited<ReturnType<typeof build>>): Promise<Map<string, number>> {
  const res = await app.inject({ url: '/metrics' })
  const series = new Map<string, number>()
  for (const line of res.body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    series.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return series
}

t.test('series and values match the traffic sent', async (t) => {
  const registry = new Registry()
  const app = await build(t, registry)
  const a = await connect(app, '/echo')
  const b = await connect(app, '/echo')
  const c = await connect(app, '/other')

  for (let i = 0; i < 5; i++) await a.request('say', { text: 'hello' })
  await b.request('slow', null)
  await b.request('boom', null).catch(() => {})
  await b.request('nope', null).catch(() => {})
  a.sendRaw('{"type":"made-up-1"}')
  a.sendRaw('{"type":"made-up-2"}')
  await a.next('error')
  await a.next('error')
  a.sendRaw('not json')
  await a.next('error')
  await a.request('say', { text: 1 } as never).catch(() => {})
  await a.request('room:join' as never, { room: 'r1' } as never)
  await b.request('room:join' as never, { room: 'r1' } as never)
  await b.request('room:join' as never, { room: 'r2' } as never)

  let m = await scrape(app)
  t.equal(m.get('fastify_realtime_connections{route="/echo"}'), 2)
  t.equal(m.get('fastify_realtime_connections{route="/other"}'), 1)
  t.equal(m.get('fastify_realtime_connects_total{route="/echo"}'), 2)
  t.equal(m.get('fastify_realtime_messages_in_total{route="/echo",type="say"}'), 6, '5 valid + 1 invalid say')
  t.equal(m.get('fastify_realtime_messages_in_total{route="/echo",type="slow"}'), 1)
  t.equal(m.get('fastify_realtime_messages_in_total{route="/echo",type="room:join"}'), 3)
  t.equal(m.get('fastify_realtime_messages_in_total{route="/echo",type="_unknown"}'), 2, 'undeclared types are one bucket')
  t.notOk([...m.keys()].some((k) => k.includes('made-up')), 'no series per invented type')
  t.equal(m.get('fastify_realtime_messages_out_total{route="/echo",type="said"}'), 5)
  t.equal(m.get('fastify_realtime_messages_out_total{route="/echo",type="ack"}'), 9, '5 say + slow + 3 joins')
  t.equal(m.get('fastify_realtime_messages_out_total{route="/echo",type="error"}'), 6)
  t.equal(m.get('fastify_realtime_errors_total{route="/echo",code="internal"}'), 1)
  t.equal(m.get('fastify_realtime_errors_total{route="/echo",code="refused"}'), 1, 'an app code is bucketed')
  t.equal(m.get('fastify_realtime_errors_total{route="/echo",code="unknown_type"}'), 2)
  t.equal(m.get('fastify_realtime_errors_total{route="/echo",code="bad_json"}'), 1)
  t.equal(m.get('fastify_realtime_errors_total{route="/echo",code="invalid_data"}'), 1)
  t.equal(m.get('fastify_realtime_handler_duration_seconds_count{route="/echo",type="say"}'), 5)
  t.equal(m.get('fastify_realtime_handler_duration_seconds_count{route="/echo",type="boom"}'), 1)
  t.equal(m.get('fastify_realtime_handler_duration_seconds_count{route="/echo",type="nope"}'), 1)
  t.ok((m.get('fastify_realtime_handler_duration_seconds_sum{route="/echo",type="slow"}') as number) >= 0.015, 'the async handler is timed to its end')
  t.equal(m.get('fastify_realtime_handler_duration_seconds_bucket{le="0.01",route="/echo",type="slow"}'), 0)
  t.equal(m.get('fastify_realtime_rooms'), 2)
  t.equal(m.get('fastify_realtime_room_members'), 3)
  const stats = app.realtime.stats()
  t.equal(m.get('fastify_realtime_frames_in_total'), stats.messagesIn)
  t.equal(m.get('fastify_realtime_frames_out_total'), stats.messagesOut)
  t.equal(m.get('fastify_realtime_adapter_errors_total'), 0)
  t.equal(m.get('fastify_realtime_terminations_total{reason="heartbeat"}'), 0)

  await a.close(4000)
  await c.close(1000)
  m = await scrape(app)
  t.equal(m.get('fastify_realtime_connections{route="/echo"}'), 1)
  t.equal(m.get('fastify_realtime_connections{route="/other"}'), 0)
  t.equal(m.get('fastify_realtime_closes_total{route="/echo",code="other"}'), 1, 'an arbitrary client code is bucketed')
  t.equal(m.get('fastify_realtime_closes_total{route="/other",code="1000"}'), 1)
  t.equal(m.get('fastify_realtime_room_members'), 2)
  // The series a scrape may show are bounded by routes and declared types, whatever was sent.
  const types = [...m.keys()].filter((k) => k.startsWith('fastify_realtime_messages_in_total{route="/echo"'))
    .map((k) => /type="([^"]+)"/.exec(k)?.[1]).sort()
  t.same(types, ['_unknown', 'boom', 'nope', 'room:join', 'say', 'slow'])
  await b.close()
})

t.test('rate-limit refusals and terminations come from the hub counters', async (t) => {
  const registry = new Registry()
  const app = await build(t, registry, { rateLimit: { rate: 1, burst: 1, budget: 1 } })
  const a = await connect(app, '/other')
  a.send('hi', null)
  a.send('hi', null)
  await a.next('error')
  const m = await scrape(app)
  t.equal(m.get('fastify_realtime_rate_limited_total'), 1)
  t.equal(m.get('fastify_realtime_rate_limited_total'), app.realtime.stats().rateLimited)
  await a.close()
})

t.test('beside default metrics on the default registry (as fastify-metrics uses it)', async (t) => {
  collectDefaultMetrics({ register: defaultRegistry })
  t.teardown(() => defaultRegistry.clear())
  const app = await build(t, defaultRegistry as Registry)
  const a = await connect(app, '/other')
  await a.request('hi', null)
  const m = await scrape(app)
  t.ok(m.has('process_cpu_user_seconds_total'), 'the default metrics are there')
  t.equal(m.get('fastify_realtime_messages_in_total{route="/other",type="hi"}'), 1)
  await a.close()
})

t.test('without the option nothing is registered and the recorder is absent', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime)
  app.realtime('/x', { messages: { hi: { schema: Type.Null(), handler: () => 1 } } })
  const a = await connect(app, '/x')
  t.equal(await a.request('hi', null), 1)
  await a.close()
})

t.test('options are checked at register', async (t) => {
  for (const [metrics, field] of [
    [{}, 'metrics.registry'], [{ registry: {} }, 'metrics.registry'],
    [{ registry: new Registry(), prefix: 'bad prefix' }, 'metrics.prefix'],
    [{ registry: new Registry(), buckets: [] }, 'metrics.buckets'], [{ registry: new Registry(), buckets: [0] }, 'metrics.buckets'],
    [null, 'metrics.registry']
  ] as const) {
    const app = Fastify()
    await t.rejects(app.register(realtime, { metrics: metrics as never }).ready(), { code: 'FRT_ERR_OPTIONS_INVALID', message: new RegExp(field.replace('.', '\\.')) })
  }
  t.equal(resolveMetricsOptions(undefined), null)
  t.equal(resolveMetricsOptions(false), null)
  // A custom prefix and buckets reach the registry.
  const registry = new Registry()
  const options = resolveMetricsOptions({ registry, prefix: 'rt_', buckets: [0.1] })
  t.ok(options)
  createMetrics(options!, () => ({}) as never)
  t.ok(registry.getSingleMetric('rt_handler_duration_seconds'))
})

t.test('with the admin page on too, both recorders see the same points', async (t) => {
  const registry = new Registry()
  const app = await build(t, registry, { admin: { path: '/admin', preHandler: async () => {} } })
  const admin = await connect(app, '/admin/live')
  const a = await connect(app, '/echo')
  await a.request('boom', null).catch(() => {})
  await a.close(4403)
  const m = await scrape(app)
  t.equal(m.get('fastify_realtime_closes_total{route="/echo",code="4403"}'), 1)
  t.equal(m.get('fastify_realtime_errors_total{route="/echo",code="internal"}'), 1)
  t.equal(m.get('fastify_realtime_connections{route="/admin/live"}'), 1, 'the admin socket is a connection like any other')
  t.equal(m.get('fastify_realtime_handler_duration_seconds_count{route="/echo",type="boom"}'), 1)
  await admin.next('snapshot' as never)
  const snapshot = await admin.next('snapshot' as never, { timeout: 3000 }) as { data: { closes: object, errors: object } }
  t.same(snapshot.data.closes, { 4403: 1 })
  t.same(snapshot.data.errors, { internal: 1 })
  await admin.close()
})

t.test('labels are bounded: declared and reserved names, else one bucket', async (t) => {
  const route = { path: '/r', messages: new Set(['say']), emits: new Set(['said']) }
  t.same(['say', 'ping', 'auth', 'said', 'x'].map((type) => inLabel(route, type)), ['say', 'ping', 'auth', '_unknown', '_unknown'])
  t.same(['said', 'ack', 'error', 'say', 'x'].map((type) => outLabel(route, type)), ['said', 'ack', 'error', '_unknown', '_unknown'])
  t.same(['rate_limited', 'forbidden', 'my_code'].map(errorLabel), ['rate_limited', 'forbidden', 'refused'])
  t.same([1000, 1005, 1006, 1012, 4008, 4401, 4409, 4499, 4500, 3000, 4000, 4600].map(closeLabel),
    ['1000', '1005', '1006', '1012', '4008', '4401', '4409', '4499', '4500', 'other', 'other', 'other'])
})

t.test('routes are named by their full URL, prefix included; two routes on one URL share a series; resetMetrics leaves ours alone', async (t) => {
  const registry = new Registry()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { metrics: { registry } })
  for (const prefix of ['/v1', '/v2']) {
    await app.register(async (scope) => {
      scope.realtime('/ws', { messages: { hi: { schema: Type.Null(), handler: () => null } } })
    }, { prefix })
  }
  // Fastify's router refuses a second GET /v1/ws, but two routes may still share a URL across constraints
  // (e.g. a host constraint): declare one the same way on a host.
  app.realtime('/v1/ws', { constraints: { host: 'other.example' }, messages: { hi: { schema: Type.Null(), handler: () => null } } })
  const a = await connect(app, '/v1/ws')
  const b = await connect(app, '/v2/ws')
  const c = await connect(app, '/v1/ws', { headers: { host: 'other.example' } })
  await a.request('hi', null)
  await b.request('hi', null)
  await c.request('hi', null)
  registry.resetMetrics()
  const text = await registry.metrics()
  t.match(text, /fastify_realtime_messages_in_total\{route="\/v1\/ws",type="hi"\} 2\n/)
  t.match(text, /fastify_realtime_messages_in_total\{route="\/v2\/ws",type="hi"\} 1\n/)
  t.match(text, /fastify_realtime_connections\{route="\/v1\/ws"\} 2\n/)
  t.same(app.realtime.inspect.connections().items.map((i) => i.route).sort(), ['/v1/ws', '/v1/ws', '/v2/ws'])
  await c.close()
  await a.close()
  await b.close()
})
