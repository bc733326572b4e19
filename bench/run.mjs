// The benchmark harness: `node bench/run.mjs [--quick] [--no-build] [--only a,b,c,d,e,f] [--contenders ws,fws,sio,rt,rtm,rth]`
// (`rtm`: fastify-realtime with metrics on, a prom-client registry, in (a), (b) and (c) only; `rth`: room history
// on, in the Redis fan-out (e) only. Both are reported next to `rt` as ratios: what the feature costs.)
// Builds the plugin, runs each scenario against each contender (every server in its own process, the load
// generator in another, loopback only), prints a markdown table with ratios to the raw `ws` loop and writes
// it to bench/results/latest.md (raw figures in latest.json). See BENCHMARKS.md for what each number means.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { expectMessage, forkScript, machineBusyMicros, mark, procCpuMicros, runMain, sourcesPerAddress, startRedis, stop } from './harness/processes.mjs'
import { BUSY_CORES, renderReport } from './harness/report.mjs'
import { writeCharts } from './harness/charts.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const here = (p) => fileURLToPath(new URL(p, import.meta.url))
const LOADGEN = here('./load/loadgen.mjs')

const { values: argv } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    build: { type: 'boolean', default: true },
    only: { type: 'string', default: 'a,b,c,d,e,f' },
    contenders: { type: 'string', default: 'ws,fws,sio,rt,rtm,rth' },
    window: { type: 'string', default: '2' },
    rounds: { type: 'string' }
  },
  allowNegative: true
})

const MODES = {
  // About a minute on two cores: short phases, one round, 4,000 idle connections; every scenario and
  // contender is still exercised, but the figures are rougher than a full run's.
  quick: { rounds: 1, warmMs: 500, measureMs: 2000, connections: 4000, microMs: 200, quietWaitMs: 500, quietBudgetMs: 5000 },
  full: { rounds: 3, warmMs: 2000, measureMs: 8000, connections: 10_000, microMs: 1000, quietWaitMs: 30_000, quietBudgetMs: 180_000 }
}
const mode = argv.quick ? 'quick' : 'full'
const params = {
  mode,
  ...MODES[mode],
  ...(argv.rounds ? { rounds: Number(argv.rounds) } : {}),
  members: 500,
  window: Number(argv.window),
  rate: 100,
  ackClients: 50,
  rooms: 100,
  setupMs: 60_000,
  maxMessages: 5_000_000
}
const only = new Set(argv.only.split(','))
const wanted = new Set(argv.contenders.split(','))

const CONTENDERS = [
  { key: 'ws', label: 'raw ws', file: 'raw-ws.mjs', protocol: 'json', redisLabel: 'raw ws + ioredis pub/sub' },
  { key: 'fws', label: '@fastify/websocket', file: 'fastify-websocket.mjs', protocol: 'json', redisLabel: '@fastify/websocket + ioredis pub/sub' },
  { key: 'sio', label: 'Socket.IO 4', file: 'socketio.mjs', protocol: 'socketio', redisLabel: 'Socket.IO 4 + @socket.io/redis-adapter' },
  { key: 'rt', label: 'fastify-realtime (memory)', file: 'realtime.mjs', protocol: 'json', args: ['--adapter', 'memory'], redisLabel: 'fastify-realtime (Redis adapter)', redisArgs: ['--adapter', 'redis'] },
  // Metrics on (issue 15): a prom-client Registry, scraped by nobody during the run (scraping is the
  // operator's cost, not the message path's). Only where a message's cost is measured: (a), (b), (c); the
  // recorder keeps no per-connection state, so (d) would repeat `rt` at the price of 10,000 more connects.
  { key: 'rtm', label: 'fastify-realtime (metrics on)', file: 'realtime.mjs', protocol: 'json', args: ['--adapter', 'memory', '--metrics'], loadOnly: true },
  // Room history on (issue 12): only in (e), the Redis fan-out, to compare with `rt` (history off).
  { key: 'rth', label: 'fastify-realtime (history)', file: 'realtime.mjs', protocol: 'json', args: ['--adapter', 'memory', '--history'], redisLabel: 'fastify-realtime (Redis adapter, history on)', redisArgs: ['--adapter', 'redis', '--history'], redisOnly: true }
].filter((c) => wanted.has(c.key))

