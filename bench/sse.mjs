// The SSE + POST fallback next to WebSocket, on one route of the built plugin (dist/), in one process:
//   fan-out: 100 members of one room (all ws, or all sse), 200 broadcasts of ~100 B; deliveries per second
//            from the first publish to the last delivery.
//   round trip: 300 sequential requests of one client (ws frame / POST), median and p99 ms to the ack.
// `--history`: the route keeps room history, so each SSE stream also writes its resume cursor (an `id:` event,
// at most once per tick per stream) after the room messages it got.
// Quick and rough (2 shared cores, client and server in one process): run `npm run build` first, then
// `node bench/sse.mjs [--history]`.
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import Fastify from 'fastify'
import WebSocket from 'ws'

const { default: realtime } = await import(new URL('../dist/index.js', import.meta.url))
const MEMBERS = 100
const BROADCASTS = 200
const REQUESTS = 300

const HISTORY = process.argv.includes('--history')

const app = Fastify()
await app.register(realtime, { sse: true, rateLimit: false, heartbeat: false, ...HISTORY && { history: {} } })
app.realtime('/bench', {
  joinable: true,
  history: HISTORY,
  messages: { echo: { schema: { type: 'object' }, handler: (_conn, data) => data } },
  emits: { msg: { type: 'object' } }
})
await app.listen({ port: 0, host: '127.0.0.1' })
const { port } = app.server.address()
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })

function wsMember (onMessage) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/bench`)
    ws.on('message', (raw) => onMessage(raw.toString()))
    ws.on('open', () => resolve({
      send: (text) => ws.send(text),
      close: () => ws.close()
    }))
  })
}

function sseMember (onMessage) {
  return new Promise((resolve) => {
    const req = http.get({ port, host: '127.0.0.1', path: '/bench', headers: { accept: 'text/event-stream' } }, (res) => {
      let buffer = ''
      let session
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        buffer += chunk
        let end
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const at = block.indexOf('data: ')
          if (at === -1) continue // a position-only event (the resume cursor)
          const data = block.slice(at + 6)
          if (session === undefined) {
            session = JSON.parse(data).data.session
            resolve({ post, close: () => req.destroy() })
          } else {
            onMessage(data)
          }
        }
      })
      function post (text) {
        return new Promise((resolve) => {
          const r = http.request({ port, host: '127.0.0.1', path: '/bench', method: 'POST', agent, headers: { 'realtime-session': session, 'content-type': 'application/json' } }, (res) => {
            let body = ''
            res.setEncoding('utf8')
            res.on('data', (c) => { body += c })
            res.on('end', () => { onMessage(body); resolve() })
          })
          r.end(text)
        })
      }
    })
  })
}

async function fanout (kind) {
  let delivered = 0
  let done
  const finished = new Promise((resolve) => { done = resolve })
  const expected = MEMBERS * BROADCASTS
  const members = []
  for (let i = 0; i < MEMBERS; i++) {
    const member = await (kind === 'ws' ? wsMember : sseMember)((text) => {
      if (text.startsWith('{"type":"msg"') && ++delivered === expected) done()
    })
    if (kind === 'ws') member.send('{"type":"room:join","data":{"room":"r"}}')
    else await member.post('{"type":"room:join","id":1,"data":{"room":"r"}}')
    members.push(member)
  }
  while (app.realtime.stats().members < MEMBERS) await new Promise((resolve) => setTimeout(resolve, 10))
  const body = { text: 'x'.repeat(64) }
  const t0 = performance.now()
  for (let i = 0; i < BROADCASTS; i++) {
    app.realtime.to('r').emit('msg', body)
    if (i % 10 === 9) await new Promise((resolve) => setImmediate(resolve))
  }
  await finished
  const ms = performance.now() - t0
  for (const member of members) member.close()
  while (app.realtime.stats().connections > 0) await new Promise((resolve) => setTimeout(resolve, 10))
  return { deliveriesPerSec: Math.round(expected / ms * 1000), ms: Math.round(ms) }
}

async function roundTrip (kind) {
  let answer
  const member = await (kind === 'ws' ? wsMember : sseMember)((text) => { if (text.startsWith('{"type":"ack"')) answer() })
  const times = []
  for (let i = 0; i < REQUESTS; i++) {
    const acked = new Promise((resolve) => { answer = resolve })
    const t0 = performance.now()
    const frame = `{"type":"echo","id":${i},"data":{"n":${i}}}`
    if (kind === 'ws') member.send(frame)
    else member.post(frame)
    await acked
    times.push(performance.now() - t0)
  }
  member.close()
  times.sort((a, b) => a - b)
  return { p50: times[Math.floor(REQUESTS / 2)].toFixed(3), p99: times[Math.floor(REQUESTS * 0.99)].toFixed(3) }
}

const results = {}
for (const kind of ['ws', 'sse']) {
  results[kind] = { fanout: await fanout(kind), roundTripMs: await roundTrip(kind) }
}
console.log(JSON.stringify({ node: process.version, history: HISTORY, members: MEMBERS, broadcasts: BROADCASTS, requests: REQUESTS, results }, null, 2))
agent.destroy()
await app.close()
