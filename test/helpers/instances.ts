// Several app instances in one process, each with its own fan-out adapter
// (and, for Redis, its own ioredis clients): what a cluster looks like to the
// shared adapter suite and the Redis fault tests.
import { once } from 'node:events'
import Fastify, { type FastifyInstance } from 'fastify'
import Type from 'typebox'
import { Cluster, Redis } from 'ioredis'
import realtime, { RedisAdapter, type FanoutAdapter, type RedisAdapterOptions, type RouteDefinition } from '../../index.js'
import type { RealtimeOptions } from '../../types/options.js'

const RoomData = Type.Object({ room: Type.String() })

export const route = {
  joinable: true,
  messages: {
    enter: { schema: RoomData, handler: (conn, data) => conn.join(data.room) },
    exit: { schema: RoomData, handler: (conn, data) => conn.leave(data.room) },
    say: {
      schema: Type.Object({ room: Type.String(), text: Type.String() }),
      handler: (conn, data) => { conn.to(data.room).emit('said', { text: data.text }) }
    }
  },
  emits: { said: Type.Object({ text: Type.String() }) }
} satisfies RouteDefinition<any, any>

export interface Instance {
  app: FastifyInstance
  adapter: FanoutAdapter
  /** The app's own Redis client (what @fastify/redis would hold), or null. */
  client: Redis | Cluster | null
}

/** Builds one app on `adapter`; the user is whoever the `x-user` header names. */
export async function buildApp (adapter: FanoutAdapter, options: RealtimeOptions = {}, presence = false, logs?: string[]): Promise<FastifyInstance> {
  const app = Fastify({ logger: logs === undefined ? false : { level: 'info', stream: { write: (line: string) => { logs.push(line) } } } })
  app.addHook('onRequest', async (request) => {
    const name = request.headers['x-user']
    if (typeof name === 'string') Object.assign(request, { user: { sub: name } })
  })
  await app.register(realtime, { heartbeat: false, rateLimit: false, adapter, ...options })
  app.realtime('/chat', { ...route, presence })
  await app.ready()
  return app
}

export type ClientFactory = () => Redis | Cluster

export function redisClient (url: string): ClientFactory {
  return () => new Redis(url)
}

export function clusterClient (nodes: Array<{ host: string, port: number }>): ClientFactory {
  return () => new Cluster(nodes)
}

/** An app on a RedisAdapter over a client of its own, ready. */
export async function redisInstance (factory: ClientFactory, options: Omit<RedisAdapterOptions, 'client'> = {},
  pluginOptions: RealtimeOptions = {}, presence = false, logs?: string[]): Promise<Instance> {
  const client = factory()
  // Tests look at failures through stats(), not through unhandled 'error' events.
  client.on('error', () => {})
  if (client.status !== 'ready') await once(client, 'ready')
  const adapter = new RedisAdapter({ client, ...options })
  const app = await buildApp(adapter, pluginOptions, presence, logs)
  return { app, adapter, client }
}

/** Closes the app (and so the adapter's own connection), then the client the app was given. */
export async function closeInstance (instance: Instance): Promise<void> {
  await instance.app.close()
  instance.client?.disconnect()
}

export { until } from './wait.js'