/** The plugin's own rows (built from dist/): skipped together when the build is missing. */
const isPlugin = (contender) => contender.file === 'realtime.mjs'

const notes = []
const log = (...args) => console.error('[bench]', ...args)

// 10,000 idle connections need 10,000 descriptors in the server and as many in the generator. Children
// inherit the limit, so raise it once here by re-running under a shell that sets `ulimit -n`.
function ensureDescriptors () {
  const need = params.connections + 1024
  const soft = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim())
  if (soft >= need || Number.isNaN(soft)) return
  if (process.env.BENCH_ULIMIT_TRIED) {
    const wantedConnections = params.connections
    params.connections = Math.max(1000, soft - 1024)
    notes.push(`The descriptor limit is ${soft}; the idle scenario opens ${params.connections} connections instead of ${wantedConnections}.`)
    return
  }
  const hard = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim()
  const target = hard === 'unlimited' ? need : Math.min(need, Number(hard))
  const res = spawnSync('sh', ['-c', `ulimit -n ${target} 2>/dev/null; exec "$@"`, 'sh', process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit', env: { ...process.env, BENCH_ULIMIT_TRIED: '1' }
  })
  process.exit(res.status ?? 1)
}

function build () {
  const entry = here('../dist/index.js')
  if (!argv.build) return existsSync(entry) ? null : 'dist/ not built (--no-build)'
  log('building the plugin (npm run build)')
  const startedAt = Date.now()
  const res = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, encoding: 'utf8' })
  if (res.status === 0) return null
  const first = (res.stdout + res.stderr).split('\n').find((l) => /error/i.test(l))?.trim().slice(0, 200) ?? 'see npm run build'
  // tsc still emits JavaScript when it finds type errors; such a build runs as written, so measure it, but say so.
  if (existsSync(entry) && statSync(entry).mtimeMs >= startedAt - 1000) {
    notes.push(`\`npm run build\` reported type errors (first: \`${first}\`); the plugin rows measure the JavaScript tsc emitted anyway.`)
    return null
  }
  notes.push(`\`npm run build\` failed, so the plugin rows are pending: ${first}`)
  return 'build failed'
}

/** Starts a contender; resolves with the child, or with { skip } when the contender cannot run here. */
async function startServer (contender, extraArgs = []) {
  const child = forkScript(here(`./servers/${contender.file}`), [...(contender.args ?? []), ...extraArgs], {
    // BENCH_SERVER_ARGV adds Node flags to the servers, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile them.
    label: contender.label, execArgv: ['--expose-gc', ...(process.env.BENCH_SERVER_ARGV?.split(' ').filter(Boolean) ?? [])]
  })
  try {
    const msg = await expectMessage(child, 'ready', 30_000)
    if (msg.type === 'skip') {
      await stop(child)
      return { skip: msg.reason }
    }
    child.port = msg.port
    child.features = msg.features
    child.target = { host: '127.0.0.1', port: msg.port }
    return child
  } catch (err) {
    await stop(child)
    return { skip: 'failed to start: ' + err.message.split('\n')[0].slice(0, 200) }
  }
}

const cpuOf = (m) => m.cpuUser + m.cpuSystem

/**
 * Two cores are shared with whatever else runs on the machine (tests, builds). Before each measurement,
 * wait a bounded while (per wait and in total over the run) for other processes to use less than a fifth
 * of a core; rows measured under load anyway are flagged in the report.
 */
