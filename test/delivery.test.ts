// Delivery policies per emit type (issue 14 item 5), on real ws clients on
// 127.0.0.1 that really stop reading (their socket paused): a slow member of a
// 1,000 msg/s ticker of 10 keys keeps bounded server memory and, once it reads
// again, gets exactly the last value sent per key; fast members get every
// message in order; reliable past the hard limit closes with 4008; volatile skips.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import WebSocket from 'ws'
import Type from 'typebox'
import { CloseCode, type Connection } from '../index.js'
import type { RealtimeConnection } from '../lib/connection.js'
import { Conflation } from '../lib/conflation.js'
import { Backpressure } from '../lib/backpressure.js'
import { Frame } from '../lib/frames.js'
import { until } from './helpers/wait.js'
import { listeningApp, registeredApp } from './helpers/app.js'
import { openStream } from './helpers/sse.js'

const KEYS = Array.from({ length: 10 }, (_, i) => `SYM${i}`)
const PAD = 'x'.repeat(4 * 1024)
const Price = Type.Object({ symbol: Type.String(), n: Type.Integer(), pad: Type.Optional(Type.String()) })
const bySymbol = (data: { symbol: string }): string => data.symbol

interface Client {
  ws: WebSocket
  /** Every message received, parsed. */
  messages: Array<{ type: string, room?: string, seq?: number, data: any }>
  socket: Socket
  /** The join ack's data: the room's position. */
  joined: { seq: number, epoch: string } | null
}

const feed = (conns: Connection[]) => ({
  joinable: true,
  messages: {},
  emits: { price: Price, news: Type.Object({ n: Type.Integer(), pad: Type.String() }), cursor: Price, tick: Price },
  delivery: { price: { latest: bySymbol }, news: 'reliable', cursor: 'volatile' },
  onOpen: (conn: Connection) => { conns.push(conn) }
})

async function setup (t: Test, slowConsumer: Record<string, number>, extra: Record<string, unknown> = {}) {
  const conns: Connection[] = []
  const { app, url } = await listeningApp(t, {
    options: { heartbeat: false, closeTimeout: 10_000, slowConsumer, ...extra },
    routes: { '/feed': { ...feed(conns), history: extra.history !== undefined } }
  })
  const open = async (room: string | null = 'feed'): Promise<Client> => {
    const before = conns.length
    const ws = new WebSocket(url('/feed'))
    const client: Client = { ws, messages: [], socket: null as unknown as Socket, joined: null }
    ws.on('message', (raw) => { client.messages.push(JSON.parse(raw.toString())) })
    await once(ws, 'open')
    client.socket = (ws as unknown as { _socket: Socket })._socket
    if (room !== null) {
      ws.send(JSON.stringify({ type: 'room:join', data: { room }, id: 1 }))
      await until(() => client.messages.some((m) => m.type === 'ack'), 'the join ack')
      client.joined = client.messages.find((m) => m.type === 'ack')?.data
      client.messages.length = 0
    }
    await until(() => conns.length > before, 'the connection')
    return client
  }
  return { app, conns, open }
}

const prices = (client: Client) => client.messages.filter((m) => m.type === 'price')

