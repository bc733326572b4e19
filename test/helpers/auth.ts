// Shared set-up of the auth tests: an app with @fastify/jwt configured the way
// the README recommends (one algorithm, listed explicitly), and token makers.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import jwt from '@fastify/jwt'
import { createHmac } from 'node:crypto'
import realtime, { type RealtimeOptions } from '../../index.js'

export const SECRET = 'test-secret-test-secret-test-secret!'
const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url')

export interface Tokens {
  /** A valid token for `sub`, expiring in `ttl` seconds (default an hour). */
  sign: (sub: string, ttl?: number, extra?: Record<string, unknown>) => string
}

export async function buildApp (t: { teardown: (fn: () => unknown) => void }, options: RealtimeOptions = {},
  fastifyOptions: FastifyServerOptions = {}, jwtOptions: Record<string, unknown> = {}): Promise<FastifyInstance & Tokens> {
  const app = Fastify(fastifyOptions)
  t.teardown(() => app.close())
  await app.register(jwt, {
    secret: SECRET,
    sign: { algorithm: 'HS256' },
    verify: { algorithms: ['HS256'] },
    ...jwtOptions
  })
  await app.register(realtime, options)
  return Object.assign(app as FastifyInstance, {
    sign: (sub: string, ttl = 3600, extra: Record<string, unknown> = {}) =>
      app.jwt.sign({ sub, ...extra }, { expiresIn: ttl })
  })
}

/** A well-formed token signed with a key the app does not know. */
export function foreignToken (sub: string): string {
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}`
  return `${body}.${createHmac('sha256', 'another-key-another-key-another-key').update(body).digest('base64url')}`
}

/** A token that says `alg: none` and carries no signature. */
export function unsignedToken (sub: string): string {
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}.`
}

/** A token whose `exp` has passed, correctly signed. */
export function expiredToken (app: FastifyInstance, sub: string): string {
  return app.jwt.sign({ sub, exp: Math.floor(Date.now() / 1000) - 60 })
}
