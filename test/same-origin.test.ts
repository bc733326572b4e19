// Secure by default against cross-site WebSocket hijacking: without `origins`, only the page's own origin.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import realtime, { type RealtimeOptions } from '../index.js'
import { upgrade } from './helpers/upgrade.js'

async function listen (t: Test, options: RealtimeOptions = {}, trustProxy = false) {
  const app = Fastify({ trustProxy })
  t.teardown(() => app.close())
  await app.register(realtime, options)
  app.realtime('/ws', { messages: {} })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as AddressInfo).port
}

async function status (port: number, headers: Record<string, string>): Promise<number> {
  const res = await upgrade(port, '/ws', { headers })
  res.socket?.destroy()
  return res.status
}

t.test('by default the Origin host must be the request host', async (t) => {
  const port = await listen(t)
  const host = `127.0.0.1:${port}`
  t.equal(await status(port, { origin: `http://${host}` }), 101, 'same origin')
  t.equal(await status(port, { origin: `https://${host}` }), 101, 'same host over https (a TLS-terminating proxy)')
  t.equal(await status(port, { origin: 'https://evil.example' }), 403, 'another site')
  t.equal(await status(port, { origin: `http://127.0.0.1:${port + 1}` }), 403, 'another port')
  t.equal(await status(port, { origin: `http://${host}.evil.example` }), 403, 'a look-alike')
  t.equal(await status(port, { origin: 'null' }), 403, 'an opaque origin')
  t.equal(await status(port, { origin: 'not a url' }), 403, 'garbage')
  t.equal(await status(port, { origin: 'file:///etc' }), 403, 'a URL with an opaque origin')
  t.equal(await status(port, { origin: `http://APP.example:${port}`, host: `app.example:${port}` }), 101, 'case-insensitive host')
  t.equal(await status(port, {}), 101, 'no Origin: not a browser, allowed')
})

t.test('missingOrigin: deny also applies to the same-origin default', async (t) => {
  const port = await listen(t, { missingOrigin: 'deny' })
  t.equal(await status(port, {}), 403)
  t.equal(await status(port, { origin: `http://127.0.0.1:${port}` }), 101)
})

t.test('behind a proxy, with trustProxy, the forwarded host is the one compared', async (t) => {
  const port = await listen(t, {}, true)
  t.equal(await status(port, { origin: 'https://chat.example.com', 'x-forwarded-host': 'chat.example.com' }), 101)
  t.equal(await status(port, { origin: 'https://evil.example', 'x-forwarded-host': 'chat.example.com' }), 403)
})

t.test("'same-origin' may be spelled out; '*' is the explicit opt-out", async (t) => {
  const same = await listen(t, { origins: 'same-origin' })
  t.equal(await status(same, { origin: 'https://evil.example' }), 403)
  const any = await listen(t, { origins: '*' })
  t.equal(await status(any, { origin: 'https://evil.example' }), 101)
})

t.test('cookie auth is allowed with the same-origin default', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { auth: { sources: ['cookie'] } })
  await app.ready()
  t.pass()
})
