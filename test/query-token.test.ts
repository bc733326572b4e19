// The query-token parameter is stripped by its decoded name, whatever its spelling on the wire.
import t from 'tap'
import Type from 'typebox'
import type { RouteDefinition } from '../index.js'
import { connect } from '../lib/testing.js'
import { buildApp } from './helpers/auth.js'
import { logCollector } from './helpers/upgrade.js'

const where = {
  messages: {
    where: { schema: Type.Null(), handler: (conn) => ({ url: conn.request.url, query: conn.request.query, user: (conn.user as { sub?: string } | undefined)?.sub }) }
  }
} satisfies RouteDefinition<any, any>

t.test('a percent-encoded access_token name is read and removed like the plain one', async (t) => {
  const logs = logCollector()
  const app = await buildApp(t, {}, { logger: { level: 'trace', stream: logs } })
  app.realtime('/q', { ...where, auth: { query: true } })
  await app.ready()
  const token = app.sign('quinn')
  for (const name of ['access%5Ftoken', 'access%5ftoken', '%61ccess_token', 'access_token']) {
    const client = await connect<typeof where>(app, `/q?x=1&${name}=${token}`)
    t.same(await client.request('where', null), { url: '/q?x=1', query: { x: '1' }, user: 'quinn' }, name)
    await client.close()
  }
  t.notOk(logs.lines.some((line) => line.includes(token)), 'the token is in no log line')
})

t.test('on a route without query auth an encoded token is stripped too, and never read', async (t) => {
  const app = await buildApp(t)
  app.realtime('/plain', where)
  await app.ready()
  const client = await connect(app, `/plain?access%5Ftoken=${app.sign('x')}&keep=%C3%A9`)
  t.match(await client.request('where', null), { url: '/plain?keep=%C3%A9', query: { keep: 'é' } })
  await client.close()
})
