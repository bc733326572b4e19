// Instructions per operation, counted by valgrind (callgrind), for comparing two builds of the plugin on a
// machine that is busy with other work: wall-clock and CPU-time figures move with the load, instruction
// counts barely do. `node bench/instructions.mjs [--ops 2000] [--dist ./dist]` builds nothing; run
// `npm run build` first (or point --dist at another build, e.g. a worktree of the commit before a change).
//
// Each workload runs in one process (server and ws clients together), twice: with N operations and with
// none. The difference divided by N is the cost of one operation, start-up and module loading cancelled out.
// The client's share (ws framing and parsing) is the same for any two builds, so differences are the server's.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath, pathToFileURL } from 'node:url'

const { values: argv } = parseArgs({
  options: {
    ops: { type: 'string', default: '2000' },
    dist: { type: 'string', default: fileURLToPath(new URL('../dist', import.meta.url)) },
    workload: { type: 'string' },
    child: { type: 'boolean', default: false },
    count: { type: 'string', default: '0' }
  }
})

const WORKLOADS = ['request-ack', 'fanout-50']

if (argv.child) {
  await runWorkload(argv.workload, Number(argv.count), argv.dist)
} else {
  const ops = Number(argv.ops)
  const rows = []
  for (const workload of WORKLOADS) {
    const full = count(workload, ops)
    const empty = count(workload, 0)
    rows.push({ workload, perOp: Math.round((full - empty) / ops) })
  }
  console.log(`| workload | instructions / op (${ops} ops, ${resolve(argv.dist)}) |`)
  console.log('| --- | ---: |')
  for (const row of rows) console.log(`| ${row.workload} | ${row.perOp.toLocaleString('en-US')} |`)
}

function count (workload, n) {
  const dir = mkdtempSync(join(tmpdir(), 'frt-callgrind-'))
  try {
    const res = spawnSync('valgrind', [
      '--tool=callgrind', `--callgrind-out-file=${join(dir, 'out.%p')}`, '--trace-children=no',
      process.execPath, '--single-threaded', fileURLToPath(import.meta.url),
      '--child', '--workload', workload, '--count', String(n), '--dist', argv.dist
    ], { encoding: 'utf8', maxBuffer: 1 << 26 })
    if (res.status !== 0) throw new Error(`valgrind failed (${res.status}): ${res.stderr.slice(-2000)}`)
    const file = readdirSync(dir).find((f) => f.startsWith('out.'))
    const summary = /^summary:\s+(\d+)/m.exec(readFileSync(join(dir, file), 'utf8'))
    return Number(summary[1])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function runWorkload (workload, n, dist) {
  const { default: Fastify } = await import('fastify')
  const { default: WebSocket } = await import('ws')
  const { default: realtime } = await import(pathToFileURL(join(dist, 'index.js')).href)
  const { schemas } = await import('./servers/schemas.mjs')
  const app = Fastify({ logger: false })
  await app.register(realtime, { rateLimit: { rate: 1e9, burst: 1e9 }, heartbeat: false })
  app.realtime('/ws', {
    messages: {
      join: { schema: schemas.join, handler: (conn, data) => conn.join(data.room) },
      pub: { schema: schemas.pub, handler: (conn, data) => { app.realtime.to(data.room).emit('msg', { t: data.t, body: data.body }) } },
      echo: { schema: schemas.echo, handler: (conn, data) => data }
    },
    emits: { msg: schemas.msg }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `ws://127.0.0.1:${app.server.address().port}/ws`
  const members = workload === 'fanout-50' ? 50 : 1
  const sockets = await Promise.all(Array.from({ length: members }, () => new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })))
  const replies = (ws, count) => new Promise((resolve) => {
    let left = count
    if (left === 0) return resolve()
    ws.on('message', function onMessage () {
      if (--left === 0) {
        ws.off('message', onMessage)
        resolve()
      }
    })
  })
  // Every member joins the room (acked), so the measured part is the steady state.
  await Promise.all(sockets.map((ws, i) => {
    const done = replies(ws, 1)
    ws.send(JSON.stringify({ type: 'join', id: i, data: { room: 'r' } }))
    return done
  }))
  if (workload === 'request-ack') {
    const ws = sockets[0]
    for (let i = 0; i < n; i++) {
      const done = replies(ws, 1)
      ws.send(JSON.stringify({ type: 'echo', id: i, data: { t: i } }))
      await done
    }
  } else {
    for (let i = 0; i < n; i++) {
      const done = Promise.all(sockets.map((ws) => replies(ws, 1)))
      sockets[0].send(JSON.stringify({ type: 'pub', data: { room: 'r', t: i, body: 'hello, room' } }))
      await done
    }
  }
  for (const ws of sockets) ws.terminate()
  await app.close()
}
