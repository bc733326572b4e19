// fastify-realtime: wiring only. Options are resolved once, @fastify/websocket is
// registered when the app has not done so, and `app.realtime(path, definition)`
// declares routes through Fastify's own router so every hook runs on the upgrade.
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { checkServerOptions, resolveOptions } from './lib/options.js'
import { FRT_ERR_ROUTE_UPGRADE_REQUIRED } from './lib/errors.js'
import { Hub } from './lib/hub.js'
import { MemoryStore } from './lib/stores/memory.js'
import { BoundedStore } from './lib/timeout.js'
import { watchClientErrors } from './lib/redis-errors.js'
import { compileRoute } from './lib/route.js'
import { Pipeline, closeOnAuthDeadline } from './lib/pipeline.js'
import { Heartbeat } from './lib/heartbeat.js'
import { Auth } from './lib/auth.js'
import { Handshake } from './lib/handshake.js'
import { Observability } from './lib/observability.js'
import { socketErrorHandler, withSharedErrorListener } from './lib/socket-errors.js'
import { MemoryHistory } from './lib/history/memory.js'
import { MemorySessions } from './lib/sessions/memory.js'
import { Drain } from './lib/drain.js'
import type { RoomHistory } from './lib/rooms.js'
import type { ResolvedOptions } from './lib/options.js'
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
export * from './types/observability.js'
export * from './types/history.js'
export * from './types/session.js'
export { MemoryHistory, type MemoryHistoryOptions } from './lib/history/memory.js'
export { RedisHistory, type RedisHistoryOptions } from './lib/history/redis.js'
export { MemorySessions, type MemorySessionsOptions } from './lib/sessions/memory.js'
export { RedisSessions, type RedisSessionsOptions, type RedisSessionsClient } from './lib/sessions/redis.js'
export { MemoryStore, type MemoryStoreOptions } from './lib/stores/memory.js'
export { RedisStore, type RedisStoreOptions, type RedisStoreClient } from './lib/stores/redis.js'
export { MemoryAdapter, MemoryBus } from './lib/adapters/memory.js'
export { RedisAdapter, type RedisAdapterOptions, type RedisAdapterClient } from './lib/adapters/redis.js'
export * as errors from './lib/errors.js'
export { CloseCode, ErrorCode, MessageType, PROTOCOL_VERSION } from './lib/protocol.js'
export { defineRoute } from './lib/route.js'
export { MESSAGE_CHANNEL, type MessageContext } from './lib/tracing.js'
export { DELIVER_CHANNEL, type DeliverContext } from './lib/trace-context.js'
export { socketErrorHandler } from './lib/socket-errors.js'

// Fastify's own register options reach the plugin too; they are not ours to check.
const FASTIFY_KEYS = ['prefix', 'logLevel', 'logSerializers'] as const

