// The example chat as two instances sharing one real redis-server (what
// `REDIS_URL=... PORT=3000 npm start` and `PORT=3001` run): a message sent on
// one is seen on the other, and the member list spans both.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../example/server.js'
import { chat } from '../example/chat.js'
import { connect } from '../lib/testing.js'
import { startRedisServer } from './helpers/redis-server.js'

const WAIT = { timeout: 20_000 }

async function login (app: FastifyInstance, name: string) {
  const res = await app.inject({ method: 'POST', url: '/token', payload: { name } })
  const { token } = res.json() as { token: string }
  return connect<typeof chat>(app, '/chat', { headers: { authorization: `Bearer ${token}` }, timeout: WAIT.timeout })
}

t.test('two example instances on one Redis chat with each other', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const previous = process.env.REDIS_URL
  process.env.REDIS_URL = redis.url
  t.teardown(() => {
    if (previous === undefined) delete process.env.REDIS_URL
    else process.env.REDIS_URL = previous
  })
  const one = await buildApp()
  t.teardown(() => one.close())
  const two = await buildApp()
  t.teardown(() => two.close())
  t.ok(one.hasDecorator('redis') && two.hasDecorator('redis'), 'REDIS_URL switches the example to Redis')

  const alice = await login(one, 'alice')
  const bob = await login(two, 'bob')
  t.teardown(() => alice.close())
  t.teardown(() => bob.close())
  await alice.request('enter', { room: 'lobby' })
  const members = await bob.request('enter', { room: 'lobby' }) as { members: Array<{ userId: string }> }
  t.same(members.members.map((m) => m.userId).sort(), ['alice', 'bob'], 'bob sees alice, who is on the other instance')

  t.equal(await alice.request('say', { room: 'lobby', text: 'hello from one' }), true)
  const got = await bob.next('said', WAIT)
  t.match(got, { room: 'room:lobby', data: { from: 'alice', text: 'hello from one' } })
  t.equal(await bob.request('say', { room: 'lobby', text: 'hi from two' }), true)
  t.match((await alice.next('said', WAIT)).data, { from: 'alice', text: 'hello from one' })
  t.match((await alice.next('said', WAIT)).data, { from: 'bob', text: 'hi from two' })
  t.equal(alice.received.filter((m) => m.type === 'said').length, 2, 'alice got her own message once, and bob\'s')
})
