// fastify-realtime/client/shared in Chromium: two tabs of one origin share one
// socket through the leading tab (Web Locks + BroadcastChannel). Each tab gets
// the acks of its own requests and only its own rooms' messages; when the
// leader's tab closes, the other tab takes the connection over, re-joins its
// rooms and goes on. No console errors.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import Type from 'typebox'
import { chromium, type Page } from 'playwright-core'
import realtime, { defineRoute } from '../index.js'
import { until } from './helpers/wait.js'

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const root = new URL('..', import.meta.url).pathname
const WAIT = { timeout: 30_000 }

const chat = defineRoute({
  joinable: true,
  messages: {
    say: {
      schema: Type.Object({ room: Type.String(), text: Type.String() }),
      handler: (conn, { room, text }) => {
        conn.to(room).emit('said', { text })
        return { echo: text }
      }
    }
  },
  emits: { said: Type.Object({ text: Type.String() }) }
})

const page = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>shared</title></head><body>
<script type="module">
  import { createSharedClient } from '/shared.js'
  const client = window.client = createSharedClient('ws://' + location.host + '/chat')
  window.got = []
  window.states = []
  client.on('said', (data, meta) => window.got.push(meta.room + ':' + data.text))
  client.events.on('state', (state) => window.states.push(state))
  // Made before this tab knows of any leader (even before it takes the lock itself): sent once one is there.
  window.early = client.request('say', { room: 'nowhere', text: 'early' })
</script></body></html>`

t.test('two tabs share one socket; rooms multiplexed, acks routed by tab; the other tab takes over', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'frt-shared-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  execFileSync(process.execPath, [join(root, 'scripts/build-client.mjs'), join(dir, 'client.js')], { encoding: 'utf8' })
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime)
  app.realtime('/chat', chat)
  app.get('/', async (_request, reply) => reply.type('text/html').send(page))
  app.get('/shared.js', async (_request, reply) => reply.type('text/javascript').send(readFileSync(join(dir, 'shared.js'))))
  const url = await app.listen({ port: 0, host: '127.0.0.1' })

  const browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run']
  })
  t.teardown(() => browser.close())
  const context = await browser.newContext()
  const errors: string[] = []
  async function tab (): Promise<Page> {
    const p = await context.newPage()
    p.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()) })
    p.on('pageerror', (error) => errors.push(String(error)))
    await p.goto(url)
    await p.waitForFunction(() => (window as any).client?.state === 'open', undefined, WAIT)
    t.same(await p.evaluate(() => (window as any).early), { echo: 'early' }, 'a request made at once is answered')
    return p
  }
  const one = await tab()
  const two = await tab()
  t.equal(await one.evaluate(() => (window as any).client.leader), true, 'the first tab leads')
  t.equal(await two.evaluate(() => (window as any).client.leader), false, 'the second follows')
  t.equal(app.realtime.stats().connections, 1, 'one socket for both tabs')

  await one.evaluate(() => (window as any).client.join('a'))
  await two.evaluate(() => (window as any).client.join('b'))
  // Both tabs' first request has id 1: each gets its own ack.
  const acks = await Promise.all([
    one.evaluate(() => (window as any).client.request('say', { room: 'b', text: 'from one' })),
    two.evaluate(() => (window as any).client.request('say', { room: 'a', text: 'from two' }))
  ])
  t.same(acks, [{ echo: 'from one' }, { echo: 'from two' }])
  await one.waitForFunction(() => (window as any).got.includes('a:from two'), undefined, WAIT)
  await two.waitForFunction(() => (window as any).got.includes('b:from one'), undefined, WAIT)
  t.same(await one.evaluate(() => (window as any).got), ['a:from two'], 'tab one hears only room a')
  t.same(await two.evaluate(() => (window as any).got), ['b:from one'], 'tab two hears only room b')

  // The leader's tab goes away: tab two takes the connection over and re-joins room b.
  await one.close()
  await two.waitForFunction(() => (window as any).client.leader === true && (window as any).client.state === 'open', undefined, WAIT)
  t.same(await two.evaluate(() => (window as any).states), ['open', 'reconnecting', 'open'])
  await until(() => app.realtime.stats().connections === 1, 'one socket again')
  t.same(await two.evaluate(() => (window as any).client.request('say', { room: 'b', text: 'after' })), { echo: 'after' })
  await two.waitForFunction(() => (window as any).got.includes('b:after'), undefined, WAIT)
  t.same(await two.evaluate(() => (window as any).got), ['b:from one', 'b:after'])

  // A tab opened now follows the new leader.
  const three = await tab()
  t.equal(await three.evaluate(() => (window as any).client.leader), false)
  await three.evaluate(() => (window as any).client.join('b'))
  await two.evaluate(() => (window as any).client.request('say', { room: 'b', text: 'to both' }))
  await three.waitForFunction(() => (window as any).got.includes('b:to both'), undefined, WAIT)
  await two.waitForFunction(() => (window as any).got.includes('b:to both'), undefined, WAIT)
  t.equal(app.realtime.stats().connections, 1)
  t.same(errors, [], 'no console errors')
})
