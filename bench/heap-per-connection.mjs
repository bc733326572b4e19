// What one idle connection keeps in the server's JS heap, object by object: `node bench/heap-per-connection.mjs
// [--from 200] [--to 2200] [--rooms 100] [--top 25] [--dist ./dist] [--contender rt|ws]` (npm run build first).
// The server (fastify-realtime from --dist, one route, defaults; or --contender ws: a bare ws server with the
// hand-rolled room loop) writes a heap snapshot after a full GC with --from connections open (each joined to
// one of --rooms rooms) and again with --to; the clients run in another process. The difference, per added
// connection, is printed by constructor (count and bytes per connection), with the heap used per connection
// (process.memoryUsage after GC). Heap bytes after a full GC do not depend on the machine's load.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { writeHeapSnapshot } from 'node:v8'
import { fileURLToPath, pathToFileURL } from 'node:url'

const { values: argv } = parseArgs({
  options: {
    from: { type: 'string', default: '200' },
    to: { type: 'string', default: '2200' },
    rooms: { type: 'string', default: '100' },
    top: { type: 'string', default: '25' },
    // Names (as the table prints them) whose added instances are grouped by what holds them.
    retainers: { type: 'string', default: '' },
    dist: { type: 'string', default: fileURLToPath(new URL('../dist', import.meta.url)) },
    contender: { type: 'string', default: 'rt' },
    role: { type: 'string' },
    url: { type: 'string' },
    dir: { type: 'string' }
  }
})

if (argv.role === 'server') await server()
else if (argv.role === 'clients') await clients()
else await main()

async function server () {
  let port
  if (argv.contender === 'ws') {
    const { WebSocketServer } = await import('ws')
    const rooms = new Map()
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    await once(wss, 'listening')
    wss.on('connection', (ws) => {
      ws.on('message', (raw) => {
        const msg = JSON.parse(raw.toString())
        if (msg.type !== 'join') return
        let set = rooms.get(msg.data.room)
        if (set === undefined) rooms.set(msg.data.room, set = new Set())
        set.add(ws)
        ws.send(JSON.stringify({ type: 'ack', id: msg.id, data: null }))
      })
      ws.on('close', () => { for (const set of rooms.values()) set.delete(ws) })
    })
    port = wss.address().port
  } else {
    const { default: Fastify } = await import('fastify')
    const { default: realtime } = await import(pathToFileURL(join(argv.dist, 'index.js')).href)
    const app = Fastify({ logger: false })
    await app.register(realtime)
    app.realtime('/ws', { messages: {} })
    await app.listen({ host: '127.0.0.1', port: 0 })
    port = app.server.address().port
  }
  let n = 0
  process.on('message', (msg) => {
    if (msg.type !== 'snapshot') return
    for (let i = 0; i < 4; i++) globalThis.gc()
    const heapUsed = process.memoryUsage().heapUsed
    const file = writeHeapSnapshot(join(argv.dir, `s${++n}.heapsnapshot`))
    process.send({ type: 'snapshot', file, heapUsed })
  })
  process.send({ type: 'ready', port })
}

async function clients () {
  const { default: WebSocket } = await import('ws')
  const sockets = []
  let id = 0
  const open = () => new Promise((resolve, reject) => {
    const ws = new WebSocket(argv.url)
    ws.once('error', reject)
    ws.once('open', () => {
      const room = 'r' + (sockets.length % Number(argv.rooms))
      sockets.push(ws)
      ws.once('message', () => resolve())
      ws.send(JSON.stringify({ type: 'room:join', id: ++id, data: { room } }).replace('room:join', argv.contender === 'ws' ? 'join' : 'room:join'))
    })
  })
  process.on('message', async (msg) => {
    if (msg.type === 'open') {
      while (sockets.length < msg.total) {
        const batch = Math.min(100, msg.total - sockets.length)
        await Promise.all(Array.from({ length: batch }, open))
      }
      process.send({ type: 'opened', count: sockets.length })
    } else if (msg.type === 'stop') {
      process.exit(0)
    }
  })
  process.send({ type: 'ready' })
}

