// Building apps and connecting to them, in one place: every suite that needs
// "an app with fastify-realtime and these routes" gets it here, closed at the
// end of its test. Auth suites build on helpers/auth.ts (the same, with @fastify/jwt).
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import WebSocket from 'ws'
import realtime, { type RealtimeOptions, type RouteDefinition } from '../../index.js'

export interface AppSpec {
  /** The plugin's options. */
  options?: RealtimeOptions
  /** Path -> route definition, declared in this order (typed loosely: suites type their routes themselves). */
  routes?: Record<string, object>
  /** Collects the app's log lines, parsed, at level info. */
  logs?: unknown[]
  /** Stands in for authentication: the user is `{ sub: <x-user header> }` (or what `user` makes of it). */
  userFromHeader?: boolean | ((name: string) => object)
  fastify?: FastifyServerOptions
}

type Teardown = { teardown: (fn: () => unknown) => void }

/** An app with fastify-realtime registered, not ready yet (the test declares its own routes and hooks), closed when `t` ends. */
export async function registeredApp (t: Teardown, options: RealtimeOptions = {}, fastify: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(fastify)
  t.teardown(() => app.close())
  await app.register(realtime, options)
  return app
}

/** An app with fastify-realtime and the spec's routes, ready, closed when `t` ends. */
export async function realtimeApp (t: Teardown, spec: AppSpec = {}): Promise<FastifyInstance> {
  const logs = spec.logs
  const app = Fastify({
    ...spec.fastify,
    ...logs !== undefined && { logger: { level: 'info', stream: { write: (line: string) => { logs.push(JSON.parse(line)) } } } }
  })
  t.teardown(() => app.close())
  const user = spec.userFromHeader
  if (user !== undefined && user !== false) {
    app.addHook('onRequest', async (request) => {
      const name = request.headers['x-user']
      if (typeof name === 'string') Object.assign(request, { user: typeof user === 'function' ? user(name) : { sub: name } })
    })
  }
  await app.register(realtime, spec.options ?? {})
  for (const [path, definition] of Object.entries(spec.routes ?? {})) app.realtime(path, definition as RouteDefinition<any, any>)
  await app.ready()
  return app
}

/** The same, listening on a free port of 127.0.0.1; `url(path)` is the ws:// address of a route. */
export async function listeningApp (t: Teardown, spec: AppSpec = {}):
Promise<{ app: FastifyInstance, port: number, url: (path: string) => string }> {
  const app = await realtimeApp(t, spec)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return { app, port, url: (path) => `ws://127.0.0.1:${port}${path}` }
}

/** A raw ws client, once open. */
export async function openSocket (url: string, options: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, options)
  await once(ws, 'open')
  return ws
}
