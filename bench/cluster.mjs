// Four instances on one Redis, to check the per-node figures of the capacity model (BENCHMARKS.md):
// `node bench/cluster.mjs [--connections 10000] [--rooms 100] [--members 500] [--rate 100] [--measure-ms 10000]
// [--quick] [--no-build]`. Under a minute, and at most 4 × 2,500 connections.
//
// Four fastify-realtime servers (bench/servers/realtime.mjs with the Redis adapter, the file bench/run.mjs
// measures) and one throwaway redis-server; the load generator (bench/load/loadgen.mjs) in its own process.
//  1. Idle: --connections spread round robin over the four, each joined to one of --rooms rooms (so every
//     node subscribes to every room's channel). Each node's RSS and JS heap are read after a full GC once half
//     are open and again once all are: the second half's growth per connection, per node, as in (d).
//  2. Fan-out with the idle connections still open: one room of --members members spread over the four, the
//     first member publishing --rate messages/s for --measure-ms. Read over that window: Redis commands/s (all,
//     and the busiest by name, from INFO commandstats), pub/sub messages out of Redis per second (publishes ×
//     the room channel's subscribers: one per node), Redis CPU and memory, each node's CPU, deliveries/s and
//     latency.
// Every process runs on the same two cores, so CPU shares and latency are those of a shared machine; memory
// per connection and the Redis counts are what this is for.
import { spawnSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { expectMessage, forkScript, mark, procCpuMicros, runMain, sourcesPerAddress, startRedis, stop } from './harness/processes.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const here = (p) => fileURLToPath(new URL(p, import.meta.url))
const NODES = 4
const MAX_CONNECTIONS = NODES * 2500

const { values: argv } = parseArgs({
  options: {
    connections: { type: 'string' },
    rooms: { type: 'string', default: '100' },
    members: { type: 'string', default: '500' },
    rate: { type: 'string', default: '100' },
    'measure-ms': { type: 'string' },
    quick: { type: 'boolean', default: false },
    build: { type: 'boolean', default: true }
  },
  allowNegative: true
})
const connections = Math.min(MAX_CONNECTIONS, Number(argv.connections ?? (argv.quick ? 2000 : MAX_CONNECTIONS)))
const measureMs = Math.min(20_000, Number(argv['measure-ms'] ?? (argv.quick ? 3000 : 10_000)))
const members = Number(argv.members)
const rate = Number(argv.rate)
const log = (...args) => console.error('[cluster]', ...args)

/** The generator holds every connection and the members, and each node a quarter: raise `ulimit -n` once. */
function ensureDescriptors () {
  const need = connections + members + 1024
  const soft = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim())
  if (soft >= need || process.env.CLUSTER_ULIMIT_TRIED) return
  const res = spawnSync('sh', ['-c', `ulimit -n ${need} 2>/dev/null; exec "$@"`, 'sh', process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit', env: { ...process.env, CLUSTER_ULIMIT_TRIED: '1' }
  })
  process.exit(res.status ?? 1)
}

/** INFO's `key:value` lines as an object of strings. */
function info (text) {
  const out = {}
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':')
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1)
  }
  return out
}

/** Calls per command from INFO commandstats (`cmdstat_publish:calls=3,usec=...`). */
function commandCalls (stats) {
  const calls = {}
  for (const [key, value] of Object.entries(stats)) {
    if (key.startsWith('cmdstat_')) calls[key.slice(8)] = Number(/calls=(\d+)/.exec(value)[1])
  }
  return calls
}

async function redisCounters (client, pid) {
  const [stats, memory, commands] = await Promise.all([client.info('stats'), client.info('memory'), client.info('commandstats')])
  const s = info(stats)
  return {
    at: performance.now(),
    commands: Number(s.total_commands_processed),
    netOut: Number(s.total_net_output_bytes),
    usedMemory: Number(info(memory).used_memory),
    calls: commandCalls(info(commands)),
    cpuUs: await procCpuMicros(pid)
  }
}

