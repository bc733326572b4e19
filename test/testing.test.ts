import t, { type Test } from 'tap'
import Type from 'typebox'
import { realtimeApp } from './helpers/app.js'
import { defineRoute } from '../index.js'
import { connect } from '../lib/testing.js'
import { until } from './helpers/wait.js'

const route = defineRoute({
  messages: {
    twice: { schema: Type.Number(), handler: (conn, n) => { conn.emit('n', n); conn.emit('n', n + 1) } },
    quiet: { schema: Type.Null(), handler: () => new Promise(() => {}) },
    leave: { schema: Type.Null(), handler: (conn) => { conn.close(4000, 'bye') } }
  },
  emits: { n: Type.Number() }
})

const build = (t: Test) => realtimeApp(t, { routes: { '/r': route } })

t.test('next takes buffered messages in order, then waits for new ones', async (t) => {
  const app = await build(t)
  const client = await connect<typeof route>(app, '/r')
  client.send('twice', 1)
  await until(() => client.received.length === 2, 'both replies to be buffered')
  t.equal((await client.next('n')).data, 1)
  t.equal((await client.next('n')).data, 2)
  const later = client.next('n')
  client.send('twice', 10)
  t.equal((await later).data, 10)
  t.equal(client.received.length, 4, 'received keeps everything')
})

t.test('waits fail with coded errors on timeout and on close', async (t) => {
  const app = await build(t)
  const client = await connect<typeof route>(app, '/r', { timeout: 50 })
  await t.rejects(client.next('n'), { code: 'FRT_ERR_TESTING_TIMEOUT' })
  await t.rejects(client.request('quiet', null, { timeout: 30 }), { code: 'FRT_ERR_TESTING_TIMEOUT' })
  const pending = client.next('n', { timeout: 5000 })
  client.send('leave', null)
  await t.rejects(pending, { code: 'FRT_ERR_TESTING_CLOSED' })
  t.same(await client.closed, { code: 4000, reason: 'bye' })
  await t.rejects(client.next('n'), { code: 'FRT_ERR_TESTING_CLOSED' })
  t.same(await client.close(), { code: 4000, reason: 'bye' }, 'closing twice is harmless')
})

t.test('a refused upgrade rejects with the HTTP status', async (t) => {
  const app = await build(t)
  const err = await connect(app, '/nowhere').catch((e: any) => e)
  t.equal(err.statusCode, 404)
})
