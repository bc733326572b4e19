// What the metrics option (and a tracing subscriber) costs the server per message: `node bench/micro/metrics-cost.mjs`
// after `npm run build`. The server runs in a child process on loopback with metrics off, on, or off with a
// TracingChannel subscriber; the parent drives request/ack round trips over 20 sockets (a window of 16 each)
// and reads the child's CPU time (process.cpuUsage) around a fixed measuring window. Modes alternate over rounds.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'

const ROUNDS = Number(process.env.ROUNDS ?? 3)
const MEASURE_MS = Number(process.env.MEASURE_MS ?? 3000)
const SOCKETS = 20
const WINDOW = 16

if (process.argv[2] === 'server') {
  const { default: Fastify } = await import('fastify')
  const { default: realtime, MESSAGE_CHANNEL } = await import('../../dist/index.js')
  const { default: Type } = await import('typebox')
  const mode = process.argv[3]
  const options = { heartbeat: false, rateLimit: false }
  if (mode === 'metrics') {
    const { Registry } = await import('prom-client')
    options.metrics = { registry: new Registry() }
  }
  if (mode === 'traced') {
    const dc = await import('node:diagnostics_channel')
    dc.tracingChannel(MESSAGE_CHANNEL).subscribe({ start () {}, end () {}, asyncStart () {}, asyncEnd () {}, error () {} })
  }
  const app = Fastify()
  await app.register(realtime, options)
  app.realtime('/echo', { messages: { echo: { schema: Type.Object({ t: Type.Number() }), handler: (_conn, data) => data.t } } })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  process.on('message', (msg) => {
    if (msg === 'cpu') process.send({ cpu: process.cpuUsage() })
    if (msg === 'stop') app.close().then(() => process.exit(0))
  })
  process.send({ url: url.replace('http', 'ws') + '/echo' })
} else {
  const results = { off: [], metrics: [], traced: [] }
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of Object.keys(results)) results[mode].push(await run(mode))
  }
  for (const [mode, runs] of Object.entries(results)) {
    const median = runs.map((r) => r.usPerMsg).sort((a, b) => a - b)[Math.floor(runs.length / 2)]
    console.log(`${mode.padEnd(8)} server CPU ${median.toFixed(2)} µs/message (runs: ${runs.map((r) => r.usPerMsg.toFixed(2)).join(', ')}; ${Math.round(runs[0].rate)} msg/s)`)
  }
  const off = results.off.map((r) => r.usPerMsg).sort((a, b) => a - b)[Math.floor(ROUNDS / 2)]
  for (const mode of ['metrics', 'traced']) {
    const on = results[mode].map((r) => r.usPerMsg).sort((a, b) => a - b)[Math.floor(ROUNDS / 2)]
    console.log(`${mode}: ${((on / off - 1) * 100).toFixed(1)}% server CPU per message against off`)
  }
}

async function run (mode) {
  const child = fork(fileURLToPath(import.meta.url), ['server', mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [{ url }] = await once(child, 'message')
  const cpu = async () => { child.send('cpu'); const [m] = await once(child, 'message'); return m.cpu }
  let count = 0
  let running = true
  const sockets = await Promise.all(Array.from({ length: SOCKETS }, async () => {
    const ws = new WebSocket(url)
    await once(ws, 'open')
    let id = 0
    const send = () => ws.send(`{"type":"echo","id":${++id},"data":{"t":${id}}}`)
    ws.on('message', () => { count++; if (running) send() })
    for (let i = 0; i < WINDOW; i++) send()
    return ws
  }))
  await new Promise((resolve) => setTimeout(resolve, 500)) // warm-up
  const c0 = await cpu(); const n0 = count; const t0 = performance.now()
  await new Promise((resolve) => setTimeout(resolve, MEASURE_MS))
  const c1 = await cpu(); const n1 = count; const t1 = performance.now()
  running = false
  for (const ws of sockets) ws.close()
  child.send('stop')
  await once(child, 'exit')
  const us = (c1.user - c0.user) + (c1.system - c0.system)
  return { usPerMsg: us / (n1 - n0), rate: (n1 - n0) / ((t1 - t0) / 1000) }
}
