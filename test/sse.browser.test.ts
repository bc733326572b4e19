// The SSE fallback in a real browser (Debian's headless Chromium through
// playwright-core): pages whose `WebSocket` is gone chat over SSE + POST with
// each other, and with a page on a WebSocket, through the client's browser bundle.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { Type } from 'typebox'
import { chromium, type Browser, type Page } from 'playwright-core'
import realtime from '../index.js'

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
