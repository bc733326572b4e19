// The send fast path (lib/frames.ts): frames built once and written straight to
// the TCP socket, corked until the current run of JavaScript ends. Real sockets
// on 127.0.0.1, since corking and ws's own queue only exist there.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import type { Writable } from 'node:stream'
import Type from 'typebox'
import WebSocket from 'ws'
import * as wsModule from 'ws'
import { CloseCode, type RealtimeOptions, type RouteDefinition } from '../index.js'
import { Frame } from '../lib/frames.js'
import type { RealtimeConnection } from '../lib/connection.js'
import { until } from './helpers/wait.js'
import { listeningApp } from './helpers/app.js'

// @types/ws leaves these two out; ws exports them.
const { Sender, Receiver } = wsModule as unknown as {
  Sender: { frame: (data: Buffer, options: object) => Buffer[] }
  Receiver: new (options: object) => Writable
}

const BOUND = 20_000
const Tick = Type.Object({ n: Type.Number(), pad: Type.Optional(Type.String()) })
const PAD = 'x'.repeat(8 * 1024)

interface Received { type: string, n?: number, seq?: number, id?: number, binary?: string, size?: number }
interface Client { ws: WebSocket, got: Received[] }

async function serve (t: Test, options: RealtimeOptions = {}) {
  const conns: RealtimeConnection[] = []
  // Set by a test to run inside the `mix` handler, on the server, in the tick that received it.
  let mix: (conn: RealtimeConnection) => unknown = () => null
  const feed: RouteDefinition<any, any> = {
    joinable: true,
    messages: { mix: { schema: Type.Object({}), handler: (conn) => mix(conn as RealtimeConnection) } },
    emits: { tick: Tick, direct: Tick },
    onOpen: (conn) => { conns.push(conn as RealtimeConnection) }
  }
  const { app, url: urlOf } = await listeningApp(t, { options: { heartbeat: false, ...options }, routes: { '/feed': feed } })
  const url = urlOf('/feed')
  const open = async (clientOptions: WebSocket.ClientOptions = {}, join = true): Promise<Client> => {
    const ws = new WebSocket(url, clientOptions)
    const client: Client = { ws, got: [] }
    ws.on('message', (raw: Buffer, isBinary: boolean) => {
      if (isBinary) {
        client.got.push({ type: 'binary', binary: raw.toString() })
        return
      }
      const msg = JSON.parse(raw.toString())
      client.got.push({ type: msg.type, n: msg.data?.n, seq: msg.seq, id: msg.id, size: msg.data?.pad?.length })
    })
    const count = conns.length
    await once(ws, 'open')
    await until(() => conns.length > count, 'the connection to open', BOUND)
    if (join) {
      ws.send(JSON.stringify({ type: 'room:join', data: { room: 'feed' }, id: 0 }))
      await until(() => client.got.some((m) => m.type === 'ack' && m.id === 0), 'the join', BOUND)
      client.got.length = 0
    }
    return client
  }
  return { app, conns, open, onMix: (fn: typeof mix) => { mix = fn } }
}

/** The TCP socket under a server-side connection. */
function tcp (conn: RealtimeConnection): Socket {
  return (conn.socket as unknown as { _socket: Socket })._socket
}

const ns = (got: Received[], type: string) => got.filter((m) => m.type === type).map((m) => m.n)
const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

t.test('a frame is the bytes ws would send, for every header size', async (t) => {
  const receiver = new Receiver({ isServer: false, maxPayload: 0 })
  const parsed: string[] = []
  receiver.on('message', (data: Buffer) => parsed.push(data.toString()))
  const payloads = [0, 1, 125, 126, 65535, 65536, 70_000].map((n) => 'a'.repeat(n))
  payloads.push('héllo wörld ✓')
  for (const payload of payloads) {
    const bytes = Buffer.from(payload)
    const expected = Buffer.concat(Sender.frame(bytes, { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }))
    for (const frame of [new Frame(payload), new Frame(bytes)]) {
      t.ok(frame.wire.equals(expected), `${bytes.length} bytes from a ${typeof payload}: ws's framing`)
      t.ok(frame.data.equals(bytes), 'the payload view')
      receiver.write(frame.wire)
    }
  }
  t.same(parsed, payloads.flatMap((p) => [p, p]), 'ws reads them all back')
})

