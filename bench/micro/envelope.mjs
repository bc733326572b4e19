// (f) The request/ack path's own work per frame, outside ws and the socket: parsing the envelope of an inbound
// frame (lib/protocol.ts `parse`: JSON.parse, the shape checks and the prototype-poisoning check) and
// serializing the ack (`serializeAck`), for a small request and one carrying a 1 KB string. `--dist <dir>`
// measures another build (e.g. a worktree of the commit before a change).
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { measure, report, sink } from './measure.mjs'

const { dist } = parseArgs({
  options: { dist: { type: 'string', default: fileURLToPath(new URL('../../dist', import.meta.url)) } },
  strict: false
}).values
const PROTOCOL = join(dist, 'lib/protocol.js')

if (!existsSync(PROTOCOL)) {
  report([{ name: 'envelope parse', skip: `not built (${PROTOCOL} missing; run npm run build)` }])
} else {
  const { parse, serializeAck } = await import(pathToFileURL(PROTOCOL).href)
  const body = 'x'.repeat(1024)
  // Distinct frames, so JSON.parse never sees the very same string twice in a row.
  const small = Array.from({ length: 1024 }, (_, i) => JSON.stringify({ type: 'echo', id: i, data: { t: i + 0.5 } }))
  const large = Array.from({ length: 1024 }, (_, i) => JSON.stringify({ type: 'say', id: i, data: { t: i, body } }))
  const results = [{ t: 1.5 }, { ok: true, n: 12 }, null]
  report([
    measure('parse, echo request (~40 B)', (i) => { sink.value += parse(small[i & 1023]).data.t }),
    measure('parse, request with a 1 KB string', (i) => { sink.value += parse(large[i & 1023]).data.t }),
    measure('serializeAck, numeric id', (i) => { sink.value += serializeAck(i, results[i % 3]).length }),
    measure('serializeAck, string id', (i) => { sink.value += serializeAck('req-' + (i & 1023), results[i % 3]).length })
  ])
}
