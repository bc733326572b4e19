// Idle connections at scale on one process, heartbeat on: `node bench/scale.mjs [--connections 20000]
// [--interval 30000] [--timeout 10000] [--idle 60000] [--dist ./dist]` (npm run build first). One server process (fastify-realtime,
// one route, a ping every --interval ms answered within --timeout ms: the defaults) and one client process (ws clients, which answer pings as any
// client does). It prints: connects per second (all connections opened 200 at a time), the server's RSS and
// JS heap per connection (after a full GC, minus the same process before any connection), and the server's
// CPU while the connections sit idle for --idle ms, as a share of one core: that is the heartbeat (the sweep,
// its pings and their pongs) and nothing else. CPU is the server's own CPU time, so other processes on the
// machine change it less than they change wall-clock figures, but not entirely.
import { fork, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath, pathToFileURL } from 'node:url'

const { values: argv } = parseArgs({
  options: {
    connections: { type: 'string', default: '20000' },
    interval: { type: 'string', default: '30000' },
    timeout: { type: 'string', default: '10000' },
    idle: { type: 'string', default: '60000' },
    dist: { type: 'string', default: fileURLToPath(new URL('../dist', import.meta.url)) },
    role: { type: 'string' },
    url: { type: 'string' }
  }
})
const connections = Number(argv.connections)

if (argv.role === 'server') await server()
else if (argv.role === 'clients') await clients()
else await main()

async function server () {
  const { default: Fastify } = await import('fastify')
  const { default: realtime } = await import(pathToFileURL(join(argv.dist, 'index.js')).href)
  const app = Fastify({ logger: false })
  await app.register(realtime, { heartbeat: { interval: Number(argv.interval), timeout: Number(argv.timeout) } })
  app.realtime('/ws', { messages: {} })
  await app.listen({ host: '127.0.0.1', port: 0 })
  process.on('message', (msg) => {
    if (msg.type !== 'mark') return
    globalThis.gc()
    globalThis.gc()
    const mem = process.memoryUsage()
    const cpu = process.cpuUsage()
    process.send({ type: 'mark', rss: mem.rss, heapUsed: mem.heapUsed, cpuUs: cpu.user + cpu.system, at: performance.now() })
  })
  process.send({ type: 'ready', port: app.server.address().port })
}

async function clients () {
  const { default: WebSocket } = await import('ws')
  const sockets = []
  const started = performance.now()
  let next = 0
  const open = () => new Promise((resolve, reject) => {
    const ws = new WebSocket(argv.url)
    ws.once('open', () => { sockets.push(ws); resolve() })
    ws.once('error', reject)
  })
  await Promise.all(Array.from({ length: 200 }, async () => {
    while (next < connections) {
      next++
      await open()
    }
  }))
  process.send({ type: 'open', ms: performance.now() - started })
  process.on('message', (msg) => { if (msg.type === 'stop') process.exit(0) })
}

function ask (child, type) {
  return new Promise((resolve) => {
    child.on('message', function onMessage (msg) {
      if (msg.type === type) { child.off('message', onMessage); resolve(msg) }
    })
  })
}

async function main () {
  // Both processes need a descriptor per connection: raise the limit once by re-running under `ulimit -n`.
  const need = connections + 1024
  const soft = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim())
  if (soft < need && !process.env.SCALE_ULIMIT_TRIED) {
    const res = spawnSync('sh', ['-c', `ulimit -n ${need} 2>/dev/null; exec "$@"`, 'sh', process.execPath, ...process.argv.slice(1)], {
      stdio: 'inherit', env: { ...process.env, SCALE_ULIMIT_TRIED: '1' }
    })
    process.exit(res.status ?? 1)
  }
  const self = fileURLToPath(import.meta.url)
  const common = ['--connections', String(connections), '--interval', argv.interval, '--timeout', argv.timeout, '--dist', argv.dist]
  const srv = fork(self, ['--role', 'server', ...common], { execArgv: ['--expose-gc'] })
  const { port } = await ask(srv, 'ready')
  srv.send({ type: 'mark' })
  const empty = await ask(srv, 'mark')
  const cli = fork(self, ['--role', 'clients', '--url', `ws://127.0.0.1:${port}/ws`, ...common])
  const { ms } = await ask(cli, 'open')
  srv.send({ type: 'mark' })
  const full = await ask(srv, 'mark')
  await new Promise((resolve) => setTimeout(resolve, Number(argv.idle)))
  srv.send({ type: 'mark' })
  const idle = await ask(srv, 'mark')
  cli.send({ type: 'stop' })
  await once(cli, 'exit')
  srv.kill()
  const kb = (bytes) => (bytes / connections / 1024).toFixed(2)
  const cpuShare = (idle.cpuUs - full.cpuUs) / 1000 / (idle.at - full.at)
  console.log(`| connections | connects/s | RSS KB / conn | JS heap KB / conn | idle CPU, ping every ${argv.interval} ms |`)
  console.log('| ---: | ---: | ---: | ---: | ---: |')
  console.log(`| ${connections.toLocaleString('en-US')} | ${Math.round(connections / ms * 1000).toLocaleString('en-US')} | ` +
    `${kb(full.rss - empty.rss)} | ${kb(full.heapUsed - empty.heapUsed)} | ${(cpuShare * 100).toFixed(2)}% of a core |`)
}
