import { expect, test } from 'tstyche'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import realtime, {
  DELIVER_CHANNEL, MESSAGE_CHANNEL, type AdminOptions, type ClusterCounts, type ConnectionRequest, type DeliverContext, type InstanceCounts, type InspectedConnection, type InspectedRoom, type InspectPage, type MessageContext,
  type MetricsOptions, type RealtimeOptions
} from '../../index.js'

const app = Fastify()
await app.register(realtime, {
  metrics: { registry: new Registry(), prefix: 'rt_', buckets: [0.01, 0.1] },
  asyncapi: { title: 'Chat', version: '1.0.0', path: '/asyncapi.json', servers: { prod: { host: 'x', protocol: 'wss' } } },
  admin: { path: '/admin', onRequest: async (request, reply) => { if (request.headers['x-key'] !== 'k') await reply.code(403).send() }, interval: 500 }
})

test('observability options are typed', () => {
  expect<MetricsOptions>().type.not.toBeAssignableFrom({})
  expect<MetricsOptions>().type.not.toBeAssignableFrom({ registry: {} })
  expect<RealtimeOptions>().type.not.toBeAssignableFrom({ metrics: { registry: new Registry(), prefix: 1 } })
  expect<AdminOptions>().type.not.toBeAssignableFrom({ onRequest: () => {} })
  expect<RealtimeOptions>().type.not.toBeAssignableFrom({ asyncapi: { path: 1 } })
})

test('the Redis adapter health counters are optional in stats()', () => {
  expect(app.realtime.stats().adapterPublishes).type.toBe<number | undefined>()
  expect(app.realtime.stats().adapterResubscribes).type.toBe<number | undefined>()
})

test('asyncapi() and inspect are typed', () => {
  expect(app.realtime.asyncapi()).type.toBe<Record<string, unknown>>()
  expect(app.realtime.inspect.connections()).type.toBe<InspectPage<InspectedConnection>>()
  expect(app.realtime.inspect.rooms({ limit: 10, cursor: null })).type.toBe<InspectPage<InspectedRoom>>()
  expect(app.realtime.inspect.connections).type.not.toBeCallableWith({ limit: '10' })
  expect<InspectedConnection['user']>().type.toBe<string | null>()
  expect(app.realtime.inspect.cluster({ limit: 5 })).type.toBe<{ instance: InstanceCounts, cluster: ClusterCounts | null }>()
  expect<ClusterCounts['totals']['instances']>().type.toBe<number>()
  expect<ClusterCounts['totals']>().type.not.toHaveProperty('id')
})

test('the delivery channel and its context', () => {
  expect(DELIVER_CHANNEL).type.toBe<'fastify-realtime:deliver'>()
  expect<DeliverContext['room']>().type.toBe<string | null>()
  expect<DeliverContext['traceparent']>().type.toBe<string | undefined>()
  expect<DeliverContext['recipients']>().type.toBe<number>()
})

test('the tracing channel and its context', () => {
  expect(MESSAGE_CHANNEL).type.toBe<'fastify-realtime:message'>()
  expect<MessageContext['messageId']>().type.toBe<string | number | undefined>()
  expect<MessageContext['traceparent']>().type.toBe<string | undefined>()
  expect<MessageContext['request']>().type.toBe<ConnectionRequest>()
})
