// What the parts use of a connection's `socket`, so that a transport other than
// ws can carry a connection: the pipeline listens for 'message' and 'close', the
// connection reads `readyState` and calls `close`, lib/frames.ts hands a frame to
// `writeFrame` (ws sockets take the fast path there instead), backpressure reads
// `bufferedAmount`, the heartbeat calls `ping` and listens for 'pong', and the
// hub's shutdown calls `terminate`. lib/sse-stream.ts is the second transport.
import type { FastifyRequest } from 'fastify'
import type { RoomPosition } from '../types/history.js'

/** ws's readyState values, which every transport reports. */
export const ReadyState = { Open: 1, Closing: 2, Closed: 3 } as const

/** A message framed once for any number of connections (lib/frames.ts's Frame, as a transport sees it). */
export interface FramedMessage {
  /** The payload: one serialized envelope. */
  readonly data: Buffer
  /** The transport's own encoding of it, made once by the first connection that needs it. */
  sse: Buffer | null
}

export interface Transport {
  /** `ReadyState.Open` until `close` or `terminate` (or the peer went away). */
  readonly readyState: number
  /** Bytes written and not yet taken by the kernel (or, over HTTP/2, by the peer's window). */
  readonly bufferedAmount: number
  /** Writes one message, already serialized (and framed once for ws) by the caller. */
  writeFrame (frame: FramedMessage): void
  /** Ends the connection with a code the peer is told about; 'close' follows once it is gone. */
  close (code: number, reason: string): void
  /** Ends the connection at once, telling the peer nothing. */
  terminate (): void
  /** A keep-alive the peer (or a proxy) sees; 'pong' is emitted when it is answered. */
  ping (): void
  on (event: 'message' | 'close' | 'pong', listener: (...args: any[]) => void): this
  /** A session token the connection presents as a resume (an SSE stream's `Last-Event-ID`); none on ws. */
  readonly resumeToken?: string | undefined
  /** The implicit `since` of a join of `room` (an SSE stream's `Last-Event-ID`), taken once; none on ws. */
  takeSince?: (room: string) => RoomPosition | null
  /** The connection's rooms or positions changed without a message written (a join, a leave): an SSE cursor moves. */
  moved?: () => void
}

/**
 * Whether a request to a real-time route is for the SSE transport: a stream (GET asking for
 * `text/event-stream`) or a POST (a message, or a ticket). Guards that run on upgrades run on these too.
 */
export function isSseRequest (request: FastifyRequest): boolean {
  return request.method === 'POST' || isStreamRequest(request)
}

/** A GET that asks for an event stream (an `EventSource`, or fetch with that `Accept`). */
export function isStreamRequest (request: FastifyRequest): boolean {
  return request.method === 'GET' && (request.headers.accept ?? '').includes('text/event-stream')
}
