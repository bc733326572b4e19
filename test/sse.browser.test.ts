// The SSE fallback in a real browser (Debian's headless Chromium through
// playwright-core): pages whose `WebSocket` is gone chat over SSE + POST with
// each other, and with a page on a WebSocket, through the client's browser bundle;
// a page with the browser's own EventSource (no library) drops, reconnects by
// itself with its cursor as Last-Event-ID, and loses nothing.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { Type } from 'typebox'
import { once } from 'node:events'
import WebSocket from 'ws'
import { chromium, type Browser, type Page } from 'playwright-core'
import realtime from '../index.js'
import { until } from './helpers/wait.js'

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const root = new URL('..', import.meta.url).pathname

t.test('pages without WebSocket chat over SSE, with each other and with a WebSocket page', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'frt-sse-browser-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const bundle = join(dir, 'client.js')
  execFileSync(process.execPath, [join(root, 'scripts/build-client.mjs'), bundle])
  const page = readFileSync(join(root, 'test/fixtures/sse-chat.html'), 'utf8')
  const code = readFileSync(bundle, 'utf8')

  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { sse: true })
  app.addHook('preHandler', async (request) => {
    const name = (request.query as { user?: string }).user
    if (name !== undefined) Object.assign(request, { user: { sub: name } })
  })
  app.get('/', async (_request, reply) => reply.type('text/html').send(page))
  app.get('/client.js', async (_request, reply) => reply.type('text/javascript').send(code))
  app.realtime('/chat', {
    joinable: true,
    presence: true,
    messages: {
      say: {
        schema: Type.Object({ text: Type.String({ maxLength: 100 }) }),
        handler: (conn: any, data: { text: string }) => {
          conn.to('lobby').emit('said', { from: conn.user.sub, text: data.text })
          return true
        }
      }
    },
    emits: { said: Type.Object({ from: Type.String(), text: Type.String() }) }
  })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const browser: Browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run']
  })
  t.teardown(() => browser.close())

  async function open (name: string, webSocket: boolean): Promise<[Page, string]> {
    const page = await browser.newPage()
    if (!webSocket) await page.addInitScript(() => { delete (window as { WebSocket?: unknown }).WebSocket })
    await page.goto(url)
    await page.waitForFunction(() => typeof (window as any).start === 'function')
    const transport = await page.evaluate((n) => (window as any).start(n), name)
    return [page, transport]
  }
  const logOf = (page: Page): Promise<string[]> => page.evaluate(() => (window as any).log)

  const [ann, annTransport] = await open('ann', false)
  const [bob, bobTransport] = await open('bob', false)
  t.equal(annTransport, 'sse')
  t.equal(bobTransport, 'sse')
  await ann.waitForFunction(() => (window as any).log.includes('bob joined'))
  t.equal(await ann.evaluate(() => (window as any).say('hello over sse')), true)
  await bob.waitForFunction(() => (window as any).log.includes('ann: hello over sse'))

  const [cat, catTransport] = await open('cat', true)
  t.equal(catTransport, 'websocket')
  await ann.waitForFunction(() => (window as any).log.includes('cat joined'))
  await cat.evaluate(() => (window as any).say('hello from a websocket'))
  await ann.waitForFunction(() => (window as any).log.includes('cat: hello from a websocket'))
  await bob.evaluate(() => (window as any).say('and back over sse'))
  await cat.waitForFunction(() => (window as any).log.includes('bob: and back over sse'))
  t.same(await logOf(cat), ['cat: hello from a websocket', 'bob: and back over sse'])
  t.same(await logOf(bob), ['ann: hello over sse', 'cat joined', 'cat: hello from a websocket', 'bob: and back over sse'])
  t.equal(app.realtime.stats().connections, 3)
})

t.test('a native EventSource drops, reconnects by itself with Last-Event-ID, and loses nothing', async (t) => {
  const page = readFileSync(join(root, 'test/fixtures/sse-native.html'), 'utf8')
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { sse: true, heartbeat: false, history: {} })
  const lastEventIds: unknown[] = []
  app.addHook('onRequest', async (request) => {
    if (request.method === 'GET' && request.headers.accept === 'text/event-stream') lastEventIds.push(request.headers['last-event-id'])
  })
  const conns: any[] = []
  app.get('/', async (_request, reply) => reply.type('text/html').send(page))
  app.realtime('/feed', {
    joinable: true,
    history: true,
    onOpen: async (conn: any) => {
      conns.push(conn)
      await conn.join('news')
    },
    messages: {},
    emits: { said: Type.Object({ text: Type.String() }), mark: Type.Object({}) }
  })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  // Keeps both rooms (and so their history, in memory) alive while the page is away.
  const keeper = new WebSocket(url.replace('http', 'ws') + '/feed')
  t.teardown(() => keeper.terminate())
  await once(keeper, 'open')
  keeper.send(JSON.stringify({ type: 'room:join', data: { room: 'alerts' } }))
  await until(() => app.realtime.stats().members === 2, 'the keeper in both rooms')
  const browser: Browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run']
  })
  t.teardown(() => browser.close())
  const tab = await browser.newPage()
  await tab.goto(url)
  await tab.waitForFunction(() => (window as any).acks.length === 1)
  const emit = (room: string, text: string): void => { app.realtime.to(room).emit('said', { text }) }
  emit('news', 'n1'); emit('alerts', 'a1'); emit('news', 'n2'); emit('alerts', 'a2')
  await tab.waitForFunction(() => (window as any).log.length === 4)
  // A message after the cursor's position-only event carries it as its lastEventId: the id was taken, nothing dispatched.
  const pageConn = conns[1] // conns[0] is the keeper
  pageConn.emit('mark', {})
  await tab.waitForFunction(() => (window as any).events.some((e: any) => JSON.parse(e.data).type === 'mark'))
  const events: Array<{ data: string, lastEventId: string }> = await tab.evaluate(() => (window as any).events)
  const cursor = events[events.length - 1].lastEventId
  t.match(cursor, /^1;2\.[\w-]+\.news;2\.[\w-]+\.alerts$/)
  t.notOk(events.some((e) => e.data === ''), 'no event dispatched for a position')
  // The connection drops (as a network would: no close event); meanwhile each room gets N messages.
  pageConn.socket.terminate()
  const N = 10
  for (let i = 3; i < 3 + N; i++) { emit('news', `n${i}`); emit('alerts', `a${i}`) }
  // EventSource reconnects on its own (after its retry delay) and the page joins alerts again.
  await tab.waitForFunction(() => (window as any).acks.length === 2, undefined, { timeout: 15_000 })
  await tab.waitForFunction((n) => (window as any).log.length === 4 + 2 * n, N)
  t.equal(await tab.evaluate(() => (window as any).opens), 2)
  t.same(lastEventIds, [undefined, cursor], 'the reconnect sent the cursor')
  t.match((await tab.evaluate(() => (window as any).acks))[1], { room: 'alerts', seq: 2 + N, recovered: true })
  const log: string[] = await tab.evaluate(() => (window as any).log)
  const expected = (room: string, prefix: string): string[] => Array.from({ length: 2 + N }, (_v, i) => `${room}#${i + 1}:${prefix}${i + 1}`)
  t.same(log.filter((line) => line.startsWith('news#')), expected('news', 'n'), 'news: everything once, in order')
  t.same(log.filter((line) => line.startsWith('alerts#')), expected('alerts', 'a'), 'alerts: everything once, in order')
  t.equal(app.realtime.stats().joinsRecovered, 2)
})
