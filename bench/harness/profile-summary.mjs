// A V8 CPU profile (`node --cpu-prof`, a .cpuprofile file) summarized as markdown: self time by category
// (our code, fastify, ws, JSON, validation, Node's own JavaScript, native calls, GC, idle) and by function,
// for the samples between two instants only (the measured phase, not start-up or connection set-up).
// Used by bench/profile.mjs; pure functions, so test/profile-summary.test.ts can feed it a made-up profile.

/** The categories, in the order the table lists them. */
export const CATEGORIES = [
  'fastify-realtime',
  'bench server code',
  'fastify',
  'ws',
  'JSON',
  'validation (TypeBox)',
  'Node (streams, net, events, timers)',
  'native (socket I/O, microtasks, bindings)',
  'other dependencies',
  'VM (program)',
  'garbage collector',
  'idle'
]

const FASTIFY = /node_modules\/(fastify|@fastify\/[^/]+|avvio|find-my-way|light-my-request|fast-json-stringify|abstract-logging|pino[^/]*|rfdc|toad-cache|process-warning|fastq|reusify)\//
const JSON_FUNCTIONS = new Set(['parse', 'stringify', 'JSONParse', 'JSONStringify'])

/**
 * Which category a profile node's own time belongs to, from its call frame. `root` is the plugin's
 * directory (e.g. /repo/): files under its dist/ or lib/ are the plugin, under bench/ the bench servers.
 */
export function categorize ({ functionName, url }, root) {
  if (functionName === '(garbage collector)') return 'garbage collector'
  if (functionName === '(idle)') return 'idle'
  if (functionName === '(program)' || functionName === '(root)') return 'VM (program)'
  const path = url.replace(/^file:\/\//, '')
  if (path.includes('node_modules/secure-json-parse/')) return 'JSON'
  if (path.includes('node_modules/typebox/') || path.includes('node_modules/@sinclair/typebox/')) return 'validation (TypeBox)'
  if (path.includes('node_modules/ws/')) return 'ws'
  if (FASTIFY.test(path)) return 'fastify'
  if (path.includes('node_modules/')) return 'other dependencies'
  if (path.startsWith(root + 'bench/')) return 'bench server code'
  if (path.startsWith(root)) return 'fastify-realtime'
  if (path.startsWith('node:') || path.startsWith('internal/')) return 'Node (streams, net, events, timers)'
  if (path === '' && JSON_FUNCTIONS.has(functionName)) return 'JSON'
  if (path === '') return 'native (socket I/O, microtasks, bindings)'
  return 'other dependencies'
}

/**
 * Self samples per profile node within [fromUs, toUs] (the profile's own clock: the monotonic clock in µs,
 * as `process.hrtime.bigint() / 1000n` reads it). Returns { counts: Map(nodeId -> samples), total, spanUs }.
 */
export function samplesBetween (profile, fromUs = -Infinity, toUs = Infinity) {
  const counts = new Map()
  let t = profile.startTime
  let total = 0
  let first = Infinity
  let last = -Infinity
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]
    if (t < fromUs || t > toUs) continue
    const id = profile.samples[i]
    counts.set(id, (counts.get(id) ?? 0) + 1)
    total++
    if (t < first) first = t
    last = t
  }
  return { counts, total, spanUs: total > 0 ? last - first : 0 }
}

const pct = (n) => (n * 100).toFixed(1) + '%'

function shortUrl (url, root) {
  const path = url.replace(/^file:\/\//, '')
  if (path === '') return '(native)'
  const nm = path.lastIndexOf('node_modules/')
  if (nm >= 0) return path.slice(nm + 'node_modules/'.length)
  return path.startsWith(root) ? path.slice(root.length) : path
}

/**
 * Summarizes `profile` between `fromUs` and `toUs`: { categories: [{ name, samples, share, busyShare }],
 * functions: [{ name, where, category, samples, share, busyShare }], total, busy }. Shares are of all
 * samples; busy shares leave out idle.
 */
export function summarize (profile, { root, fromUs, toUs, top = 20 }) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const { counts, total, spanUs } = samplesBetween(profile, fromUs, toUs)
  const categories = new Map(CATEGORIES.map((c) => [c, 0]))
  const functions = new Map()
  for (const [id, n] of counts) {
    const { callFrame } = byId.get(id)
    const category = categorize(callFrame, root)
    categories.set(category, categories.get(category) + n)
    const where = shortUrl(callFrame.url, root) + (callFrame.url ? ':' + (callFrame.lineNumber + 1) : '')
    const name = callFrame.functionName || '(anonymous)'
    const key = name + ' ' + where
    const entry = functions.get(key) ?? { name, where, category, samples: 0 }
    entry.samples += n
    functions.set(key, entry)
  }
  const busy = total - categories.get('idle')
  const share = (n) => total > 0 ? n / total : 0
  const busyShare = (n, category) => category === 'idle' || busy === 0 ? NaN : n / busy
  return {
    total,
    busy,
    // The sampler's real interval (it falls behind its nominal one under load): µs of main-thread time a sample stands for.
    usPerSample: total > 1 ? spanUs / (total - 1) : 0,
    categories: [...categories].map(([name, samples]) => ({ name, samples, share: share(samples), busyShare: busyShare(samples, name) })),
    functions: [...functions.values()]
      .filter((f) => f.category !== 'idle')
      .sort((x, y) => y.samples - x.samples)
      .slice(0, top)
      .map((f) => ({ ...f, share: share(f.samples), busyShare: busyShare(f.samples, f.category) }))
  }
}

/**
 * The summary as markdown: a table by category, then the top functions by self time. With `ops` (the
 * operations in the phase, e.g. deliveries), each category's main-thread time per operation as well:
 * samples × the sampler's real interval ÷ ops.
 */
export function renderSummary (summary, { title, ops, opName = 'op' }) {
  const perOp = ops > 0 && summary.usPerSample > 0
  const us = (samples) => (samples * summary.usPerSample / ops).toFixed(2)
  const lines = [`### ${title}`, '']
  lines.push(`${summary.total.toLocaleString('en-US')} samples in the measured phase, ${pct(summary.total > 0 ? summary.busy / summary.total : 0)} of them busy` +
    (perOp ? `: ${us(summary.busy)} µs of main-thread time per ${opName} (wall clock: on a busy machine it includes time the thread waited for a core).` : '.'))
  lines.push('', '| self time in | share of samples | share of busy samples |' + (perOp ? ` µs per ${opName} |` : ''))
  lines.push('| --- | ---: | ---: |' + (perOp ? ' ---: |' : ''))
  for (const c of summary.categories) {
    if (c.samples === 0) continue
    const cell = perOp ? ` ${c.name === 'idle' ? '–' : us(c.samples)} |` : ''
    lines.push(`| ${c.name} | ${pct(c.share)} | ${Number.isFinite(c.busyShare) ? pct(c.busyShare) : '–'} |${cell}`)
  }
  lines.push('', '| function (self time) | where | category | share of busy samples |', '| --- | --- | --- | ---: |')
  for (const f of summary.functions) {
    lines.push(`| \`${f.name}\` | ${f.where.replace(/\|/g, '\\|')} | ${f.category} | ${pct(f.busyShare)} |`)
  }
  return lines.join('\n') + '\n'
}
