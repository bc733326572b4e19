// The send fast path. A text frame is built once, header and payload in one
// Buffer, and that same Buffer is written straight to each member's TCP socket,
// past ws's Sender. Each socket written this way stays corked until the code
// running now is done (one microtask uncorks them all), so the frames a client
// gets from one batch of work (say, every message read from one TCP chunk) leave
// in one write system call, which is most of what a delivery costs.
//
// This is the one file that knows ws's internals (ws 8): it writes directly
// only when ws itself would write at once (nothing queued behind a compression
// or a Blob read, no fragmented message open, no permessage-deflate), so the
// order of frames on the wire is the order of the calls, whichever path each took.
// A socket that is not ws's (no Sender: the SSE stream of lib/sse-stream.ts) is
// handed the frame through the Transport interface, one branch before all that.
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import type { Backpressure, WatchedConnection } from './backpressure.js'
import type { Transport } from './transport.js'

/** What the fast path needs of a connection: its ws socket and the slow-consumer policy it answers to. */
export interface FrameTarget extends WatchedConnection {
  readonly socket: WebSocket
  readonly backpressure: Backpressure
}

interface SenderState {
  /** 0 when ws writes at once; compressing or reading a Blob otherwise. */
  _state: number
  /** Frames ws holds back until the current compression (or Blob read) ends. */
  _queue: unknown[]
  /** False between the fragments of a message sent with `fin: false`. */
  _firstFragment: boolean
}

interface WsState {
  _socket: Socket
  // Undefined on a socket that is not ws's (lib/transport.ts).
  _sender: SenderState | undefined
  _extensions: Record<string, unknown>
}

// RFC 6455 5.2: FIN and the text opcode; the payload length in 7 bits, or 126
// and 16 bits, or 127 and 64 bits. Server frames are not masked.
const FIN_TEXT = 0x81

/** A text message framed once, for any number of sockets. */
export class Frame {
  /** Header and payload, as written to the TCP socket. */
  readonly wire: Buffer
  /** The same message as an SSE event, made once by lib/sse-stream.ts for every stream it goes to. */
  sse: Buffer | null = null
  readonly #header: number

  constructor (payload: string | Buffer) {
    const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
    const header = length < 126 ? 2 : length < 65536 ? 4 : 10
    const wire = Buffer.allocUnsafe(header + length)
    wire[0] = FIN_TEXT
    if (header === 2) {
      wire[1] = length
    } else if (header === 4) {
      wire[1] = 126
      wire.writeUInt16BE(length, 2)
    } else {
      wire[1] = 127
      wire.writeUInt32BE(Math.floor(length / 0x100000000), 2)
      wire.writeUInt32BE(length >>> 0, 6)
    }
    if (typeof payload === 'string') wire.write(payload, header)
    else payload.copy(wire, header)
    this.wire = wire
    this.#header = header
  }

  /** The payload alone, for sockets that go through ws (permessage-deflate, a busy Sender). */
  get data (): Buffer {
    return this.wire.subarray(this.#header)
  }
}

// The connections whose sockets this file corked since the last flush: one
// array and one queued flush for all of them, never a closure per socket.
const corked: FrameTarget[] = []
let flushScheduled = false

/**
 * Writes the frame to the connection's socket, directly when ws would write it
 * at once anyway, else through ws. The caller has checked that the socket is open.
 */
export function writeFrame (conn: FrameTarget, frame: Frame): void {
  const ws = conn.socket as unknown as WsState
  const sender = ws._sender
  if (sender === undefined) {
    // Another transport: it frames and buffers on its own; judged after each write, as through ws.
    (conn.socket as unknown as Transport).writeFrame(frame)
    conn.backpressure.check(conn)
    return
  }
  if (sender._state !== 0 || sender._queue.length !== 0 || !sender._firstFragment ||
    ws._extensions['permessage-deflate'] !== undefined) {
    // ws queues it behind what it holds, or compresses it: the order is kept by ws.
    conn.socket.send(frame.data, TEXT)
    conn.backpressure.check(conn)
    return
  }
  const socket = ws._socket
  const backpressure = conn.backpressure
  if (conn.slowSince !== 0) {
    // Behind already: its bytes wait in the stream's buffer whatever we do, so
    // corking saves nothing; it is judged on every frame, as through ws.
    socket.write(frame.wire)
    backpressure.check(conn)
    return
  }
  // Corked already: by this file since the last flush (or by its owner, who
  // will uncork it); either way the frame joins the same write.
  if (socket.writableCorked === 0) {
    socket.cork()
    corked.push(conn)
    if (!flushScheduled) {
      flushScheduled = true
      queueMicrotask(flush)
    }
  }
  socket.write(frame.wire)
  // Judged at the flush, when the buffer holds only what the kernel did not
  // take (bytes waiting corked are no sign of slowness); but closed at once
  // past the hard limit, corked bytes included: that bounds memory.
  if (conn.socket.bufferedAmount > backpressure.hardLimit) backpressure.check(conn)
}

const TEXT = { binary: false }

function flush (): void {
  flushScheduled = false
  // Nothing here should write, but a frame written during the loop (say, from a
  // logger) is still uncorked: the length is read each turn.
  for (let i = 0; i < corked.length; i++) {
    const conn = corked[i]
    ;(conn.socket as unknown as WsState)._socket.uncork()
    conn.backpressure.check(conn)
  }
  corked.length = 0
}
