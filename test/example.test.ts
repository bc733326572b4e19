import t from 'tap'
import { buildApp } from '../example/server.js'
import { chat } from '../example/chat.js'
import { connect } from '../lib/testing.js'

async function guest (app: Awaited<ReturnType<typeof buildApp>>, name: string) {
  const res = await app.inject({ method: 'POST', url: '/token', payload: { name } })
  const { token } = res.json()
  return connect<typeof chat>(app, '/chat', { headers: { authorization: `Bearer ${token}` } })
}

t.test('the example chat: guests, rooms, presence and messages', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const alice = await guest(app, 'alice')
  const bob = await guest(app, 'bob')
  const carol = await guest(app, 'carol')

  t.match(await alice.request('enter', { room: 'lobby' }), { count: 1, members: [{ userId: 'alice' }] })
  const listed: any = await bob.request('enter', { room: 'lobby' })
  t.same(listed.members.map((m) => m.userId).sort(), ['alice', 'bob'])
  t.match(await alice.next('presence:join' as never), { room: 'room:lobby', data: { userId: 'bob' } })
  await carol.request('enter', { room: 'elsewhere' })

  t.equal(await alice.request('say', { room: 'lobby', text: 'hi bob' }), true)
  const [forBob, forAlice] = await Promise.all([bob.next('said'), alice.next('said')])
  t.match(forBob, { room: 'room:lobby', seq: Number, data: { from: 'alice', text: 'hi bob' } })
  t.same(forAlice.data, forBob.data)
  t.equal(await carol.request('say', { room: 'lobby', text: 'not a member' }), false)
  t.notOk(carol.received.some((m) => m.type === 'said'), 'another room hears nothing')

  t.equal(await bob.request('leave', { room: 'lobby' }), true)
  t.match(await alice.next('presence:leave' as never), { data: { userId: 'bob' } })

  const bad = await bob.request('enter', { room: 'NO SPACES' }).catch((e) => e)
  t.equal(bad.error.code, 'invalid_data')
})

t.test('the example refuses sockets without a token and names the schema refuses', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  t.equal((await connect(app, '/chat').catch((e) => e)).statusCode, 401)
  const res = await app.inject({ method: 'POST', url: '/token', payload: { name: '<script>' } })
  t.equal(res.statusCode, 400)
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.match(page.body, /new WebSocket/)
})
