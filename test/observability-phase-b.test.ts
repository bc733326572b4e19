// Observability that needs the pipeline or the Redis adapter: the message id on a handler's log lines, span
// links to the upgrade request, and the Redis adapter's health in stats() and /metrics. The trace context across
// Redis to every delivery is test/trace-context.test.ts; cluster-wide counts, test/cluster-counts.test.ts and
// test/admin.browser.test.ts.
import t from 'tap'
import dc from 'node:diagnostics_channel'
import Type from 'typebox'
import { Registry } from 'prom-client'
import { Redis } from 'ioredis'
import { MESSAGE_CHANNEL, type MessageContext } from '../index.js'
import { connect } from '../lib/testing.js'
import { realtimeApp } from './helpers/app.js'
import { until } from './helpers/wait.js'
import { startRedisServer } from './helpers/redis-server.js'
import { closeInstance, redisClient, redisInstance } from './helpers/instances.js'

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
type Line = Record<string, unknown>

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('every line a handler logs through conn.log carries connId and the message id, after an await too', async (t) => {
  const logs: Line[] = []
  let release: () => void = () => {}
  const app = await realtimeApp(t, {
    logs,
    options: { heartbeat: false },
    routes: {
      '/log': {
        messages: {
          work: {
            schema: Type.String(),
            handler: async (conn: { log: { info: (msg: string) => void } }, tag: string) => {
              conn.log.info('before ' + tag)
              await tick()
              conn.log.info('after ' + tag)
            }
          },
          sync: { schema: Type.Null(), handler: (conn: { log: { info: (msg: string) => void } }) => { conn.log.info('sync') } },
          hold: {
            schema: Type.Null(),
            handler: async (conn: { log: { info: (msg: string) => void } }) => {
              conn.log.info('hold start')
              await new Promise<void>((resolve) => { release = resolve })
              conn.log.info('hold end')
            }
          }
        }
      }
    }
  })
  const client = await connect(app, '/log')
  t.teardown(() => client.close())
  t.same(await client.request('work' as never, 'a' as never), null)
  client.sendRaw(JSON.stringify({ type: 'sync', data: null, id: 9 }))
  await client.next('ack' as never)
  client.sendRaw(JSON.stringify({ type: 'sync', data: null }))
  client.sendRaw(JSON.stringify({ type: 'work', data: 'b', id: 'req-b' }))
  await client.next('ack' as never)
  const line = (msg: string): Line | undefined => logs.find((l) => l.msg === msg)
  const connId = line('before a')?.connId
  t.type(connId, 'string')
  t.match(line('before a'), { connId, msgId: Number }, 'the test client numbers its requests')
  t.equal(line('before a')?.msgId, line('after a')?.msgId, 'the same id after the await')
  t.match(line('before b'), { connId, msgId: 'req-b' })
  t.match(line('after b'), { connId, msgId: 'req-b' })
  t.match(logs.find((l) => l.msg === 'sync' && l.msgId === 9), { connId })
  t.equal(logs.filter((l) => l.msg === 'sync' && !('msgId' in l)).length, 1, 'a message without an id logs connId only')

  // Two handlers in flight: which one logs after an await is unknowable, so no id rather than a wrong one.
  client.sendRaw(JSON.stringify({ type: 'hold', data: null, id: 'h' }))
  await until(() => line('hold start') !== undefined, 'hold to start')
  client.sendRaw(JSON.stringify({ type: 'work', data: 'c', id: 'req-c' }))
  await until(() => line('after c') !== undefined, 'c to finish')
  release()
  await until(() => line('hold end') !== undefined, 'hold to end')
  t.match(line('hold start'), { msgId: 'h' })
  t.match(line('before c'), { msgId: 'req-c' }, 'the synchronous part of a handler always knows its message')
  t.notOk('msgId' in (line('after c') as Line), 'overlapping: no id')
  t.notOk('msgId' in (line('hold end') as Line), 'overlapping: no id')
})

