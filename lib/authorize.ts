// Per-message authorization: the route's `authorize(conn, type, data)`, then
// the message's own `authorize(conn, data)`, after the data passed its schema
// and before the handler. Either may be async. Only `true` lets a message
// through (a forgotten return refuses rather than allows). This file only
// computes the verdict; lib/pipeline.ts replies, counts and closes.
import { isThenable, type Verdict } from './verdict.js'
import type { Connection } from '../types/route.js'

export type RouteAuthorize = (conn: Connection, type: string, data: unknown) => unknown
export type MessageAuthorize = (conn: Connection, data: unknown) => unknown

/** The combined verdict of both checks; may throw (a hook that threw). */
export function authorizeMessage (routeCheck: RouteAuthorize | undefined, messageCheck: MessageAuthorize | undefined,
  conn: Connection, type: string, data: unknown): Verdict<unknown> {
  if (routeCheck === undefined) return messageCheck === undefined ? true : messageCheck(conn, data)
  const first = routeCheck(conn, type, data)
  if (messageCheck === undefined) return first
  if (isThenable(first)) return first.then((ok) => ok === true ? messageCheck(conn, data) : ok)
  return first === true ? messageCheck(conn, data) : first
}
