// fastify-realtime: wiring only. Options are resolved once, @fastify/websocket is
// registered when the app has not done so, and `app.realtime(path, definition)`
// declares routes through Fastify's own router so every hook runs on the upgrade.
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import { resolveOptions } from './lib/options.js'
import { Hub } from './lib/hub.js'
import { CompiledRoute } from './lib/route.js'
import type { RealtimeOptions } from './types/options.js'
import type { RealtimeDecorator } from './types/fastify.js'
import type { RouteDefinition, SchemaMap } from './types/route.js'

export * from './types/options.js'
export * from './types/route.js'
export * from './types/fastify.js'
export * as errors from './lib/errors.js'
export { CloseCode, ErrorCode, MessageType, PROTOCOL_VERSION } from './lib/protocol.js'

// Fastify's own register options reach the plugin too; they are not ours to check.
const FASTIFY_KEYS = ['prefix', 'logLevel', 'logSerializers'] as const

const plugin: FastifyPluginAsync<RealtimeOptions> = async function fastifyRealtime (fastify, opts) {
  const ownOptions: Record<string, unknown> = { ...opts }
  for (const key of FASTIFY_KEYS) delete ownOptions[key]
  const options = resolveOptions(ownOptions)
  const hub = new Hub()
  const shutdown = (): Promise<void> => hub.shutdown(options.shutdownGrace)

  if (!fastify.hasDecorator('websocketServer')) {
    await fastify.register(websocket, {
      // closeTimeout is a ws 8.18+ option that @types/ws does not list yet.
      options: {
        ...options.websocket,
        maxPayload: options.maxPayload,
        perMessageDeflate: options.perMessageDeflate,
        closeTimeout: options.closeTimeout
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

  const realtime = function (this: FastifyInstance, path: string, definition: RouteDefinition<SchemaMap, SchemaMap>) {
    const route = new CompiledRoute(path, definition, options, hub)
    const { messages, emits, onOpen, onClose, ...routeOptions } = definition
    this.route({
      ...routeOptions,
      method: 'GET',
      url: path,
      handler: notAnUpgrade,
      wsHandler: (socket, request) => route.accept(socket, request)
    })
    return this
  } as RealtimeDecorator
  realtime.stats = () => hub.stats()

  fastify.decorate('realtime', realtime)
}

async function notAnUpgrade (): Promise<never> {
  const err = new Error('This route only accepts WebSocket upgrades') as Error & { statusCode: number }
  err.statusCode = 426
  throw err
}

const realtime = fp(plugin, {
  fastify: '5.x',
  name: 'fastify-realtime'
})

export default realtime
export { realtime }
