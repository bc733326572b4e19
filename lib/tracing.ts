// Per-message tracing on node:diagnostics_channel, as Fastify and undici publish theirs: one TracingChannel,
// `fastify-realtime:message`, whose events are published only when someone subscribed. With no subscriber
// and no metrics, route.invoke takes its plain path and this file costs nothing per message.
import dc from 'node:diagnostics_channel'
import type { Recorder, RecordedRoute } from './recorder.js'

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

// W3C Trace Context level 1: version 00 is exactly 55 characters; a later version may append fields after
// a dash. Version ff, an all-zero trace id or parent id, and upper-case hex are invalid.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$/
const ZERO_TRACE = '0'.repeat(32)
const ZERO_PARENT = '0'.repeat(16)

/** The value when it is a valid W3C `traceparent`, else undefined (a bad one is ignored, as the spec says). */
export function validTraceparent (value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 512) return undefined
  const m = TRACEPARENT.exec(value)
  if (m === null) return undefined
  const [, version, traceId, parentId, rest] = m
  if (version === 'ff' || traceId === ZERO_TRACE || parentId === ZERO_PARENT) return undefined
  if (version === '00' && rest !== undefined) return undefined
  return value
}

/** What invokeObserved needs of the route (calls go down; replies and errors come back through these). */
export interface ObservedRoute extends RecordedRoute {
  readonly hub: { readonly recorder: Recorder | null }
  handlerError (conn: never, err: unknown, msg: never): void
}

interface ObservedConnection {
  readonly id: string
  ack (id: string | number, data: unknown): void
}

interface ObservedMessage {
  type: string
  data: unknown
  id: string | number | undefined
  traceparent?: string | undefined
}

/**
 * The observed twin of route.invoke: runs the handler inside the channel's start stores (so an
 * AsyncLocalStorage bound to it, e.g. an OpenTelemetry context, is active in the handler), times it for
 * the recorder, then acks or reports the error as invoke does.
 */
export function invokeObserved<C extends ObservedConnection, M extends ObservedMessage> (
  route: ObservedRoute, conn: C, handler: (conn: C, data: unknown) => unknown, msg: M): void {
  const recorder = route.hub.recorder
  const ctx: MessageContext | null = traced()
    ? { route: route.path, type: msg.type, connId: conn.id, messageId: msg.id, traceparent: msg.traceparent }
    : null
  const began = recorder === null ? 0 : performance.now()
  let result: unknown
  try {
    result = ctx === null ? handler(conn, msg.data) : start.runStores(ctx, handler, undefined, conn, msg.data)
  } catch (err) {
    if (ctx !== null) {
      ctx.error = err
      error.publish(ctx)
      end.publish(ctx)
    }
    recorder?.handled(route, msg.type, began)
    route.handlerError(conn as never, err, msg as never)
    return
  }
  if (typeof (result as PromiseLike<unknown> | null)?.then !== 'function') {
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
    recorder?.handled(route, msg.type, began)
    if (ctx !== null) {
      ctx.result = value
      asyncStart.publish(ctx)
      asyncEnd.publish(ctx)
    }
    if (msg.id !== undefined) conn.ack(msg.id, value)
  }, (err: unknown) => {
    recorder?.handled(route, msg.type, began)
    if (ctx !== null) {
      ctx.error = err
      error.publish(ctx)
      asyncStart.publish(ctx)
      asyncEnd.publish(ctx)
    }
    route.handlerError(conn as never, err, msg as never)
  })
}
