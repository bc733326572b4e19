// Per-message tracing on node:diagnostics_channel, as Fastify and undici publish theirs: one TracingChannel,
// `fastify-realtime:message`, whose events are published only when someone subscribed. With no subscriber
// and no metrics, the pipeline's #invoke takes its plain path and this file costs nothing per message.
import dc from 'node:diagnostics_channel'
import type { ConnectionRequest } from '../types/route.js'
import type { Recorder, RecordedRoute } from './recorder.js'
import { enter, leave, runInTrace } from './trace-context.js'

export { validTraceparent } from './traceparent.js'

/** The context object of one handled message, the same object through start, end, asyncStart/End and error. */
export interface MessageContext {
  /** The route's path. */
  route: string
  type: string
  connId: string
  /** The request id, when the message is a request. */
  messageId: string | number | undefined
  /**
   * The envelope's W3C `traceparent`, when it carried a valid one. A `start` subscriber may set it to the
   * handler span's own `traceparent`: what the handler then sends to rooms carries this value (the deliveries
   * on every instance link to it, see `fastify-realtime:deliver`). A value that is not a valid traceparent is not carried.
   */
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

// Module-level, so that a traced message makes no closure to run the handler inside the trace.
function runStores<C> (ctx: MessageContext, handler: (conn: C, data: unknown) => unknown, conn: C, data: unknown): unknown {
  return start.runStores(ctx, handler, undefined, conn, data)
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
  // What the handler sends carries its trace (lib/trace-context.ts): a message's own traceparent, or the
  // channel's context, which a subscriber may have pointed at its span; after an await only when traced.
  const traces = ctx !== null || msg.traceparent !== undefined
  const outer = traces ? enter(ctx ?? msg) : null
  let result: unknown
  try {
    result = ctx === null ? handler(conn, msg.data) : runInTrace(ctx, runStores, ctx, handler, conn, msg.data)
  } catch (err) {
    if (traces) leave(outer)
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
  if (traces) leave(outer)
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
