// Prometheus metrics on the app's prom-client registry. prom-client is an optional peer dependency: the app
// hands us its Registry, and this file never imports prom-client. Every value is computed at scrape time:
// the counters the hub already keeps (stats()) cost the message path nothing, and the per-route, per-type
// series come from the Recorder points as plain Map increments.
// Cardinality is bounded by the declared routes and types (lib/recorder.ts): never a series per room or user.
import { FRT_ERR_OPTIONS_INVALID } from './errors.js'
import { closeLabel, errorLabel, inLabel, outLabel, type RecordedRoute, type Recorder } from './recorder.js'
import type { RealtimeStats } from '../types/fastify.js'
import type { MetricsOptions, MetricsRegistry } from '../types/observability.js'

// Handlers are usually sub-millisecond to a few hundred ms.
const DEFAULT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

export interface ResolvedMetricsOptions {
  registry: MetricsRegistry
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

interface Sample { value: number, labels: Record<string, string | number>, metricName?: string }

/**
 * A metric as prom-client's Registry reads it (`name`, `help`, `type`, `get()`): its values are computed at
 * scrape time from our own plain counters, so the message path never touches prom-client (whose labelled
 * children hash their labels on every call) and prom-client itself is never imported.
 */
class Collected {
  readonly name: string
  readonly help: string
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary'
  readonly aggregator = 'sum'
  readonly #values: () => Sample[]
  constructor (name: string, help: string, type: 'counter' | 'gauge' | 'histogram' | 'summary', values: () => Sample[]) {
    this.name = name
    this.help = help
    this.type = type
    this.#values = values
  }