t.test('broadcasts, unicasts and acks in one tick reach each member in call order, in one flush', async (t) => {
  const { app, open, onMix } = await serve(t)
  const sender = await open()
  const other = await open()
  const corkedInTick: boolean[] = []
  let conn: RealtimeConnection | null = null
  onMix((c) => {
    conn = c
    const room = app.realtime.to('feed')
    room.emit('tick', { n: 1 })
    c.emit('direct', { n: 2 })
    c.to('feed').emit('tick', { n: 3 })
    room.emit('tick', { n: 4, pad: PAD })
    c.emit('direct', { n: 5, pad: PAD })
    corkedInTick.push(tcp(c).writableCorked > 0 && tcp(c).writableLength > 2 * PAD.length)
    return 'done'
  })
  const rounds = 20
  for (let i = 1; i <= rounds; i++) sender.ws.send(JSON.stringify({ type: 'mix', data: {}, id: i }))
  await until(() => sender.got.filter((m) => m.type === 'ack').length === rounds && other.got.length === rounds * 3, 'every round', BOUND)

  const round = (i: number) => [
    { type: 'tick', n: 1 }, { type: 'direct', n: 2 }, { type: 'tick', n: 3 }, { type: 'tick', n: 4 }, { type: 'direct', n: 5 }, { type: 'ack', id: i }
  ]
  t.same(sender.got.map(({ type, n, id }) => type === 'ack' ? { type, id } : { type, n }),
    Array.from({ length: rounds }, (_, i) => round(i + 1)).flat(), 'the sender: its round in order, ack last')
  t.same(ns(other.got, 'tick'), Array.from({ length: rounds }, () => [1, 3, 4]).flat(), 'a member: the broadcasts in order')
  t.same(other.got.map((m) => m.seq), Array.from({ length: rounds * 3 }, (_, i) => i + 1), 'seq without gap or repeat')
  t.ok(corkedInTick.length === rounds && corkedInTick.every(Boolean), 'the frames of a tick wait corked for one write')
  t.equal(tcp(conn as unknown as RealtimeConnection).writableCorked, 0, 'uncorked once the tick is over')
})

t.test('many broadcasts to many members: each member gets every frame exactly once, in order', async (t) => {
  const { app, open } = await serve(t)
  const members: Client[] = []
  for (let i = 0; i < 40; i++) members.push(await open())
  const out = app.realtime.stats().messagesOut
  const room = app.realtime.to('feed')
  const total = 300
  let n = 0
  while (n < total) {
    // Bursts of 1 to 10 in a tick, of mixed sizes (7-bit, 16-bit and 64-bit lengths).
    for (let k = 0; k <= n % 10 && n < total; k++) {
      n++
      const pad = n % 97 === 0 ? 'y'.repeat(70_000) : n % 3 === 0 ? 'z'.repeat(300) : undefined
      room.emit('tick', pad === undefined ? { n } : { n, pad })
    }
    await nextTurn()
  }
  room.emit('direct', { n: -1 })
  await until(() => members.every((m) => m.got.at(-1)?.type === 'direct'), 'the end marker at every member', BOUND)
  for (const [i, member] of members.entries()) {
    const ticks = member.got.filter((m) => m.type === 'tick')
    if (ticks.length !== total || !ticks.every((m, j) => m.n === j + 1 && m.seq === j + 1)) {
      t.fail(`member ${i} got ${ticks.length} of ${total}, or out of order`)
    }
    t.equal(member.got.find((m) => m.n === 97)?.size, 70_000, `member ${i}: the long frame whole`)
  }
  t.equal(app.realtime.stats().messagesOut - out, members.length * (total + 1), 'one send counted per member and message')
})

t.test('closed, closing and destroyed sockets are skipped without error', async (t) => {
  const { app, conns, open } = await serve(t)
  const closing = await open()
  const terminated = await open()
  const destroyedLate = await open()
  const reader = await open()
  const [closingConn, terminatedConn, lateConn] = conns
  const out = app.realtime.stats().messagesOut
  const room = app.realtime.to('feed')

  closingConn.close(CloseCode.Normal, 'bye')
  terminatedConn.socket.terminate()
  room.emit('tick', { n: 1 })
  closingConn.emit('direct', { n: 1 })
  terminatedConn.emit('direct', { n: 1 })
  // Corked with a frame in it, then destroyed before the flush.
  lateConn.socket.terminate()
  room.emit('tick', { n: 2 })
  t.equal(app.realtime.stats().messagesOut - out, 1 + 2, 'only open sockets counted: late for n=1, the reader for both')
  await nextTurn()

  await until(() => app.realtime.stats().members === 1, 'the closed members to leave', BOUND)
  room.emit('tick', { n: 3 })
  await until(() => reader.got.length === 3, 'the reader', BOUND)
  t.same(ns(reader.got, 'tick'), [1, 2, 3])
  t.same(ns(closing.got, 'tick'), [], 'nothing after close() was called')
  t.equal(app.realtime.stats().connections, 1)
  for (const client of [closing, terminated, destroyedLate]) client.ws.terminate()
})

