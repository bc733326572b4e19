import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import WebSocket from 'ws'
import { Clock } from '@tapjs/clock'
import { CloseCode, type Connection } from '../index.js'
import { Backpressure } from '../lib/backpressure.js'
import type { RealtimeConnection } from '../lib/connection.js'
import { until } from './helpers/wait.js'
import { listeningApp } from './helpers/app.js'

const PAD = 'x'.repeat(8 * 1024)
const FRAME = Buffer.byteLength(JSON.stringify({ type: 'tick', room: 'feed', seq: 100000, data: { n: 100000, pad: PAD } }))

interface Client { ws: WebSocket, seqs: number[] }

async function setup (t: Test, options: Record<string, unknown>) {
  const conns: Connection[] = []
  const { app, url: urlOf } = await listeningApp(t, {
    options: { heartbeat: false, closeTimeout: 10_000, ...options },
    routes: { '/feed': { joinable: true, messages: {}, onOpen: (conn: Connection) => { conns.push(conn) } } }
  })
  const url = urlOf('/feed')
  const open = async (): Promise<Client> => {
    const ws = new WebSocket(url)
    const client: Client = { ws, seqs: [] }
    ws.on('message', (raw) => {
      const msg = JSON.parse(raw.toString())
      if (msg.room === 'feed') client.seqs.push(msg.seq)
    })
    await once(ws, 'open')
    ws.send(JSON.stringify({ type: 'room:join', data: { room: 'feed' }, id: 1 }))
    await until(() => conns.length > 0 && app.realtime.stats().members === conns.length, 'the join')
    return client
  }
  return { app, conns, open }
}

function pause (client: Client): Socket {
  // The client stops reading: its TCP window closes and the server's buffer grows.
  const socket = (client.ws as unknown as { _socket: Socket })._socket
  socket.pause()
  return socket
}

/**
 * Emits to the room in batches until `stop()`; between batches it waits for the
 * reading clients to catch up, so only the paused one falls behind.
 */
function flooder (app: Awaited<ReturnType<typeof setup>>['app'], readers: Client[]) {
  let sent = 0
  return {
    get sent () { return sent },
    async until (stop: () => boolean, options: { volatile?: boolean, each?: () => void } = {}): Promise<number> {
      const start = sent
      const target = options.volatile === true ? app.realtime.to('feed').volatile : app.realtime.to('feed')
      while (!stop()) {
        if (sent > 50_000) throw new Error('flood bound reached')
        for (let i = 0; i < 16; i++) target.emit('tick', { n: ++sent, pad: PAD })
        options.each?.()
        await until(() => readers.every((r) => r.seqs.length >= sent - 32), 'the readers to catch up')
      }
      return sent - start
    }
  }
}

function contiguous (seqs: number[]): boolean {
  return seqs.every((seq, i) => i === 0 || seq === seqs[i - 1] + 1)
}

t.test('a client that stops reading is closed at the hard limit; the others get everything', async (t) => {
  const hardLimit = 256 * 1024
  const { app, conns, open } = await setup(t, { slowConsumer: { softLimit: 64 * 1024, softTimeout: 60_000, hardLimit } })
  const slow = await open()
  const readers = [await open(), await open()]
  const slowSocket = pause(slow)
  const server = conns[0] as RealtimeConnection
  let peak = 0
  const measure = () => { peak = Math.max(peak, server.socket.bufferedAmount) }

  const flood = flooder(app, readers)
  await flood.until(() => app.realtime.stats().slowConsumerCloses > 0, { each: measure })
  t.equal(server.socket.readyState, WebSocket.CLOSING, 'the server is closing the slow socket')
  t.ok(peak > hardLimit, 'the backlog reached the hard limit')
  t.ok(peak <= hardLimit + 2 * FRAME, `server memory for it stayed bounded (peak ${peak} bytes)`)

  const after = server.socket.bufferedAmount
  const closedAt = flood.sent
  await flood.until(() => flood.sent >= closedAt + 320, { each: measure })
  const sent = flood.sent
  t.equal(server.socket.bufferedAmount, after, 'nothing more is queued for it while it closes')
  t.equal(app.realtime.stats().slowConsumerCloses, 1, 'counted once')

  await until(() => readers.every((r) => r.seqs.length === sent), 'every message at the readers')
  for (const reader of readers) {
    t.equal(reader.seqs[0], 1)
    t.ok(contiguous(reader.seqs), 'the readers saw every seq once, in order')
  }

  // Once it reads again, it drains what was queued and then sees why it was closed.
  const closed = once(slow.ws, 'close')
  slowSocket.resume()
  const [code, reason] = await closed as [number, Buffer]
  t.equal(code, CloseCode.SlowConsumer)
  t.equal(code, 4008)
  t.equal(reason.toString(), 'Slow consumer')
  t.ok(slow.seqs.length > 0 && slow.seqs.length < sent, `it got a prefix (${slow.seqs.length} of ${sent})`)
  t.ok(contiguous(slow.seqs) && slow.seqs[0] === 1, 'with no gap and no duplicate')
  await until(() => app.realtime.stats().members === 2, 'the slow client to leave the room')
  for (const reader of readers) reader.ws.close()
})

