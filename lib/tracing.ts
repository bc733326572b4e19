// Per-message tracing on node:diagnostics_channel, as Fastify and undici publish theirs: one TracingChannel,
// `fastify-realtime:message`, whose events are published only when someone subscribed. With no subscriber
// and no metrics, the pipeline's #invoke takes its plain path and this file costs nothing per message.
import dc from 'node:diagnostics_channel'
import type { ConnectionRequest } from '../types/route.js'
import type { Recorder, RecordedRoute } from './recorder.js'

export { validTraceparent } from './traceparent.js'

/** The context object of one handled message, the same object through start, end, asyncStart/End and error. */
export interface MessageContext {
  /** The route's path. */
  route: string
  type: string
  connId: string
  /** The request id, when the message is a request. */
  messageId: string | number | undefined
  /** The envelope's W3C `traceparent`, when it carried a valid one. */
  traceparent: string | undefined
  /**
   * The connection's upgrade request: a subscriber links the message's span to the upgrade's trace through
   * it (its `traceparent` header; README, Traces). After `onOpen`, on a route without auth, the fields of
   * `ConnectionRequest` only: what an instrumentation kept on the request object itself is gone by then.
   */
  request: ConnectionRequest
  /** What the handler returned (or resolved), set before `end` (sync) or `asyncStart`. */
  result?: unknown
  /** What the handler threw (or rejected with), set before `error`. */
  error?: unknown
}

export const MESSAGE_CHANNEL = 'fastify-realtime:message'
export const messageChannel = dc.tracingChannel<unknown, MessageContext & object>(MESSAGE_CHANNEL)
const { start, end, asyncStart, asyncEnd, error } = messageChannel

/** Whether anyone listens (TracingChannel#hasSubscribers is Node 20.13+; the engines field allows 20.12). */
export function traced (): boolean {
  return start.hasSubscribers || end.hasSubscribers || asyncStart.hasSubscribers ||
    asyncEnd.hasSubscribers || error.hasSubscribers
}

/** What invokeObserved needs of a connection (lib/connection.ts). */
interface ObservedConnection<M> {
  readonly id: string
  readonly request: MessageContext['request']
  ack (id: string | number, data: unknown): void
  handlerStart (msg: M): M | null
  handlerReturned (previous: M | null, pending: boolean): void
  handlerSettled (msg: M): void
}

interface ObservedMessage {
  type: string
  data: unknown
  id: string | number | undefined
  traceparent?: string | undefined
}

/**
 * The observed twin of the pipeline's #invoke: runs the handler inside the channel's start stores (so an
 * AsyncLocalStorage bound to it, e.g. an OpenTelemetry context, is active in the handler), times it for
 * the recorder, then acks, or hands the error to `failed` (the pipeline's error-to-wire mapping).
 */
export function invokeObserved<C extends ObservedConnection<M>, M extends ObservedMessage> (
  route: RecordedRoute, recorder: Recorder | null, conn: C, handler: (conn: C, data: unknown) => unknown, msg: M,
  failed: (conn: C, err: unknown, msg: M) => void): void {
  const ctx: MessageContext | null = traced()
    ? { route: route.path, type: msg.type, connId: conn.id, messageId: msg.id, traceparent: msg.traceparent, request: conn.request }
    : null
  const began = recorder === null ? 0 : performance.now()
  const previous = conn.handlerStart(msg)
  let result: unknown
  try {
    result = ctx === null ? handler(conn, msg.data) : start.runStores(ctx, handler, undefined, conn, msg.data)
  } catch (err) {
    conn.handlerReturned(previous, false)
    if (ctx !== null) {
      ctx.error = err
      error.publish(ctx)
      end.publish(ctx)
    }
    recorder?.handled(route, msg.type, began)
    failed(conn, err, msg)
    return
  }
  const pending = typeof (result as PromiseLike<unknown> | null)?.then === 'function'
  conn.handlerReturned(previous, pending)
  if (!pending) {
    if (ctx !== null) {
      ctx.result = result
      end.publish(ctx)
    }
    recorder?.handled(route, msg.type, began)
    if (msg.id !== undefined) conn.ack(msg.id, result)
    return
  }
  if (ctx !== null) end.publish(ctx)
  ;(result as PromiseLike<unknown>).then((value) => {
    conn.handlerSettled(msg)
    recorder?.handled(route, msg.type, began)
    if (ctx !== null) {
      ctx.result = value
      asyncStart.publish(ctx)
      asyncEnd.publish(ctx)
    }
    if (msg.id !== undefined) conn.ack(msg.id, value)
  }, (err: unknown) => {
    conn.handlerSettled(msg)
    recorder?.handled(route, msg.type, began)
    if (ctx !== null) {
      ctx.error = err
      error.publish(ctx)
      asyncStart.publish(ctx)
      asyncEnd.publish(ctx)
    }
    failed(conn, err, msg)
  })
}
