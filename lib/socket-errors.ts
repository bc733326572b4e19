// Errors on an accepted socket: the errorHandler fastify-realtime gives
// @fastify/websocket. ws emits 'error' for a frame the peer got wrong (over
// maxPayload, invalid UTF-8, a bad opcode, an unmasked frame, ...) after it has
// already started the close handshake with the code RFC 6455 asks for (1009,
// 1007, 1002). @fastify/websocket's default handler logs those as server errors
// and terminate()s the socket, which can destroy it before that close frame
// leaves (the client sees 1006), and lets any client fill the error log. Here a
// peer's mistake is logged at info with the connection id and codes, the close
// handshake ws began is left to finish (bounded by `closeTimeout`), and only
// anything else is a server fault: logged at error, socket terminated.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { connectionOf } from './pipeline.js'

type WsHandler = (socket: WebSocket, request: FastifyRequest) => void

// ws marks every error the peer caused with a WS_ERR_* code.
const PEER_ERROR_PREFIX = 'WS_ERR_'

/** The close code ws chose for a peer error (kept on the error under ws's private `status-code` symbol). */
function closeCodeOf (error: object): number | undefined {
  for (const key of Object.getOwnPropertySymbols(error)) {
    if (key.description === 'status-code') return (error as Record<symbol, number>)[key]
  }
  return undefined
}

/** The @fastify/websocket `errorHandler`; pass it yourself when your app registers @fastify/websocket. */
export function socketErrorHandler (this: FastifyInstance | void, error: Error, socket: WebSocket, request: FastifyRequest): void {
  const log = connectionOf(socket)?.log ?? request.log
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && code.startsWith(PEER_ERROR_PREFIX)) {
    log.info({ code, closeCode: closeCodeOf(error), message: error.message }, 'real-time client sent an invalid frame; closing')
    return
  }
  log.error({ err: error }, 'real-time socket error')
  socket.terminate()
}

/**
 * For the sockets of the @fastify/websocket fastify-realtime registers itself (errorHandler: socketErrorHandler):
 * its per-socket `error` listener is a closure over Fastify's request and reply, which would keep the reply (and
 * the ServerResponse behind it) alive for the connection's life. It is swapped for one listener shared by every
 * socket that calls the same handler with the connection's request. Not used when the app registered
 * @fastify/websocket with its own errorHandler: that closure is the app's.
 */
export function withSharedErrorListener (accept: WsHandler): WsHandler {
  return function acceptWithSharedErrorListener (socket: WebSocket, request: FastifyRequest): void {
    const listeners = socket.listeners('error')
    // Exactly @fastify/websocket's closure; anything else (a future version adding its own) is left alone.
    /* c8 ignore next */
    if (listeners.length === 1) {
      socket.removeListener('error', listeners[0] as (...args: unknown[]) => void)
      socket.on('error', onSocketError)
    }
    accept(socket, request)
  }
}

function onSocketError (this: WebSocket, error: Error): void {
  // Installed just before accept, which tags the socket with its connection synchronously.
  // After onOpen (routes without auth) the fields of ConnectionRequest only: the handler reads its log.
  socketErrorHandler(error, this, (connectionOf(this) as NonNullable<ReturnType<typeof connectionOf>>).request as FastifyRequest)
}
