// The observability parts, wired in one place so index.ts calls them in three lines: metrics and the admin
// page's recorder (lib/recorder.ts), the inspection API with the cluster's counts (lib/cluster.ts), the AsyncAPI
// document and the admin page.
import type { FastifyInstance } from 'fastify'
import { FRT_ERR_OPTIONS_INVALID } from './errors.js'
import { asyncapi, type DeclaredRoute } from './asyncapi.js'
import { createMetrics, resolveMetricsOptions } from './metrics.js'
import { createInspect, type InspectableHub } from './inspect.js'
import { Admin, resolveAdminOptions } from './admin.js'
import { combine, type Recorder } from './recorder.js'
import { Cluster } from './cluster.js'
import type { Hub } from './hub.js'
import type { ResolvedOptions } from './options.js'
import type { AsyncApiOptions, RealtimeInspect } from '../types/observability.js'

export interface ObservabilityOptions {
  metrics?: unknown
  asyncapi?: unknown
  admin?: unknown
}

export class Observability {
  readonly routes: DeclaredRoute[] = []
  readonly inspect: RealtimeInspect
  /** What every pipeline calls (metrics and the admin page together); null when both are off. */
  readonly recorder: Recorder | null
  readonly #options: ResolvedOptions
  readonly #asyncapi: AsyncApiOptions
  readonly #admin: Admin | null
  /** This instance's counts and the cluster's (lib/cluster.ts). */
  readonly cluster: Cluster

  private constructor (hub: Hub, options: ResolvedOptions, asyncapiOptions: AsyncApiOptions, admin: Admin | null,
    recorder: Recorder | null) {
    this.#options = options
    this.#asyncapi = asyncapiOptions
    this.#admin = admin
    this.recorder = recorder
    // Close and error codes are counted by the admin page's recorder only: counting them for everyone would put a
    // recorder on every message path.
    const cluster = this.cluster = new Cluster(hub.rooms.instance,
      { stats: () => hub.stats(), closes: admin?.closes ?? null, errors: admin?.errors ?? null }, hub.rooms.adapter)
    this.inspect = {
      // Every connection in the hub is a RealtimeConnection (lib/pipeline.ts adds them); the hub only types what it uses.
      ...createInspect(hub as unknown as InspectableHub, options.auth.userId),
      cluster: (query) => cluster.view(query)
    }
  }

  /** Checks the options and registers the metrics on the app's registry. */
  static async create (hub: Hub, options: ResolvedOptions, raw: ObservabilityOptions): Promise<Observability> {
    const metrics = resolveMetricsOptions(raw.metrics)
    const adminOptions = resolveAdminOptions(raw.admin)
    const asyncapiOptions = resolveAsyncApiOptions(raw.asyncapi)
    const recorders: Recorder[] = []
    if (metrics !== null) recorders.push(createMetrics(metrics, () => hub.stats()))
    const admin = adminOptions === null ? null : new Admin(adminOptions, hub)
    if (admin !== null) recorders.push(admin.recorder)
    return new Observability(hub, options, asyncapiOptions, admin, combine(recorders))
  }

  /** A route was declared with app.realtime (the admin page's own live route is left out of the document). */
  declare (path: string, definition: DeclaredRoute['definition']): void {
    if (this.#admin?.owns(path) === true) return
    this.routes.push({ path, definition })
  }

  asyncapi (): Record<string, unknown> {
    const { auth, subprotocols } = this.#options
    return asyncapi(this.routes, {
      sources: auth.sources,
      protocolPrefix: auth.protocolPrefix,
      cookieName: auth.cookieName,
      queryParam: auth.queryParam,
      subprotocols
    }, this.#asyncapi)
  }

  /** Adds the HTTP routes (the document, the admin page) once app.realtime exists. */
  routesOn (fastify: FastifyInstance): void {
    const { path, onRequest } = this.#asyncapi
    if (path !== undefined) {
      // Built on first request, after every route was declared, then kept.
      let document: string | null = null
      fastify.get(path, { ...(onRequest === undefined ? {} : { onRequest }) }, async (_request, reply) => {
        document ??= JSON.stringify(this.asyncapi())
        reply.type('application/json; charset=utf-8')
        return document
      })
    }
    this.#admin?.register(fastify, this.inspect)
  }
}

function resolveAsyncApiOptions (options: unknown): AsyncApiOptions {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null) throw new FRT_ERR_OPTIONS_INVALID('asyncapi', 'must be an object')
  const o = options as AsyncApiOptions
  for (const key of ['title', 'version', 'description'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'string') throw new FRT_ERR_OPTIONS_INVALID(`asyncapi.${key}`, 'must be a string')
  }
  if (o.path !== undefined && (typeof o.path !== 'string' || !o.path.startsWith('/'))) {
    throw new FRT_ERR_OPTIONS_INVALID('asyncapi.path', 'must be a path starting with /')
  }
  if (o.onRequest !== undefined && typeof o.onRequest !== 'function') throw new FRT_ERR_OPTIONS_INVALID('asyncapi.onRequest', 'must be a function')
  if (o.servers !== undefined && (typeof o.servers !== 'object' || o.servers === null)) {
    throw new FRT_ERR_OPTIONS_INVALID('asyncapi.servers', 'must be an object')
  }
  return Object.freeze({ ...o })
}
