// (h) Delivery policies (lib/delivery.ts, lib/conflation.ts):
//   - a room broadcast to 64 real ws members that keep up, through app.realtime.to(room).emit, per emit
//     (serialize, frame, write to 64 sockets, flush, read): reliable and, where the build has it, latest.
//     The fast path for members that keep up must not change: run it against the build before the change
//     with `--dist <dir>` (a `tsc -p tsconfig.build.json --outDir <dir>` of the old tree).
//   - the conflated path: holding a frame for a member that is behind (a replace in its map), per call;
//   - the flush tick over 1,000 members still behind (nothing to send), per member looked at.
import { once } from 'node:events'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import WebSocket from 'ws'
import { measure, report, sink } from './measure.mjs'

const { dist } = parseArgs({ options: { dist: { type: 'string' } }, strict: false }).values
const root = dist === undefined ? new URL('../../dist/', import.meta.url) : new URL(`file://${dist.replace(/\/?$/, '/')}`)
const { default: realtime } = await import(new URL('index.js', root))
let conflation = null
try {
  conflation = await import(new URL('lib/conflation.js', root))
} catch {}
const { Frame } = await import(new URL('lib/frames.js', root))

async function broadcast (policy) {
  const app = Fastify()
  await app.register(realtime, { heartbeat: false, rateLimit: false })
  const joined = { count: 0 }
  app.realtime('/b', {
    messages: {},
    emits: { price: { type: 'object' } },
    ...(policy === 'latest' ? { delivery: { price: { latest: (data) => data.symbol } } } : {}),
    onOpen: async (conn) => { await conn.join('r'); joined.count++ }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const clients = []
  for (let i = 0; i < 64; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${app.server.address().port}/b`)
    ws.on('message', () => { sink.value++ })
    await once(ws, 'open')
    clients.push(ws)
  }
  while (joined.count < 64) await new Promise((resolve) => setTimeout(resolve, 5))
  const target = app.realtime.to('r')
  const data = { symbol: 'AAPL', bid: 1.5, pad: 'x'.repeat(64) }
  const round = async () => {
    for (let i = 0; i < 16; i++) target.emit('price', data)
    await new Promise((resolve) => setImmediate(resolve))
  }
  for (let i = 0; i < 200; i++) await round()
  const results = []
  for (let run = 0; run < 3; run++) {
    const t0 = performance.now()
    for (let i = 0; i < 1000; i++) await round()
    results.push((performance.now() - t0) * 1e6 / (1000 * 16))
  }
  for (const ws of clients) ws.terminate()
  await app.close()
  return { name: `room emit to 64 members that keep up, ${policy}, per emit`, nsPerOp: Math.min(...results), note: 'best of 3 x 1000 rounds of 16' }
}

const results = [await broadcast('reliable')]
if (conflation !== null) {
  results.push(await broadcast('latest'))
  const counters = { conflated: 0, slowConsumerCloses: 0, volatileDrops: 0 }
  const { Backpressure } = await import(new URL('lib/backpressure.js', root))
  const backpressure = new Backpressure({ softLimit: 100, softTimeout: 1e9, hardLimit: 1e9 }, counters)
  const held = new conflation.Conflation(backpressure, counters)
  const behind = (i) => ({ socket: { bufferedAmount: 1000 }, closed: false, slowSince: 1, conflated: null, log: { warn () {} }, close () {}, sendFrame () { sink.value++ } })
  const conn = behind(0)
  const frames = Array.from({ length: 10 }, (_, i) => new Frame(JSON.stringify({ type: 'price', room: 'r', data: { symbol: `S${i}`, n: i } })))
  const keys = frames.map((_, i) => `r 5:priceS${i}`)
  results.push(measure('conflated: a frame held for a member behind (replace by key)', (i) => held.send(conn, frames[i % 10], keys[i % 10])))
  const many = Array.from({ length: 1000 }, behind)
  for (const member of many) held.send(member, frames[0], keys[0])
  const tick = measure('flush tick over 1,000 members still behind, per member', () => held.flush(), { batch: 10 })
  tick.nsPerOp /= 1000
  tick.opsPerSec *= 1000
  results.push(tick)
  held.stop()
}
report(results)