t.test('a tick\'s corked bytes do not make a reader slow; a paused client is detected and closed', async (t) => {
  const softLimit = 64 * 1024
  const hardLimit = 1024 * 1024
  const { app, conns, open } = await serve(t, { slowConsumer: { softLimit, softTimeout: 60_000, hardLimit } })
  const slow = await open()
  const reader = await open()
  const [slowConn, readerConn] = conns
  const slowSocket = (slow.ws as unknown as { _socket: Socket })._socket
  slowSocket.pause()
  const room = app.realtime.to('feed')

  // One tick: the reader holds more than the soft limit, all corked, and is not judged on it.
  for (let i = 1; i <= 16; i++) room.emit('tick', { n: i, pad: PAD })
  t.ok(readerConn.socket.bufferedAmount > softLimit, 'the tick\'s frames are buffered, corked')
  t.equal(readerConn.slowSince, 0, 'not slow for that')
  room.volatile.emit('tick', { n: 17 })
  t.equal(app.realtime.stats().volatileDrops, 0, 'volatile frames still go to everyone')
  let sent = 17
  await until(() => reader.got.length === sent, 'the reader', BOUND)

  // Tick after tick (each under the soft limit), the paused client falls behind:
  // its buffer grows past the soft limit after a flush.
  const flood = async (stop: () => boolean) => {
    while (!stop()) {
      if (sent > 5000) throw new Error('flood bound reached')
      for (let i = 0; i < 4; i++) room.emit('tick', { n: ++sent, pad: PAD })
      await until(() => reader.got.length === sent, 'the reader', BOUND)
    }
  }
  await flood(() => slowConn.slowSince !== 0)
  const backlog = slowConn.socket.bufferedAmount
  t.ok(backlog > softLimit, 'the paused client\'s backlog is visible in bufferedAmount')
  t.equal(readerConn.slowSince, 0, 'the reader is not slow')
  room.volatile.emit('tick', { n: ++sent })
  t.equal(app.realtime.stats().volatileDrops, 1, 'a volatile frame skips the slow one')
  t.equal(slowConn.socket.bufferedAmount, backlog, 'nothing queued for it')

  // Known slow: judged on every frame, so it is closed at the first frame past the hard limit.
  await flood(() => slowConn.socket.readyState !== WebSocket.OPEN)
  t.ok(slowConn.socket.bufferedAmount <= hardLimit + PAD.length + 200, 'closed within one frame of the hard limit')
  t.equal(app.realtime.stats().slowConsumerCloses, 1)
  await until(() => reader.got.length === sent, 'the reader', BOUND)
  t.ok(ns(reader.got, 'tick').every((n, i) => n === i + 1), 'the reader got everything in order')
  const closed = once(slow.ws, 'close')
  slowSocket.resume()
  t.equal((await closed)[0], CloseCode.SlowConsumer)
})

t.test('past the hard limit within one tick, a member is closed in that tick', async (t) => {
  const hardLimit = 256 * 1024
  const { app, conns, open } = await serve(t, { slowConsumer: { softLimit: 64 * 1024, softTimeout: 60_000, hardLimit } })
  const client = await open()
  const [conn] = conns
  let sent = 0
  while (conn.socket.readyState === WebSocket.OPEN && sent < 1000) app.realtime.to('feed').emit('tick', { n: ++sent, pad: PAD })
  t.equal(conn.socket.readyState, WebSocket.CLOSING)
  t.ok(conn.socket.bufferedAmount <= hardLimit + PAD.length + 200, 'memory bounded by the hard limit, corked bytes included')
  t.equal(app.realtime.stats().slowConsumerCloses, 1)
  const [code] = await once(client.ws, 'close')
  t.equal(code, CloseCode.SlowConsumer)
})

t.test('permessage-deflate: frames go through ws, compressed and in order', async (t) => {
  const { app, open, onMix } = await serve(t, { perMessageDeflate: true })
  const sender = await open()
  const other = await open()
  t.match(sender.ws.extensions, /permessage-deflate/, 'negotiated')
  const big = 'w'.repeat(20_000)
  let corked = -1
  onMix((conn) => {
    app.realtime.to('feed').emit('tick', { n: 1, pad: big })
    conn.emit('direct', { n: 2 })
    app.realtime.to('feed').emit('tick', { n: 3 })
    corked = tcp(conn).writableCorked
    return 'done'
  })
  const read = (other.ws as unknown as { _socket: Socket })._socket.bytesRead
  sender.ws.send(JSON.stringify({ type: 'mix', data: {}, id: 1 }))
  await until(() => sender.got.length === 4 && other.got.length === 2, 'the round', BOUND)
  t.same(sender.got.map((m) => m.type === 'ack' ? m.id : m.n), [1, 2, 3, 1])
  t.same(other.got.map((m) => [m.n, m.size]), [[1, 20_000], [3, undefined]])
  t.equal(corked, 0, 'not corked by the fast path')
  t.ok((other.ws as unknown as { _socket: Socket })._socket.bytesRead - read < 2000, 'compressed on the wire')
})

t.test('a frame never overtakes what ws still holds for the socket', async (t) => {
  const { app, open, onMix } = await serve(t)
  const sender = await open()
  const other = await open()
  onMix((conn) => {
    // ws reads a Blob asynchronously and queues whatever is sent meanwhile.
    conn.socket.send(new Blob(['first']))
    app.realtime.to('feed').emit('tick', { n: 1 })
    conn.emit('direct', { n: 2 })
    return 'done'
  })
  sender.ws.send(JSON.stringify({ type: 'mix', data: {}, id: 1 }))
  await until(() => sender.got.length === 4 && other.got.length === 1, 'the round', BOUND)
  t.same(sender.got.map((m) => m.binary ?? m.n ?? m.id), ['first', 1, 2, 1], 'the Blob first, then the rest in order')
  t.same(other.got.map((m) => m.n), [1])
})
