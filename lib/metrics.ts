// Prometheus metrics on the app's prom-client registry. prom-client is an optional peer dependency, imported
// only when the `metrics` option is given. Counters the hub already keeps are read at scrape time (collect),
// so they cost the message path nothing; the per-route, per-type series come from the Recorder points.
// Cardinality is bounded by the declared routes and types (lib/recorder.ts): never a series per room or user.
import { FRT_ERR_OPTIONS_INVALID } from './errors.js'
import { closeLabel, errorLabel, inLabel, outLabel, type RecordedRoute, type Recorder } from './recorder.js'
import type { RealtimeStats } from '../types/fastify.js'
import type { MetricsOptions } from '../types/observability.js'
import type { Counter, Histogram, Registry } from 'prom-client'

// Handlers are usually sub-millisecond to a few hundred ms.
const DEFAULT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

export interface ResolvedMetricsOptions {
  registry: Registry
  prefix: string
  buckets: number[]
}

export function resolveMetricsOptions (options: unknown): ResolvedMetricsOptions | null {
  if (options === undefined || options === false) return null
  const { registry, prefix = 'fastify_realtime_', buckets = DEFAULT_BUCKETS } = (options ?? {}) as Partial<MetricsOptions>
  if (typeof registry?.registerMetric !== 'function' || typeof registry.getSingleMetric !== 'function') {
    throw new FRT_ERR_OPTIONS_INVALID('metrics.registry', 'must be a prom-client Registry')
  }
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw new FRT_ERR_OPTIONS_INVALID('metrics.prefix', 'must be a Prometheus metric name prefix')
  }
  if (!Array.isArray(buckets) || buckets.length === 0 || buckets.some((b) => typeof b !== 'number' || !(b > 0))) {
    throw new FRT_ERR_OPTIONS_INVALID('metrics.buckets', 'must be a non-empty array of positive numbers')
  }
  return Object.freeze({ registry, prefix, buckets: [...buckets] })
}

type Child = { inc (value?: number): void }
type Timer = { observe (value: number): void }

/** Registers the metrics and returns the recorder the message path calls. */
export async function createMetrics (options: ResolvedMetricsOptions, stats: () => RealtimeStats): Promise<Recorder> {
  const prom = await import('prom-client')
  const { registry, prefix: p } = options
  const registers = [registry]
  // Metrics read at scrape time are held by the registry only.
  const held: unknown[] = []
  // Counters the hub keeps: reset and set from stats() at each scrape.
  const fromStats = (name: string, help: string, read: (s: RealtimeStats) => number): void => {
    held.push(new prom.Counter({ name: p + name, help, registers, collect (this: Counter) { this.reset(); this.inc(read(stats())) } }))
  }
  const gaugeFromStats = (name: string, help: string, read: (s: RealtimeStats) => number): void => {
    held.push(new prom.Gauge({ name: p + name, help, registers, collect () { this.set(read(stats())) } }))
  }
  fromStats('frames_in_total', 'Frames received (all routes, before parsing)', (s) => s.messagesIn)
  fromStats('frames_out_total', 'Frames sent, room broadcasts counted once per member', (s) => s.messagesOut)
  fromStats('rate_limited_total', 'Messages refused by a rate limit', (s) => s.rateLimited)
  fromStats('rate_limit_store_errors_total', 'Rate-limit store failures (messages let through)', (s) => s.rateLimitErrors)
  fromStats('volatile_drops_total', 'Volatile room messages skipped for a slow member', (s) => s.volatileDrops)
  fromStats('adapter_errors_total', 'Fan-out adapter operations that failed or timed out', (s) => s.adapterErrors)
  fromStats('adapter_dropped_total', 'Broadcasts not handed to the other instances', (s) => s.adapterDropped)
  fromStats('adapter_invalid_total', 'Invalid envelopes received from the fan-out backend', (s) => s.adapterInvalid)
  gaugeFromStats('rooms', 'Rooms with a member on this instance', (s) => s.rooms)
  gaugeFromStats('room_members', 'Room memberships on this instance, summed over rooms', (s) => s.members)
  held.push(new prom.Counter({
    name: p + 'terminations_total',
    help: 'Connections the server ended: missed heartbeat, or slow consumer (4008)',
    labelNames: ['reason'],
    registers,
    collect (this: Counter<'reason'>) {
      const s = stats()
      this.reset()
      this.inc({ reason: 'heartbeat' }, s.heartbeatTerminations)
      this.inc({ reason: 'slow_consumer' }, s.slowConsumerCloses)
    }
  }))
  const open = new prom.Gauge({ name: p + 'connections', help: 'Open connections', labelNames: ['route'], registers })
  const connects = new prom.Counter({ name: p + 'connects_total', help: 'Connections accepted', labelNames: ['route'], registers })
  const closes = new prom.Counter({ name: p + 'closes_total', help: 'Connections closed, by close code', labelNames: ['route', 'code'], registers })
  const messagesIn = new prom.Counter({ name: p + 'messages_in_total', help: 'Messages received, by type (undeclared types: _unknown)', labelNames: ['route', 'type'], registers })
  const messagesOut = new prom.Counter({ name: p + 'messages_out_total', help: 'Unicast messages sent (emits, acks, errors), by type', labelNames: ['route', 'type'], registers })
  const errors = new prom.Counter({ name: p + 'errors_total', help: 'Error replies, by code (handler refusals: refused)', labelNames: ['route', 'code'], registers })
  const duration: Histogram<'route' | 'type'> = new prom.Histogram({
    name: p + 'handler_duration_seconds', help: 'Message handler duration', labelNames: ['route', 'type'], buckets: options.buckets, registers
  })

  // Children per (route, label), made once: the hot path does two Map lookups, not a label hash.
  const children = new Map<object, Map<string, Child>>()
  const child = (metric: { labels (...values: string[]): Child }, route: RecordedRoute, label: string): Child => {
    let byMetric = children.get(metric)
    if (byMetric === undefined) children.set(metric, byMetric = new Map())
    const key = route.path + '\0' + label
    let c = byMetric.get(key)
    if (c === undefined) byMetric.set(key, c = metric.labels(route.path, label))
    return c
  }
  const timers = new Map<string, Timer>()

  return {
    opened (route) {
      open.labels(route.path).inc()
      connects.labels(route.path).inc()
    },
    closed (route, code) {
      open.labels(route.path).dec()
      child(closes, route, closeLabel(code)).inc()
    },
    messageIn (route, type) { child(messagesIn, route, inLabel(route, type)).inc() },
    messageOut (route, type) { child(messagesOut, route, outLabel(route, type)).inc() },
    error (route, code) { child(errors, route, errorLabel(code)).inc() },
    handled (route, type, start) {
      const key = route.path + '\0' + type
      let timer = timers.get(key)
      if (timer === undefined) timers.set(key, timer = duration.labels(route.path, inLabel(route, type)))
      timer.observe((performance.now() - start) / 1000)
    }
  }
}