let quietBudgetMs = params.quietBudgetMs
async function waitForQuiet () {
  const started = Date.now()
  const end = started + Math.min(params.quietWaitMs, quietBudgetMs)
  let waited = false
  for (;;) {
    const before = await machineBusyMicros()
    await new Promise((resolve) => setTimeout(resolve, 250))
    const cores = (await machineBusyMicros() - before) / 250_000
    if (cores < 0.2 || Date.now() >= end) {
      quietBudgetMs = Math.max(0, quietBudgetMs - (Date.now() - started))
      if (waited) log(`machine ${cores < 0.2 ? 'quiet' : 'still busy (' + cores.toFixed(2) + ' cores), measuring anyway'}`)
      return
    }
    if (!waited) log(`waiting up to ${params.quietWaitMs / 1000} s for other processes to settle (${cores.toFixed(2)} cores busy)`)
    waited = true
  }
}

/**
 * Runs one load-generator scenario against `servers`: warm up, read the servers' counters, measure, read
 * them again. CPU is summed over the servers; wall time is the server-side span between the two reads.
 */
async function runLoad (scenario, servers, loadParams, { redisPid } = {}) {
  await waitForQuiet()
  const gen = forkScript(LOADGEN, [], { label: 'load generator' })
  try {
    gen.send({ cmd: 'run', scenario, params: loadParams })
    const warm = await expectMessage(gen, 'warm', params.setupMs + params.warmMs + 15_000)
    const before = await Promise.all(servers.map((s) => mark(s, { gc: scenario === 'idle' })))
    const redisBefore = redisPid ? await procCpuMicros(redisPid) : 0
    const machineBefore = await machineBusyMicros()
    gen.send({ cmd: 'go' })
    const result = await expectMessage(gen, 'result', params.measureMs + 20_000)
    const machineAfter = await machineBusyMicros()
    const after = await Promise.all(servers.map((s) => mark(s, { gc: scenario === 'idle' })))
    const redisCpuUs = redisPid ? (await procCpuMicros(redisPid)) - redisBefore : NaN
    const cpuUs = after.reduce((sum, m, i) => sum + cpuOf(m) - cpuOf(before[i]), 0)
    const wallMs = after[0].at - before[0].at
    // What the rest of the machine (other processes, not ours) used meanwhile, in cores: a busy neighbour
    // on two shared cores skews throughput and latency, so such a row is flagged in the report.
    const ours = cpuUs + (result.generatorCpuUs ?? 0) + (redisPid ? redisCpuUs : 0)
    const otherCores = scenario === 'idle' ? NaN : Math.max(0, machineAfter - machineBefore - ours) / 1000 / wallMs
    return {
      connectFailures: warm.connectFailures, ...result, cpuUs, wallMs, redisCpuUs, otherCores, before, after
    }
  } finally {
    await stop(gen)
  }
}

function fanoutParams (contender, servers, rate) {
  return {
    protocol: contender.protocol,
    servers,
    members: params.members,
    window: params.window,
    rate,
    warmMs: params.warmMs,
    measureMs: params.measureMs,
    setupMs: params.setupMs,
    maxMessages: params.maxMessages
  }
}

function fanoutRow (contender, r) {
  return {
    key: contender.key,
    label: contender.label,
    ...r,
    cpuPerDeliveryUs: r.cpuUs / r.delivered
  }
}

async function guarded (contender, label, fn) {
  try {
    return await fn()
  } catch (err) {
    log(`${label} / ${contender.label} failed:`, err.message)
    return { key: contender.key, label: contender.label, skip: 'error: ' + err.message.split('\n')[0].slice(0, 160) }
  }
}

