// Latest delivery across instances: the policy travels with the message (a flag
// and the key in the Redis envelope), and the receiving instance conflates for
// its own members that are behind. A real redis-server, real ws clients.
import t from 'tap'
import { once } from 'node:events'
import type { AddressInfo, Socket } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import Type from 'typebox'
import { Redis } from 'ioredis'
import realtime, { RedisAdapter, type Connection } from '../index.js'
import type { RealtimeConnection } from '../lib/connection.js'
import { latestHeader, readRoomEnvelope, roomHeader, type RoomEnvelope } from '../lib/adapters/envelope.js'
import { startRedisServer } from './helpers/redis-server.js'
import { until } from './helpers/wait.js'

const KEYS = Array.from({ length: 10 }, (_, i) => `SYM${i}`)
const PAD = 'x'.repeat(4 * 1024)
const Price = Type.Object({ symbol: Type.String(), n: Type.Integer(), pad: Type.String() })
const bySymbol = (data: { symbol: string }): string => data.symbol

interface Member {
  ws: WebSocket
  socket: Socket
  prices: Array<{ symbol: string, n: number }>
  numbered: number[]
  /** Every room message in the order received: `n<seq>` for news, `p<n>` for prices. */
  order: string[]
  /** Latest news (no seq) received. */
  warmups: number
}

