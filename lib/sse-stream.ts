// The SSE transport: one `text/event-stream` response carries the server's
// messages to a client, and the client's messages arrive as POSTs that
// lib/sse.ts hands to `deliver`. To the pipeline it looks like a ws socket
// (lib/transport.ts): 'message', 'close' and 'pong' events, readyState, close,
// terminate, ping, bufferedAmount. A POSTed request's ack or error is answered in
// that POST's response instead of on the stream.
//
// Each message is one event, `data: <envelope>`, encoded once for every stream
// (cached on its Frame): room messages carry no id, so that fan-out writes the
// same bytes to every member. Instead, on a route with history or sessions, a
// stream that was written to is put on one shared list, and once the code
// running now is done (one microtask for all of them) each writes its resume
// cursor (lib/sse-cursor.ts) as a position-only event, `id: <cursor>`, when it
// changed: a browser's EventSource sends it back as `Last-Event-ID` when it
// reconnects by itself. Keep-alives are comment lines, and the close code is
// the stream's last event.
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import type { Http2ServerResponse } from 'node:http2'
import { FRT_ERR_SSE_BUSY, FRT_ERR_SSE_DUPLICATE } from './errors.js'
import { CloseCode, MessageType } from './protocol.js'
import { ReadyState, type FramedMessage, type Transport } from './transport.js'
import { takeSince, type StreamResume } from './sse-cursor.js'
import type { RoomPosition } from '../types/history.js'

export type SseResponse = ServerResponse | Http2ServerResponse
// What is used of either response.
interface Writable {
  write (chunk: string | Buffer): boolean
  end (): void
}

/** Requests one stream may have waiting for their reply at once; past it a POST gets 429. */
export const MAX_WAITING = 64

