// Which verification failures are the client's (401 / 4401 / unauthorized) and which the server's.
import t from 'tap'
import Type from 'typebox'
import { createHmac } from 'node:crypto'
import type { RouteDefinition } from '../index.js'
import { connect } from '../lib/testing.js'
import { SECRET, buildApp } from './helpers/auth.js'
import { logCollector, statusOf } from './helpers/upgrade.js'
import { isTokenFault } from '../lib/token.js'

const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url')
/** Correctly signed with the app's own secret, but with HS512, which the app does not list in `algorithms`. */
function hs512 (sub: string): string {
  const body = `${part({ alg: 'HS512', typ: 'JWT' })}.${part({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}`
  return `${body}.${createHmac('sha512', SECRET).update(body).digest('base64url')}`
}

const echo = { messages: { echo: { schema: Type.String(), handler: (_conn, data) => data } } } satisfies RouteDefinition<any, any>
const errorLines = (lines: string[]) => lines.map((l) => JSON.parse(l)).filter((l) => l.level >= 50)

t.test('a token with an algorithm the app does not accept is a client error in every mode', async (t) => {
  const logs = logCollector()
  const app = await buildApp(t, {}, { logger: { stream: logs } })
  app.realtime('/hs', { ...echo, auth: 'handshake' })
  app.realtime('/msg', { ...echo, auth: 'message' })
  await app.ready()
  t.equal(await statusOf(connect(app, '/hs', { headers: { authorization: `Bearer ${hs512('eve')}` } })), 401, 'handshake: 401')

  const first = await connect(app, '/msg')
  first.sendRaw(JSON.stringify({ type: 'auth', id: 1, data: { token: hs512('eve') } }))
  t.same(await first.closed, { code: 4401, reason: 'The token is invalid' }, 'first message: 4401')

  const live = await connect<typeof echo>(app, '/hs', { headers: { authorization: `Bearer ${app.sign('ann')}` } })
  live.sendRaw(JSON.stringify({ type: 'auth', id: 2, data: { token: hs512('ann') } }))
  t.match(await live.next('error'), { id: 2, error: { code: 'unauthorized' } }, 'refresh: unauthorized')
  t.equal(await live.request('echo', 'still here'), 'still here')
  await live.close()
  t.same(errorLines(logs.lines), [], 'nothing logged as a server error')
})

t.test('a failing key provider is a server fault and says so', async (t) => {
  const logs = logCollector()
  const app = await buildApp(t, {}, { logger: { stream: logs } }, { secret: async () => { throw new Error('vault down') } })
  app.realtime('/hs', { ...echo, auth: 'handshake' })
  app.realtime('/msg', { ...echo, auth: 'message' })
  await app.ready()
  t.equal(await statusOf(connect(app, '/hs', { headers: { authorization: `Bearer ${hs512('eve')}` } })), 500)
  const first = await connect(app, '/msg')
  first.sendRaw(JSON.stringify({ type: 'auth', data: { token: hs512('eve') } }))
  t.equal((await first.closed).code, 4500)
  const errors = errorLines(logs.lines)
  t.ok(errors.length >= 2)
  for (const line of errors) t.equal(line.err.code, 'FRT_ERR_AUTH_KEY_PROVIDER')
  t.match(errors[0].err.message, /key provider.*vault down/)
})

t.test('isTokenFault: what counts as the token\'s fault', async (t) => {
  t.equal(isTokenFault({ statusCode: 401 }), true)
  t.equal(isTokenFault({ code: 'FAST_JWT_INVALID_ALGORITHM' }), true)
  t.equal(isTokenFault({ code: 'FAST_JWT_KEY_FETCHING_ERROR' }), false)
  t.equal(isTokenFault(new Error('vault down')), false)
  t.equal(isTokenFault(undefined), false)
  t.equal(isTokenFault(null), false)
})
