// The client's types, derived from a server route definition. Everything here
// is `import type`: no server code reaches a bundle.
import type { Static, TSchema } from 'typebox'
import type { EmitsOf, InboundOf, SchemaMap } from '../../types/route.js'
import type { RealtimeError } from './errors.js'

type OrAny<T> = [T] extends [never] ? SchemaMap : T

/** Client-to-server message names of route `R` to their payload types. */
export type InboundData<R> = { [K in keyof OrAny<InboundOf<R>> & string]: OrAny<InboundOf<R>>[K] extends TSchema ? Static<OrAny<InboundOf<R>>[K]> : unknown }

/** A member in a presence event. */
export interface PresenceMember { connId: string, userId: string | null }

/** Server-to-client message names of route `R` (its `emits`, plus presence events) to their payload types. */
export type EmitData<R> = { [K in keyof OrAny<EmitsOf<R>> & string]: OrAny<EmitsOf<R>>[K] extends TSchema ? Static<OrAny<EmitsOf<R>>[K]> : unknown } & {
  'presence:join': PresenceMember
  'presence:leave': PresenceMember
}

/**
 * The ack of message `K`: what its handler returns, awaited. `defineRoute` keeps each handler's return type (as
 * does a definition kept as a plain object literal); a definition annotated as `RouteDefinition<In, Emits>`
 * without its third parameter types every ack as `unknown`.
 */
export type AckOf<R, K> = R extends { messages: infer M }
  ? K extends keyof M
    ? M[K] extends { handler: (...args: any[]) => infer Ret } ? Awaited<Ret> : unknown
    : unknown
  : unknown

/** Where a received message came from: set for room messages. */
export interface MessageMeta {
  /** The room of a room message. */
  room?: string
  /** Its per-room sequence number. */
  seq?: number
}

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed'

/** Why a room may have missed messages: the app should refetch its state. */
export interface GapEvent {
  room: string
  /** `jump`: a seq skipped ahead; `epoch`: the room's history was reset; `unrecovered`: a rejoin could not replay. */
  reason: 'jump' | 'epoch' | 'unrecovered'
  /** The last seq processed before the gap, if any. */
  last: number | undefined
  /** The seq the room is at now, if known. */
  seq: number | undefined
}

export interface CloseEvent {
  code: number
  reason: string
  /** ms until the next attempt; undefined when the client will not reconnect. */
  reconnectIn: number | undefined
}

/** The client's own events (`client.events.on(name, fn)`). */
export interface ClientEvents {
  /** Every state change. */
  state: (state: ConnectionState, previous: ConnectionState) => void
  /** Open and ready: rooms re-joined, in-flight requests resent, outbox flushed. */
  open: (info: { recovered: boolean }) => void
  /** The socket closed (the client may reconnect: see `reconnectIn`). */
  close: (event: CloseEvent) => void
  /** A room may have missed messages. */
  gap: (event: GapEvent) => void
  /** The transport changed: `sse` when the WebSocket could not be opened, `websocket` again once it can. */
  transport: (transport: 'websocket' | 'sse') => void
  /** An error without a request to reject: an id-less error reply, a failed rejoin or token refresh. */
  error: (error: RealtimeError) => void
}

/** The minimal WebSocket this client needs: the browser's, Node 22's, or `ws`. */
export interface WebSocketLike {
  readonly readyState: number
  send (data: string): void
  close (code?: number, reason?: string): void
  onopen: ((event: any) => void) | null
  onmessage: ((event: any) => void) | null
  onclose: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
}

export type WebSocketConstructor = new (url: string, protocols?: string[]) => WebSocketLike

/** Request options. */
export interface RequestOptions {
  /** ms; rejects with `timeout`. Default: the client's `timeout`. */
  timeout?: number
  /** Rejects with `aborted` when it fires (the server may still process a request already sent). */
  signal?: AbortSignal
  /**
   * Resend after a reconnect even when no session was resumed (the server will process it again). With a
   * resumed session every request in flight is resent and processed once, whatever this says.
   */
  resend?: boolean
  /**
   * A W3C `traceparent` to send with the request (e.g. the active span's, from the page's OpenTelemetry): the server
   * continues that trace through the handler to every room delivery. Invalid values are ignored by the server.
   */
  traceparent?: string
}

/** Send options. */
export interface SendOptions {
  /** Dropped, not queued, when the socket is not open (cursor positions, typing indicators). */
  volatile?: boolean
  /** A W3C `traceparent` to send with the message (see `RequestOptions.traceparent`). */
  traceparent?: string
}
