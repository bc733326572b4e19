// The client where time is the subject, on @tapjs/clock's fake clock with
// hand-driven sockets: backoff bounds and spread, attempts, the stable reset,
// the idle ping (and background-tab throttling), offline/online.
import t from 'tap'
import { Clock } from '@tapjs/clock'
import { fakeClient, fakeSockets } from './helpers/fake-socket.js'
import { createClient, fullJitter } from '../lib/client/index.js'

const setup = fakeClient

t.test('fullJitter stays in [0, min(cap, base * 2^attempt))', async (t) => {
  const options = { base: 500, cap: 30_000 }
  for (let attempt = 0; attempt < 40; attempt++) {
    const bound = Math.min(30_000, 500 * 2 ** attempt)
    t.equal(fullJitter(attempt, options, () => 0), 0)
    t.equal(fullJitter(attempt, options, () => 0.999999), Math.floor(0.999999 * bound))
  }
})

t.test('backoff: each delay within its window, the client waits exactly that long', async (t) => {
  const { clock, sockets, c, closes } = setup(t)
  t.equal(c.state, 'connecting')
  for (let attempt = 0; attempt < 12; attempt++) {
    const made = sockets.made.length
    sockets.last().drop()
    const delay = closes[closes.length - 1].reconnectIn as number
    const bound = Math.min(30_000, 500 * 2 ** attempt)
    t.ok(delay >= 0 && delay < bound, `attempt ${attempt}: ${delay} in [0, ${bound})`)
    if (delay > 0) {
      clock.advance(delay - 1)
      t.equal(sockets.made.length, made, 'not before its delay')
    }
    clock.advance(1)
    t.equal(sockets.made.length, made + 1, 'at its delay')
  }
  t.equal(c.state, 'connecting', 'never opened: still connecting')
})

t.test('backoff reaches its window: random near 1 gives delays near the bound, capped', async (t) => {
  const { clock, sockets, closes } = setup(t, { random: () => 0.999 })
  const delays: number[] = []
  for (let attempt = 0; attempt < 10; attempt++) {
    sockets.last().drop()
    delays.push(closes[closes.length - 1].reconnectIn as number)
    clock.advance(delays[delays.length - 1])
  }
  t.same(delays, [499, 999, 1998, 3996, 7992, 15984, 29970, 29970, 29970, 29970])
})

t.test('max attempts, then closed; a stable connection resets the count', async (t) => {
  const { clock, sockets, c, closes } = setup(t, { reconnect: { attempts: 2 }, random: () => 0.999 })
  sockets.last().open()
  t.equal(c.state, 'open')
  clock.advance(10_000) // stable
  sockets.last().drop()
  t.equal(closes[0].reconnectIn, 499, 'reset: the first window again')
  clock.advance(499)
  sockets.last().drop()
  t.equal(closes[1].reconnectIn, 999)
  clock.advance(999)
  sockets.last().open()
  clock.advance(100) // not stable
  sockets.last().drop()
  t.equal(closes[2].reconnectIn, undefined, 'third attempt in a row: over `attempts`')
  t.equal(c.state, 'closed')
})

t.test('reconnect storm: 1,000 clients dropped together come back spread over the window', async (t) => {
  const clock = new Clock()
  t.teardown(clock.enter())
  const sockets = fakeSockets()
  const delays: number[] = []
  const clients = Array.from({ length: 1000 }, () => {
    const c = createClient<any>('ws://example.test/chat', { WebSocket: sockets.WebSocket, ping: false })
    c.events.on('close', (event) => delays.push(event.reconnectIn as number))
    return c
  })
  t.teardown(() => clients.forEach((c) => c.close()))
  for (const socket of [...sockets.made]) socket.open()
  clock.advance(10_000)
  for (const socket of [...sockets.made]) socket.drop(1001)
  t.equal(delays.length, 1000)
  t.ok(Math.min(...delays) >= 0 && Math.max(...delays) < 500)
  // Ten 50 ms buckets of about 100 each; binomial sd ~9.5, so [50, 150] fails about never unless jitter is broken.
  const buckets = Array.from({ length: 10 }, (_, i) => delays.filter((d) => d >= i * 50 && d < (i + 1) * 50).length)
  t.comment(`arrivals per 50 ms: ${buckets.join(' ')}`)
  for (const count of buckets) t.ok(count >= 50 && count <= 150, `bucket of ${count}`)
  // With the server's advice (1012 after `reconnect.after`), each comes back after it, still spread by the jitter.
  delays.length = 0
  clock.advance(500)
  for (const socket of sockets.made.slice(1000)) {
    socket.open()
    socket.receive({ type: 'reconnect', data: { after: 2000 } })
  }
  clock.advance(10_000)
  for (const socket of sockets.made.slice(1000)) socket.drop(1012)
  t.ok(Math.min(...delays) >= 2000 && Math.max(...delays) < 2500, 'after the advice, jittered by base')
})

t.test('ping when idle; no pong in time reconnects', async (t) => {
  const { clock, sockets, c, closes } = setup(t, { ping: { interval: 1000, timeout: 500 } })
  const socket = sockets.last()
  socket.open()
  clock.advance(999)
  t.same(socket.sent, [])
  clock.advance(1)
  t.same(socket.sent, [{ type: 'ping' }])
  socket.receive({ type: 'pong' })
  clock.advance(500)
  t.equal(c.state, 'open', 'answered')
  // Traffic counts as liveness: no ping while messages arrive.
  clock.advance(400)
  socket.receive({ type: 'said', data: {} })
  clock.advance(900)
  t.equal(socket.sent.length, 1)
  clock.advance(100)
  t.equal(socket.sent.length, 2)
  clock.advance(499)
  t.equal(c.state, 'open')
  clock.advance(1)
  t.match(closes, [{ code: 1006, reason: 'Ping timeout', reconnectIn: Number }])
  t.same(socket.closedWith, [4000, 'Ping timeout'])
  t.equal(c.state, 'reconnecting')
})

t.test('a throttled background tab: a timer that fires late does not disconnect', async (t) => {
  const { clock, sockets, c, closes } = setup(t, { ping: { interval: 1000, timeout: 500 } })
  const socket = sockets.last()
  socket.open()
  clock.advance(1000)
  t.equal(socket.sent.length, 1, 'ping sent')
  // The tab is hidden: the next timer runs a minute late, all at once.
  clock.advance(60_000)
  t.equal(c.state, 'open', 'no false disconnect')
  t.equal(socket.sent.length, 2, 'asked again instead')
  socket.receive({ type: 'pong' })
  clock.advance(500)
  t.same(closes, [])
  t.equal(c.state, 'open')
})

t.test('offline drops the socket and waits; online reconnects at once', async (t) => {
  const network = new EventTarget()
  const { clock, sockets, c, closes } = setup(t, { network: network as never })
  sockets.last().open()
  network.dispatchEvent(new Event('offline'))
  t.match(closes, [{ code: 1006, reason: 'Offline' }])
  t.equal(c.state, 'reconnecting')
  clock.advance(60_000)
  t.equal(sockets.made.length, 1, 'no attempt while offline')
  network.dispatchEvent(new Event('online'))
  t.equal(sockets.made.length, 2, 'at once')
  sockets.last().open()
  t.equal(c.state, 'open')
  c.close()
  network.dispatchEvent(new Event('online'))
  t.equal(sockets.made.length, 2, 'listeners removed on close')
})
