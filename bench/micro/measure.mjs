// A tiny timing loop for the micro-benchmarks: run `fn` in batches for about `ms`, keep the fastest batch
// (the least disturbed by GC and the other process on the cores), and report nanoseconds per call.
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'

export const { ms: budgetMs } = parseArgs({ options: { ms: { type: 'string', default: '1000' } }, strict: false }).values

/** Something to write results into so the optimizer cannot drop the work being timed. */
export const sink = { value: 0 }

export function measure (name, fn, { batch = 10_000, note } = {}) {
  const budget = Number(budgetMs)
  for (let i = 0; i < batch; i++) fn(i) // warm up: let the JIT optimize fn before timing it
  let best = Infinity
  const end = performance.now() + budget
  let batches = 0
  // Bounded twice: by time, and by a count so that a pathological fn cannot spin for ever.
  while ((performance.now() < end || batches < 3) && batches < 10_000) {
    const t0 = performance.now()
    for (let i = 0; i < batch; i++) fn(i)
    const per = (performance.now() - t0) * 1e6 / batch
    if (per < best) best = per
    batches++
  }
  return { name, nsPerOp: best, opsPerSec: 1e9 / best, note }
}

/** Sends results to the harness, or prints them when run on its own (`node bench/micro/x.mjs`). */
export function report (results) {
  if (process.send) {
    process.send({ type: 'micro', results }, () => process.exit(0))
    return
  }
  for (const r of results) {
    console.log(r.skip ? `${r.name}: skipped: ${r.skip}` : `${r.name}: ${r.nsPerOp.toFixed(1)} ns/op${r.note ? ` (${r.note})` : ''}`)
  }
}
