import t, { type Test } from 'tap'
import Fastify from 'fastify'
import type { AddressInfo } from 'node:net'
import type { WebSocket } from 'ws'
import realtime, { socketErrorHandler } from '../index.js'
import { upgrade, logCollector } from './helpers/upgrade.js'
import { frame, FrameReader, Opcode } from './helpers/frames.js'
import { until } from './helpers/wait.js'

async function build (t: Test) {
  const logs = logCollector()
  const app = Fastify({ logger: { level: 'info', stream: logs } })
  t.teardown(() => app.close())
  await app.register(realtime, { maxPayload: 1024 })
  const sockets: WebSocket[] = []
  app.realtime('/ws', { onOpen: (conn) => { sockets.push(conn.socket) }, messages: {} })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return { app, port, logs: logs.lines, sockets }
}

const parsed = (lines: string[]) => lines.map((line) => JSON.parse(line) as Record<string, unknown>)

// Each of these makes ws emit 'error' with the close code RFC 6455 asks for.
const cases: Array<[string, Buffer, number]> = [
  ['a frame over maxPayload', frame(Opcode.Text, Buffer.alloc(0), { length: 2 * 1024 * 1024 }), 1009],
  ['invalid UTF-8 in a text frame', frame(Opcode.Text, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 1007],
  ['a reserved opcode', frame(0x3, 'x'), 1002],
  ['an unmasked frame', frame(Opcode.Text, '{"type":"ping"}', { masked: false }), 1002],
  ['a control frame longer than 125 bytes', frame(Opcode.Ping, Buffer.alloc(200)), 1002],
  ['a continuation frame with nothing to continue', frame(Opcode.Continuation, 'x'), 1002]
]

for (const [what, bytes, code] of cases) {
  t.test(`${what}: the client gets ${code}, logged at info with the connection id, not as a server error`, async (t) => {
    const { app, port, logs } = await build(t)
    const { status, socket } = await upgrade(port, '/ws')
    t.equal(status, 101)
    const reader = new FrameReader(socket!)
    await until(() => app.realtime.stats().connections === 1, 'the connection')
    socket!.write(bytes)
    t.equal(await reader.closeCode(), code)
    socket!.destroy()
    await until(() => parsed(logs).some((l) => l.msg === 'real-time client sent an invalid frame; closing'), 'the log line')
    const line = parsed(logs).find((l) => l.msg === 'real-time client sent an invalid frame; closing') as Record<string, unknown>
    t.equal(line.level, 30)
    t.type(line.connId, 'string')
    t.equal(line.closeCode, code)
    t.match(line.code, /^WS_ERR_/)
    t.same(parsed(logs).filter((l) => (l.level as number) >= 50), [], 'nothing at error level')
    await until(() => app.realtime.stats().connections === 0, 'the close')
  })
}

t.test('any other socket error is a server fault: logged at error and the socket terminated', async (t) => {
  const { app, port, logs, sockets } = await build(t)
  const { socket } = await upgrade(port, '/ws')
  const reader = new FrameReader(socket!)
  await until(() => sockets.length === 1, 'the connection')
  sockets[0].emit('error', new Error('disk on fire'))
  t.equal(await reader.closeCode(), 1006, 'terminated, no close frame')
  const line = parsed(logs).find((l) => l.msg === 'real-time socket error') as Record<string, unknown>
  t.equal(line.level, 50)
  t.type(line.connId, 'string')
  await until(() => app.realtime.stats().connections === 0, 'the close')
})

t.test('before a socket is accepted the request logger is used', async (t) => {
  const logged: unknown[] = []
  let terminated = 0
  const request = { log: { error: (obj: unknown) => logged.push(obj) } }
  socketErrorHandler(new Error('early'), { terminate: () => { terminated++ } } as unknown as WebSocket, request as never)
  t.equal(logged.length, 1)
  t.equal(terminated, 1)
})

t.test('a peer error without a close code is still logged at info and left to ws', async (t) => {
  const logged: Array<[string, unknown]> = []
  let terminated = 0
  const log = { info: (obj: unknown) => logged.push(['info', obj]), error: (obj: unknown) => logged.push(['error', obj]) }
  const error = Object.assign(new Error('odd'), { code: 'WS_ERR_SOMETHING' })
  socketErrorHandler(error, { terminate: () => { terminated++ } } as unknown as WebSocket, { log } as never)
  t.match(logged, [['info', { code: 'WS_ERR_SOMETHING', closeCode: undefined }]])
  t.equal(terminated, 0)
})

t.test('after open, the upgrade\'s reply is let go: one error listener shared by every socket, no response on the TCP socket', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime)
  const opened: Array<{ socket: WebSocket, raw: { socket?: { _httpMessage?: unknown } } }> = []
  app.realtime('/ws', { onOpen: (conn) => { opened.push({ socket: conn.socket, raw: conn.request.raw as never }) }, messages: {} })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  await upgrade(port, '/ws')
  await upgrade(port, '/ws')
  await until(() => opened.length === 2, 'both connections')
  const [a, b] = opened
  t.equal(a.socket.listenerCount('error'), 1)
  t.equal(a.socket.listeners('error')[0], b.socket.listeners('error')[0], 'the same function for both sockets')
  t.equal(a.raw.socket?._httpMessage, null, 'the ServerResponse is detached from the TCP socket')
  t.equal(b.raw.socket?._httpMessage, null)
})

t.test('an app\'s own @fastify/websocket keeps its error listener', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const errors: Error[] = []
  await app.register((await import('@fastify/websocket')).default, { errorHandler: (error) => { errors.push(error) } })
  await app.register(realtime)
  const sockets: WebSocket[] = []
  app.realtime('/ws', { onOpen: (conn) => { sockets.push(conn.socket) }, messages: {} })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  await upgrade(port, '/ws')
  await until(() => sockets.length === 1, 'the connection')
  sockets[0].emit('error', new Error('to the app'))
  t.equal(errors.length, 1, 'the app\'s errorHandler got it')
})
