// Slowloris against the example's server timeouts (example/server.ts serverTimeouts, RELIABILITY.md):
// a half upgrade request that stalls, or headers dripped slower than the limit, are dropped in bounded
// time, and an open WebSocket is not subject to them. Scaled down here (same options, smaller values).
import t, { type Test } from 'tap'
import { connect as tcp, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { buildApp, serverTimeouts } from '../example/server.js'
import { upgrade } from './helpers/upgrade.js'
import { FrameReader, frame, Opcode } from './helpers/frames.js'

const IDLE = 300
const HEADERS = 800
const BOUND = 3000

async function listen (t: Test) {
  const app = await buildApp({
    connectionTimeout: IDLE,
    requestTimeout: HEADERS,
    http: { headersTimeout: HEADERS, connectionsCheckingInterval: 100 }
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as AddressInfo).port }
}

async function dropped (socket: Socket): Promise<{ ms: number, reply: string }> {
  const started = performance.now()
  let reply = ''
  socket.on('data', (chunk) => { reply += chunk.toString() })
  socket.on('error', () => {})
  await Promise.race([once(socket, 'close'), new Promise((resolve) => setTimeout(resolve, BOUND + 1000))])
  return { ms: performance.now() - started, reply }
}

t.test('the example sets server timeouts', async (t) => {
  t.equal(serverTimeouts.connectionTimeout, 10_000)
  t.equal(serverTimeouts.http.headersTimeout, 10_000)
  const app = await buildApp()
  t.teardown(() => app.close())
  t.equal(app.initialConfig.connectionTimeout, 10_000)
  t.equal(app.server.requestTimeout, 10_000)
  t.equal(app.server.headersTimeout, 10_000)
})

t.test('half an upgrade request that stalls is dropped', async (t) => {
  const { port } = await listen(t)
  const socket = tcp(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n')
  const { ms } = await dropped(socket)
  t.ok(ms < BOUND, `dropped after ${Math.round(ms)} ms`)
  t.ok(socket.destroyed)
})

t.test('headers dripped to stay under the idle timeout are cut off by headersTimeout', async (t) => {
  const { port } = await listen(t)
  const socket = tcp(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\n')
  let n = 0
  const drip = setInterval(() => { if (!socket.destroyed) socket.write(`X-Drip-${n++}: 1\r\n`) }, IDLE / 3)
  t.teardown(() => clearInterval(drip))
  const { ms, reply } = await dropped(socket)
  clearInterval(drip)
  t.ok(ms < BOUND, `dropped after ${Math.round(ms)} ms`)
  t.match(reply, /^HTTP\/1\.1 408/, 'answered 408 Request Timeout')
})

t.test('an open WebSocket idle past the timeouts stays open', async (t) => {
  const { app, port } = await listen(t)
  const token = app.jwt.sign({ sub: 'idle' })
  const { status, socket } = await upgrade(port, '/chat', { headers: { authorization: `Bearer ${token}`, origin: `http://127.0.0.1:${port}` } })
  t.equal(status, 101)
  const reader = new FrameReader(socket!)
  await new Promise((resolve) => setTimeout(resolve, HEADERS * 2))
  socket!.write(frame(Opcode.Text, '{"type":"ping","id":"still"}'))
  while (!reader.messages().some((m) => (m as { id?: string }).id === 'still')) {
    t.notOk(reader.ended, 'not dropped')
    if (reader.ended) break
    await once(socket!, 'data')
  }
  socket!.destroy()
})
