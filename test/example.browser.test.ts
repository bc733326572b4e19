// The example page in a real browser: Debian's headless Chromium driven by
// playwright-core (no browser download): guests log in, meet in a room, see each
// other in the presence list and chat; another room hears nothing.
import t from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { buildApp } from '../example/server.js'

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

t.test('browser tabs chat in rooms with a live presence list', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const browser: Browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())

  // Any console error or uncaught exception on any page fails the test (a pattern attribute Chromium
  // compiles with the `v` flag and rejects only shows up there).
  const consoleErrors: string[] = []
  async function open (name: string, room: string): Promise<Page> {
    const page = await browser.newPage()
    page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()) })
    page.on('pageerror', (err) => { consoleErrors.push(err.message) })
    await page.goto(url)
    await page.fill('#login input', name)
    await page.click('#login button')
    await page.waitForSelector(`#status:text("connected as ${name}")`)
    await page.fill('#room input', room)
    await page.click('#room button')
    await page.waitForSelector(`#title:text("#${room}")`)
    return page
  }

  const alice = await open('alice', 'lobby')
  const bob = await open('bob', 'lobby')
  const carol = await open('carol', 'kitchen')
  await alice.waitForSelector('#members li:text("bob")')
  t.same(await bob.$$eval('#members li', (items) => items.map((li) => li.textContent)), ['alice', 'bob'])

  await alice.fill('#say input', 'hello from a browser')
  await alice.click('#say button')
  await bob.waitForSelector('#log li:text("alice: hello from a browser")')
  await alice.waitForSelector('#log li:text("alice: hello from a browser")')
  t.equal(await carol.$$eval('#log li', (items) => items.length), 0, 'the kitchen heard nothing')

  await bob.close()
  await alice.waitForSelector('#log li:text("bob left")')
  t.same(await alice.$$eval('#members li', (items) => items.map((li) => li.textContent)), ['alice'])

  // The schema's refusal reaches the page as a coded error.
  await carol.fill('#say input', 'x')
  await carol.evaluate(() => { (document.querySelector('#say input') as HTMLInputElement).maxLength = 1000 })
  await carol.fill('#say input', 'y'.repeat(600))
  await carol.click('#say button')
  t.match(await (await carol.waitForSelector('#log li.error')).textContent(), /invalid_data/)

  // The room field's pattern is live: a bad name is caught by the form, a good one passes.
  const validity = async (value: string) => carol.evaluate((v) => {
    const input = document.querySelector('#room input') as HTMLInputElement
    input.value = v
    return input.checkValidity()
  }, value)
  t.equal(await validity('Bad Room!'), false, 'the pattern refuses a bad room name')
  t.equal(await validity('kitchen-2'), true)
  t.same(consoleErrors, [], 'no console errors on any page')
})
