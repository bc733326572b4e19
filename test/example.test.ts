import t from 'tap'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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
  t.match(page.body, /import \{ createClient \} from '\/client\.js'/)
})

t.test('the example serves the client\'s browser build at /client.js, or says how to build it', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const dir = mkdtempSync(join(tmpdir(), 'frt-example-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const previous = process.env.CLIENT_BUNDLE
  t.teardown(() => {
    if (previous === undefined) delete process.env.CLIENT_BUNDLE
    else process.env.CLIENT_BUNDLE = previous
  })
  // Unset: the build of this checkout, dist/browser/client.js (`npm run size` or `npm run build` writes it).
  delete process.env.CLIENT_BUNDLE
  const built = existsSync(new URL('../dist/browser/client.js', import.meta.url))
  t.equal((await app.inject('/client.js')).statusCode, built ? 200 : 404, `dist/browser/client.js ${built ? 'served' : 'not built'}`)
  process.env.CLIENT_BUNDLE = join(dir, 'client.js')
  const missing = await app.inject('/client.js')
  t.equal(missing.statusCode, 404)
  t.match(missing.body, /npm run size/)
  writeFileSync(join(dir, 'client.js'), 'export const built = true\n')
  const served = await app.inject('/client.js')
  t.equal(served.statusCode, 200)
  t.match(served.headers['content-type'], /^text\/javascript/)
  t.equal(served.body, 'export const built = true\n')
})

t.test('the page\'s way in: room:join of `room:<name>` rooms only, then the member list', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const alice = await guest(app, 'alice')
  const bob = await guest(app, 'bob')
  await alice.request('room:join' as never, { room: 'room:lobby' } as never)
  await bob.request('room:join' as never, { room: 'room:lobby' } as never)
  const listed = await alice.request('members', { room: 'lobby' }) as { members: Array<{ userId: string }> }
  t.same(listed.members.map((m) => m.userId).sort(), ['alice', 'bob'])
  t.equal(await bob.request('say', { room: 'lobby', text: 'joined by the client' }), true)
  t.match((await alice.next('said')).data, { from: 'bob', text: 'joined by the client' })
  const refused = await alice.request('room:join' as never, { room: 'elsewhere' } as never).catch((e) => e)
  t.equal(refused.error.code, 'forbidden')
})
