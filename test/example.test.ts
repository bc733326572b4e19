import t from 'tap'
import { buildApp } from '../example/server.js'
import { chat } from '../example/chat.js'
import { connect } from '../lib/testing.js'

t.test('the example chat delivers a message to every participant', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const alice = await connect<typeof chat>(app, '/chat')
  const bob = await connect<typeof chat>(app, '/chat')
  t.same(await alice.request('hello', { name: 'alice' }), { you: 'alice' })
  t.same(await alice.request('say', { text: 'hi bob' }), { delivered: 2 })
  const [forBob, forAlice] = await Promise.all([bob.next('said'), alice.next('said')])
  t.match(forBob.data, { from: 'alice', text: 'hi bob' })
  t.same(forAlice.data, forBob.data)
  const bad = await bob.request('hello', { name: '<script>' }).catch((e) => e)
  t.equal(bad.error.code, 'invalid_data')
  const res = await app.inject('/')
  t.equal(res.statusCode, 200)
  t.match(res.body, /new WebSocket/)
})
