// Each row of the protocol's client retry table, against a real server that
// closes the socket with that code from a handler.
import t from 'tap'
import { client, nextEvent, startServer, stateOf } from './helpers/client.js'
import { RetryPolicy, type CloseEvent } from '../lib/client/index.js'

const BASE = 20

const stop = [1000, 1002, 1003, 1007, 1008, 1009, 4400, 4403]
const backoff = [1001, 1006, 1011, 1013, 4008, 4500, 4408]

t.test('the retry table is the contract\'s', async (t) => {
  for (const code of stop) t.equal(RetryPolicy[code], 'stop', String(code))
  for (const code of backoff) t.equal(RetryPolicy[code], 'backoff', String(code))
  t.equal(RetryPolicy[1012], 'advice')
  t.equal(RetryPolicy[4429], 'retryAfter')
  t.equal(RetryPolicy[4401], 'refreshToken')
})

for (const code of stop) {
  t.test(`${code}: do not reconnect`, async (t) => {
    const server = await startServer(t)
    const c = client(t, server.url, { reconnect: { base: BASE, cap: BASE } })
    await c.ready()
    const pending = c.request('hang', null).catch((err: unknown) => err)
    const closed = nextEvent<CloseEvent>(c, 'close')
    await c.request('closeMe', { code })
    t.match(await closed, { code, reconnectIn: undefined })
    t.equal(c.state, 'closed')
    t.match(await pending, { code: 'closed' })
    t.equal(server.opens, 1)
    // The app may ask again.
    c.connect()
    await c.ready()
    t.equal(server.opens, 2)
  })
}

for (const code of backoff) {
  t.test(`${code}: reconnect with backoff`, async (t) => {
    const server = await startServer(t)
    const c = client(t, server.url, { reconnect: { base: BASE, cap: 1000 } })
    await c.ready()
    const closed = nextEvent<CloseEvent>(c, 'close')
    await c.request('closeMe', { code })
    const event = await closed
    t.equal(event.code, code)
    t.ok(event.reconnectIn! >= 0 && event.reconnectIn! <= BASE, `first delay within [0, base]: ${event.reconnectIn}`)
    t.equal(c.state, 'reconnecting')
    await stateOf(c, 'open')
    t.equal(server.opens, 2)
  })
}

t.test('1012: reconnect after the server\'s reconnect advice (plus jitter), else backoff', async (t) => {
  const server = await startServer(t)
  const c = client(t, server.url, { reconnect: { base: BASE, cap: 1000 } })
  await c.ready()
  let closed = nextEvent<CloseEvent>(c, 'close')
  await c.request('closeMe', { code: 1012, frames: [JSON.stringify({ type: 'reconnect', data: { after: 300 } })] })
  const advised = await closed
  t.ok(advised.reconnectIn! >= 300 && advised.reconnectIn! <= 300 + BASE, `after the advice: ${advised.reconnectIn}`)
  const started = Date.now()
  await stateOf(c, 'open')
  t.ok(Date.now() - started >= advised.reconnectIn! - 5, 'not before it')
  closed = nextEvent<CloseEvent>(c, 'close')
  await c.request('closeMe', { code: 1012 })
  t.ok((await closed).reconnectIn! <= BASE, 'the advice is used once')
  await stateOf(c, 'open')
})

t.test('4429: reconnect after the last retryAfter seen, else backoff', async (t) => {
  const server = await startServer(t)
  const c = client(t, server.url, { reconnect: { base: BASE, cap: 1000 } })
  await c.ready()
  c.events.on('error', () => {})
  let closed = nextEvent<CloseEvent>(c, 'close')
  const limited = JSON.stringify({ type: 'error', error: { code: 'rate_limited', message: 'Too many messages', retryAfter: 250 } })
  await c.request('closeMe', { code: 4429, frames: [limited] })
  t.match(await closed, { code: 4429, reconnectIn: 250 })
  await stateOf(c, 'open')
  closed = nextEvent<CloseEvent>(c, 'close')
  await c.request('closeMe', { code: 4429 })
  t.ok((await closed).reconnectIn! <= BASE, 'no retryAfter on this connection: backoff')
  await stateOf(c, 'open')
})

t.test('4401: one fresh token and a reconnect; a second 4401 in a row stops', async (t) => {
  const server = await startServer(t, { auth: 'message' })
  const tokens: string[] = []
  const c = client(t, server.url, {
    auth: 'message',
    reconnect: { base: BASE, cap: 1000 },
    // The third token is refused by the server: its signature is broken.
    token: () => {
      const token = server.sign('ada', 3600)
      tokens.push(token)
      return tokens.length === 3 ? token + 'x' : token
    }
  })
  await c.ready()
  let closed = nextEvent<CloseEvent>(c, 'close')
  await c.request('closeMe', { code: 4401 })
  t.match(await closed, { code: 4401, reconnectIn: Number })
  await stateOf(c, 'open')
  t.equal(tokens.length, 2, 'a fresh token for the new attempt')
  // Open again, so the next 4401 is a new expiry, not a repeat: one more try, whose token is refused.
  closed = nextEvent<CloseEvent>(c, 'close')
  await c.request('closeMe', { code: 4401 })
  t.match(await closed, { code: 4401, reconnectIn: Number })
  t.match(await nextEvent<CloseEvent>(c, 'close'), { code: 4401, reconnectIn: undefined })
  t.equal(c.state, 'closed')
  t.equal(tokens.length, 3)
  t.equal(server.opens, 2)
})
