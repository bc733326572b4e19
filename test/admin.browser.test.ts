// The admin page in headless Chromium (Debian's, driven by playwright-core as in example.browser.test.ts):
// it refuses a non-admin, renders, updates live under traffic, and disconnects a user; with two instances on a
// real redis-server it shows the cluster and disconnects a user of the other instance. The README's screenshot
// (docs/admin.png) is taken there, under traffic.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import jwt from '@fastify/jwt'
import Type from 'typebox'
import { chromium, type Browser } from 'playwright-core'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import realtime, { type RedisAdapter } from '../index.js'
import { connect } from '../lib/testing.js'
import { startRedisServer } from './helpers/redis-server.js'
import { closeInstance, redisClient, redisInstance } from './helpers/instances.js'

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
// The README's screenshot is refreshed with ADMIN_SCREENSHOT=docs/admin.png; otherwise it goes to a temp file.
const screenshot = process.env.ADMIN_SCREENSHOT ?? join(tmpdir(), 'fastify-realtime-admin.png')

async function build (): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(jwt, { secret: 'x'.repeat(32) })
  await app.register(realtime, {
    heartbeat: false,
    rateLimit: false,
    admin: {
      path: '/admin',
      interval: 200,
      // The app's own check: here a cookie; a real app verifies a session or a token with a role.
      onRequest: async (request, reply) => {
        if (!/(?:^|;\s*)role=admin(?:;|$)/.test(request.headers.cookie ?? '')) await reply.code(403).send({ error: 'admins only' })
      }
    }
  })
  app.realtime('/chat', {
    auth: 'handshake',
    joinable: true,
    messages: {
      say: { schema: Type.Object({ room: Type.String(), text: Type.String() }), handler: (conn, { room, text }) => { conn.to(room).emit('said', { text }) } },
      fail: { schema: Type.Null(), handler: () => { throw new Error('handler bug') } }
    },
    emits: { said: Type.Object({ text: Type.String() }) }
  })
  return app
}

t.test('the admin page: refuses a non-admin, renders, updates live, disconnects a user', async (t) => {
  const app = await build()
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const guest = async (name: string) => connect(app, '/chat', { headers: { authorization: `Bearer ${app.jwt.sign({ sub: name })}` } })

  // Refused without the app's admin check passing: the page, the script and the live route.
  t.equal((await app.inject({ url: '/admin' })).statusCode, 403)
  t.equal((await app.inject({ url: '/admin/admin.js' })).statusCode, 403)
  await t.rejects(connect(app, '/admin/live'), { statusCode: 403 })

  const browser: Browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())

  const outsider = await browser.newPage()
  const refused = await outsider.goto(url + '/admin')
  t.equal(refused?.status(), 403, 'a non-admin gets 403 in the browser too')
  t.notOk(await outsider.$('#status'))

  const context = await browser.newContext({ viewport: { width: 1200, height: 560 } })
  await context.addCookies([{ name: 'role', value: 'admin', url }])
  const page = await context.newPage()
  const response = await page.goto(url + '/admin')
  t.equal(response?.status(), 200)
  t.match(response?.headers()['content-security-policy'], /default-src 'self'/)
  await page.waitForSelector('#status.live')
  // The page's own socket is the only connection so far.
  await page.waitForSelector('#connections:text("1")')

  const alice = await guest('alice')
  const bob = await guest('bob')
  const carol = await guest('carol')
  for (const c of [alice, bob, carol]) await c.request('room:join' as never, { room: 'lobby' } as never)
  await bob.request('room:join' as never, { room: 'kitchen' } as never)
  await page.waitForSelector('#connections:text("4")')
  await page.waitForSelector('#roomList td:text("lobby")')
  await page.waitForSelector('#members:text("4")')

  // Traffic, until the page shows a message rate and the errors; one socket closes with 4403.
  const state = { sending: true }
  const traffic = (async () => {
    // A varying rate, so that the charts have a shape.
    for (let tick = 0; state.sending; tick++) {
      alice.send('say', { room: 'lobby', text: 'hi' })
      if (tick % 40 < 25) carol.send('say', { room: 'lobby', text: 'hello' })
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })()
  t.teardown(() => { state.sending = false })
  const dave = await guest('dave')
  await dave.request('fail', null).catch(() => {})
  await dave.close(4403)
  await page.waitForFunction(() => Number(document.querySelector('#rateIn')?.textContent) > 10)
  await page.waitForFunction(() => Number(document.querySelector('#rateOut')?.textContent) > 10)
  await page.waitForSelector('#closes td:text("4403")')
  await page.waitForSelector('#errors td:text("internal")')
  // A few seconds of history in the charts before the screenshot.
  await page.waitForFunction(() => (document.querySelector('#chartMessages polyline.in')?.getAttribute('points') ?? '').split(' ').length > 20)
  const rows = await page.$$eval('#connectionList tr', (trs) => trs.map((tr) => tr.children[1]?.textContent))
  t.same(rows.filter((u) => u !== '–').sort(), ['alice', 'bob', 'carol'])

  // Disconnect bob from the page: his socket closes with 4401, and the page sees it.
  await page.click('button[data-user="bob"]')
  t.match(await bob.closed, { code: 4401, reason: 'Disconnected by an admin' })
  await page.waitForSelector('#notice:text("disconnected 1 socket(s)")')
  await page.waitForSelector('#closes td:text("4401")')
  await page.waitForSelector('#connections:text("3")')

  state.sending = false
  await traffic
  await alice.close()
  await carol.close()
})

