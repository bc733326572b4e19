// The admin page: one HTML page and one script (lib/admin/), served at a path the app chooses behind the
// app's own hooks, and live over one of our own real-time routes (`<path>/live`), which pushes a snapshot of
// this instance (and of the cluster, with the Redis adapter's shared counts) every `interval` ms to the admins
// connected, and lets one disconnect a user (on every instance: app.realtime.disconnectUser goes through the adapter).
import { readFileSync } from 'node:fs'
import Type from 'typebox'
import type { FastifyInstance, onRequestHookHandler, preHandlerHookHandler } from 'fastify'
import { FRT_ERR_OPTIONS_INVALID } from './errors.js'
import { closeLabel, errorLabel, type Recorder } from './recorder.js'
import type { Hub } from './hub.js'
import type { Connection } from '../types/route.js'
import type { AdminOptions, RealtimeInspect } from '../types/observability.js'

// How many connections and rooms a snapshot lists (the page shows the first ones; the API pages further).
const LISTED = 50
const SAFE_PATH = /^\/[\w\-./]*$/

export interface ResolvedAdminOptions {
  path: string
  onRequest: onRequestHookHandler | undefined
  preHandler: preHandlerHookHandler | undefined
  interval: number
}

export function resolveAdminOptions (options: unknown): ResolvedAdminOptions | null {
  if (options === undefined || options === false) return null
  const { path, onRequest, preHandler, interval = 1000 } = (options ?? {}) as Partial<AdminOptions>
  if (typeof path !== 'string' || !SAFE_PATH.test(path) || path.endsWith('/')) {
    throw new FRT_ERR_OPTIONS_INVALID('admin.path', 'must be a path such as /admin (letters, digits, _ - . /)')
  }
  if (onRequest === undefined && preHandler === undefined) {
    // The page can disconnect users: it is never served without the app's own check.
    throw new FRT_ERR_OPTIONS_INVALID('admin.onRequest', 'is required (or admin.preHandler): the page must be protected')
  }
  if (onRequest !== undefined && typeof onRequest !== 'function') throw new FRT_ERR_OPTIONS_INVALID('admin.onRequest', 'must be a function')
  if (preHandler !== undefined && typeof preHandler !== 'function') throw new FRT_ERR_OPTIONS_INVALID('admin.preHandler', 'must be a function')
  if (!Number.isInteger(interval) || interval < 100) throw new FRT_ERR_OPTIONS_INVALID('admin.interval', 'must be an integer of at least 100 (ms)')
  return Object.freeze({ path, onRequest, preHandler, interval })
}

const page = readFileSync(new URL('./admin/index.html', import.meta.url), 'utf8')
const script = readFileSync(new URL('./admin/admin.js', import.meta.url), 'utf8')

export class Admin {
  readonly options: ResolvedAdminOptions
  readonly hub: Hub
  /** Close codes and error codes since start, by bounded label: the page's tables and charts. */
  readonly closes = new Map<string, number>()
  readonly errors = new Map<string, number>()
  readonly recorder: Recorder
  readonly #admins = new Set<Connection>()
  #timer: NodeJS.Timeout | null = null
  #snapshot: (() => unknown) | null = null

  constructor (options: ResolvedAdminOptions, hub: Hub) {
    this.options = options
    this.hub = hub
    const count = (map: Map<string, number>, key: string): void => { map.set(key, (map.get(key) ?? 0) + 1) }
    const nothing = (): void => {}
    this.recorder = {
      opened: nothing,
      closed: (_route, code) => count(this.closes, closeLabel(code)),
      messageIn: nothing,
      messageOut: nothing,
      error: (_route, code) => count(this.errors, errorLabel(code)),
      handled: nothing
    }
  }

  owns (path: string): boolean {
    return path === this.options.path + '/live'
  }

  register (fastify: FastifyInstance, inspect: RealtimeInspect): void {
    const { path, onRequest, preHandler, interval } = this.options
    const hooks = { ...(onRequest === undefined ? {} : { onRequest }), ...(preHandler === undefined ? {} : { preHandler }) }
    const html = page.replaceAll('{{path}}', path)
    fastify.get(path, hooks, async (_request, reply) => {
      reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'")
      return html
    })
    fastify.get(path + '/admin.js', hooks, async (_request, reply) => {
      reply.type('text/javascript; charset=utf-8')
      return script
    })
    this.#snapshot = () => {
      const stats = this.hub.stats()
      return {
        at: Date.now(),
        stats,
        closes: Object.fromEntries(this.closes),
        errors: Object.fromEntries(this.errors),
        connections: inspect.connections({ limit: LISTED }).items,
        rooms: inspect.rooms({ limit: LISTED }).items,
        // Every live instance's latest counts and their totals; null without an adapter that shares them.
        cluster: inspect.cluster({ limit: LISTED }).cluster
      }
    }
    const admins = this.#admins
    const push = (): void => {
      const snapshot = (this.#snapshot as () => unknown)()
      for (const conn of admins) conn.emit('snapshot', snapshot)
    }
    fastify.addHook('onClose', async () => this.#stop())
    fastify.realtime(path + '/live', {
      ...hooks,
      messages: {
        disconnect: {
          schema: Type.Object({ userId: Type.String({ minLength: 1, maxLength: 256 }) }, { additionalProperties: false }),
          handler: (conn, { userId }) => {
            conn.log.info({ userId }, 'admin page disconnected a user')
            return fastify.realtime.disconnectUser(userId, 'Disconnected by an admin')
          }
        }
      },
      emits: { snapshot: Type.Unknown() },
      onOpen: (conn) => {
        admins.add(conn)
        conn.emit('snapshot', (this.#snapshot as () => unknown)())
        // One timer for all admins, running only while one is connected.
        this.#timer ??= setInterval(push, interval).unref()
      },
      onClose: (conn) => {
        admins.delete(conn)
        if (admins.size === 0) this.#stop()
      }
    })
  }

  #stop (): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }
}
