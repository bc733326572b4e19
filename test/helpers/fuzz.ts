// The seeded fuzzer of a real-time route (issue 11): hostile frames over real sockets against a route with
// auth, rooms, presence and limits. Used by test/fuzz.test.ts (a short run in `npm test`) and by
// scripts/fuzz.mjs (the long run). The same seed sends the same bytes.
//
// Each session upgrades a raw TCP socket (with a valid token, or a bad one: 401), writes a burst of
// frames of one kind, then a closing `ping` request with id "end". Its verdict is one of:
//   answered  the server replied to "end" (every frame before it was taken or refused in order)
//   closed    the server sent a close frame: the code must be one PROTOCOL.md documents
//   refused   the upgrade got an HTTP status (401 for a bad token)
//   stalled   (random bytes only) a frame header announced more payload than was sent, so the server is
//             still reading it: the fuzzer ends its side, and the server must close the socket
import Fastify, { type FastifyInstance } from 'fastify'
import jwt from '@fastify/jwt'
import Type from 'typebox'
import type { AddressInfo } from 'node:net'
import realtime from '../../index.js'
import { upgrade } from './upgrade.js'
import { frame, FrameReader, Opcode } from './frames.js'

/** Close codes PROTOCOL.md documents. */
export const DOCUMENTED_CLOSE_CODES = new Set([1000, 1001, 1002, 1003, 1007, 1009, 1011, 4008, 4400, 4401, 4403, 4408, 4429, 4500])

export interface FuzzResult {
  seed: number
  sessions: number
  frames: number
  verdicts: Record<string, number>
  closeCodes: Record<string, number>
  /** Sessions whose close code is not documented, or that got no verdict: must be empty. */
  failures: string[]
  unhandledRejections: number
  /** After the run: must be zeros. */
  leftover: { connections: number, rooms: number, members: number }
}

/** mulberry32: small, fast, good enough to choose frames; reproducible from the seed. */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const SECRET = 'fuzz-secret-fuzz-secret-fuzz-secret!'
const MAX_PAYLOAD = 16 * 1024

export async function buildFuzzApp (): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(jwt, { secret: SECRET, sign: { algorithm: 'HS256' }, verify: { algorithms: ['HS256'] } })
  await app.register(realtime, {
    maxPayload: MAX_PAYLOAD,
    errorBudget: 50,
    rateLimit: { rate: 2000, burst: 400, budget: 5 },
    heartbeat: { interval: 5000, timeout: 5000 }
  })
  const Room = Type.String({ maxLength: 64 })
  app.realtime('/fuzz', {
    auth: 'handshake',
    joinable: true,
    presence: true,
    rateLimit: { shared: { key: 'user', rate: 5000, burst: 1000 } },
    authorize: (_conn, type) => type !== 'forbidden',
    messages: {
      say: {
        schema: Type.Object({ room: Room, text: Type.String({ maxLength: 500 }) }),
        handler: (conn, data) => {
          if (conn.rooms.has(data.room)) conn.to(data.room).emit('said', { text: data.text })
          return true
        }
      },
      enter: { schema: Type.Object({ room: Room }), handler: async (conn, data) => { await conn.join(data.room); return null } },
      echo: { schema: Type.Unknown(), handler: (_conn, data) => data },
      nothing: { schema: Type.Null(), handler: () => null },
      forbidden: { schema: Type.Unknown(), handler: () => 'never' },
      fail: { schema: Type.Unknown(), handler: () => { throw new Error('handler failure (fuzz)') } }
    },
    emits: { said: Type.Object({ text: Type.String() }) }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app
}

const TYPES = ['say', 'enter', 'echo', 'nothing', 'forbidden', 'fail', 'ping', 'auth', 'room:join', 'room:leave', 'pong', 'ack', 'error', '', 'x'.repeat(300), '__proto__', 'constructor']
const ODD = ['\u0000', '\uFFFF', '\uD800', '\uDFFF', '\u202E', '\u200B', '𝕏', '👩‍👩‍👧', '\\u0000', 'é', '\u2028', '"', '\\']

function pick<T> (rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]
}

function oddString (rand: () => number, max: number): string {
  let s = ''
  const n = Math.floor(rand() * max)
  for (let i = 0; i < n; i++) s += rand() < 0.3 ? pick(rand, ODD) : String.fromCharCode(32 + Math.floor(rand() * 90))
  return s
}

