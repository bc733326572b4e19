// (g) The ws fast path of lib/frames.ts: writeFrame of a prebuilt 100-byte frame to real ws sockets
// (a loopback pair read by the client), corked and flushed per batch of 64 as a broadcast would.
// Run before and after a change to writeFrame; the SSE branch must not show here.
import { once } from 'node:events'
import { WebSocketServer, WebSocket } from 'ws'
import { measure, report, sink } from './measure.mjs'

const { Frame, writeFrame } = await import(new URL('../../dist/lib/frames.js', import.meta.url))

const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
await once(wss, 'listening')
const targets = []
const clients = []
for (let i = 0; i < 64; i++) {
  const client = new WebSocket(`ws://127.0.0.1:${wss.address().port}`)
  client.on('message', () => { sink.value++ })
  clients.push(client)
  const [socket] = await once(wss, 'connection')
  targets.push({
    socket,
    slowSince: 0,
    closed: false,
    log: { warn () {} },
    close () {},
    backpressure: { hardLimit: Infinity, check () {} }
  })
}
const frame = new Frame(JSON.stringify({ type: 'msg', room: 'r', seq: 1, data: { body: 'x'.repeat(64) } }))
// 64 writes then a turn of the event loop for the flush and the reads, timed per write.
async function round () {
  for (const target of targets) writeFrame(target, frame)
  await new Promise((resolve) => setImmediate(resolve))
}
for (let i = 0; i < 200; i++) await round()
const results = []
for (let run = 0; run < 3; run++) {
  const t0 = performance.now()
  for (let i = 0; i < 2000; i++) await round()
  results.push((performance.now() - t0) * 1e6 / (2000 * 64))
}
// The synchronous part alone (no flush between calls: every socket stays corked).
const sync = measure('writeFrame, corked (sync part)', (i) => writeFrame(targets[i & 63], frame), { batch: 64 })
await new Promise((resolve) => setImmediate(resolve))
report([
  { name: 'writeFrame to 64 sockets + flush + read, per write', nsPerOp: Math.min(...results), note: 'best of 3 x 2000 rounds' },
  sync
])
for (const client of clients) client.terminate()
wss.close()
