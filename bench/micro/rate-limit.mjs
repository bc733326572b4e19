// (f) What the rate limit costs per message: the per-connection check every message pays
// (checkMessage from dist/lib/limits.js: buckets kept on the connection), and MemoryStore.take
// (shared limits) on one hot key, spread over 10,000 keys, and when the bucket is empty (the denied path).
import { existsSync } from 'node:fs'
import { measure, report, sink } from './measure.mjs'

const STORE = new URL('../../dist/lib/stores/memory.js', import.meta.url)
const LIMITS = new URL('../../dist/lib/limits.js', import.meta.url)

if (!existsSync(STORE)) {
  report([{ name: 'MemoryStore.take', skip: 'not built (dist/lib/stores/memory.js missing; run npm run build)' }])
} else {
  const { MemoryStore } = await import(STORE)
  const keys = Array.from({ length: 10_000 }, (_, i) => 'conn:' + i)
  const hot = new MemoryStore({ sweepInterval: 0 })
  const spread = new MemoryStore({ sweepInterval: 0 })
  const denied = new MemoryStore({ sweepInterval: 0 })
  report([
    measure('MemoryStore.take, one key (allowed)', () => { sink.value += hot.take('conn:1', 1e12, 1e12).remaining },
      { note: 'rate high enough never to deny' }),
    measure('MemoryStore.take, 10,000 keys round robin', (i) => { sink.value += spread.take(keys[i % 10_000], 1e12, 1e12).remaining },
      { note: 'LRU re-insert on every take' }),
    measure('MemoryStore.take, empty bucket (denied)', () => { sink.value += denied.take('conn:1', 0.001, 1).retryAfter },
      { note: 'the path a flooding client takes' })
  ])
}

if (existsSync(LIMITS)) {
  const { checkMessage } = await import(LIMITS)
  // The connection's own fields are all the check touches; a stand-in with them is enough.
  const conn = { limits: null }
  const typed = { limits: null }
  const limits = { rate: 1e12, burst: 1e12, budget: 20 }
  const typeLimit = { rate: 1e12, burst: 1e12 }
  report([
    measure('per-connection check (default path)', () => { sink.value += checkMessage(conn, limits, 'say', undefined, 1) },
      { note: 'every message pays this: two numbers on the connection' }),
    measure('per-connection check + a per-type bucket', () => { sink.value += checkMessage(typed, limits, 'typing', typeLimit, 1) },
      { note: 'messages with their own rateLimit' })
  ])
}
