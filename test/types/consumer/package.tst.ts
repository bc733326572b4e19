// The built package as an app sees it (see tsconfig.json next to this file).
import { expect, test } from 'tstyche'
import Fastify, { type FastifyInstance } from 'fastify'
import Type from 'typebox'
import type { UserType } from '@fastify/jwt'
import realtime, { errors, socketErrorHandler, type Connection, type RealtimeOptions } from 'fastify-realtime'
import { connect } from 'fastify-realtime/testing'

test('the plugin registers and decorates the app', async () => {
  const app = Fastify()
  await app.register(realtime, { origins: 'same-origin', rateLimit: { storeTimeout: 500 } } satisfies RealtimeOptions)
  expect(app.realtime('/ws', { messages: {} })).type.toBe<FastifyInstance>()
  expect(app.realtime.stats).type.not.toBe<never>()
  expect(connect).type.not.toBe<never>()
  expect(socketErrorHandler).type.not.toBe<never>()
  expect(new errors.FRT_ERR_STORE_TIMEOUT(1).code).type.toBe<'FRT_ERR_STORE_TIMEOUT'>()
})

test('conn.user is typed by the auth mode', async () => {
  const app = Fastify()
  await app.register(realtime)
  app.realtime('/a', {
    auth: 'handshake',
    messages: { m: { schema: Type.Null(), handler: (conn) => { expect(conn.user).type.toBe<UserType>() } } }
  })
  app.realtime('/b', {
    onOpen: (conn) => { expect(conn).type.toBeAssignableTo<Connection>() },
    messages: { m: { schema: Type.Null(), handler: (conn) => { expect(conn.user).type.toBe<UserType | undefined>() } } }
  })
})
