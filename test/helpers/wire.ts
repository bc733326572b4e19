// A raw protocol client for the recovery suites: every frame the server sends,
// parsed, in arrival order, so that a test can check the exact order on the
// wire (replay, ack, live) and the `session` message; and waiting on frames.
import { once } from 'node:events'
import WebSocket from 'ws'
import { within } from './wait.js'

export interface Frame {
  type: string
  id?: string | number
  room?: string
  seq?: number
  data?: any
  error?: { code: string, message: string }
}

export interface WireClient {
  readonly ws: WebSocket
  readonly frames: Frame[]
  /** The close code, once closed. */
  readonly closed: Promise<number>
  send (frame: object): void
  /** Sends a request with a fresh id (or `id`) and resolves with its reply frame (ack or error). */
  request (type: string, data: unknown, id?: string | number): Promise<Frame>
  /** Resolves with the first frame (from `from`, default: any not yet waited on) that `match` accepts. */
  next (match: (frame: Frame) => boolean, what?: string, timeout?: number): Promise<Frame>
  /** Room messages of `room` (and `type`), in arrival order. */
  room (room: string, type?: string): Frame[]
}

let ids = 0

export async function wireClient (url: string, options: { protocols?: string[], headers?: Record<string, string> } = {}): Promise<WireClient> {
  const ws = new WebSocket(url, options.protocols ?? [], { headers: options.headers })
  const frames: Frame[] = []
  const waiters = new Set<{ match: (frame: Frame) => boolean, resolve: (frame: Frame) => void }>()
  ws.on('message', (raw) => {
    const frame = JSON.parse(raw.toString()) as Frame
    frames.push(frame)
    for (const waiter of waiters) {
      if (waiter.match(frame)) {
        waiters.delete(waiter)
        waiter.resolve(frame)
      }
    }
  })
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  closed.catch(() => {})
  ws.on('error', () => {})
  await once(ws, 'open')
  const client: WireClient = {
    ws,
    frames,
    closed,
    send: (frame) => ws.send(JSON.stringify(frame)),
    async request (type, data, id = `r${++ids}`) {
      const reply = client.next((f) => (f.type === 'ack' || f.type === 'error') && f.id === id, `reply to ${type}`)
      client.send({ type, id, data })
      return await reply
    },
    next (match, what = 'frame', timeout = 10_000) {
      const found = frames.find(match)
      if (found !== undefined) return Promise.resolve(found)
      return within(new Promise<Frame>((resolve) => waiters.add({ match, resolve })), what, timeout)
    },
    room: (room, type) => frames.filter((f) => f.room === room && (type === undefined || f.type === type))
  }
  return client
}

/** Seqs of a list of room frames. */
export function seqs (frames: Frame[]): Array<number | undefined> {
  return frames.map((f) => f.seq)
}
