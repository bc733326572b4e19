// fastify-realtime: wiring only. Options are resolved once, @fastify/websocket is
// registered when the app has not done so, and `app.realtime(path, definition)`
// declares routes through Fastify's own router so every hook runs on the upgrade.
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { resolveOptions } from './lib/options.js'
import { FRT_ERR_ROUTE_UPGRADE_REQUIRED } from './lib/errors.js'
import { Hub } from './lib/hub.js'
import { MemoryStore } from './lib/stores/memory.js'
import { compileRoute } from './lib/route.js'
import { Pipeline, closeOnAuthDeadline } from './lib/pipeline.js'
import { Heartbeat } from './lib/heartbeat.js'
import { Auth } from './lib/auth.js'
import { Handshake } from './lib/handshake.js'
import { SseEndpoint } from './lib/sse.js'
import type { RealtimeOptions } from './types/options.js'
import type { RealtimeDecorator } from './types/fastify.js'
import type { RouteDefinition, SchemaMap } from './types/route.js'

export * from './types/options.js'
export * from './types/route.js'
export * from './types/fastify.js'
export * from './types/rooms.js'
export * from './types/adapter.js'
export * from './types/auth.js'
export * from './types/limits.js'
export * from './types/store.js'
export { MemoryStore, type MemoryStoreOptions } from './lib/stores/memory.js'
export { RedisStore, type RedisStoreOptions, type RedisStoreClient } from './lib/stores/redis.js'
export { MemoryAdapter, MemoryBus } from './lib/adapters/memory.js'
export { RedisAdapter, type RedisAdapterOptions, type RedisAdapterClient } from './lib/adapters/redis.js'
export * as errors from './lib/errors.js'
export { CloseCode, ErrorCode, MessageType, PROTOCOL_VERSION } from './lib/protocol.js'
export { defineRoute } from './lib/route.js'

// Fastify's own register options reach the plugin too; they are not ours to check.
const FASTIFY_KEYS = ['prefix', 'logLevel', 'logSerializers'] as const

const plugin: FastifyPluginAsync<RealtimeOptions> = async function fastifyRealtime (fastify, opts) {
  const ownOptions: Record<string, unknown> = { ...opts }
  for (const key of FASTIFY_KEYS) delete ownOptions[key]
  const options = resolveOptions(ownOptions)
  // The default store is ours to close; a store the app passed in is not.
  const ownStore = options.rateLimit !== false && options.rateLimit.store === null ? new MemoryStore() : null
  const store = options.rateLimit === false ? null : options.rateLimit.store ?? ownStore
  const hub = new Hub(options, fastify.log, store)
  const heartbeat = options.heartbeat === false ? null : new Heartbeat(hub, options.heartbeat)
  const auth = new Auth(options.auth, closeOnAuthDeadline)
  const sse = new SseEndpoint(auth, options.closeTimeout, options.maxPayload)
  // Streams are closed by the hub's shutdown; none may open after it began.
  const shutdown = (): Promise<void> => {
    sse.closing = true
    return hub.shutdown(options.shutdownGrace)
  }
  const handshake = new Handshake(options, auth)
  // The adapter learns how to reach this instance's sockets (another instance's disconnectUser).
  await hub.rooms.adapter.attach?.({ log: fastify.log, disconnectUser: (id, reason) => auth.disconnectUser(id, reason) })
  const ownServer = !fastify.hasDecorator('websocketServer')
  fastify.addHook('onReady', async () => heartbeat?.start())
  fastify.addHook('onClose', async () => {
    heartbeat?.stop()
    ownStore?.close()
    await hub.rooms.close()
  })

  if (ownServer) {
    await fastify.register(websocket, {
      // closeTimeout is a ws 8.18+ option that @types/ws does not list yet.
      options: {
        ...options.websocket,
        maxPayload: options.maxPayload,
        perMessageDeflate: options.perMessageDeflate,
        closeTimeout: options.closeTimeout,
        handleProtocols: handshake.handleProtocols
      } as Record<string, unknown>,
      preClose: async function (this: FastifyInstance) {
        await shutdown()
        this.websocketServer.close()
      }
    })
  } else {
    // The app brought its own @fastify/websocket (and its ws options); ours still
    // close our sockets with 1001 on shutdown.
    fastify.addHook('preClose', shutdown)
  }
  handshake.attach(fastify, ownServer)

  const realtime = function (this: FastifyInstance, path: string, definition: RouteDefinition<SchemaMap, SchemaMap>) {
    const route = compileRoute(path, definition, options, hub.rateLimitStore)
    const pipeline = new Pipeline(route, hub, auth, options)
    const guarded = handshake.guard(this, path, route.auth, route.fastifyOptions)
    this.route({
      ...guarded,
      method: 'GET',
      url: path,
      handler: route.sse ? sse.streamHandler(pipeline) : notAnUpgrade,
      wsHandler: pipeline.accept
    })
    if (route.sse) sse.declarePosts(this, path, guarded, pipeline, route.auth)
    return this
  } as RealtimeDecorator
  realtime.stats = () => hub.stats()
  realtime.rateLimit = async (key: string, limit: { rate: number, burst: number, cost?: number }) =>
    hub.rateLimitStore === null
      ? { allowed: true, remaining: limit.burst, retryAfter: 0 }
      : hub.rateLimitStore.take(`app:${key}`, limit.rate, limit.burst, limit.cost ?? 1)
  realtime.disconnectUser = (id: string | number, reason?: string) => {
    hub.rooms.adapter.disconnectUser?.(String(id), reason)
    return auth.disconnectUser(id, reason)
  }
  realtime.to = (room: string) => hub.rooms.to(room, null)
  realtime.presence = async (room: string) => hub.rooms.presenceEverywhere(room)

  fastify.decorate('realtime', realtime)
}

async function notAnUpgrade (): Promise<never> {
  throw new FRT_ERR_ROUTE_UPGRADE_REQUIRED()
}

const realtime = fp(plugin, {
  fastify: '5.x',
  name: 'fastify-realtime'
})

export default realtime
export { realtime }
