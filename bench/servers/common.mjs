// The control channel every contender server shares: the harness forks the server with IPC, the server
// answers "ready" with its port, and on each "mark" reports its own CPU time and memory so the harness can
// take deltas at phase boundaries. Keeping this out of the contenders keeps their files about serving only.
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'

export const options = parseArgs({
  options: {
    redis: { type: 'string' }, // redis://127.0.0.1:PORT when the scenario fans out across instances
    adapter: { type: 'string', default: 'memory' },
    // fastify-realtime only: room history on (issue 12), kept in Redis with the Redis adapter.
    history: { type: 'boolean', default: false },
    // fastify-realtime only: metrics on (issue 15), registered on a prom-client Registry of its own.
    metrics: { type: 'boolean', default: false }
  },
  strict: false
}).values

/** Thrown by a contender that cannot run here (not built yet, feature missing): the harness skips it. */
export class Skip extends Error {}

function snapshot () {
  const mem = process.memoryUsage()
  const cpu = process.cpuUsage()
  return {
    cpuUser: cpu.user,
    cpuSystem: cpu.system,
    rss: mem.rss,
    heapUsed: mem.heapUsed,
    external: mem.external + mem.arrayBuffers,
    at: performance.now(),
    // The monotonic clock in µs, the clock of a --cpu-prof profile's timestamps (bench/profile.mjs cuts the
    // profile to the measured phase with it).
    hrUs: Number(process.hrtime.bigint() / 1000n)
  }
}

function collect () {
  // Several passes: the first frees objects, later ones free what finalizers released.
  for (let i = 0; i < 4; i++) globalThis.gc?.()
}

/**
 * Starts a contender and serves the harness's control messages until it says "close".
 * @param {() => Promise<{ port: number, features?: object, close: () => Promise<void> }>} start
 */
export async function serve (start) {
  if (!process.send) throw new TypeError('bench servers are started by bench/run.mjs with an IPC channel')
  // No orphans: when the harness goes away, so do we.
  process.on('disconnect', () => process.exit(0))
  let server
  try {
    server = await start()
  } catch (err) {
    if (err instanceof Skip) process.send({ type: 'skip', reason: err.message })
    else process.send({ type: 'error', message: err?.stack ?? String(err) })
    setTimeout(() => process.exit(1), 50)
    return
  }
  process.on('message', async (msg) => {
    if (msg.cmd === 'mark') {
      if (msg.gc) {
        collect()
        // Let sockets closed by the collection and pending frees settle before reading RSS.
        await new Promise((resolve) => setTimeout(resolve, 200))
        collect()
      }
      process.send({ type: 'mark', id: msg.id, ...snapshot() })
    } else if (msg.cmd === 'close') {
      const timer = setTimeout(() => process.exit(0), 2000)
      try { await server.close() } finally {
        clearTimeout(timer)
        process.exit(0)
      }
    }
  })
  process.send({ type: 'ready', port: server.port, features: server.features ?? {}, pid: process.pid })
}
