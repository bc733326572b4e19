/** Options of `app.register(realtime, options)`. Every field is optional. */
export interface RealtimeOptions {
  /** Largest inbound frame in bytes; a bigger one closes the socket with 1009. Default 65536. */
  maxPayload?: number
  /** permessage-deflate; off by default (CPU, memory per socket, compression bombs). */
  perMessageDeflate?: boolean | Record<string, unknown>
  /** Milliseconds ws waits for the peer's close frame before destroying the socket. Default 3000. */
  closeTimeout?: number
  /** Milliseconds `app.close()` waits for close handshakes before terminating sockets. Default 2000. */
  shutdownGrace?: number
  /** Invalid frames a connection may send before it is closed with 4400. Default 10. */
  errorBudget?: number
  /** Validate outgoing messages against the route's `emits` schemas. Default false. */
  validateEmits?: boolean
  /** Extra `ws` server options, used only when fastify-realtime registers @fastify/websocket itself. */
  websocket?: Record<string, unknown>
}
