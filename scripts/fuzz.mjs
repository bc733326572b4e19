#!/usr/bin/env node
// The long fuzz run (issue 11; RELIABILITY.md quotes it):
//   node scripts/fuzz.mjs [frames=100000] [seed=20261130]
// The same generator as test/fuzz.test.ts (test/helpers/fuzz.ts, loaded through tap's TypeScript loader),
// against one server for the whole run. Fails (exit 1) on an undocumented close code, a session with no
// verdict, an unhandled rejection, anything left behind, or heap after GC more than 10% above the warm start.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

if (process.env.FRT_FUZZ_CHILD === undefined) {
  const loader = new URL('../node_modules/@tapjs/typescript/dist/esm/import.mjs', import.meta.url).href
  const child = spawnSync(process.execPath, ['--expose-gc', `--import=${loader}`, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...process.env, FRT_FUZZ_CHILD: '1' } })
  process.exit(child.status ?? 1)
}

const frames = Number(process.argv[2] ?? 100_000)
const seed = Number(process.argv[3] ?? 20261130)
const { buildFuzzApp, runFuzz } = await import('../test/helpers/fuzz.ts')

const heap = () => { globalThis.gc(); globalThis.gc(); return process.memoryUsage().heapUsed }
const app = await buildFuzzApp()
// Warm up (JIT, pools, logger), then measure.
await runFuzz({ seed: seed + 1, frames: 2000, app })
const heapStart = heap()
const started = performance.now()
const result = await runFuzz({
  seed,
  frames,
  app,
  onProgress: (r) => { if (r.sessions % 2000 === 0) process.stderr.write(`  ${r.frames} frames, ${r.sessions} sessions\n`) }
})
const seconds = (performance.now() - started) / 1000
const heapEnd = heap()
await app.close()
const growth = (heapEnd - heapStart) / heapStart
console.log(JSON.stringify({ ...result, seconds: Math.round(seconds), heapStartMB: +(heapStart / 2 ** 20).toFixed(1), heapEndMB: +(heapEnd / 2 ** 20).toFixed(1), heapGrowth: +(growth * 100).toFixed(1) + '%' }, null, 2))
const ok = result.failures.length === 0 && result.unhandledRejections === 0 && result.leftover.connections === 0 &&
  result.leftover.rooms === 0 && growth < 0.1
process.exit(ok ? 0 : 1)
