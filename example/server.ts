// The example chat: `npm start`, then open http://127.0.0.1:3000 in two tabs.
import Fastify, { type FastifyHttpOptions } from 'fastify'
import type { Server } from 'node:http'
import jwt from '@fastify/jwt'
import Type from 'typebox'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import fastifyRedis from '@fastify/redis'
import realtime, { RedisAdapter } from '../index.js'
import { chat, Name } from './chat.js'

/**
 * Server timeouts against slowloris (RELIABILITY.md): a client that opens a socket and sends half an upgrade
 * request, or drips its headers, holds a socket and a little memory each until these drop it. They only
 * apply before the upgrade: ws clears the socket's idle timeout once a WebSocket is open (the heartbeat
 * watches it from then on).
 */
export const serverTimeouts = {
  /** Idle ms on a socket before its request is complete: a half request that stalls is dropped after this. */
  connectionTimeout: 10_000,
  /** ms for a whole request; an upgrade has no body, so this bounds the handshake. */
  requestTimeout: 10_000,
  http: {
    /** ms for the request headers: a client dripping header lines is answered 408 and dropped after this. */
    headersTimeout: 10_000,
    /** How often Node checks the two above (default 30 s, which would let a stalled request live 40 s). */
    connectionsCheckingInterval: 2_000
  }
} satisfies FastifyHttpOptions<Server>

export async function buildApp (options: FastifyHttpOptions<Server> = {}) {
  const app = Fastify({ ...serverTimeouts, ...options })
  await app.register(jwt, {
    // A random key per process is enough: a page gets its token from the process it talks to.
    secret: process.env.JWT_SECRET ?? randomBytes(32).toString('hex'),
    sign: { algorithm: 'HS256', expiresIn: '1h' },
    verify: { algorithms: ['HS256'] }
  })
  // With REDIS_URL, several processes share rooms, presence and revocation through Redis (README: "Scaling
  // out over Redis"); @fastify/redis first, since the adapter needs its client. Without, all in memory.
  const redisUrl = process.env.REDIS_URL
  const scaled = redisUrl !== undefined && redisUrl !== ''
  if (scaled) await app.register(fastifyRedis, { url: redisUrl })
  await app.register(realtime, { subprotocols: ['chat.v1'], ...(scaled ? { adapter: new RedisAdapter({ client: app.redis }) } : {}) })
  app.realtime('/chat', chat)

  // Guest login: a token for a name. A real app would check a password or an SSO session here.
  app.post('/token', {
    schema: { body: Type.Object({ name: Name }, { additionalProperties: false }) }
  }, async (request) => {
    const { name } = request.body as { name: string }
    return { token: app.jwt.sign({ sub: name }) }
  })
  app.get('/', async (_request, reply) => {
    reply.type('text/html; charset=utf-8')
    return readFile(page)
  })
  return app
}

// `npm start` copies public/ next to the compiled server, so this holds in both places.
const page = new URL('./public/index.html', import.meta.url)

// The entry point, run by `npm start`; the tests build the app with buildApp().
/* c8 ignore start */
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const app = await buildApp({ logger: true })
  await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
  }
}
/* c8 ignore stop */