async function loadScenarios (contender, pluginSkip, scenarios) {
  const wantedHere = [['a', 'fanout'], ['b', 'fixedRate'], ['c', 'requestAck']].filter(([id]) => only.has(id))
  const skipAll = (reason) => {
    for (const [, name] of wantedHere) scenarios[name].push({ key: contender.key, label: contender.label, skip: reason })
  }
  if (wantedHere.length === 0) return
  if (isPlugin(contender) && pluginSkip) return skipAll(pluginSkip)
  const server = await startServer(contender)
  if (server.skip) return skipAll(server.skip)
  const noRooms = server.features.rooms ? null : 'rooms not available yet'
  try {
    if (only.has('a')) {
      log(`(a) fan-out, ${contender.label}`)
      scenarios.fanout.push(noRooms
        ? { key: contender.key, label: contender.label, skip: noRooms }
        : await guarded(contender, '(a)', async () =>
          fanoutRow(contender, await runLoad('fanout', [server], fanoutParams(contender, [server.target], 0)))))
    }
    if (only.has('b')) {
      log(`(b) fixed rate, ${contender.label}`)
      scenarios.fixedRate.push(noRooms
        ? { key: contender.key, label: contender.label, skip: noRooms }
        : await guarded(contender, '(b)', async () =>
          fanoutRow(contender, await runLoad('fanout', [server], fanoutParams(contender, [server.target], params.rate)))))
    }
    if (only.has('c')) {
      log(`(c) request/ack, ${contender.label}`)
      scenarios.requestAck.push(await guarded(contender, '(c)', async () => {
        const r = await runLoad('requestAck', [server], {
          protocol: contender.protocol,
          servers: [server.target],
          clients: params.ackClients,
          warmMs: params.warmMs,
          measureMs: params.measureMs,
          setupMs: params.setupMs,
          maxMessages: params.maxMessages
        })
        return { key: contender.key, label: contender.label, ...r, cpuPerRoundTripUs: r.cpuUs / r.roundTrips }
      }))
    }
  } finally {
    await stop(server)
  }
}

async function idleScenario (contender, pluginSkip) {
  const row = { key: contender.key, label: contender.label }
  if (isPlugin(contender) && pluginSkip) return { ...row, skip: pluginSkip }
  log(`(d) ${params.connections} idle connections, ${contender.label}`)
  // A fresh process, so the figure is not inflated by what the load scenarios left in the heap.
  const server = await startServer(contender)
  if (server.skip) return { ...row, skip: server.skip }
  try {
    if (!server.features.rooms) return { ...row, skip: 'rooms not available yet' }
    return await guarded(contender, '(d)', async () => {
      const r = await runLoad('idle', [server], {
        protocol: contender.protocol,
        servers: [server.target],
        connections: params.connections,
        rooms: params.rooms,
        perAddress: sourcesPerAddress(),
        setupMs: params.setupMs
      })
      const [base] = r.before
      const [held] = r.after
      return {
        ...row,
        ...r,
        rssPerConnKb: (held.rss - base.rss) / r.measuredConnections / 1024,
        heapPerConnKb: (held.heapUsed - base.heapUsed) / r.measuredConnections / 1024
      }
    })
  } finally {
    await stop(server)
  }
}

/**
 * Of several rounds of the same scenario, keeps for each contender the round whose `primary` figure is the
 * median, among the rounds measured on a quiet machine when there are any, and notes the range of that
 * figure over all rounds.
 */
function medianOfRounds (rounds, primary) {
  const byPrimary = (x, y) => primary(x) - primary(y)
  return rounds[0].map((first) => {
    const runs = rounds.map((round) => round.find((r) => r.key === first.key)).filter((r) => r && !r.skip)
    if (runs.length === 0) return first
    runs.sort(byPrimary)
    const quiet = runs.filter((r) => !(r.otherCores > BUSY_CORES))
    const pool = quiet.length > 0 ? quiet : runs
    const chosen = pool[Math.floor((pool.length - 1) / 2)]
    return { ...chosen, rounds: runs.length, range: [primary(runs[0]), primary(runs[runs.length - 1])] }
  })
}

