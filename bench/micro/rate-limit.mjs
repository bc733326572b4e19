// (f) What the rate limit costs per message: MemoryStore.take from the build (dist/lib/stores/memory.js),
// on one hot key, spread over 10,000 keys, and when the bucket is empty (the denied path).
import { existsSync } from 'node:fs'
import { measure, report, sink } from './measure.mjs'

const STORE = new URL('../../dist/lib/stores/memory.js', import.meta.url)

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
