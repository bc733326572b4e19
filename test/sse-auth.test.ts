// Auth on the SSE transport: handshake auth on the stream and on every POST
// (which must be the stream's user's), single-use tickets for an EventSource,
// first-message auth over a POST, expiry and revocation as final events; and the
// transport over HTTP/2.
import t from 'tap'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { Type } from 'typebox'
import { buildApp, expiredToken } from './helpers/auth.js'
import { openStream, post } from './helpers/sse.js'
import { startOfSecond, until } from './helpers/wait.js'
import type { RealtimeOptions } from '../index.js'

const whoami = {
  sse: true,
  auth: 'handshake' as const,
  messages: {
    whoami: { schema: Type.Object({}), handler: (conn: any) => conn.user.sub }
  }
}

async function authApp (t: Tap.Test, options: RealtimeOptions = {}, route: object = whoami, fastify = {}) {
  const app = await buildApp(t, options, fastify)
  app.realtime('/rt', route as typeof whoami)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return { app, http: `http://127.0.0.1:${port}/rt`, port }
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

t.test('handshake auth on the stream and on every POST', async (t) => {
  const { app, http } = await authApp(t)
  await t.rejects(openStream(http), { status: 401 }, 'no token')
  await t.rejects(openStream(http, bearer(expiredToken(app, 'ann'))), { status: 401 }, 'expired')
  const stream = await openStream(http, bearer(app.sign('ann')))
  t.same((await stream.post({ type: 'whoami', id: 1, data: {} }, bearer(app.sign('ann')))).body.data, 'ann')
  t.equal((await stream.post({ type: 'whoami', id: 2, data: {} })).status, 401, 'a POST without a token')
  t.equal((await stream.post({ type: 'whoami', id: 3, data: {} }, bearer(app.sign('bob')))).status, 403,
    'a POST by another user, even knowing the session id')
  stream.close()
})

t.test('a ticket opens one stream, once, for its user; the token stays out of the URL', async (t) => {
  const { app, http } = await authApp(t, { auth: { ticketTtl: 60_000 } })
  t.equal((await post(http, '')).status, 401, 'tickets are for authenticated users')
  const issued = await post(http, '', bearer(app.sign('ann')))
  t.equal(issued.status, 200)
  t.match(issued.body, { ticket: /^[\w-]{24}$/, expiresIn: 60_000 })
  const stream = await openStream(`${http}?ticket=${issued.body.ticket}`)
  t.same((await stream.post({ type: 'whoami', id: 1, data: {} }, bearer(app.sign('ann')))).body.data, 'ann')
  await t.rejects(openStream(`${http}?ticket=${issued.body.ticket}`), { status: 401 }, 'single use')
  await t.rejects(openStream(`${http}?ticket=${'x'.repeat(24)}`), { status: 401 }, 'unknown')
  stream.close()
})

t.test('a ticket expires', async (t) => {
  const { app, http } = await authApp(t, { auth: { ticketTtl: 1 } })
  const first = await post(http, '', bearer(app.sign('ann')))
  await new Promise((resolve) => setTimeout(resolve, 5))
  // Issuing prunes expired tickets (and redeeming an expired one fails).
  const second = await post(http, '', bearer(app.sign('ann')))
  await t.rejects(openStream(`${http}?ticket=${first.body.ticket}`), { status: 401 })
  await new Promise((resolve) => setTimeout(resolve, 5))
  await t.rejects(openStream(`${http}?ticket=${second.body.ticket}`), { status: 401 })
})

t.test('revocation and expiry end the stream with 4401', async (t) => {
  const { app, http } = await authApp(t)
  const stream = await openStream(http, bearer(app.sign('ann')))
  t.equal(app.realtime.disconnectUser('ann'), 1)
  t.same((await stream.next((d) => d.type === 'sse:close')).data, { code: 4401, reason: 'Access revoked' })
  await stream.ended
  await startOfSecond()
  const short = await openStream(http, bearer(app.sign('ann', 1)))
  t.same((await short.next((d) => d.type === 'sse:close')).data, { code: 4401, reason: 'Token expired' })
})

t.test('first-message auth: the auth frame is POSTed to the session', async (t) => {
  const { app, http } = await authApp(t, {}, { ...whoami, auth: 'message' })
  const stream = await openStream(http)
  const ack = await stream.post({ type: 'auth', id: 1, data: { token: app.sign('ann') } })
  t.equal(ack.body.type, 'ack')
  t.same((await stream.post({ type: 'whoami', id: 2, data: {} })).body.data, 'ann')
  t.equal((await post(http, '')).status, 400, 'no tickets on a first-message route')
  stream.close()
})

t.test('over HTTP/2: stream, POSTs and close on one session', async (t) => {
  const { app, port } = await authApp(t, {}, whoami, { http2: true })
  const session = http2.connect(`http://127.0.0.1:${port}`)
  t.teardown(() => session.close())
  const url = `http://127.0.0.1:${port}/rt`
  const stream = await openStream(url, bearer(app.sign('ann')), session)
  t.equal(stream.headers['x-accel-buffering'], 'no')
  t.same((await stream.post({ type: 'whoami', id: 1, data: {} }, bearer(app.sign('ann')))).body,
    { type: 'ack', id: 1, data: 'ann' })
  t.equal((await stream.post({ type: 'whoami', data: {} }, bearer(app.sign('ann')))).status, 202)
  app.realtime.disconnectUser('ann')
  t.same((await stream.next((d) => d.type === 'sse:close')).data.code, 4401)
  await stream.ended
  await until(() => app.realtime.stats().connections === 0, 'the connection to close')
})