function value (rand: () => number, depth: number): unknown {
  const r = rand()
  if (depth > 3 || r < 0.25) return pick(rand, [null, true, false, 0, -0, 1e308, -1e308, 5e-324, 2 ** 53 + 1, 1.5, 'lobby', oddString(rand, 20)])
  if (r < 0.5) return Array.from({ length: Math.floor(rand() * 4) }, () => value(rand, depth + 1))
  const o: Record<string, unknown> = {}
  const n = Math.floor(rand() * 4)
  for (let i = 0; i < n; i++) o[pick(rand, ['room', 'text', 'token', 'data', 'id', 'type', oddString(rand, 8)])] = value(rand, depth + 1)
  return o
}

/** One JSON-ish text payload: valid envelopes, mutated ones, deep nesting, huge numbers and strings. */
function envelope (rand: () => number, id: number): string {
  const r = rand()
  if (r < 0.05) return '['.repeat(1 + Math.floor(rand() * 5000)) + ']'.repeat(Math.floor(rand() * 5000))
  if (r < 0.1) return '{"type":"echo","data":' + '{"a":'.repeat(1000) + '1' + '}'.repeat(1000) + ',"id":' + id + '}'
  if (r < 0.13) return '{"type":"echo","data":' + '9'.repeat(1 + Math.floor(rand() * 5000)) + ',"id":' + id + '}'
  if (r < 0.16) return JSON.stringify({ type: 'say', data: { room: 'lobby', text: 'x'.repeat(Math.floor(rand() * 20000)) }, id })
  if (r < 0.2) return oddString(rand, 200)
  const msg: Record<string, unknown> = { type: pick(rand, TYPES), data: value(rand, 0) }
  if (rand() < 0.7) msg.id = rand() < 0.8 ? id : value(rand, 3)
  if (msg.type === 'enter' || msg.type === 'room:join' || msg.type === 'room:leave') msg.data = { room: pick(rand, ['lobby', 'kitchen', 'a/b', '', 'bad room', 'x'.repeat(200)]) }
  if (msg.type === 'say') msg.data = { room: pick(rand, ['lobby', 'kitchen']), text: oddString(rand, 50) }
  let text = JSON.stringify(msg)
  // Mutate a few bytes of a valid envelope.
  if (rand() < 0.3) {
    const chars = [...text]
    for (let i = 0; i < 1 + Math.floor(rand() * 3); i++) chars[Math.floor(rand() * chars.length)] = String.fromCharCode(Math.floor(rand() * 128))
    text = chars.join('')
  }
  return text
}

type Kind = 'json' | 'protocol' | 'fragments' | 'random'

/** A burst of frames of one kind, as bytes, and how many frames it is. */
function burst (rand: () => number, kind: Kind, size: number): { bytes: Buffer[], frames: number } {
  const bytes: Buffer[] = []
  if (kind === 'json') {
    for (let i = 0; i < size; i++) bytes.push(frame(Opcode.Text, envelope(rand, i)))
    return { bytes, frames: size }
  }
  if (kind === 'fragments') {
    // A valid message split into fragments with control frames between them, some with bad lengths.
    const text = Buffer.from(JSON.stringify({ type: 'echo', data: oddString(rand, 300), id: 'frag' }))
    const cut = Math.max(1, Math.floor(rand() * text.length))
    bytes.push(frame(Opcode.Text, text.subarray(0, cut), { fin: false }))
    const control = rand()
    if (control < 0.4) bytes.push(frame(Opcode.Ping, 'p'))
    else if (control < 0.6) bytes.push(frame(Opcode.Ping, Buffer.alloc(126 + Math.floor(rand() * 1000)))) // > 125: 1002
    else if (control < 0.7) bytes.push(frame(Opcode.Ping, 'p', { fin: false })) // fragmented control: 1002
    else if (control < 0.8) bytes.push(frame(Opcode.Text, 'x')) // a new message inside a fragmented one: 1002
    bytes.push(frame(Opcode.Continuation, text.subarray(cut)))
    return { bytes, frames: bytes.length }
  }
  if (kind === 'protocol') {
    const bad = [
      () => frame(3 + Math.floor(rand() * 5), 'x'),
      () => frame(11 + Math.floor(rand() * 5), 'x'),
      () => frame(Opcode.Text, '{"type":"ping"}', { masked: false }),
      () => frame(Opcode.Text, Buffer.from([0x22, 0xc3, 0x28, 0x22])),
      () => frame(Opcode.Text, Buffer.from([0xed, 0xa0, 0x80])),
      () => frame(Opcode.Text, '{}', { rsv: 0x40 }),
      () => frame(Opcode.Continuation, 'x'),
      () => frame(Opcode.Close, Buffer.from([0x03])),
      () => frame(Opcode.Close, Buffer.from([0x03, 0xe7])), // 999: invalid close code
      () => frame(Opcode.Binary, 'bin'),
      () => frame(Opcode.Text, Buffer.alloc(0), { length: MAX_PAYLOAD + 1 + Math.floor(rand() * 1e9) }),
      () => frame(Opcode.Pong, 'unsolicited'),
      () => frame(Opcode.Ping, 'ping')
    ]
    for (let i = 0; i < size; i++) bytes.push(rand() < 0.5 ? frame(Opcode.Text, envelope(rand, i)) : pick(rand, bad)())
    return { bytes, frames: size }
  }
  const junk = Buffer.alloc(1 + Math.floor(rand() * 256))
  for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(rand() * 256)
  bytes.push(junk)
  return { bytes, frames: 1 }
}

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

