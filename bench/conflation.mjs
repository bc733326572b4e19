// A stalled member of a 1,000 msg/s ticker (10 keys), on the built plugin (dist/), in one process: the same
// run with the ticker declared `latest` by key and `reliable`, reporting the server memory held for the
// stalled member (its socket's bufferedAmount plus its held frames), its peak, whether it was closed (4008),
// and, once it reads again, whether it got exactly the last value sent per key and how many messages it read.
// A reader that keeps up is checked to get every message in order. Bounded: --seconds (default 5) per policy.
// Run `npm run build` first, then `node bench/conflation.mjs [--seconds 5] [--pad 4096]`.
import { once } from 'node:events'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import WebSocket from 'ws'

const { default: realtime } = await import(new URL('../dist/index.js', import.meta.url))
const args = parseArgs({ options: { seconds: { type: 'string', default: '5' }, pad: { type: 'string', default: '4096' } } }).values
const SECONDS = Number(args.seconds)
const PAD = 'x'.repeat(Number(args.pad))
const KEYS = Array.from({ length: 10 }, (_, i) => `SYM${i}`)
const slowConsumer = { softLimit: 64 * 1024, softTimeout: 600_000, hardLimit: 4 * 1024 * 1024 }

async function run (policy) {
  const conns = []
  const app = Fastify()
  await app.register(realtime, { heartbeat: false, rateLimit: false, closeTimeout: 30_000, slowConsumer })
  app.realtime('/ticker', {
    joinable: true,
    messages: {},
    emits: { price: { type: 'object' } },
    delivery: { price: policy === 'latest' ? { latest: (data) => data.symbol } : 'reliable' },
    onOpen: (conn) => { conns.push(conn) }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `ws://127.0.0.1:${app.server.address().port}/ticker`
  const member = async () => {
    const ws = new WebSocket(url)
    const got = []
    let closed = null
    ws.on('message', (raw) => {
      const msg = JSON.parse(raw)
      if (msg.type === 'price') got.push(msg.data)
      else if (msg.type === 'ack') got.acked = true
    })
    ws.on('close', (code) => { closed = code })
    await once(ws, 'open')
    ws.send(JSON.stringify({ type: 'room:join', data: { room: 'feed' }, id: 1 }))
    while (!got.acked) await new Promise((resolve) => setTimeout(resolve, 5))
    return { ws, got, closed: () => closed }
  }
  const slow = await member()
  const fast = await member()
  const server = conns[0]
  slow.ws._socket.pause()
  const last = new Map()
  let sent = 0
  let peak = 0
  let sum = 0
  let samples = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  // 10 messages every 10 ms, on schedule: 1,000 msg/s.
  for (let tick = 0; tick < SECONDS * 100; tick++) {
    for (const symbol of KEYS) {
      app.realtime.to('feed').emit('price', { symbol, n: ++sent, pad: PAD })
      last.set(symbol, sent)
    }
    const held = server.closed ? 0 : server.socket.bufferedAmount + (server.conflated?.bytes ?? 0)
    peak = Math.max(peak, held)
    sum += held
    samples++
    const wait = t0 + (tick + 1) * 10 - performance.now()
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)))
  }
  const elapsed = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  const stats = app.realtime.stats()
  while (fast.got.length < sent) await new Promise((resolve) => setTimeout(resolve, 5))
  const inOrder = fast.got.every((m, i) => m.n === i + 1)
  slow.ws._socket.resume()
  const deadline = Date.now() + 30_000
  const newest = () => KEYS.every((symbol) => slow.got.filter((m) => m.symbol === symbol).at(-1)?.n === last.get(symbol))
  while (!newest() && slow.closed() === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  const result = {
    policy,
    sent,
    rate: Math.round(sent / elapsed),
    'peak bytes held': peak,
    'mean bytes held': Math.round(sum / samples),
    'closed 4008': stats.slowConsumerCloses > 0,
    conflated: stats.conflated,
    'stalled member read': slow.got.length,
    'last value per key': newest(),
    'reader in order': inOrder,
    'process CPU ms': Math.round((cpu.user + cpu.system) / 1000)
  }
  slow.ws.terminate()
  fast.ws.close()
  await app.close()
  return result
}

const results = [await run('latest'), await run('reliable')]
console.table(results)
console.log(`ticker: 1,000 msg/s of ${Buffer.byteLength(JSON.stringify({ type: 'price', room: 'feed', data: { symbol: 'SYM0', n: 1, pad: PAD } }))} B ` +
  `for ${SECONDS} s; slowConsumer ${JSON.stringify(slowConsumer)}`)
