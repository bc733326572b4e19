// The example page in a real browser: Debian's headless Chromium driven by
// playwright-core (no browser download). The page uses fastify-realtime/client's
// browser build, served by the example at /client.js: guests log in, meet in a
// room, see each other in the presence list and chat; another room hears
// nothing; and the chat goes on across a restart of the server process, with a
// message typed during the outage delivered once, in order, after the re-join.
// No page may log a console error.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type Page } from 'playwright-core'
import { buildApp } from '../example/server.js'
import { freePort, openGate, startExample } from './helpers/example-process.js'

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const root = new URL('..', import.meta.url).pathname
const WAIT = { timeout: 30_000 }

// The tests' own build of the browser bundle, served by the example through CLIENT_BUNDLE.
const dir = mkdtempSync(join(tmpdir(), 'frt-example-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const bundle = join(dir, 'client.js')
execFileSync(process.execPath, [join(root, 'scripts/build-client.mjs'), bundle], { encoding: 'utf8' })
const previousBundle = process.env.CLIENT_BUNDLE
process.env.CLIENT_BUNDLE = bundle
t.teardown(() => {
  if (previousBundle === undefined) delete process.env.CLIENT_BUNDLE
  else process.env.CLIENT_BUNDLE = previousBundle
})

async function launch (t: Test): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  return browser
}

/** Every console error and uncaught exception of a page, to be asserted empty. */
function watchConsole (page: Page, errors: string[]): void {
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`${message.text()} (${JSON.stringify(message.location())})`)
  })
  page.on('pageerror', (error) => errors.push(String(error)))
}

async function enter (t: Test, page: Page, url: string, name: string, room: string): Promise<void> {
  await page.goto(url)
  await page.fill('#login input', name)
  await page.click('#login button')
  await page.waitForSelector('#status[data-state=open]', WAIT)
  t.equal(await page.textContent('#status'), `online as ${name}`)
  await page.fill('#room input', room)
  await page.click('#room button')
  await page.waitForSelector(`#title:text("#${room}")`, WAIT)
}

async function say (page: Page, text: string): Promise<void> {
  await page.fill('#say input', text)
  await page.click('#say button')
}

function chatLines (page: Page): Promise<string[]> {
  return page.$$eval('#log li:not(.event):not(.error)', (items) => items.map((li) => li.textContent ?? ''))
}

t.test('browser tabs chat in rooms with a live presence list', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const browser = await launch(t)
  const errors: string[] = []

  async function open (name: string, room: string): Promise<Page> {
    const page = await browser.newPage()
    watchConsole(page, errors)
    await enter(t, page, url, name, room)
    return page
  }

  const alice = await open('alice', 'lobby')
  const bob = await open('bob', 'lobby')
  const carol = await open('carol', 'kitchen')
  await alice.waitForSelector('#members li:text("bob")')
  t.same(await bob.$$eval('#members li', (items) => items.map((li) => li.textContent)), ['alice', 'bob'])

  await say(alice, 'hello from a browser')
  await bob.waitForSelector('#log li:text("alice: hello from a browser")')
  await alice.waitForSelector('#log li:text("alice: hello from a browser")')
  t.equal(await carol.$$eval('#log li', (items) => items.length), 0, 'the kitchen heard nothing')

  await bob.close()
  await alice.waitForSelector('#log li:text("bob left")')
  t.same(await alice.$$eval('#members li', (items) => items.map((li) => li.textContent)), ['alice'])

  // The schema's refusal reaches the page as a coded error.
  await carol.evaluate(() => { (document.querySelector('#say input') as HTMLInputElement).maxLength = 1000 })
  await say(carol, 'y'.repeat(600))
  t.match(await (await carol.waitForSelector('#log li.error')).textContent(), /invalid_data/)
  // (that line is the page's own report, not a console error)

  // The room field's pattern is live: a bad name is caught by the form, a good one passes (Chromium compiles
  // `pattern` with the `v` flag; an invalid one is only a console error and validation silently off).
  const validity = async (value: string) => carol.evaluate((v) => {
    const input = document.querySelector('#room input') as HTMLInputElement
    input.value = v
    return input.checkValidity()
  }, value)
  t.equal(await validity('Bad Room!'), false, 'the pattern refuses a bad room name')
  t.equal(await validity('kitchen-2'), true)
  t.same(errors, [], 'no console errors')
})

t.test('the chat goes on across a server restart: reconnecting, online, the outage message once and in order', async (t) => {
  const port = await freePort()
  // One key for both processes is not needed (the page fetches a token for every attempt); set it anyway so
  // a token issued just before the restart would still verify.
  const env = { JWT_SECRET: 'a-test-secret-of-the-example-restart' }
  let server = await startExample(port, env)
  t.teardown(() => server.stop())
  // Each page reaches the server through its own gate, so the test decides who gets back first and no
  // attempt is refused while the server is down (a refused attempt is a console error in Chromium).
  const gateA = await openGate(port)
  t.teardown(() => gateA.close())
  const gateB = await openGate(port)
  t.teardown(() => gateB.close())
  const browser = await launch(t)
  const errors: string[] = []
  const alice = await (await browser.newContext()).newPage()
  const bob = await (await browser.newContext()).newPage()
  watchConsole(alice, errors)
  watchConsole(bob, errors)
  await enter(t, alice, gateA.url, 'alice', 'lobby')
  await enter(t, bob, gateB.url, 'bob', 'lobby')
  await alice.waitForSelector('#members li:text("bob")', WAIT)

  await say(alice, 'before the restart')
  await bob.waitForSelector('#log li:text("alice: before the restart")', WAIT)

  gateA.hold()
  gateB.hold()
  await server.stop()
  await alice.waitForSelector('#status[data-state=reconnecting]', WAIT)
  await bob.waitForSelector('#status[data-state=reconnecting]', WAIT)
  t.equal(await bob.textContent('#status'), 'reconnecting…')

  // Typed while the server is down: kept in the client's outbox.
  await say(alice, 'during the outage, one')
  await say(alice, 'during the outage, two')

  server = await startExample(port, env)
  // Bob first, so that he is back in the room when alice's queued messages go out.
  gateB.release()
  await bob.waitForSelector('#status[data-state=open]', WAIT)
  gateA.release()
  await alice.waitForSelector('#status[data-state=open]', WAIT)
  t.equal(await alice.textContent('#status'), 'online as alice')
  await bob.waitForSelector('#log li:text("alice: during the outage, two")', WAIT)
  await alice.waitForSelector('#log li:text("alice: during the outage, two")', WAIT)
  // Both are in the new process's room again: its member list, fetched after the re-join, has both.
  await bob.waitForSelector('#members li:text("alice")', WAIT)

  await say(bob, 'after the restart')
  await alice.waitForSelector('#log li:text("bob: after the restart")', WAIT)
  await bob.waitForSelector('#log li:text("bob: after the restart")', WAIT)
  const expected = ['alice: before the restart', 'alice: during the outage, one', 'alice: during the outage, two', 'bob: after the restart']
  t.same(await chatLines(bob), expected, 'bob got each message once, in order')
  t.same(await chatLines(alice), expected, 'so did alice')
  t.same(errors, [], 'no console errors')
})
