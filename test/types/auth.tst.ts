import { expect, test } from 'tstyche'
import Fastify from 'fastify'
import Type from 'typebox'
import realtime, { type AuthOptions, type ConnectionCapsOptions, type RealtimeOptions, type RouteAuth } from '../../index.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    user: { sub: string, role: 'admin' | 'member', exp?: number }
  }
}

const app = Fastify()
await app.register(realtime, {
  auth: { sources: ['header', 'cookie', 'protocol'], cookieName: 'rt', timeout: 3000, grace: 1000, userId: (user) => user.sub },
  origins: ['https://app.example.com'],
  missingOrigin: 'deny',
  subprotocols: ['chat.v1'],
  connections: { max: 10_000, perIp: 20, perUser: 5, retryAfter: 10 }
})

test('plugin options are typed', () => {
  expect<RealtimeOptions>().type.toBeAssignableFrom({ auth: { sources: ['header' as const] } })
  expect<AuthOptions>().type.not.toBeAssignableFrom({ sources: ['query' as const] })
  expect<AuthOptions>().type.not.toBeAssignableFrom({ userId: 'sub' })
  expect<RealtimeOptions>().type.not.toBeAssignableFrom({ missingOrigin: 'maybe' })
  expect<ConnectionCapsOptions>().type.toBeAssignableFrom({ perIp: 1 })
})

test('route auth modes', () => {
  expect<RouteAuth>().type.toBeAssignableFrom('handshake' as const)
  expect<RouteAuth>().type.toBeAssignableFrom('message' as const)
  expect<RouteAuth>().type.toBeAssignableFrom({ query: true })
  expect<RouteAuth>().type.not.toBeAssignableFrom('cookie' as const)
})

test('conn.user is @fastify/jwt\'s user type; authorize checks are typed', () => {
  app.realtime('/admin', {
    auth: 'handshake',
    authorize: async (conn, type, data) => {
      expect(type).type.toBe<'wipe' | 'say'>()
      expect(data).type.toBe<unknown>()
      return conn.user?.role === 'admin' || type === 'say'
    },
    messages: {
      wipe: { schema: Type.Null(), handler: () => null },
      say: {
        schema: Type.Object({ text: Type.String() }),
        authorize: (conn, data) => {
          expect(data).type.toBe<{ text: string }>()
          // An auth route: the user is always there (issue 11).
          expect(conn.user).type.toBe<{ sub: string, role: 'admin' | 'member', exp?: number }>()
          return data.text.length < 100
        },
        handler: () => null
      }
    }
  })
  expect(app.realtime).type.not.toBeCallableWith('/x', { auth: 'cookie', messages: {} })
  expect(app.realtime).type.not.toBeCallableWith('/x', { authorize: () => 'yes', messages: {} })
})

test('disconnectUser', () => {
  expect(app.realtime.disconnectUser('ann')).type.toBe<number>()
  expect(app.realtime.disconnectUser(42, 'banned')).type.toBe<number>()
  expect(app.realtime.disconnectUser).type.not.toBeCallableWith({ sub: 'ann' })
})
