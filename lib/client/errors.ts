// The one error class of the client: a server's error reply or a client-side
// failure (timeout, abort, lost connection), with a code the app can switch on.
// Not made with @fastify/error like the server's: the client has no dependencies,
// and its codes are the wire's (`invalid_data`), not FRT_ERR_* codes.
import type { ErrorCode } from '../wire.js'

/** Codes the client itself gives to failures that never reached a server reply. */
export const ClientErrorCode = {
  /** No reply within the request's timeout. */
  Timeout: 'timeout',
  /** The request's AbortSignal fired. */
  Aborted: 'aborted',
  /** The socket dropped with the request in flight and it could not be resent; retriable. */
  ConnectionLost: 'connection_lost',
  /** The client was closed (by the app or by a close code that is not retried). */
  Closed: 'closed',
  /** The outbox was full while reconnecting. */
  OutboxFull: 'outbox_full',
  /** The token provider threw or rejected. */
  TokenProvider: 'token_provider'
} as const

/** Every code the client knows: the protocol's and its own; a handler's own codes are plain strings. */
export type KnownErrorCode =
  | typeof ErrorCode[keyof typeof ErrorCode]
  | typeof ClientErrorCode[keyof typeof ClientErrorCode]

// Worth retrying as is: the server was not at fault with the message itself.
const RETRIABLE = new Set<string>([
  ClientErrorCode.Timeout, ClientErrorCode.ConnectionLost, ClientErrorCode.OutboxFull, 'rate_limited', 'internal'
])

/** A failed request or a client-side failure. `code` is a known code or a handler's own. */
export class RealtimeError extends Error {
  /** The wire `error.code` (e.g. `invalid_data`), or a client code (e.g. `timeout`). */
  readonly code: KnownErrorCode | (string & {})
  /** The server's `details` (for `invalid_data`: `[{ path, message }]`). */
  readonly details: unknown
  /** With `rate_limited`: ms until a retry can succeed. */
  readonly retryAfter: number | undefined
  /** True when sending the same message again later may succeed. */
  readonly retriable: boolean

  constructor (code: string, message: string, details?: unknown, retryAfter?: number) {
    super(message)
    this.name = 'RealtimeError'
    this.code = code
    this.details = details
    this.retryAfter = retryAfter
    this.retriable = RETRIABLE.has(code)
  }
}

/** True for a `RealtimeError` (also across bundles, where `instanceof` may fail). */
export function isRealtimeError (value: unknown): value is RealtimeError {
  return value instanceof RealtimeError || (value as { name?: unknown } | null)?.name === 'RealtimeError'
}
