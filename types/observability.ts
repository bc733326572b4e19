import type { onRequestHookHandler, preHandlerHookHandler } from 'fastify'

/** `asyncapi` plugin option: the document's info, and the route serving it. */
export interface AsyncApiInfo {
  title?: string
  version?: string
  description?: string
  /** AsyncAPI `servers`, copied as given (e.g. `{ production: { host: 'rt.example.com', protocol: 'wss' } }`). */
  servers?: Record<string, unknown>
}

export interface AsyncApiOptions extends AsyncApiInfo {
  /** Serve the document as JSON at this path (GET), as @fastify/swagger serves OpenAPI. Default: not served. */
  path?: string
  /** Runs before the document is served (e.g. the app's auth). */
  onRequest?: onRequestHookHandler
}

/**
 * The part of a prom-client `Registry` the plugin uses, typed here so that these types do not need prom-client
 * installed (it is an optional peer dependency).
 */
export interface MetricsRegistry {
  registerMetric (metric: any): void
  getSingleMetric (name: string): unknown
}

/** `metrics` plugin option: our metrics on the app's prom-client registry. */
export interface MetricsOptions {
  /** The prom-client registry to register on (e.g. `register` from prom-client, or fastify-metrics' `registry`). */
  registry: MetricsRegistry
  /** Metric name prefix. Default `'fastify_realtime_'`. */
  prefix?: string
  /** Handler duration histogram buckets, in seconds. */
  buckets?: number[]
}

/** `admin` plugin option: the built-in admin page. */
export interface AdminOptions {
  /** Where the page is served (GET `path`, `path/admin.js`), and its live route (`path/live`). */
  path: string
  /** The app's own check, run on the page, the script and the live route's upgrade: refuse a non-admin here. */
  onRequest?: onRequestHookHandler
  preHandler?: preHandlerHookHandler
  /** Milliseconds between snapshots pushed to the page. Default 1000. */
  interval?: number
}

/** One connection, as the inspection API lists it. */
export interface InspectedConnection {
  id: string
  /** The user id (`auth.userId`), or null when anonymous. */
  user: string | null
  route: string
  rooms: string[]
  /** Bytes buffered for the client (ws `bufferedAmount`). */
  bufferedBytes: number
  /** Milliseconds since the socket opened. */
  age: number
}

/** One room on this instance. */
export interface InspectedRoom {
  name: string
  /** Members on this instance. */
  members: number
  /** The last seq this instance numbered or delivered. */
  seq: number
}

/** A page of results: pass `next` as `cursor` for the next page; null at the end. */
export interface InspectPage<T> {
  items: T[]
  next: string | null
}

export interface InspectQuery {
  /** At most 500; default 100. */
  limit?: number
  cursor?: string | null
}

/** One instance's counts, as it published them (or, for this instance, now). */
export interface InstanceCounts {
  /** The instance's id (its fan-out adapter's). */
  id: string
  /** When the counts were taken (ms since the epoch, the instance's clock). */
  at: number
  connections: number
  /** Rooms with members on the instance. */
  rooms: number
  /** Room memberships on the instance. */
  members: number
  /** Messages in and out and errors (protocol and handler) since the instance started. */
  messagesIn: number
  messagesOut: number
  errors: number
  /** Per second, over the interval between the instance's last two publishes (0 before its second). */
  messagesInRate: number
  messagesOutRate: number
  errorRate: number
  /** Close codes and error codes since start; empty unless the instance serves the admin page (which counts them). */
  closes: Record<string, number>
  errorCodes: Record<string, number>
}

/** The sums over every live instance. `rooms` counts a room once per instance holding members of it. */
export interface ClusterTotals extends Omit<InstanceCounts, 'id' | 'at'> {
  instances: number
}

/** The cluster-wide view: a page of instances (by id), and the totals over all of them. */
export interface ClusterCounts {
  /** When the other instances' counts were read (ms since the epoch); 0 before the first read. */
  at: number
  instances: InstanceCounts[]
  /** Pass as `cursor` for the next page of instances; null at the end. */
  next: string | null
  totals: ClusterTotals
  /** Entries read that were not counts (written by something else, or too large): left out. */
  ignored: number
}

/** `app.realtime.inspect`: what this instance holds, paginated. */
export interface RealtimeInspect {
  connections (query?: InspectQuery): InspectPage<InspectedConnection>
  rooms (query?: InspectQuery): InspectPage<InspectedRoom>
  /**
   * This instance's counts and, with a fan-out adapter that shares them (`RedisAdapter`, `countsInterval`), every
   * live instance's latest and their totals; `cluster` is null otherwise.
   */
  cluster (query?: InspectQuery): { instance: InstanceCounts, cluster: ClusterCounts | null }
}