t.test('a latest ticker on one instance: the other conflates for its slow member; fast members everywhere get every message', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const softLimit = 64 * 1024
  const instances: Array<{ app: FastifyInstance, conns: Connection[], url: string }> = []
  for (let i = 0; i < 2; i++) {
    const client = new Redis(redis.url)
    client.on('error', () => {})
    await once(client, 'ready')
    const conns: Connection[] = []
    const app = Fastify()
    await app.register(realtime, {
      heartbeat: false,
      rateLimit: false,
      closeTimeout: 10_000,
      slowConsumer: { softLimit, softTimeout: 60_000, hardLimit: 1024 * 1024 },
      adapter: new RedisAdapter({ client })
    })
    app.realtime('/feed', {
      joinable: true,
      messages: {},
      emits: { price: Price, news: Type.Object({ n: Type.Integer() }) },
      delivery: { price: { latest: bySymbol } },
      onOpen: (conn) => { conns.push(conn) }
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(async () => {
      await app.close()
      client.disconnect()
    })
    instances.push({ app, conns, url: `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/feed` })
  }
  const [a, b] = instances
  const join = async (instance: typeof a): Promise<Member> => {
    const ws = new WebSocket(instance.url)
    const member: Member = { ws, socket: null as unknown as Socket, prices: [], numbered: [], order: [], warmups: 0 }
    let acked = false
    ws.on('message', (raw) => {
      const msg = JSON.parse(raw.toString())
      if (msg.type === 'ack') acked = true
      if (msg.type === 'price') {
        member.prices.push(msg.data)
        member.order.push('p' + msg.data.n)
      }
      if (msg.type === 'news' && msg.seq === undefined) member.warmups++
      if (msg.type === 'news' && msg.seq !== undefined) {
        member.numbered.push(msg.seq)
        member.order.push('n' + msg.seq)
      }
    })
    await once(ws, 'open')
    member.socket = (ws as unknown as { _socket: Socket })._socket
    ws.send(JSON.stringify({ type: 'room:join', data: { room: 'feed' }, id: 1 }))
    await until(() => acked, 'the join ack')
    return member
  }
  const slow = await join(b)
  const server = b.conns[0] as RealtimeConnection
  const fast = [await join(b), await join(a)]
  // Both instances listen to the room on Redis before the ticker starts.
  const probe = new Redis(redis.url)
  t.teardown(() => probe.disconnect())
  await until(async () => Number((await probe.pubsub('NUMSUB', 'frt:{feed}'))[1]) === 2, 'both subscriptions')
  // Latest with nothing of the room waiting for its seq: delivered at once, here and there.
  a.app.realtime.to('feed').latest('warmup').emit('news', { n: 0 })
  await until(() => [slow, ...fast].every((member) => member.warmups === 1), 'the latest news everywhere')
  // A room with no member on the sending instance: published only.
  a.app.realtime.to('nobody').emit('price', { symbol: 'A', n: 0, pad: '' })
  slow.socket.pause()

  const last = new Map<string, number>()
  const order: string[] = []
  let sent = 0
  let peak = 0
  const started = Date.now()
  while (Date.now() - started < 3000 || b.app.realtime.stats().conflated < 1000) {
    if (sent > 50_000) throw new Error('ticker bound reached')
    // A numbered message first: the latest ones after it wait here until Redis numbered it, and its seq is
    // not taken by a latest message's copy coming back.
    a.app.realtime.to('feed').emit('news', { n: sent })
    order.push('n' + (order.filter((o) => o[0] === 'n').length + 1))
    for (const symbol of KEYS) {
      a.app.realtime.to('feed').emit('price', { symbol, n: ++sent, pad: PAD })
      last.set(symbol, sent)
      order.push('p' + sent)
    }
    peak = Math.max(peak, server.socket.bufferedAmount + (server.conflated?.bytes ?? 0))
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const frame = 4 * 1024 + 100
  t.ok(peak <= softLimit + 2 * (KEYS.length + 1) * frame, `the slow member's server memory stayed bounded (peak ${peak} bytes)`)
  t.equal(a.app.realtime.stats().conflated, 0, 'the sending instance had nobody behind')
  const { conflated } = b.app.realtime.stats()
  t.ok(conflated >= 1000, `the receiving instance conflated ${conflated}`)
  const rounds = sent / KEYS.length
  for (const member of fast) {
    await until(() => member.prices.length === sent && member.numbered.length === rounds, 'everything at a fast member')
    t.same(member.prices.map((p) => p.n), Array.from({ length: sent }, (_, i) => i + 1), 'every latest message, in order')
    t.same(member.numbered, Array.from({ length: rounds }, (_, i) => i + 1), 'the numbered ones with seq 1, 2, 3...')
    t.same(member.order, order, 'numbered and latest messages in the order they were emitted')
  }
  slow.socket.resume()
  await until(() => KEYS.every((symbol) => slow.prices.filter((p) => p.symbol === symbol).at(-1)?.n === last.get(symbol)),
    'the newest value of every key at the slow member')
  await until(() => server.conflated === null && slow.numbered.length === rounds, 'its held frames and the numbered ones')
  t.equal(slow.prices.length, sent - conflated, 'every message but the conflated ones, each once')
  for (const symbol of KEYS) {
    const values = slow.prices.filter((p) => p.symbol === symbol).map((p) => p.n)
    t.ok(values.every((n, i) => i === 0 || n > values[i - 1]), `${symbol}: in order`)
  }
  t.same(slow.numbered, Array.from({ length: rounds }, (_, i) => i + 1), 'reliable numbered messages all reached it, in order')
  t.equal(b.app.realtime.stats().adapterInvalid, 0)
  for (const member of [slow, ...fast]) member.ws.close()
})

const TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

t.test('the envelope of a latest message: a flag bit and the key after seq 0', async (t) => {
  const origin = 'abcdefghijklmnop'
  const other = Buffer.from('ABCDEFGHIJKLMNOP')
  const out: RoomEnvelope = { volatile: true, seq: 5, frame: Buffer.alloc(0), latest: 'stale', traceparent: undefined }
  const key = '5:pricekey: ü'
  const message = Buffer.from(latestHeader(origin, key) + '{"type":"price"}')
  t.equal(message.toString('latin1', 4, 5), '4', 'flag bit 4 (2 is the trace\'s)')
  t.equal(readRoomEnvelope(message, other, out), 'ok')
  t.same({ volatile: out.volatile, seq: out.seq, latest: out.latest, frame: out.frame.toString() },
    { volatile: false, seq: 0, latest: key, frame: '{"type":"price"}' })
  t.equal(readRoomEnvelope(message, Buffer.from(origin), out), 'own')
  // With a trace: bits 4 and 2, the trace after the origin, then seq 0 and the key.
  const traced = Buffer.from(latestHeader(origin, key, TRACE) + '{"type":"price"}')
  t.equal(traced.toString('latin1', 4, 5), '6')
  t.equal(readRoomEnvelope(traced, other, out), 'ok')
  t.same({ seq: out.seq, latest: out.latest, traceparent: out.traceparent, frame: out.frame.toString() },
    { seq: 0, latest: key, traceparent: TRACE, frame: '{"type":"price"}' })
  // Any other message clears the key of the reused object.
  t.equal(readRoomEnvelope(Buffer.from(roomHeader(origin, true) + '7:{}'), other, out), 'ok')
  t.same({ volatile: out.volatile, seq: out.seq, latest: out.latest }, { volatile: true, seq: 7, latest: undefined })
  const head = 'frt14' + origin
  for (const bad of [
    head + '0:x:{}', // the key's length is not a number
    head + '0::{}', // no length
    head + '0:123456789:{}', // too many digits
    head + '0:3{}', // not a digit
    head + '0:1234567', // no colon after the length
    head + '0:9:ab{}', // longer than the message
    head + '7:1:a{}', // latest messages are never numbered
    'frt18' + origin + '0:{}', // a flag bit this build does not know
    'frt1/' + origin + '0:{}' // not a digit
  ]) {
    t.equal(readRoomEnvelope(Buffer.from(bad), other, out), 'invalid', bad)
  }
})