t.test('a slow member of a 1,000 msg/s ticker of 10 keys: bounded memory, then exactly the last value per key', async (t) => {
  const softLimit = 64 * 1024
  const { app, conns, open } = await setup(t, { softLimit, softTimeout: 60_000, hardLimit: 1024 * 1024 })
  const slow = await open()
  const fast = [await open(), await open()]
  const server = conns[0] as RealtimeConnection
  slow.socket.pause()
  const frame = Buffer.byteLength(JSON.stringify({ type: 'price', room: 'feed', data: { symbol: 'SYM0', n: 100000, pad: PAD } }))
  // What one stalled member may cost: the soft limit, one tick of frames written before it was judged behind,
  // and its held frames (one per key).
  const bound = softLimit + 2 * KEYS.length * (frame + 64)
  let peak = 0
  let held = 0
  const last = new Map<string, number>()
  let sent = 0
  // 10 messages (one per key) every 10 ms: 1,000 msg/s, for at least 3 s and until the slow member conflated a while.
  const started = Date.now()
  while (Date.now() - started < 3000 || app.realtime.stats().conflated < 1000) {
    if (sent > 50_000) throw new Error('ticker bound reached')
    for (const symbol of KEYS) {
      app.realtime.to('feed').emit('price', { symbol, n: ++sent, pad: PAD })
      last.set(symbol, sent)
    }
    const memory = server.socket.bufferedAmount + (server.conflated?.bytes ?? 0)
    peak = Math.max(peak, memory)
    held = Math.max(held, server.conflated?.frames.size ?? 0)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  t.ok(peak <= bound, `server memory for the slow member stayed bounded: peak ${peak} <= ${bound} bytes`)
  t.equal(held, KEYS.length, 'one held frame per key, never more')
  t.equal(server.socket.readyState, WebSocket.OPEN, 'not closed: a latest backlog never grows')
  const { conflated } = app.realtime.stats()
  t.ok(conflated >= 1000, `conflated ${conflated} messages`)

  for (const client of fast) {
    await until(() => prices(client).length === sent, 'every message at a fast member')
    t.same(prices(client).map((m) => m.data.n), Array.from({ length: sent }, (_, i) => i + 1), 'a fast member got every message, in order')
    t.notOk(prices(client).some((m) => 'seq' in m), 'latest messages carry no seq')
  }

  slow.socket.resume()
  await until(() => KEYS.every((symbol) => {
    const mine = prices(slow).filter((m) => m.data.symbol === symbol)
    return mine.length > 0 && mine[mine.length - 1].data.n === last.get(symbol)
  }), 'the newest value of every key at the slow member')
  await until(() => server.conflated === null, 'its held frames sent')
  t.equal(prices(slow).length, sent - conflated, 'it got every message but the conflated ones, each once')
  for (const symbol of KEYS) {
    const values = prices(slow).filter((m) => m.data.symbol === symbol).map((m) => m.data.n)
    t.ok(values.every((n, i) => i === 0 || n > values[i - 1]), `${symbol}: never an older value after a newer one`)
    t.equal(values[values.length - 1], last.get(symbol), `${symbol}: exactly the last value sent`)
  }
  t.equal(app.realtime.stats().slowConsumerCloses, 0)
  for (const client of [slow, ...fast]) client.ws.close()
})

t.test('reliable emits to a member that is behind still queue, and past the hard limit close it with 4008', async (t) => {
  const hardLimit = 512 * 1024
  const { app, conns, open } = await setup(t, { softLimit: 16 * 1024, softTimeout: 60_000, hardLimit })
  const slow = await open()
  const server = conns[0] as RealtimeConnection
  slow.socket.pause()
  let n = 0
  // Latest first, until it holds some: then reliable news piles up behind them.
  while (server.conflated === null) {
    if (n > 20_000) throw new Error('flood bound reached')
    app.realtime.to('feed').emit('price', { symbol: 'A', n: ++n, pad: PAD })
    await new Promise((resolve) => setImmediate(resolve))
  }
  const backlog = server.socket.bufferedAmount
  app.realtime.to('feed').emit('news', { n: 1, pad: PAD })
  t.ok(server.socket.bufferedAmount > backlog, 'a reliable message is queued behind, not held')
  while (server.socket.readyState === WebSocket.OPEN) {
    if (n > 40_000) throw new Error('flood bound reached')
    app.realtime.to('feed').emit('news', { n: ++n, pad: PAD })
  }
  t.equal(app.realtime.stats().slowConsumerCloses, 1)
  // Still held until the next tick finds the socket closing: then let go.
  await until(() => server.conflated === null, 'the held frames released')
  const closed = once(slow.ws, 'close')
  slow.socket.resume()
  const [code] = await closed as [number]
  t.equal(code, CloseCode.SlowConsumer)
})

t.test('latest frames past the hard limit (too many keys held) close the member with 4008', async (t) => {
  const hardLimit = 256 * 1024
  const { app, conns, open } = await setup(t, { softLimit: 16 * 1024, softTimeout: 60_000, hardLimit })
  const slow = await open()
  const server = conns[0] as RealtimeConnection
  slow.socket.pause()
  let n = 0
  while (server.socket.readyState === WebSocket.OPEN) {
    if (n > 40_000) throw new Error('flood bound reached')
    // A new key each time: nothing to conflate, so the held bytes grow.
    app.realtime.to('feed').latest(`k${++n}`).emit('tick', { symbol: 'A', n, pad: PAD })
    if (server.conflated === null) await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(server.conflated, null, 'its held frames are let go')
  t.equal(app.realtime.stats().slowConsumerCloses, 1)
  t.equal(app.realtime.stats().conflated, 0, 'distinct keys: nothing conflated')
  const closed = once(slow.ws, 'close')
  slow.socket.resume()
  t.equal((await closed as [number])[0], 4008)
})

t.test('volatile (declared, or per call) skips a member that is behind; unicasts follow the route too', async (t) => {
  const { app, conns, open } = await setup(t, { softLimit: 16 * 1024, softTimeout: 60_000, hardLimit: 64 * 1024 * 1024 })
  const slow = await open()
  const reader = await open()
  const server = conns[0] as RealtimeConnection
  slow.socket.pause()
  let n = 0
  while (server.slowSince === 0 || server.socket.bufferedAmount <= 16 * 1024) {
    if (n > 20_000) throw new Error('flood bound reached')
    app.realtime.to('feed').emit('news', { n: ++n, pad: PAD })
    await new Promise((resolve) => setImmediate(resolve))
  }
  const backlog = server.socket.bufferedAmount
  const drops = app.realtime.stats().volatileDrops
  server.to('feed').emit('cursor', { symbol: 'A', n: 1 }) // declared volatile
  app.realtime.to('feed').emit('cursor', { symbol: 'A', n: 2 }) // the app-wide table agrees
  app.realtime.to('feed').volatile.emit('tick', { symbol: 'A', n: 3 })
  server.emit('cursor', { symbol: 'A', n: 4 })
  server.volatile.emit('tick', { symbol: 'A', n: 5 })
  t.equal(server.socket.bufferedAmount, backlog, 'nothing was queued for the slow member')
  t.equal(app.realtime.stats().volatileDrops - drops, 5)
  // The same unicasts to a member that keeps up go out.
  const fast = conns[1] as RealtimeConnection
  fast.emit('cursor', { symbol: 'B', n: 6 })
  fast.volatile.emit('tick', { symbol: 'B', n: 7 })
  fast.latest('B').emit('tick', { symbol: 'B', n: 8 })
  fast.emit('price', { symbol: 'B', n: 9 })
  await until(() => reader.messages.filter((m) => m.data?.symbol === 'B').length === 4, 'the unicasts')
  t.same(reader.messages.filter((m) => m.data?.symbol === 'B').map((m) => [m.type, m.data.n, 'room' in m]),
    [['cursor', 6, false], ['tick', 7, false], ['tick', 8, false], ['price', 9, false]])
  // A unicast latest to the slow member is held (keyed apart from the room's), the newest kept.
  server.latest('B').emit('tick', { symbol: 'B', n: 10 })
  server.emit('price', { symbol: 'B', n: 11 })
  server.emit('price', { symbol: 'B', n: 12 })
  t.same([...(server.conflated?.frames.values() ?? [])].map((f) => JSON.parse(f.data.toString()).data.n), [10, 12])
  t.equal(app.realtime.stats().conflated, 1)
  // Closed: volatile and latest unicasts are dropped, not kept.
  slow.ws.terminate()
  await once(server.socket, 'close')
  server.volatile.emit('tick', { symbol: 'B', n: 13 })
  server.latest('B').emit('tick', { symbol: 'B', n: 14 })
  t.equal(app.realtime.stats().volatileDrops - drops, 5)
  reader.ws.close()
})

t.test('latest messages on a history room are neither numbered nor kept', async (t) => {
  const { app, open } = await setup(t, { softLimit: 16 * 1024, softTimeout: 60_000, hardLimit: 1024 * 1024 }, { history: {} })
  const reader = await open('feed')
  app.realtime.to('feed').emit('news', { n: 1, pad: '' })
  app.realtime.to('feed').emit('price', { symbol: 'A', n: 2 })
  app.realtime.to('feed').emit('news', { n: 3, pad: '' })
  await until(() => reader.messages.length === 3, 'three messages')
  t.same(reader.messages.map((m) => [m.type, m.seq]), [['news', 1], ['price', undefined], ['news', 2]])
  // To a room with nobody here: published only (nothing to number or keep either).
  app.realtime.to('nobody').emit('price', { symbol: 'A', n: 4 })
  t.equal(app.realtime.stats().rooms, 1)
  // A late joiner replaying from the reader's join position gets the numbered ones only.
  const late = await open(null)
  late.ws.send(JSON.stringify({ type: 'room:join', data: { room: 'feed', since: reader.joined }, id: 1 }))
  await until(() => late.messages.some((m) => m.type === 'ack'), 'the join ack')
  t.same(late.messages.map((m) => [m.type, m.seq]), [['news', 1], ['news', 2], ['ack', undefined]], 'replayed without it')
  t.equal(late.messages[2].data.recovered, true)
  reader.ws.close()
  late.ws.close()
})

t.test('over SSE too: a stream that does not drain holds the newest frame per key, bounded', async (t) => {
  const softLimit = 64 * 1024
  const conns: Connection[] = []
  const { app, port } = await listeningApp(t, {
    options: { heartbeat: false, closeTimeout: 50, sse: true, slowConsumer: { softLimit, softTimeout: 60_000, hardLimit: 1024 * 1024 } },
    routes: { '/feed': feed(conns) }
  })
  const stream = await openStream(`http://127.0.0.1:${port}/feed`)
  await stream.post({ type: 'room:join', id: 1, data: { room: 'feed' } })
  stream.pause()
  const server = conns[0] as RealtimeConnection
  let n = 0
  let peak = 0
  while (app.realtime.stats().conflated < 200) {
    if (n > 50_000) throw new Error('ticker bound reached')
    for (const symbol of KEYS) app.realtime.to('feed').emit('price', { symbol, n: ++n, pad: PAD })
    peak = Math.max(peak, server.socket.bufferedAmount + (server.conflated?.bytes ?? 0))
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(server.conflated?.frames.size, KEYS.length, 'one held frame per key')
  t.ok(peak <= softLimit + 4 * KEYS.length * 4200, `bounded: peak ${peak} bytes`)
  t.equal(app.realtime.stats().slowConsumerCloses, 0)
  stream.close()
})

t.test('delivery is checked when the route is declared', async (t) => {
  const app = await registeredApp(t)
  const emits = { price: Price, news: Price }
  const cases: Array<[unknown, RegExp]> = [
    [null, /"delivery" must be an object/],
    ['latest', /"delivery" must be an object/],
    [{ nope: 'reliable' }, /"delivery.nope" names no declared emit/],
    [{ price: 'fast' }, /"delivery.price" must be 'reliable', 'volatile' or \{ latest/],
    [{ price: { latest: 'symbol' } }, /"delivery.price" must be/],
    [{ price: null }, /"delivery.price" must be/]
  ]
  for (const [delivery, message] of cases) {
    t.throws(() => app.realtime('/bad', { messages: {}, emits, delivery } as any), { code: 'FRT_ERR_ROUTE_INVALID', message })
  }
  // The same policy (the same latest function) on two routes agrees; a route without one does not count.
  app.realtime('/a', { messages: {}, emits, delivery: { price: { latest: bySymbol }, news: 'volatile' } })
  app.realtime('/b', { messages: {}, emits, delivery: { price: { latest: bySymbol } } })
  app.realtime('/c', { messages: {}, emits })
  t.throws(() => app.realtime('/d', { messages: {}, emits, delivery: { price: { latest: (d) => d.symbol } } }),
    { code: 'FRT_ERR_ROUTE_DELIVERY_CONFLICT', message: /\/d declares a "delivery" for "price" unlike route \/a/ })
  t.throws(() => app.realtime('/e', { messages: {}, emits, delivery: { price: { latest: bySymbol }, news: 'reliable' } }),
    { code: 'FRT_ERR_ROUTE_DELIVERY_CONFLICT', message: /"news"/ })
  t.throws(() => app.realtime('/f', { messages: {}, emits, delivery: { news: 'volatile', price: 'reliable' } }),
    { code: 'FRT_ERR_ROUTE_DELIVERY_CONFLICT', message: /"price"/ })
  await app.ready()
})

t.test('a latest key must be a string', async (t) => {
  const conns: Connection[] = []
  const { app, url } = await listeningApp(t, {
    options: { heartbeat: false },
    routes: { '/k': { messages: {}, emits: { price: Price }, delivery: { price: { latest: (d: { n: number }) => d.n } }, onOpen: (c: Connection) => { conns.push(c) } } }
  })
  const ws = new WebSocket(url('/k'))
  await once(ws, 'open')
  await until(() => conns.length === 1, 'the connection')
  t.throws(() => conns[0].emit('price', { symbol: 'A', n: 1 }), { code: 'FRT_ERR_EMIT_INVALID', message: /latest key must be a string, got number/ })
  t.throws(() => app.realtime.to('r').emit('price', { symbol: 'A', n: 1 }), { code: 'FRT_ERR_EMIT_INVALID' })
  t.throws(() => conns[0].latest(1 as unknown as string), { code: 'FRT_ERR_EMIT_INVALID', message: /key must be a string/ })
  t.throws(() => app.realtime.to('r').latest(null as unknown as string), { code: 'FRT_ERR_EMIT_INVALID' })
  ws.close()
})

t.test('the conflation map on its own: first-insertion order, byte count, flush when under the soft limit', async (t) => {
  const counters = { conflated: 0, slowConsumerCloses: 0 }
  const backpressure = new Backpressure({ softLimit: 100, softTimeout: 60_000, hardLimit: 10_000 }, counters)
  const conflation = new Conflation(backpressure, counters)
  t.teardown(() => conflation.stop())
  const sent: string[] = []
  const conn = {
    socket: { bufferedAmount: 500 },
    closed: false,
    slowSince: 1,
    conflated: null,
    log: { warn () {} },
    close () {},
    sendFrame (frame: Frame) { sent.push(frame.data.toString()) }
  }
  for (const [key, value] of [['a', '{"a":1}'], ['b', '{"b":1}'], ['a', '{"a":22}'], ['c', '{"c":1}']]) {
    conflation.send(conn as any, new Frame(value), key)
  }
  t.equal(conflation.behind, 1)
  t.equal((conn as any).conflated.bytes, 3 + 3 * 9 + 1, 'keys and frames, the replaced one counted once')
  conflation.flush()
  t.same(sent, [], 'still behind: held')
  conn.socket.bufferedAmount = 100
  conflation.flush()
  t.same(sent, ['{"a":22}', '{"b":1}', '{"c":1}'], 'in the order keys were first held, the newest of each')
  t.equal(conn.conflated, null)
  t.equal(conflation.behind, 0)
  t.equal(counters.conflated, 1)
})