t.test('over the soft limit for longer than softTimeout: closed on the next send', async (t) => {
  const { app, conns, open } = await setup(t, { slowConsumer: { softLimit: 16 * 1024, softTimeout: 100, hardLimit: 64 * 1024 * 1024 } })
  const slow = await open()
  const reader = await open()
  pause(slow)
  const server = conns[0] as RealtimeConnection
  await flooder(app, [reader]).until(() => server.slowSince !== 0)
  t.equal(app.realtime.stats().slowConsumerCloses, 0, 'over the soft limit is not yet too slow')
  await new Promise((resolve) => setTimeout(resolve, 150))
  app.realtime.to('feed').emit('tick', { n: 0 })
  t.equal(app.realtime.stats().slowConsumerCloses, 1)
  t.equal(server.socket.readyState, WebSocket.CLOSING)
  t.ok(server.socket.bufferedAmount < 64 * 1024 * 1024)
  reader.ws.close()
  slow.ws.terminate()
})

t.test('over the soft limit and sent nothing more: closed by the sweep', async (t) => {
  const { app, conns, open } = await setup(t, {
    slowConsumer: { softLimit: 16 * 1024, softTimeout: 100, hardLimit: 64 * 1024 * 1024 },
    // Long timeout: the paused client cannot answer pings, and this test is about the buffer.
    heartbeat: { interval: 20, timeout: 60_000 }
  })
  const slow = await open()
  const reader = await open()
  pause(slow)
  const server = conns[0] as RealtimeConnection
  await flooder(app, [reader]).until(() => server.slowSince !== 0)
  await until(() => app.realtime.stats().slowConsumerCloses === 1, 'the sweep to close it')
  t.equal(server.socket.readyState, WebSocket.CLOSING)
  t.equal(app.realtime.stats().heartbeatTerminations, 0)
  reader.ws.close()
  slow.ws.terminate()
})

t.test('volatile emits skip a member over the soft limit', async (t) => {
  const { app, conns, open } = await setup(t, { slowConsumer: { softLimit: 16 * 1024, softTimeout: 60_000, hardLimit: 64 * 1024 * 1024 } })
  const slow = await open()
  const reader = await open()
  pause(slow)
  const server = conns[0] as RealtimeConnection
  const flood = flooder(app, [reader])
  const sent = await flood.until(() => server.socket.bufferedAmount > 16 * 1024)
  const backlog = server.socket.bufferedAmount
  const out = app.realtime.stats().messagesOut
  const volatile = await flood.until(() => flood.sent >= sent + 64, { volatile: true })
  t.equal(server.socket.bufferedAmount, backlog, 'nothing was queued for the slow member')
  t.equal(app.realtime.stats().volatileDrops, volatile, 'one drop per volatile message')
  t.equal(app.realtime.stats().messagesOut - out, volatile, 'the reader got each once')
  await until(() => reader.seqs.length === sent + volatile, 'the volatile messages at the reader')
  t.ok(contiguous(reader.seqs))
  t.equal(app.realtime.stats().slowConsumerCloses, 0)
  reader.ws.close()
  slow.ws.terminate()
})

t.test('slowConsumer: false never closes, and volatile emits go to everyone', async (t) => {
  const { app, conns, open } = await setup(t, { slowConsumer: false })
  const slow = await open()
  const reader = await open()
  pause(slow)
  const server = conns[0] as RealtimeConnection
  await flooder(app, [reader]).until(() => server.socket.bufferedAmount > 512 * 1024)
  const backlog = server.socket.bufferedAmount
  app.realtime.to('feed').volatile.emit('tick', { n: 0 })
  t.ok(server.socket.bufferedAmount > backlog, 'queued for the slow member too')
  t.match(app.realtime.stats(), { slowConsumerCloses: 0, volatileDrops: 0 })
  t.equal(server.socket.readyState, WebSocket.OPEN)
  reader.ws.close()
  slow.ws.terminate()
})

t.test('the policy on its own, on a fake clock', async (t) => {
  const clock = new Clock()
  t.teardown(clock.enter())
  const counters = { slowConsumerCloses: 0 }
  const policy = new Backpressure({ softLimit: 100, softTimeout: 1000, hardLimit: 1000 }, counters)
  const closes: number[] = []
  const conn = {
    socket: { bufferedAmount: 0 },
    closed: false,
    slowSince: 0,
    log: { warn () {} },
    close (code: number) { closes.push(code); conn.closed = true }
  }
  const check = () => policy.check(conn as unknown as RealtimeConnection)
  conn.socket.bufferedAmount = 150
  check()
  t.equal(conn.slowSince, clock.now(), 'the soft timer starts')
  t.ok(policy.isSlow(conn as unknown as RealtimeConnection))
  clock.advance(999)
  check()
  t.same(closes, [])
  conn.socket.bufferedAmount = 50
  check()
  t.equal(conn.slowSince, 0, 'back under the soft limit resets it')
  conn.socket.bufferedAmount = 150
  check()
  clock.advance(500)
  check()
  t.same(closes, [], 'the timer restarted')
  clock.advance(500)
  check()
  t.same(closes, [4008])
  check()
  t.same(closes, [4008], 'a closing connection is not closed or counted twice')
  t.equal(counters.slowConsumerCloses, 1)

  conn.closed = false
  conn.slowSince = 0
  conn.socket.bufferedAmount = 1001
  check()
  t.same(closes, [4008, 4008], 'past the hard limit: at once')
  t.equal(counters.slowConsumerCloses, 2)
})
