#!/usr/bin/env node
// Soak and churn (issue 11; RELIABILITY.md quotes it):
//   node bench/soak.mjs [churn=100000] [idle=10000] [idleSeconds=30] [heartbeatMs=5000]
// 1. churn: `churn` WebSocket connects, each joins a room (presence on) with an acked room:join and
//    disconnects, 64 at a time; RSS and heap after GC at the end must be within 10% of the warm start, and
//    no connection, room, member, timer or listener may be left.
// 2. idle: `idle` open connections with the heartbeat on (interval `heartbeatMs`, default 5 s; the plugin's default is 30 s): the server's CPU over
//    `idleSeconds`, as % of one core. The clients run in a child process so their CPU is not counted.
// The server is the plugin from source (index.ts, through tap's TypeScript loader), in this process.
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'

const self = fileURLToPath(import.meta.url)
const loader = new URL('../node_modules/@tapjs/typescript/dist/esm/import.mjs', import.meta.url).href

if (process.env.FRT_SOAK_ROLE === undefined) {
  const child = spawnSync(process.execPath, ['--expose-gc', `--import=${loader}`, self, ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, FRT_SOAK_ROLE: 'server' } })
  process.exit(child.status ?? 1)
}

const { WebSocket } = await import('ws')

if (process.env.FRT_SOAK_ROLE === 'clients') {
  // Opens N idle sockets, reports when all are open, holds them until stdin closes.
  const [url, n] = [process.argv[2], Number(process.argv[3])]
  const sockets = []
  let open = 0
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(url)
    ws.on('open', () => { if (++open === n) process.stdout.write('open\n') })
    ws.on('error', (err) => { process.stderr.write(`client error: ${err.message}\n`) })
    sockets.push(ws)
    if (i % 500 === 499) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  process.stdin.resume()
  process.stdin.on('end', () => { for (const ws of sockets) ws.terminate(); process.exit(0) })
} else {
  const churn = Number(process.argv[2] ?? 100_000)
  const idle = Number(process.argv[3] ?? 10_000)
  const idleSeconds = Number(process.argv[4] ?? 30)
  const heartbeatMs = Number(process.argv[5] ?? 5000)
  const { default: Fastify } = await import('fastify')
  const { default: Type } = await import('typebox')
  const { default: realtime } = await import('../index.ts')

  const app = Fastify()
  await app.register(realtime, { heartbeat: { interval: heartbeatMs, timeout: 5000 }, rateLimit: { rate: 1000, burst: 1000 } })
  app.realtime('/soak', { joinable: true, presence: true, messages: { noop: { schema: Type.Null(), handler: () => null } } })
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const url = base.replace('http', 'ws') + '/soak'

  const memory = () => { globalThis.gc(); globalThis.gc(); const m = process.memoryUsage(); return { rss: m.rss, heap: m.heapUsed } }
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const listeners = () => ({ upgrade: app.server.listenerCount('upgrade'), request: app.server.listenerCount('request'), wssConnection: app.websocketServer.listenerCount('connection') })

  async function one (i) {
    const ws = new WebSocket(url)
    await once(ws, 'open')
    ws.send(JSON.stringify({ type: 'room:join', id: 1, data: { room: `r${i % 100}` } }))
    await once(ws, 'message') // the ack (presence events come to the other members)
    ws.close()
    await once(ws, 'close')
  }
  async function churnRun (count) {
    let next = 0
    await Promise.all(Array.from({ length: 64 }, async () => { while (next < count) await one(next++) }))
    for (let i = 0; i < 500 && app.realtime.stats().connections > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  }

  await churnRun(Math.min(2000, churn)) // warm up
  const start = { ...memory(), timers: timers(), listeners: listeners() }
  const t0 = performance.now()
  await churnRun(churn)
  const seconds = (performance.now() - t0) / 1000
  await new Promise((resolve) => setTimeout(resolve, 200))
  const end = { ...memory(), timers: timers(), listeners: listeners() }
  const stats = app.realtime.stats()
  const mb = (b) => +(b / 2 ** 20).toFixed(1)
  const churnResult = {
    connects: churn,
    seconds: +seconds.toFixed(1),
    perSecond: Math.round(churn / seconds),
    rssMB: [mb(start.rss), mb(end.rss)],
    heapMB: [mb(start.heap), mb(end.heap)],
    rssGrowth: +((end.rss / start.rss - 1) * 100).toFixed(1),
    heapGrowth: +((end.heap / start.heap - 1) * 100).toFixed(1),
    timers: [start.timers, end.timers],
    listeners: [start.listeners, end.listeners],
    left: { connections: stats.connections, rooms: stats.rooms, members: stats.members }
  }
  console.log('churn', JSON.stringify(churnResult))

  // Idle: clients in a child process.
  const clients = spawn(process.execPath, [self, url, String(idle)], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, FRT_SOAK_ROLE: 'clients' } })
  await once(clients.stdout, 'data')
  for (let i = 0; i < 1000 && app.realtime.stats().connections < idle; i++) await new Promise((resolve) => setTimeout(resolve, 10))
  const cpu0 = process.cpuUsage()
  const w0 = performance.now()
  await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000))
  const cpu = process.cpuUsage(cpu0)
  const wall = performance.now() - w0
  const idleResult = {
    connections: app.realtime.stats().connections,
    seconds: idleSeconds,
    heartbeatInterval: heartbeatMs,
    cpuPercentOfOneCore: +(((cpu.user + cpu.system) / 1000) / wall * 100).toFixed(2),
    heapMB: mb(memory().heap),
    rssMB: mb(process.memoryUsage().rss)
  }
  console.log('idle', JSON.stringify(idleResult))
  clients.stdin.end()
  await once(clients, 'exit')
  await app.close()
  const ok = churnResult.left.connections === 0 && churnResult.left.rooms === 0 && churnResult.left.members === 0 &&
    churnResult.rssGrowth < 10 && churnResult.heapGrowth < 10 && end.timers <= start.timers &&
    JSON.stringify(start.listeners) === JSON.stringify(end.listeners) && idleResult.connections === idle
  console.log(ok ? 'soak: ok' : 'soak: FAILED')
  process.exit(ok ? 0 : 1)
}
