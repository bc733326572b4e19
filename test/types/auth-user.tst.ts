import { expect, test } from 'tstyche'
import Fastify from 'fastify'
import Type from 'typebox'
import type { UserType } from '@fastify/jwt'
import realtime, { defineRoute, type EmitsOf, type InboundOf } from '../../index.js'

const app = Fastify()
await app.register(realtime)

test('conn.user is always there on an auth route, in every mode', () => {
  for (const auth of ['handshake', 'message'] as const) {
    app.realtime('/a', {
      auth,
      onOpen: (conn) => { expect(conn.user).type.toBe<UserType>() },
      messages: { m: { schema: Type.Null(), handler: (conn) => { expect(conn.user).type.toBe<UserType>() } } }
    })
  }
  app.realtime('/q', {
    auth: { query: true },
    authorize: (conn) => { expect(conn.user).type.toBe<UserType>(); return true },
    messages: { m: { schema: Type.Null(), handler: (conn) => { expect(conn.user).type.toBe<UserType>() } } }
  })
})

test('conn.user may be missing on a route without auth', () => {
  app.realtime('/open', {
    messages: { m: { schema: Type.Null(), handler: (conn) => { expect(conn.user).type.toBe<UserType | undefined>() } } }
  })
})

test('defineRoute keeps the auth typing, and InboundOf/EmitsOf still work', () => {
  const route = defineRoute({
    auth: 'handshake',
    messages: { say: { schema: Type.String(), handler: (conn) => { expect(conn.user).type.toBe<UserType>() } } },
    emits: { said: Type.Number() }
  })
  app.realtime('/d', route)
  expect<keyof InboundOf<typeof route>>().type.toBe<'say'>()
  expect<keyof EmitsOf<typeof route>>().type.toBe<'said'>()
})