async function main () {
  ensureDescriptors()
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) throw new Error('redis-server is not on the PATH (apt-get install -y redis-server)')
  if (argv.build) {
    log('building the plugin (npm run build)')
    spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' })
  }
  const started = Date.now()
  const redis = await startRedis()
  const { Redis } = await import('ioredis')
  const probe = new Redis(redis.url)
  const servers = []
  const gens = []
  try {
    for (let i = 0; i < NODES; i++) {
      const server = forkScript(here('./servers/realtime.mjs'), ['--adapter', 'redis', '--redis', redis.url], { label: `node ${i + 1}`, execArgv: ['--expose-gc'] })
      const ready = await expectMessage(server, 'ready', 30_000)
      if (ready.type === 'skip') throw new Error(`node ${i + 1} cannot run: ${ready.reason}`)
      server.target = { host: '127.0.0.1', port: ready.port }
      servers.push(server)
    }
    const targets = servers.map((s) => s.target)

    log(`idle: ${connections} connections over ${NODES} nodes, ${argv.rooms} rooms`)
    const idleGen = forkScript(here('./load/loadgen.mjs'), [], { label: 'idle generator' })
    gens.push(idleGen)
    const redisIdle0 = await redisCounters(probe, redis.pid)
    idleGen.send({
      cmd: 'run',
      scenario: 'idle',
      params: { protocol: 'json', servers: targets, connections, rooms: Number(argv.rooms), perAddress: sourcesPerAddress(), setupMs: 40_000 }
    })
    await expectMessage(idleGen, 'warm', 45_000)
    const half = await Promise.all(servers.map((s) => mark(s, { gc: true })))
    idleGen.send({ cmd: 'go' })
    const idle = await expectMessage(idleGen, 'result', 45_000)
    const full = await Promise.all(servers.map((s) => mark(s, { gc: true })))
    const redisIdle1 = await redisCounters(probe, redis.pid)
    const perNode = idle.measuredConnections / NODES

    log(`fan-out: ${members} members over ${NODES} nodes, ${rate} msg/s for ${measureMs} ms, the idle connections still open`)
    const fanGen = forkScript(here('./load/loadgen.mjs'), [], { label: 'fan-out generator' })
    gens.push(fanGen)
    fanGen.send({
      cmd: 'run',
      scenario: 'fanout',
      params: { protocol: 'json', servers: targets, members, window: 2, rate, warmMs: 1000, measureMs, setupMs: 20_000, maxMessages: 5_000_000 }
    })
    await expectMessage(fanGen, 'warm', 40_000)
    const before = await Promise.all(servers.map((s) => mark(s)))
    const r0 = await redisCounters(probe, redis.pid)
    fanGen.send({ cmd: 'go' })
    const fan = await expectMessage(fanGen, 'result', measureMs + 20_000)
    const r1 = await redisCounters(probe, redis.pid)
    const after = await Promise.all(servers.map((s) => mark(s)))
    const [, subscribers] = await probe.pubsub('NUMSUB', 'frt:{r}')
    const channels = (await probe.pubsub('CHANNELS', 'frt:*')).length
    const clients = Number(info(await probe.info('clients')).connected_clients)

    const seconds = (r1.at - r0.at) / 1000
    const perSec = (n) => n / seconds
    const calls = Object.entries(r1.calls)
      .map(([name, n]) => [name, n - (r0.calls[name] ?? 0)])
      .filter(([name, n]) => n > 0 && name !== 'info')
      .sort((x, y) => y[1] - x[1])
    const publishes = (r1.calls.publish ?? 0) - (r0.calls.publish ?? 0)
    const kb = (n) => (n / 1024).toFixed(2)
    const int = (n) => Math.round(n).toLocaleString('en-US')
    const out = []
    out.push(`### ${NODES} instances on one redis-server: ${int(idle.connections)} idle connections and a ${members}-member room across them`, '')
    out.push(`\`node bench/cluster.mjs${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}\`, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ` +
      `${int(connections)} connections requested (${int(idle.connections)} open, ${idle.connectFailures} failed attempts retried), ${argv.rooms} rooms; ` +
      `all processes on the same cores. Memory: the second half's growth per connection after a full GC (${int(perNode)} connections per node).`, '')
    out.push('| node | connections | RSS KB / conn | JS heap KB / conn | CPU during fan-out | CPU µs per delivery to its members |')
    out.push('| --- | ---: | ---: | ---: | ---: | ---: |')
    const nodeDeliveries = fan.delivered / NODES
    servers.forEach((s, i) => {
      const cpu = (after[i].cpuUser + after[i].cpuSystem) - (before[i].cpuUser + before[i].cpuSystem)
      out.push(`| ${i + 1} | ${int(idle.connections / NODES)} | ${kb((full[i].rss - half[i].rss) / perNode)} | ${kb((full[i].heapUsed - half[i].heapUsed) / perNode)} | ` +
        `${(cpu / 1000 / (after[i].at - before[i].at) * 100).toFixed(1)}% | ${(cpu / nodeDeliveries).toFixed(2)} |`)
    })
    out.push('', '| Redis, over the fan-out window | figure |', '| --- | ---: |')
    out.push(`| messages published/s (sent by the generator) | ${int(fan.messagesPerSec)} |`)
    // Less this script's own INFO calls.
    out.push(`| commands/s (INFO stats) | ${int(perSec(r1.commands - r0.commands - ((r1.calls.info ?? 0) - (r0.calls.info ?? 0))))} |`)
    out.push(`| by command | ${calls.slice(0, 6).map(([name, n]) => `${name} ${int(perSec(n))}/s`).join(', ') || '–'} |`)
    out.push(`| pub/sub messages out/s (publishes × ${subscribers} subscribers of the room's channel) | ${int(perSec(publishes * subscribers))} |`)
    out.push(`| bytes out/s | ${int(perSec(r1.netOut - r0.netOut))} |`)
    out.push(`| redis-server CPU | ${((r1.cpuUs - r0.cpuUs) / 1000 / (r1.at - r0.at) * 100).toFixed(1)}% of a core |`)
    out.push(`| channels subscribed / clients connected | ${channels} / ${clients} |`)
    out.push(`| used memory | ${kb(r1.usedMemory / 1024)} MB (${kb((redisIdle1.usedMemory - redisIdle0.usedMemory) / 1024)} MB added by the idle connections' joins) |`)
    out.push('', `Fan-out: ${int(fan.deliveredPerSec)} deliveries/s (${int(fan.delivered)} of ${int(fan.expected)} expected, ${int(fan.lost)} lost), ` +
      `latency p50 ${fan.latency.p50.toFixed(2)} ms, p99 ${fan.latency.p99.toFixed(2)} ms (shared machine: not a latency figure to quote). ` +
      `Done in ${((Date.now() - started) / 1000).toFixed(0)} s.`)
    console.log(out.join('\n') + '\n')
  } finally {
    for (const gen of gens) await stop(gen)
    await Promise.all(servers.map((s) => stop(s)))
    probe.disconnect()
    await redis.stop()
  }
}

runMain(main)