async function session (port: number, token: string, rand: () => number, result: FuzzResult): Promise<void> {
  const kind = pick(rand, ['json', 'json', 'json', 'protocol', 'fragments', 'random'] as const)
  const badToken = rand() < 0.03
  const res = await upgrade(port, '/fuzz', { headers: { authorization: `Bearer ${badToken ? token.slice(0, -2) + 'xx' : token}` } })
  result.sessions++
  if (res.status !== 101) {
    result.verdicts.refused = (result.verdicts.refused ?? 0) + 1
    if (!badToken || res.status !== 401) result.failures.push(`upgrade refused with ${res.status}`)
    return
  }
  const socket = res.socket!
  const reader = new FrameReader(socket)
  const { bytes, frames } = burst(rand, kind, 5 + Math.floor(rand() * 40))
  result.frames += frames + 1
  for (const chunk of bytes) socket.write(chunk)
  socket.write(frame(Opcode.Text, '{"type":"ping","id":"end"}'))
  const verdict = await Promise.race([
    (async () => {
      for (;;) {
        if (reader.messages().some((m) => (m as { id?: unknown }).id === 'end')) return 'answered'
        if (reader.frames.some((f) => f.opcode === Opcode.Close) || reader.ended) return 'closed'
        await new Promise<void>((resolve) => socket.once('data', () => resolve()).once('close', () => resolve()))
      }
    })(),
    wait(kind === 'random' ? 300 : 5000).then(() => 'timeout')
  ])
  if (verdict === 'closed') {
    const code = await reader.closeCode()
    result.closeCodes[code] = (result.closeCodes[code] ?? 0) + 1
    if (!DOCUMENTED_CLOSE_CODES.has(code)) result.failures.push(`${kind}: close code ${code}`)
  } else if (verdict === 'timeout') {
    if (kind !== 'random') result.failures.push(`${kind}: no answer and no close within 5 s`)
    socket.end()
    const code = await Promise.race([reader.closeCode(), wait(5000).then(() => -1)])
    if (code === -1) result.failures.push('random: the server did not close a stalled socket after our end')
  }
  result.verdicts[verdict === 'timeout' ? 'stalled' : verdict] = (result.verdicts[verdict === 'timeout' ? 'stalled' : verdict] ?? 0) + 1
  socket.destroy()
}

/** Runs sessions until `frames` frames were sent, `concurrency` at a time. */
export async function runFuzz (options: { seed: number, frames: number, concurrency?: number, app?: FastifyInstance, onProgress?: (r: FuzzResult) => void }): Promise<FuzzResult> {
  const app = options.app ?? await buildFuzzApp()
  const port = (app.server.address() as AddressInfo).port
  const rand = prng(options.seed)
  const result: FuzzResult = { seed: options.seed, sessions: 0, frames: 0, verdicts: {}, closeCodes: {}, failures: [], unhandledRejections: 0, leftover: { connections: 0, rooms: 0, members: 0 } }
  const onRejection = (): void => { result.unhandledRejections++ }
  process.on('unhandledRejection', onRejection)
  const tokens = Array.from({ length: 8 }, (_, i) => app.jwt.sign({ sub: `user${i}` }))
  try {
    const workers = Array.from({ length: options.concurrency ?? 8 }, async () => {
      while (result.frames < options.frames) {
        await session(port, pick(rand, tokens), rand, result)
        if (result.sessions % 200 === 0) options.onProgress?.(result)
      }
    })
    await Promise.all(workers)
    // Every socket closes (ours are destroyed): wait for the server to see it.
    for (let i = 0; i < 500 && app.realtime.stats().connections > 0; i++) await wait(10)
    const stats = app.realtime.stats()
    result.leftover = { connections: stats.connections, rooms: stats.rooms, members: stats.members }
  } finally {
    process.off('unhandledRejection', onRejection)
    if (options.app === undefined) await app.close()
  }
  return result
}