function ask (child, msg, type) {
  const reply = new Promise((resolve, reject) => {
    child.on('message', function onMessage (m) {
      if (m.type === type) { child.off('message', onMessage); resolve(m) }
    })
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before "${type}"`)))
  })
  if (msg) child.send(msg)
  return reply
}

/** The name a node is counted under. */
function nodeName (snap, types, type, nameIndex) {
  // Strings are counted by type, not by their text; other objects by constructor name.
  if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number') return `(${type})`
  if (type === 'object' || type === 'closure' || type === 'native') return `${snap.strings[nameIndex]}${type === 'closure' ? ' (closure)' : ''}`
  return `(${type}) ${snap.strings[nameIndex]}`.slice(0, 60)
}

/**
 * For the nodes counted under one of `names`: how many are held by each "holder name . edge" (every
 * retaining edge counts, weak ones left out), so the added ones can be traced to what keeps them.
 */
function holders (snap, names) {
  const meta = snap.snapshot.meta
  const nodeWidth = meta.node_fields.length
  const edgeWidth = meta.edge_fields.length
  const [iType, iName, iEdges] = ['type', 'name', 'edge_count'].map((f) => meta.node_fields.indexOf(f))
  const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((f) => meta.edge_fields.indexOf(f))
  const nodeTypes = meta.node_types[0]
  const edgeTypes = meta.edge_types[0]
  const nodes = snap.nodes
  const out = new Map()
  let edge = 0
  for (let i = 0; i < nodes.length; i += nodeWidth) {
    const holder = nodeName(snap, nodeTypes, nodeTypes[nodes[i + iType]], nodes[i + iName])
    for (let k = 0; k < nodes[i + iEdges]; k++, edge += edgeWidth) {
      const kind = edgeTypes[snap.edges[edge + eType]]
      if (kind === 'weak' || kind === 'shortcut') continue
      const to = snap.edges[edge + eTo]
      const name = nodeName(snap, nodeTypes, nodeTypes[nodes[to + iType]], nodes[to + iName])
      if (!names.has(name)) continue
      const label = kind === 'element' || kind === 'hidden' ? `[${kind}]` : String(snap.strings[snap.edges[edge + eName]]).slice(0, 40)
      const key = `${name} <- ${holder}.${label}`
      out.set(key, (out.get(key) ?? 0) + 1)
    }
  }
  return out
}

/** Self size and count per "type:name" of a heap snapshot's nodes. */
function census (file) {
  const snap = JSON.parse(readFileSync(file, 'utf8'))
  const wanted = new Set(argv.retainers.split(',').filter(Boolean))
  const fields = snap.snapshot.meta.node_fields
  const types = snap.snapshot.meta.node_types[0]
  const width = fields.length
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f))
  const out = new Map()
  const nodes = snap.nodes
  for (let i = 0; i < nodes.length; i += width) {
    const name = nodeName(snap, types, types[nodes[i + iType]], nodes[i + iName])
    const entry = out.get(name) ?? { count: 0, size: 0 }
    entry.count++
    entry.size += nodes[i + iSize]
    out.set(name, entry)
  }
  out.holders = wanted.size > 0 ? holders(snap, wanted) : new Map()
  return out
}

async function main () {
  const dir = mkdtempSync(join(tmpdir(), 'frt-heap-'))
  const self = fileURLToPath(import.meta.url)
  const common = ['--dir', dir, '--dist', argv.dist, '--contender', argv.contender, '--rooms', argv.rooms]
  const srv = fork(self, ['--role', 'server', ...common], { execArgv: ['--expose-gc'] })
  let cli
  try {
    const { port } = await ask(srv, null, 'ready')
    cli = fork(self, ['--role', 'clients', '--url', `ws://127.0.0.1:${port}/ws`, ...common])
    await ask(cli, null, 'ready')
    const from = Number(argv.from)
    const to = Number(argv.to)
    await ask(cli, { type: 'open', total: from }, 'opened')
    const a = await ask(srv, { type: 'snapshot' }, 'snapshot')
    await ask(cli, { type: 'open', total: to }, 'opened')
    const b = await ask(srv, { type: 'snapshot' }, 'snapshot')
    const n = to - from
    const before = census(a.file)
    const after = census(b.file)
    const rows = []
    let total = 0
    for (const [name, e] of after) {
      const p = before.get(name) ?? { count: 0, size: 0 }
      const size = (e.size - p.size) / n
      total += size
      rows.push({ name, count: (e.count - p.count) / n, size })
    }
    rows.sort((x, y) => y.size - x.size)
    console.log(`${argv.contender === 'ws' ? 'raw ws' : 'fastify-realtime (' + argv.dist + ')'}: ${from} -> ${to} idle connections, each in one of ${argv.rooms} rooms`)
    console.log(`JS heap per connection: ${((b.heapUsed - a.heapUsed) / n).toFixed(0)} B (memoryUsage after GC); snapshot nodes: ${total.toFixed(0)} B`)
    console.log('\n| object (constructor, or type) | per connection | bytes per connection |\n| --- | ---: | ---: |')
    for (const r of rows.slice(0, Number(argv.top))) console.log(`| ${r.name.replace(/\|/g, '\\|')} | ${r.count.toFixed(2)} | ${r.size.toFixed(0)} |`)
    if (after.holders.size > 0) {
      console.log('\n| object <- held by (holder.edge) | per connection |\n| --- | ---: |')
      const held = [...after.holders].map(([key, count]) => [key, (count - (before.holders.get(key) ?? 0)) / n])
        .filter(([, per]) => per >= 0.5).sort((x, y) => y[1] - x[1])
      for (const [key, per] of held) console.log(`| ${key.replace(/\|/g, '\\|')} | ${per.toFixed(2)} |`)
    }
  } finally {
    cli?.kill()
    srv.kill()
    rmSync(dir, { recursive: true, force: true })
  }
}
