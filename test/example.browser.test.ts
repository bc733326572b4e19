// The example page in a real browser: Debian's headless Chromium driven by
// playwright-core (no browser download), two tabs chatting through the server.
import t from 'tap'
import { chromium, type Browser } from 'playwright-core'
import { buildApp } from '../example/server.js'

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

t.test('two browser tabs chat through the example server', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  const browser: Browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  const [alice, bob] = await Promise.all([browser.newPage(), browser.newPage()])
  for (const [page, name] of [[alice, 'alice'], [bob, 'bob']] as const) {
    await page.goto(url)
    await page.waitForSelector('#status:text("connected")')
    await page.fill('#hello input', name)
    await page.click('#hello button')
    await page.waitForSelector(`#status:text("connected as ${name}")`)
  }
  await alice.fill('#say input', 'hello from a browser')
  await alice.click('#say button')
  await bob.waitForSelector('#log li:text("alice: hello from a browser")')
  await alice.waitForSelector('#log li:text("alice: hello from a browser")')

  // The page shows the server's coded error for a name the schema refuses.
  const carol = await browser.newPage()
  await carol.goto(url)
  await carol.waitForSelector('#status:text("connected")')
  await carol.fill('#hello input', '<b>')
  await carol.click('#hello button')
  const error = await carol.waitForSelector('#log li.error')
  t.match(await error.textContent(), /invalid_data/)
  t.equal(app.realtime.stats().connections, 3)
})
