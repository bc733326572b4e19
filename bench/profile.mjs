// Where a server's CPU goes in one bench scenario: `node bench/profile.mjs --scenario latency|ack
// [--contender rt|rtm|ws|fws] [--measure-ms 8000] [--warm-ms 2000] [--interval-us 200] [--top 20] [--no-build]`.
//   latency: (b), one room of 500 members, 100 messages/s from member 0 (50,000 deliveries/s);
//   ack:     (c), 50 clients each with one `echo` request in flight.
// The server (bench/servers/, the same files bench/run.mjs measures) runs under `node --cpu-prof`; the load
// generator (bench/load/) in its own process. The profile is cut to the measured phase (the server reports the
// monotonic clock at its start and end), summarized by category and by function (bench/harness/profile-summary.mjs)
// and printed as markdown for BENCHMARKS.md; the markdown goes to bench/results/profile-<scenario>-<contender>.md
// and the full profile to bench/results/profile-<scenario>-<contender>.cpuprofile (open it in Chrome DevTools).
// Shares of a sampled profile survive a busy machine better than wall-clock figures do, but not entirely: the
// lead quotes a run on a quiet machine.
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { expectMessage, forkScript, mark, runMain, stop } from './harness/processes.mjs'
import { renderSummary, summarize } from './harness/profile-summary.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const here = (p) => fileURLToPath(new URL(p, import.meta.url))

const { values: argv } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'latency' },
    contender: { type: 'string', default: 'rt' },
    'measure-ms': { type: 'string', default: '8000' },
    'warm-ms': { type: 'string', default: '2000' },
    'interval-us': { type: 'string', default: '200' },
    top: { type: 'string', default: '20' },
    build: { type: 'boolean', default: true }
  },
  allowNegative: true
})

const CONTENDERS = {
  rt: { label: 'fastify-realtime', file: 'realtime.mjs', args: ['--adapter', 'memory'] },
  rtm: { label: 'fastify-realtime, metrics on', file: 'realtime.mjs', args: ['--adapter', 'memory', '--metrics'] },
  ws: { label: 'raw ws', file: 'raw-ws.mjs', args: [] },
  fws: { label: '@fastify/websocket', file: 'fastify-websocket.mjs', args: [] }
}
const SCENARIOS = {
  latency: {
    title: '100 msg/s to 500 members (scenario b)',
    load: 'fanout',
    opName: 'delivery',
    opsName: 'deliveries',
    params: { members: 500, window: 2, rate: 100, maxMessages: 5_000_000 },
    ops: (r) => r.delivered
  },
  ack: {
    title: 'request/ack, 50 clients (scenario c)',
    load: 'requestAck',
    opName: 'round trip',
    opsName: 'round trips',
    params: { clients: 50, maxMessages: 5_000_000 },
    ops: (r) => r.roundTrips
  }
}

const log = (...args) => console.error('[profile]', ...args)

async function main () {
  const scenario = SCENARIOS[argv.scenario]
  const contender = CONTENDERS[argv.contender]
  if (!scenario) throw new TypeError(`--scenario must be one of ${Object.keys(SCENARIOS).join(', ')}`)
  if (!contender) throw new TypeError(`--contender must be one of ${Object.keys(CONTENDERS).join(', ')}`)
  if (argv.build && contender.file === 'realtime.mjs') {
    log('building the plugin (npm run build)')
    spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' })
  }
  const dir = mkdtempSync(join(tmpdir(), 'frt-profile-'))
  const measureMs = Number(argv['measure-ms'])
  const warmMs = Number(argv['warm-ms'])
  try {
    const server = forkScript(here(`./servers/${contender.file}`), contender.args, {
      label: contender.label,
      execArgv: ['--expose-gc', '--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${Number(argv['interval-us'])}`]
    })
    const ready = await expectMessage(server, 'ready', 30_000)
    if (ready.type === 'skip') throw new Error(`${contender.label} cannot run: ${ready.reason}`)
    const gen = forkScript(here('./load/loadgen.mjs'), [], { label: 'load generator' })
    let before, after, result
    try {
      log(`${scenario.title}, ${contender.label}: warming up ${warmMs} ms, profiling ${measureMs} ms`)
      gen.send({
        cmd: 'run',
        scenario: scenario.load,
        params: { protocol: 'json', servers: [{ host: '127.0.0.1', port: ready.port }], warmMs, measureMs, setupMs: 60_000, ...scenario.params }
      })
      await expectMessage(gen, 'warm', 60_000 + warmMs + 15_000)
      before = await mark(server)
      gen.send({ cmd: 'go' })
      result = await expectMessage(gen, 'result', measureMs + 20_000)
      after = await mark(server)
    } finally {
      await stop(gen)
    }
    // The profile is written when the server exits.
    await stop(server, 10_000)
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
    if (!file) throw new Error('the server wrote no .cpuprofile')
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8'))
    const summary = summarize(profile, { root: ROOT, fromUs: before.hrUs, toUs: after.hrUs, top: Number(argv.top) })
    const cpuUs = (after.cpuUser + after.cpuSystem) - (before.cpuUser + before.cpuSystem)
    const ops = scenario.ops(result)
    const lat = result.latency
    const title = `${contender.label}: ${scenario.title}, CPU profile of the server`
    const md = renderSummary(summary, { title, ops, opName: scenario.opName }) +
      `\n${ops.toLocaleString('en-US')} ${scenario.opsName} in ${(result.elapsedMs / 1000).toFixed(1)} s; latency p50 ${lat.p50.toFixed(2)} ms, ` +
      `p99 ${lat.p99.toFixed(2)} ms (under the profiler, which slows the server: compare shares, not these); ` +
      `server process CPU ${(cpuUs / ops).toFixed(2)} µs per ${scenario.opName}, ${(cpuUs / 1000 / (after.at - before.at) * 100).toFixed(0)}% of a core ` +
      `(all threads, the profiler's own included); sampling every ${argv['interval-us']} µs nominal, ${summary.usPerSample.toFixed(0)} µs real. ` +
      `\`node bench/profile.mjs --scenario ${argv.scenario} --contender ${argv.contender}\`, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC.\n`
    console.log(md)
    mkdirSync(here('./results'), { recursive: true })
    const base = here(`./results/profile-${argv.scenario}-${argv.contender}`)
    writeFileSync(base + '.md', md)
    copyFileSync(join(dir, file), base + '.cpuprofile')
    log(`written to ${base}.md and .cpuprofile`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

runMain(main)
