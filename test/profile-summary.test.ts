// The CPU-profile summary of bench/profile.mjs (bench/harness/profile-summary.mjs): which category a sample's
// function falls in, the cut to the measured phase, and the markdown. Fed a made-up profile, not a real one.
import t from 'tap'
import { CATEGORIES, categorize, renderSummary, samplesBetween, summarize } from '../bench/harness/profile-summary.mjs'

const ROOT = '/repo/'
const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber })

t.test('categories by where the function lives', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['(garbage collector)', '', 'garbage collector'],
    ['(idle)', '', 'idle'],
    ['(program)', '', 'VM (program)'],
    ['(root)', '', 'VM (program)'],
    ['parse', 'file:///repo/node_modules/secure-json-parse/index.js', 'JSON'],
    ['Check', 'file:///repo/node_modules/typebox/build/check.mjs', 'validation (TypeBox)'],
    ['Check', '/repo/node_modules/@sinclair/typebox/value.js', 'validation (TypeBox)'],
    ['consume', 'file:///repo/node_modules/ws/lib/receiver.js', 'ws'],
    ['route', 'file:///repo/node_modules/fastify/lib/route.js', 'fastify'],
    ['handle', 'file:///repo/node_modules/@fastify/websocket/index.js', 'fastify'],
    ['publish', 'file:///repo/node_modules/ioredis/built/index.js', 'other dependencies'],
    ['onMessage', 'file:///repo/bench/servers/raw-ws.mjs', 'bench server code'],
    ['dispatch', 'file:///repo/dist/lib/pipeline.js', 'fastify-realtime'],
    ['emit', 'node:events', 'Node (streams, net, events, timers)'],
    ['x', 'internal/streams/writable', 'Node (streams, net, events, timers)'],
    ['parse', '', 'JSON'],
    ['stringify', '', 'JSON'],
    ['writev', '', 'native (socket I/O, microtasks, bindings)'],
    ['f', 'file:///elsewhere/x.js', 'other dependencies']
  ]
  for (const [name, url, category] of cases) {
    t.equal(categorize(frame(name, url), ROOT), category, `${name} ${url}`)
    t.ok(CATEGORIES.includes(category))
  }
})

// Samples 1 ms apart from t = 1000 µs: ids 2 (ours), 3 (native), 4 (idle), 2, 5 (GC), 3.
const profile = {
  startTime: 0,
  nodes: [
    { id: 1, callFrame: frame('(root)') },
    { id: 2, callFrame: frame('dispatch', 'file:///repo/dist/lib/pipeline.js', 49) },
    { id: 3, callFrame: frame('writev') },
    { id: 4, callFrame: frame('(idle)') },
    { id: 5, callFrame: frame('(garbage collector)') },
    { id: 6, callFrame: frame('', 'file:///repo/node_modules/ws/lib/sender.js', 9) }
  ],
  samples: [2, 3, 4, 2, 5, 3, 6],
  timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000]
}

t.test('only the samples between the two instants count', async (t) => {
  const all = samplesBetween(profile)
  t.equal(all.total, 7)
  t.equal(all.spanUs, 6000)
  const cut = samplesBetween(profile, 2000, 5000)
  t.equal(cut.total, 4, 'the samples at 2, 3, 4 and 5 ms')
  t.same([...cut.counts], [[3, 1], [4, 1], [2, 1], [5, 1]])
  t.same(samplesBetween(profile, 10_000, 20_000), { counts: new Map(), total: 0, spanUs: 0 })
})

t.test('a summary by category and by function, busy shares without idle', async (t) => {
  const s = summarize(profile, { root: ROOT, fromUs: 1000, toUs: 6000, top: 3 })
  t.equal(s.total, 6)
  t.equal(s.busy, 5)
  t.equal(s.usPerSample, 1000)
  const by = Object.fromEntries(s.categories.map((c) => [c.name, c]))
  t.equal(by['fastify-realtime'].samples, 2)
  t.equal(by['fastify-realtime'].busyShare, 2 / 5)
  t.equal(by['native (socket I/O, microtasks, bindings)'].samples, 2)
  t.ok(Number.isNaN(by.idle.busyShare))
  t.equal(by.idle.share, 1 / 6)
  t.same(s.functions.map((f) => [f.name, f.where, f.samples]), [
    ['dispatch', 'dist/lib/pipeline.js:50', 2],
    ['writev', '(native)', 2],
    ['(garbage collector)', '(native)', 1]
  ], 'idle is not a function; the top 3 by self samples')
  const anonymous = summarize(profile, { root: ROOT })
  t.same(anonymous.functions.find((f) => f.category === 'ws'), {
    name: '(anonymous)', where: 'ws/lib/sender.js:10', category: 'ws', samples: 1, share: 1 / 7, busyShare: 1 / 6
  })
  const outside = summarize({ ...profile, nodes: [...profile.nodes.slice(0, 5), { id: 6, callFrame: frame('f', '/opt/x|y.js', 0) }] }, { root: ROOT })
  t.match(renderSummary(outside, { title: 'pipes' }), /\| `f` \| \/opt\/x\\\|y\.js:1 \| other dependencies \|/, 'a | in a path is escaped')
})

t.test('markdown, with time per operation when the operations are known', async (t) => {
  const s = summarize(profile, { root: ROOT, fromUs: 1000, toUs: 6000 })
  const md = renderSummary(s, { title: 'T', ops: 10, opName: 'delivery' })
  t.match(md, /^### T\n\n6 samples in the measured phase, 83\.3% of them busy: 500\.00 µs of main-thread time per delivery/)
  t.match(md, /\| fastify-realtime \| 33\.3% \| 40\.0% \| 200\.00 \|/)
  t.match(md, /\| idle \| 16\.7% \| – \| – \|/)
  t.notMatch(md, /\| ws \|/, 'a category without samples has no row')
  t.match(md, /\| `dispatch` \| dist\/lib\/pipeline\.js:50 \| fastify-realtime \| 40\.0% \|/)
  const plain = renderSummary(s, { title: 'T' })
  t.match(plain, /83\.3% of them busy\.\n/)
  t.match(plain, /\| self time in \| share of samples \| share of busy samples \|\n\| --- \| ---: \| ---: \|\n/)
  t.match(plain, /\| idle \| 16\.7% \| – \|\n/)
  const empty = summarize(profile, { root: ROOT, fromUs: 10_000, toUs: 20_000 })
  t.equal(empty.usPerSample, 0)
  t.match(renderSummary(empty, { title: 'E', ops: 5 }), /0 samples in the measured phase, 0\.0% of them busy\.\n/)
})