t.test('the handler error line carries the message id', async (t) => {
  const logs: Line[] = []
  const app = await realtimeApp(t, {
    logs,
    options: { heartbeat: false },
    routes: { '/e': { messages: { boom: { schema: Type.Null(), handler: () => { throw new Error('boom') } } } } }
  })
  const client = await connect(app, '/e')
  t.teardown(() => client.close())
  client.sendRaw(JSON.stringify({ type: 'boom', data: null, id: 'x1' }))
  await client.next('error' as never)
  t.match(logs.find((l) => l.msg === 'real-time handler failed'), { msgId: 'x1', type: 'boom', connId: String })
})

t.test('message spans link to the upgrade request\'s trace: the context carries the upgrade request', async (t) => {
  const app = await realtimeApp(t, {
    options: { heartbeat: false },
    routes: { '/s': { messages: { hi: { schema: Type.Null(), handler: () => 'ok' } } } }
  })
  const seen: MessageContext[] = []
  const onStart = (ctx: unknown): void => { seen.push(ctx as MessageContext) }
  const channel = dc.tracingChannel(MESSAGE_CHANNEL)
  channel.start.subscribe(onStart)
  t.teardown(() => channel.start.unsubscribe(onStart))
  const client = await connect(app, '/s', { headers: { traceparent: TP } })
  t.teardown(() => client.close())
  t.equal(await client.request('hi' as never, null as never), 'ok')
  t.equal(seen.length, 1)
  t.equal(seen[0].request.headers.traceparent, TP, 'the upgrade request\'s trace context')
  t.equal(seen[0].traceparent, undefined, 'the message itself carried none')
})

t.test('Redis adapter health: publishes and their latency, failures, resubscribes; in stats() and /metrics', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const registry = new Registry()
  const instance = await redisInstance(redisClient(redis.url), {}, { metrics: { registry } })
  t.teardown(() => closeInstance(instance))
  const client = await connect(instance.app, '/chat')
  t.teardown(() => client.close())
  await client.request('enter' as never, { room: 'r' } as never)
  for (let i = 0; i < 3; i++) client.send('say' as never, { room: 'r', text: String(i) } as never)
  for (let i = 0; i < 3; i++) await client.next('said' as never)
  await until(() => (instance.app.realtime.stats().adapterPublishes ?? 0) === 3, '3 publishes to settle')
  const stats = instance.app.realtime.stats()
  t.equal(stats.adapterPublishFailures, 0)
  t.ok((stats.adapterPublishSeconds ?? 0) > 0, 'latency summed')
  t.equal(stats.adapterResubscribes, 0, 'the first subscription is not a resubscription')

  // Redis drops the adapter's subscriber connection: it reconnects and subscribes again.
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  await admin.client('KILL', 'TYPE', 'pubsub')
  await until(() => instance.app.realtime.stats().adapterResubscribes === 1, 'a resubscription')

  // A publish Redis refuses: the script is gone and cannot be loaded while scripts are refused.
  const before = instance.app.realtime.stats().adapterErrors
  await instance.client?.script('FLUSH')
  await admin.call('CONFIG', 'SET', 'maxmemory', '1')
  await admin.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction')
  client.send('say' as never, { room: 'r', text: 'refused' } as never)
  await client.next('said' as never)
  await until(() => instance.app.realtime.stats().adapterPublishFailures === 1, 'a failed publish')
  t.ok(instance.app.realtime.stats().adapterErrors > before, 'also counted as an adapter error')
  await admin.call('CONFIG', 'SET', 'maxmemory', '0')

  const text = await registry.metrics()
  t.match(text, /fastify_realtime_adapter_publish_duration_seconds_count 3\n/)
  t.match(text, /# TYPE fastify_realtime_adapter_publish_duration_seconds summary/)
  t.match(text, /fastify_realtime_adapter_publish_failures_total 1\n/)
  t.match(text, /fastify_realtime_adapter_resubscribes_total 1\n/)
})

t.test('without the Redis adapter there are no adapter health series', async (t) => {
  const registry = new Registry()
  await realtimeApp(t, { options: { heartbeat: false, metrics: { registry } } })
  const text = await registry.metrics()
  t.notMatch(text, /adapter_publish_duration_seconds_count/)
  t.notMatch(text, /adapter_resubscribes_total \d/)
})