  get (): { name: string, help: string, type: string, values: Sample[], aggregator: string } {
    return { name: this.name, help: this.help, type: this.type, values: this.#values(), aggregator: this.aggregator }
  }

  /** Registry#resetMetrics calls it; our values are the plugin's own state and are not reset from outside. */
  reset (): void {}
}

class Durations {
  readonly counts: Float64Array
  sum = 0
  count = 0
  constructor (buckets: number) {
    this.counts = new Float64Array(buckets)
  }
}

/** What the recorder counts for one route, in plain Maps; turned into samples at scrape time. */
class RouteSeries {
  readonly path: string
  open = 0
  connects = 0
  readonly closes = new Map<string, number>()
  readonly in = new Map<string, number>()
  readonly out = new Map<string, number>()
  readonly errors = new Map<string, number>()
  readonly durations = new Map<string, Durations>()
  constructor (path: string) {
    this.path = path
  }
}

function bump (map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1)
}

/** Registers the metrics on the registry and returns the recorder the message path calls. */
export function createMetrics (options: ResolvedMetricsOptions, stats: () => RealtimeStats): Recorder {
  const { registry, prefix: p, buckets } = options
  const routes = new Map<RecordedRoute, RouteSeries>()
  const seriesOf = (route: RecordedRoute): RouteSeries => {
    let series = routes.get(route)
    if (series === undefined) routes.set(route, series = new RouteSeries(route.path))
    return series
  }
  const register = (name: string, help: string, type: 'counter' | 'gauge' | 'histogram' | 'summary', values: () => Sample[]): void => {
    registry.registerMetric(new Collected(p + name, help, type, values))
  }
  const fromStats = (name: string, help: string, type: 'counter' | 'gauge', read: (s: RealtimeStats) => number): void =>
    register(name, help, type, () => [{ value: read(stats()), labels: {} }])
  // Per route (two routes may share a path on different prefixes: their series are summed).
  const perRoute = (name: string, help: string, type: 'counter' | 'gauge', label: string,
    read: (series: RouteSeries) => Map<string, number> | number): void =>
    register(name, help, type, () => {
      const sums = new Map<string, Sample>()
      for (const series of routes.values()) {
        const value = read(series)
        const entries = typeof value === 'number' ? [['', value] as const] : value
        for (const [key, n] of entries) {
          const id = series.path + '\0' + key
          const sample = sums.get(id)
          if (sample === undefined) {
            sums.set(id, { value: n, labels: key === '' ? { route: series.path } : { route: series.path, [label]: key } })
          } else {
            sample.value += n
          }
        }
      }
      return [...sums.values()]
    })

  fromStats('frames_in_total', 'Frames received (all routes, before parsing)', 'counter', (s) => s.messagesIn)
  fromStats('frames_out_total', 'Frames sent, room broadcasts counted once per member', 'counter', (s) => s.messagesOut)
  fromStats('rate_limited_total', 'Messages refused by a rate limit', 'counter', (s) => s.rateLimited)
  fromStats('rate_limit_store_errors_total', 'Rate-limit store failures (messages let through)', 'counter', (s) => s.rateLimitErrors)
  fromStats('volatile_drops_total', 'Volatile room messages skipped for a slow member', 'counter', (s) => s.volatileDrops)
  fromStats('conflated_total', 'Latest messages replaced by a newer one of their key for a member behind', 'counter', (s) => s.conflated)
  fromStats('adapter_errors_total', 'Fan-out adapter operations that failed or timed out', 'counter', (s) => s.adapterErrors)
  fromStats('adapter_dropped_total', 'Broadcasts not handed to the other instances', 'counter', (s) => s.adapterDropped)
  fromStats('adapter_invalid_total', 'Invalid envelopes received from the fan-out backend', 'counter', (s) => s.adapterInvalid)
  // The Redis adapter's health (RealtimeStats leaves these out with an adapter that has none: no series then).
  const adapterStat = (name: string, help: string, type: 'counter' | 'summary', read: (s: RealtimeStats) => number | undefined): void =>
    register(name, help, type, () => {
      const value = read(stats())
      return value === undefined ? [] : [{ value, labels: {} }]
    })
  adapterStat('adapter_publish_failures_total', 'Broadcasts the fan-out backend refused or that failed', 'counter', (s) => s.adapterPublishFailures)
  adapterStat('adapter_resubscribes_total', 'Subscriptions made again after the fan-out subscriber reconnected', 'counter', (s) => s.adapterResubscribes)
  register('adapter_publish_duration_seconds', 'Time a broadcast waited for the fan-out backend (sum and count)', 'summary', () => {
    const s = stats()
    if (s.adapterPublishes === undefined) return []
    const name = p + 'adapter_publish_duration_seconds'
    return [
      { metricName: name + '_sum', labels: {}, value: s.adapterPublishSeconds as number },
      { metricName: name + '_count', labels: {}, value: s.adapterPublishes }
    ]
  })
  fromStats('rooms', 'Rooms with a member on this instance', 'gauge', (s) => s.rooms)
  fromStats('room_members', 'Room memberships on this instance, summed over rooms', 'gauge', (s) => s.members)
  register('terminations_total', 'Connections the server ended: missed heartbeat, or slow consumer (4008)', 'counter', () => {
    const s = stats()
    return [
      { value: s.heartbeatTerminations, labels: { reason: 'heartbeat' } },
      { value: s.slowConsumerCloses, labels: { reason: 'slow_consumer' } }
    ]
  })
  perRoute('connections', 'Open connections', 'gauge', '', (r) => r.open)
  perRoute('connects_total', 'Connections accepted', 'counter', '', (r) => r.connects)
  perRoute('closes_total', 'Connections closed, by close code', 'counter', 'code', (r) => r.closes)
  perRoute('messages_in_total', 'Messages received, by type (undeclared types: _unknown)', 'counter', 'type', (r) => r.in)
  perRoute('messages_out_total', 'Unicast messages sent (emits, acks, errors), by type', 'counter', 'type', (r) => r.out)
  perRoute('errors_total', 'Error replies, by code (handler refusals: refused)', 'counter', 'code', (r) => r.errors)
  const les = buckets.map(String)
  register('handler_duration_seconds', 'Message handler duration', 'histogram', () => {
    const samples: Sample[] = []
    const name = p + 'handler_duration_seconds'
    for (const series of routes.values()) {
      for (const [type, d] of series.durations) {
        const labels = { route: series.path, type }
        let cumulative = 0
        for (let i = 0; i < les.length; i++) {
          cumulative += d.counts[i]
          samples.push({ metricName: name + '_bucket', labels: { le: les[i], ...labels }, value: cumulative })
        }
        samples.push({ metricName: name + '_bucket', labels: { le: '+Inf', ...labels }, value: d.count })
        samples.push({ metricName: name + '_sum', labels, value: d.sum })
        samples.push({ metricName: name + '_count', labels, value: d.count })
      }
    }
    return samples
  })

  return {
    opened (route) {
      const series = seriesOf(route)
      series.open++
      series.connects++
    },
    closed (route, code) {
      const series = seriesOf(route)
      series.open--
      bump(series.closes, closeLabel(code))
    },
    messageIn (route, type) { bump(seriesOf(route).in, inLabel(route, type)) },
    messageOut (route, type) { bump(seriesOf(route).out, outLabel(route, type)) },
    error (route, code) { bump(seriesOf(route).errors, errorLabel(code)) },
    handled (route, type, start) {
      const seconds = (performance.now() - start) / 1000
      const series = seriesOf(route)
      // Only declared types reach a handler: the map is bounded by the route's messages.
      let d = series.durations.get(type)
      if (d === undefined) series.durations.set(type, d = new Durations(buckets.length))
      d.sum += seconds
      d.count++
      for (let i = 0; i < buckets.length; i++) {
        if (seconds <= buckets[i]) {
          d.counts[i]++
          break
        }
      }
    }
  }
}