const plugin: FastifyPluginAsync<RealtimeOptions> = async function fastifyRealtime (fastify, opts) {
  const ownOptions: Record<string, unknown> = { ...opts }
  for (const key of FASTIFY_KEYS) delete ownOptions[key]
  const options = resolveOptions(ownOptions)
  // The default store is ours to close; a store the app passed in is not.
  const ownStore = options.rateLimit !== false && options.rateLimit.store === null ? new MemoryStore() : null
  // Every store call is bounded (lib/timeout.ts): a dead Redis must not stall frames for minutes.
  const boundedStore = options.rateLimit === false ? null : new BoundedStore(options.rateLimit.store ?? ownStore as MemoryStore, options.rateLimit.storeTimeout)
  const { history, ownHistory } = roomHistory(options)
  // Stores we made are ours to close; stores the app passed in are not.
  const ownSessions = options.sessions !== false && options.sessions.store === null ? new MemorySessions() : null
  const sessionStore = options.sessions === false ? null : options.sessions.store ?? ownSessions
  const hub = new Hub(options, fastify.log, boundedStore, history, sessionStore)
  const drain = new Drain(hub, options)
  const heartbeat = options.heartbeat === false ? null : new Heartbeat(hub, options.heartbeat)
  const auth = new Auth(options.auth, closeOnAuthDeadline)
  const sse = new SseEndpoint(auth, options.closeTimeout, options.maxPayload, hub.rooms)
  // A rolling restart first (the drain option), then the bounded close of what is left; SSE streams are
  // closed by the hub's shutdown, and none may open after it began.
  const shutdown = async (): Promise<void> => {
    sse.closing = true
    if (options.drain !== false) await drain.run(options.drain)
    await hub.shutdown(options.shutdownGrace)
  }
  const handshake = new Handshake(options, auth, drain.refuse)
  // Metrics, the admin page, inspection and the AsyncAPI document (lib/observability.ts).
  const obs = await Observability.create(hub, options, ownOptions)
  // The adapter learns how to reach this instance's sockets (another instance's disconnectUser).
  await hub.rooms.adapter.attach?.({
    log: fastify.log,
    disconnectUser: (id, reason) => auth.disconnectUser(id, reason),
    sessionResumed: (connId) => hub.sessions?.resumedElsewhere(connId),
    resubscribed: (rooms) => hub.rooms.resync(rooms),
    counts: () => obs.cluster.publish()
  })
  // One warning per Redis outage instead of ioredis's "Unhandled error event" (lib/redis-errors.ts).
  const unwatchRedis = watchClientErrors([options.rateLimit === false ? null : options.rateLimit.store, options.adapter], fastify.log)
  const ownServer = !fastify.hasDecorator('websocketServer')
  // Options that would be silently ignored fail here instead (issue 11).
  checkServerOptions(ownOptions, ownServer)
  fastify.addHook('onReady', async () => {
    heartbeat?.start()
    hub.sessions?.start()
  })
  fastify.addHook('onClose', async () => {
    heartbeat?.stop()
    hub.sessions?.stop()
    hub.conflation.stop()
    ownStore?.close()
    boundedStore?.close()
    unwatchRedis()
    ownHistory?.close()
    ownSessions?.close()
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
      // Client-caused ws errors are not server faults (lib/socket-errors.ts).
      errorHandler: socketErrorHandler,
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
    // The full URL (with the plugin prefix) names the route in metrics, inspection and the AsyncAPI document.
    const url = this.prefix + path
    const route = compileRoute(url, definition, options, hub.rateLimitStore)
    // The app-wide policies of app.realtime.to(room): two routes that disagree fail here (lib/delivery.ts).
    hub.rooms.deliveries.declare(url, route.policies)
    const pipeline = new Pipeline(route, hub, auth, options, obs.recorder)
    obs.declare(url, definition)
    const guarded = handshake.guard(this, path, route.auth, route.fastifyOptions)
    this.route({
      ...guarded,
      method: 'GET',
      url: path,
      handler: route.sse ? sse.streamHandler(pipeline, route) : notAnUpgrade,
      // Our own @fastify/websocket: one shared error listener instead of its closure per socket (lib/socket-errors.ts).
      wsHandler: ownServer ? withSharedErrorListener(pipeline.accept) : pipeline.accept
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
  realtime.asyncapi = () => obs.asyncapi()
  realtime.inspect = obs.inspect
  realtime.drain = async (drainOptions?: { spread?: number, batch?: number }) => drain.run(drain.resolve(drainOptions))

  fastify.decorate('realtime', realtime)
  // The document's route and the admin page, once app.realtime exists.
  obs.routesOn(fastify)
}

/** The rooms' history: the app's store, else the adapter's (RedisAdapter with `history`), else one of ours. */
function roomHistory (options: ResolvedOptions): { history: RoomHistory | null, ownHistory: MemoryHistory | null } {
  if (options.history === false) return { history: null, ownHistory: null }
  const adapterHistory = options.history.store === null ? options.adapter?.history : undefined
  const ownHistory = options.history.store === null && adapterHistory === undefined ? new MemoryHistory() : null
  const store = options.history.store ?? adapterHistory ?? ownHistory as MemoryHistory
  const { rooms, replay, hold } = options.history
  return {
    history: { store, rooms, replay, hold, byAdapter: adapterHistory !== undefined && typeof options.adapter?.sequence === 'function' },
    ownHistory
  }
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