t.test('admin options are checked; no check means no page', async (t) => {
  for (const [admin, field] of [
    [{}, 'admin.path'], [{ path: 'admin', onRequest: () => {} }, 'admin.path'], [{ path: '/a/' }, 'admin.path'],
    [{ path: '/a"b', onRequest: () => {} }, 'admin.path'],
    [{ path: '/admin' }, 'admin.onRequest'], [{ path: '/admin', onRequest: 1 }, 'admin.onRequest'],
    [{ path: '/admin', preHandler: 1 }, 'admin.preHandler'],
    [{ path: '/admin', onRequest: () => {}, interval: 10 }, 'admin.interval'], [null, 'admin.path']
  ] as const) {
    const app = Fastify()
    await t.rejects(app.register(realtime, { admin: admin as never }).ready(), { code: 'FRT_ERR_OPTIONS_INVALID', message: new RegExp(field.replace('.', '\\.')) })
  }
  // A preHandler alone protects it too.
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { admin: { path: '/ops', preHandler: async (_req, reply) => { await reply.code(401).send() } } })
  t.equal((await app.inject({ url: '/ops' })).statusCode, 401)
  t.notOk('/ops/live' in (app.realtime.asyncapi() as { channels: object }).channels, 'our own route is not in the app\'s document')
})

t.test('the admin page with the Redis adapter: cluster-wide figures, and a disconnect reaching another instance', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const adminOptions = { path: '/admin', interval: 200, onRequest: async () => {} }
  const one = await redisInstance(redisClient(redis.url), { countsInterval: 100 }, { admin: adminOptions })
  t.teardown(() => closeInstance(one))
  const two = await redisInstance(redisClient(redis.url), { countsInterval: 100 })
  t.teardown(() => closeInstance(two))
  const url = await one.app.listen({ port: 0, host: '127.0.0.1' })
  const idTwo = (two.adapter as RedisAdapter).id

  const here = await connect(one.app, '/chat', { headers: { 'x-user': 'ann' } })
  const there = await connect(two.app, '/chat', { headers: { 'x-user': 'zed' } })
  const thereToo = await connect(two.app, '/chat')
  t.teardown(() => Promise.all([here, there, thereToo].map((c) => c.close())))
  for (const c of [here, there, thereToo]) await c.request('enter' as never, { room: 'lobby' } as never)

  const browser: Browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } })
  await page.goto(url + '/admin')
  await page.waitForSelector('#status.live')
  // This instance: ann and the page itself; the cluster: two more on the other instance.
  await page.waitForSelector('#connections:text("2")')
  await page.waitForSelector('#cluster:not([hidden])')
  await page.waitForSelector('#clusterInstances:text("2")')
  await page.waitForSelector('#clusterConnections:text("4")')
  await page.waitForSelector('#clusterMembers:text("3")')
  await page.waitForSelector(`#instanceList td:text("${idTwo}")`)
  const rows = await page.$$eval('#instanceList tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)))
  t.same(rows.find((r) => r[0] === idTwo)?.slice(1, 4), ['2', '1', '2'], 'the other instance: connections, rooms, members')

  // Traffic on the other instance shows in the cluster's rate.
  const state = { sending: true }
  const traffic = (async () => {
    // A varying rate on both instances, so that the charts have a shape.
    for (let tick = 0; state.sending; tick++) {
      there.send('say' as never, { room: 'lobby', text: 'hi' } as never)
      if (tick % 40 < 25) here.send('say' as never, { room: 'lobby', text: 'hello' } as never)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })()
  t.teardown(() => { state.sending = false })
  await page.waitForFunction(() => Number(document.querySelector('#clusterRateIn')?.textContent) > 10)
  // A few seconds of history in the charts before the README's screenshot.
  await page.waitForFunction(() => (document.querySelector('#chartMessages polyline.in')?.getAttribute('points') ?? '').split(' ').length > 20)
  await page.screenshot({ path: screenshot })
  state.sending = false
  await traffic

  // zed is on the other instance, so not in this instance's list: the page's form disconnects any user id.
  await page.fill('#disconnectUser', 'zed')
  await page.click('#disconnectForm button')
  t.match(await there.closed, { code: 4401, reason: 'Disconnected by an admin' }, 'closed on the other instance')
  await page.waitForSelector('#notice:text("disconnected 0 socket(s) here; other instances asked")')
  await page.waitForSelector('#clusterConnections:text("3")')
})
