// Per-message authorization: the route's `authorize(conn, type, data)`, then
// the message's own `authorize(conn, data)`, after the data passed its schema
// and before the handler. Either may be async. Only `true` lets a message
// through (a forgotten return refuses rather than allows); a refusal is a
// `forbidden` error reply, and more than `auth.forbiddenBudget` of them close
// the socket with 4403. While an async check runs, the connection's later
// frames wait in `conn.pending`, so messages still reach handlers in order.
import { CloseCode, ErrorCode, type InboundMessage } from './protocol.js'
import type { RealtimeConnection } from './connection.js'
import type { CompiledMessage, CompiledRoute } from './route.js'

export type RouteAuthorize = (conn: RealtimeConnection, type: string, data: unknown) => unknown
export type MessageAuthorize = (conn: RealtimeConnection, data: unknown) => unknown

export function authorizeThenInvoke (route: CompiledRoute, conn: RealtimeConnection, message: CompiledMessage, msg: InboundMessage): void {
  let verdict: unknown
  try {
    verdict = check(route.definition.authorize as RouteAuthorize | undefined, message.authorize, conn, msg)
  } catch (err) {
    route.handlerError(conn, err, msg)
    return
  }
  if (!isThenable(verdict)) {
    decide(route, conn, message, msg, verdict)
    return
  }
  conn.pending = []
  verdict.then((value) => {
    decide(route, conn, message, msg, value)
    route.flushPending(conn)
  }, (err: unknown) => {
    route.handlerError(conn, err, msg)
    route.flushPending(conn)
  })
}

function check (routeCheck: RouteAuthorize | undefined, messageCheck: MessageAuthorize | undefined,
  conn: RealtimeConnection, msg: InboundMessage): unknown {
  if (routeCheck === undefined) return messageCheck === undefined ? true : messageCheck(conn, msg.data)
  const first = routeCheck(conn, msg.type, msg.data)
  if (messageCheck === undefined) return first
  if (isThenable(first)) return first.then((ok) => ok === true ? messageCheck(conn, msg.data) : ok)
  return first === true ? messageCheck(conn, msg.data) : first
}

function decide (route: CompiledRoute, conn: RealtimeConnection, message: CompiledMessage, msg: InboundMessage, verdict: unknown): void {
  if (conn.closed) return
  if (verdict === true) {
    route.invoke(conn, message, msg)
    return
  }
  conn.error({ code: ErrorCode.Forbidden, message: `Not allowed to send "${msg.type.slice(0, 64)}"` }, msg.id)
  if (++conn.forbidden > route.options.auth.forbiddenBudget) {
    conn.close(CloseCode.Forbidden, 'Too many forbidden messages')
  }
}

function isThenable (value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function'
}
