// Everything that runs before the upgrade, in this order: the Origin check
// (403), the total and per-address caps (503/429), handshake auth (401), the
// app's own route hooks, and last the per-user cap (429), which needs the user
// whichever hook verified it. Cheap refusals come before any crypto. Also keeps
// tokens out of the URL and out of the selected subprotocol for the whole server.
import type { FastifyInstance, RouteShorthandOptions } from 'fastify'
import { FRT_ERR_AUTH_NO_JWT } from './errors.js'
import type { Auth, RouteAuthConfig } from './auth.js'
import { ConnectionCaps } from './caps.js'
import { originHook, type OriginHook } from './origin.js'
import { protocolSelector, queryTokenStripper } from './token.js'
import type { ResolvedOptions } from './options.js'

type Hooks = RouteShorthandOptions['onRequest']

export class Handshake {
  readonly auth: Auth
  readonly caps: ConnectionCaps | null
  readonly origin: OriginHook | null
  /** The ws `handleProtocols` when fastify-realtime registers @fastify/websocket. */
  readonly handleProtocols: ReturnType<typeof protocolSelector>
  readonly #options: ResolvedOptions
  /** Refuses upgrades while the instance drains for a rolling restart (lib/drain.ts); first of all the guards. */
  readonly #draining: unknown

  constructor (options: ResolvedOptions, auth: Auth, draining: unknown = null) {
    this.#options = options
    this.auth = auth
    this.#draining = draining
    const { max, perIp, perUser } = options.connections
    this.caps = max + perIp + perUser > 0
      ? new ConnectionCaps(options.connections, (user) => auth.userKey(user))
      : null
    this.origin = originHook(options.origins, options.missingOrigin)
    this.handleProtocols = protocolSelector(options.subprotocols, options.auth.protocolPrefix,
      options.websocket.handleProtocols as Parameters<typeof protocolSelector>[2])
  }

  /** Installs the server-wide parts: the URL token stripper, and token-safe subprotocol selection on an app's own ws server. */
  attach (fastify: FastifyInstance, ownServer: boolean): void {
    const strip = queryTokenStripper(this.#options.auth.queryParam)
    fastify.server.prependListener('upgrade', strip)
    fastify.addHook('onClose', async () => {
      fastify.server.removeListener('upgrade', strip)
      this.auth.close()
    })
    if (!ownServer) {
      const wss = fastify.websocketServer
      wss.options.handleProtocols = protocolSelector(
        this.#options.subprotocols, this.#options.auth.protocolPrefix, wss.options.handleProtocols)
    }
  }

  /** The route's Fastify options with the guards around the app's hooks. */
  guard<T extends RouteShorthandOptions> (fastify: FastifyInstance, path: string, authConfig: RouteAuthConfig | null,
    routeOptions: T): T {
    if (authConfig !== null && !fastify.hasRequestDecorator('jwtVerify')) throw new FRT_ERR_AUTH_NO_JWT(path)
    const before: unknown[] = []
    if (this.#draining !== null) before.push(this.#draining)
    if (this.origin !== null) before.push(this.origin)
    if (this.caps !== null) before.push(this.caps.acquire)
    if (authConfig?.mode === 'handshake') before.push(this.auth.handshake(authConfig))
    const guarded = { ...routeOptions }
    if (before.length > 0) guarded.onRequest = [...before, ...list(routeOptions.onRequest)] as Hooks
    if (this.caps !== null && this.#options.connections.perUser > 0) {
      guarded.preHandler = [...list(routeOptions.preHandler), this.caps.acquireUser] as Hooks
    }
    return guarded
  }
}

function list (hooks: unknown): unknown[] {
  if (hooks === undefined || hooks === null) return []
  return Array.isArray(hooks) ? hooks : [hooks]
}