// 144 random bits, as the resume tokens of lib/recovery-ids.ts: 24 base64url characters.
const SESSION_BYTES = 18
// The replies a POST waits for: acks, errors, and the pong of a ping.
const REPLY = /^\{"type":"(?:ack|error|pong)"/
const PING = Buffer.from(':\n\n')
const DATA = Buffer.from('data: ')
const END = Buffer.from('\n\n')
const NEWLINE = 10

/** A stream's resume cursor as it stands now (lib/sse.ts reads the connection's rooms); null: none to write. */
export type CursorSource = (stream: SseStream) => string | null

/** The reply key of a request id: numbers and strings apart (1 and "1" are two ids). */
function keyOf (id: unknown): string | undefined {
  if (typeof id === 'number') return 'n' + id
  return typeof id === 'string' ? 's' + id : undefined
}

/** The reply key of a POSTed message, or undefined when it has no usable id (or is not JSON: the pipeline says so). */
export function requestKey (body: Buffer): string | undefined {
  try {
    return keyOf((JSON.parse(body.toString()) as { id?: unknown } | null)?.id)
  } catch {
    return undefined
  }
}

/** The SSE event of a message, made once per Frame. */
function eventOf (frame: FramedMessage): Buffer {
  if (frame.sse !== null) return frame.sse
  const data = frame.data
  // Our envelopes are JSON and never hold a raw line break; a raw `conn.send` might.
  const body = data.includes(NEWLINE) ? Buffer.from(data.toString().replace(/\r?\n|\r/g, '\ndata: ')) : data
  frame.sse = Buffer.concat([DATA, body, END])
  return frame.sse
}

type Waiter = (reply: string | null) => void

export class SseStream extends EventEmitter implements Transport {
  /** The session id the client's POSTs name; unguessable. */
  readonly sessionId = randomBytes(SESSION_BYTES).toString('base64url')
  /** The user key the stream was opened for (lib/auth.ts); POSTs must be the same user's. */
  readonly userKey: string | undefined
  /** Which route's pipeline the stream belongs to: a POST to another route does not reach it. */
  readonly owner: object
  /** The cursor of the request's `Last-Event-ID` (lib/sse-cursor.ts); null without a usable one. */
  readonly resume: StreamResume | null
  /** The room positions of the last cursor written (a room catching up keeps its last one). */
  positions = new Map<string, RoomPosition | null>()
  readyState: number = ReadyState.Open
  readonly #res: SseResponse & Writable
  readonly #closeTimeout: number
  readonly #sessions: Map<string, SseStream>
  readonly #waiting = new Map<string, Waiter>()
  /** The POST being dispatched right now: a reply written meanwhile is its answer. */
  #capture: { key: string | undefined, reply: string | null } | null = null
  #code: number = CloseCode.Abnormal
  #reason = ''
  #timer: NodeJS.Timeout | undefined
  readonly #cursor: CursorSource | null
  /** On the shared list of streams whose cursor is looked at after this tick. */
  #dirty = false
  #written = ''

  constructor (res: SseResponse, sessions: Map<string, SseStream>, owner: object, userKey: string | undefined,
    resume: StreamResume | null, cursor: CursorSource | null, closeTimeout: number) {
    super()
    this.#res = res as SseResponse & Writable
    this.#sessions = sessions
    this.#closeTimeout = closeTimeout
    this.owner = owner
    this.userKey = userKey
    this.resume = resume
    this.#cursor = cursor
    sessions.set(this.sessionId, this)
    res.on('close', onResponseClose.bind(this))
    // A write to a reset HTTP/2 stream errs; 'close' follows and says the rest.
    res.on('error', ignore)
  }

  get bufferedAmount (): number {
    const res = this.#res as { stream?: { writableLength: number }, writableLength: number }
    // HTTP/1.1: what the response and its socket hold; HTTP/2: what the stream holds behind its window.
    return res.stream !== undefined ? res.stream.writableLength : res.writableLength
  }

  /** Writes bytes that are already an SSE event (the first one, the last one). */
  writeEvent (type: string, data: unknown): void {
    this.#res.write('data: ' + JSON.stringify({ type, data }) + '\n\n')
  }

  writeFrame (frame: FramedMessage): void {
    // Any message may move the cursor: a room message, a replay, a join's ack (even one a POST answers), a session.
    if (this.#cursor !== null && !this.#dirty) this.moved()
    if ((this.#capture !== null || this.#waiting.size !== 0) && this.#answer(frame.data)) return
    this.#res.write(eventOf(frame))
  }

  /** The connection's positions may have moved (a message, a join, a leave): the cursor is looked at after this tick. */
  moved (): void {
    if (this.#cursor === null || this.#dirty) return
    this.#dirty = true
    if (dirty.push(this) === 1) queueMicrotask(flushCursors)
  }

  /** The session token of the request's cursor, presented as a resume (lib/pipeline.ts). */
  get resumeToken (): string | undefined {
    return this.resume?.token
  }

  /** The implicit `since` of a join of `room`: its position in the request's cursor, taken once. */
  takeSince (room: string): RoomPosition | null {
    return this.resume === null ? null : takeSince(this.resume, room)
  }

  /** Writes the cursor as a position-only event when it changed since the last one (once per tick at most). */
  writeCursor (): void {
    this.#dirty = false
    if (this.readyState !== ReadyState.Open) return
    const cursor = (this.#cursor as CursorSource)(this)
    if (cursor === null || cursor === this.#written) return
    this.#written = cursor
    this.#res.write('id: ' + cursor + '\n\n')
  }

  /**
   * A POSTed message, dispatched as a ws frame would be. Returns its reply when it came at once, a
   * promise of it (null: the stream closed first) for a request answered later, or null when there is
   * nothing to wait for (no id).
   */
  deliver (body: Buffer): string | Promise<string | null> | null {
    const key = requestKey(body)
    if (key !== undefined) {
      if (this.#waiting.has(key)) throw new FRT_ERR_SSE_DUPLICATE()
      if (this.#waiting.size >= MAX_WAITING) throw new FRT_ERR_SSE_BUSY(MAX_WAITING)
    }
    const capture = { key, reply: null as string | null }
    this.#capture = capture
    try {
      this.emit('message', body, false)
    } finally {
      this.#capture = null
    }
    if (capture.reply !== null) return capture.reply
    if (key === undefined || this.readyState !== ReadyState.Open) return null
    return new Promise((resolve) => this.#waiting.set(key, resolve))
  }

  close (code: number, reason: string): void {
    if (this.readyState !== ReadyState.Open) return
    this.readyState = ReadyState.Closing
    this.#code = code
    this.#reason = reason
    this.writeEvent(MessageType.SseClose, { code, reason })
    this.#res.end()
    // As ws's closeTimeout: a client that reads nothing more would hold the backlog (and its slot) for ever.
    this.#timer = setTimeout(destroy, this.#closeTimeout, this.#res).unref()
  }

  terminate (): void {
    if (this.readyState === ReadyState.Closed) return
    this.readyState = ReadyState.Closing
    destroy(this.#res)
  }

  /** A comment line: proxies see traffic. Its write succeeding is the only answer an SSE stream can give. */
  ping (): void {
    if (this.readyState !== ReadyState.Open) return
    this.#res.write(PING)
    this.emit('pong')
  }

  /** The response is gone: every POST still waiting learns it, then the pipeline does. */
  closed (): void {
    this.readyState = ReadyState.Closed
    clearTimeout(this.#timer)
    this.#sessions.delete(this.sessionId)
    for (const waiter of this.#waiting.values()) waiter(null)
    this.#waiting.clear()
    this.emit('close', this.#code, Buffer.from(this.#reason))
  }

  /** Whether the message is a reply a POST waits for; if so it is given to that POST. */
  #answer (data: Buffer): boolean {
    const text = data.toString()
    if (!REPLY.test(text)) return false
    const key = keyOf((JSON.parse(text) as { id?: unknown }).id)
    const capture = this.#capture
    if (capture !== null && capture.reply === null && (key === undefined || key === capture.key)) {
      capture.reply = text
      return true
    }
    const waiter = key === undefined ? undefined : this.#waiting.get(key)
    if (waiter === undefined) return false
    this.#waiting.delete(key as string)
    waiter(text)
    return true
  }
}

// The streams written to in this tick whose cursor may have moved: one array and one microtask for all.
const dirty: SseStream[] = []

function flushCursors (): void {
  // Taken off first: a stream written to again meanwhile starts the next list (and its microtask).
  const streams = dirty.splice(0)
  for (const stream of streams) stream.writeCursor()
}

function onResponseClose (this: SseStream): void {
  this.closed()
}

function destroy (res: SseResponse): void {
  (res as { destroy?: () => void }).destroy?.()
  ;(res as { stream?: { destroy: () => void } }).stream?.destroy()
}

function ignore (): void {}