async function redisScenario (pluginSkip, redis) {
  const rows = []
  for (const contender of CONTENDERS) {
    if (contender.loadOnly) continue
    const label = contender.redisLabel
    if (isPlugin(contender) && pluginSkip) {
      rows.push({ key: contender.key, label, skip: pluginSkip })
      continue
    }
    log(`(e) cross-instance fan-out, ${label}`)
    const extra = [...(contender.redisArgs ?? []), '--redis', redis.url]
    const servers = []
    try {
      for (let i = 0; i < 2; i++) {
        const s = await startServer(contender, extra)
        if (s.skip) throw Object.assign(new Error(s.skip), { skip: true })
        servers.push(s)
      }
      if (!servers[0].features.rooms) throw Object.assign(new Error('rooms not available yet'), { skip: true })
      const r = await runLoad('fanout', servers, fanoutParams(contender, servers.map((s) => s.target), 0), { redisPid: redis.pid })
      rows.push(fanoutRow({ ...contender, label }, r))
    } catch (err) {
      if (!err.skip) log(`(e) / ${label} failed:`, err.message)
      rows.push({ key: contender.key, label, skip: (err.skip ? '' : 'error: ') + err.message.split('\n')[0].slice(0, 160) })
    } finally {
      await Promise.all(servers.map((s) => stop(s)))
    }
  }
  return rows
}

async function microBenchmarks () {
  const results = []
  for (const file of ['validation.mjs', 'rate-limit.mjs', 'envelope.mjs']) {
    log(`(f) micro-benchmarks, ${file}`)
    const child = forkScript(here(`./micro/${file}`), ['--ms', String(params.microMs)], { label: file })
    try {
      const msg = await expectMessage(child, 'micro', 120_000)
      results.push(...msg.results)
    } catch (err) {
      results.push({ name: file, skip: 'error: ' + err.message.split('\n')[0].slice(0, 160) })
    } finally {
      await stop(child)
    }
  }
  return results
}

function environment () {
  return {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    node: process.versions.node,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown CPU',
    memGb: Math.round(os.totalmem() / 2 ** 30)
  }
}

async function main () {
  ensureDescriptors()
  const started = Date.now()
  const pluginSkip = CONTENDERS.some(isPlugin) ? build() : null
  const rounds = { fanout: [], fixedRate: [], requestAck: [], redis: [] }
  let redis = null
  if (only.has('e')) {
    if (spawnSync('sh', ['-c', 'command -v redis-server']).status === 0) redis = await startRedis()
    else notes.push('redis-server is not installed, so (e) did not run (`apt-get install -y redis-server`).')
  }
  // Rounds interleave the contenders, so a slow spell on the shared machine hits one round of each rather
  // than every figure of one contender; each row then shows the median round.
  for (let round = 1; round <= params.rounds; round++) {
    if (params.rounds > 1) log(`round ${round} of ${params.rounds}`)
    const scenarios = { fanout: [], fixedRate: [], requestAck: [] }
    for (const contender of CONTENDERS) if (!contender.redisOnly) await loadScenarios(contender, pluginSkip, scenarios)
    for (const name of Object.keys(scenarios)) rounds[name].push(scenarios[name])
    if (redis) rounds.redis.push(await redisScenario(pluginSkip, redis))
  }
  await redis?.stop()

  const scenarios = {}
  const primary = {
    fanout: (r) => r.cpuPerDeliveryUs,
    fixedRate: (r) => r.latency.p99,
    requestAck: (r) => r.roundTripsPerSec,
    redis: (r) => r.cpuPerDeliveryUs
  }
  for (const [name, list] of Object.entries(rounds)) {
    if (list.length && list[0].length) scenarios[name] = medianOfRounds(list, primary[name])
  }
  if (only.has('d')) {
    scenarios.idle = []
    for (const contender of CONTENDERS) {
      if (!contender.redisOnly && !contender.loadOnly) scenarios.idle.push(await idleScenario(contender, pluginSkip))
    }
  }
  const micro = only.has('f') ? await microBenchmarks() : null

  const env = environment()
  const report = renderReport({ env, params, scenarios, micro, notes })
  console.log(report)
  mkdirSync(here('./results'), { recursive: true })
  writeFileSync(here('./results/latest.md'), report)
  writeFileSync(here('./results/latest.json'), JSON.stringify({ env, params, scenarios, micro, notes }, null, 2))
  // The same figures as SVG charts, with a copy under docs/bench/ for BENCHMARKS.md.
  writeCharts({ scenarios }, here('./results'), here('../docs/bench'))
  log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s; written to bench/results/latest.md`)
}

runMain(main)
