// The small interface the message path calls at a handful of points, for metrics (lib/metrics.ts) and the
// admin page (lib/admin.ts). With neither on, `hub.recorder` is null and each point costs one null check.
// Labels are bounded here, once: a route's declared types and the reserved ones, else one `_unknown` bucket.
import { CloseCode, ErrorCode, MessageType } from './wire.js'

/** What a recorder needs of a route: its path and its declared types. */
export interface RecordedRoute {
  readonly path: string
  readonly messages: { has (type: string): boolean }
  readonly emits: { has (type: string): boolean }
}

export interface Recorder {
  /** A socket was accepted on the route. */
  opened (route: RecordedRoute): void
  /** A socket of the route closed with this code. */
  closed (route: RecordedRoute, code: number): void
  /** A frame parsed into an envelope of this type (any type the client sent: label it with typeLabel). */
  messageIn (route: RecordedRoute, type: string): void
  /** A unicast message sent (an emit, ack or error). */
  messageOut (route: RecordedRoute, type: string): void
  /** An error reply (protocol or handler) with this wire code. */
  error (route: RecordedRoute, code: string): void
  /** A handler settled; `start` is the performance.now() taken before it ran. */
  handled (route: RecordedRoute, type: string, start: number): void
}

const RESERVED = new Set<string>(Object.values(MessageType))
const ERROR_CODES = new Set<string>(Object.values(ErrorCode))
const CLOSE_CODES = new Set<number>([...Object.values(CloseCode), 1005, 1006, 1012, 1013])

/** Unknown types (anything a client may invent) are one bucket, so a client cannot grow the series. */
export const UNKNOWN = '_unknown'

export function inLabel (route: RecordedRoute, type: string): string {
  return route.messages.has(type) || RESERVED.has(type) ? type : UNKNOWN
}

export function outLabel (route: RecordedRoute, type: string): string {
  return route.emits.has(type) || RESERVED.has(type) ? type : UNKNOWN
}

/** A handler's own refusal codes are the app's strings: one `refused` bucket. */
export function errorLabel (code: string): string {
  return ERROR_CODES.has(code) ? code : 'refused'
}

/** RFC 6455 and our codes, and 4000 + a 4xx status (onOpen refusals); anything else is `other`. */
export function closeLabel (code: number): string {
  return CLOSE_CODES.has(code) || (code >= 4400 && code < 4500) ? String(code) : 'other'
}

/** Several recorders as one (metrics and the admin page together). */
export function combine (recorders: Recorder[]): Recorder | null {
  if (recorders.length === 0) return null
  if (recorders.length === 1) return recorders[0]
  return {
    opened: (route) => { for (const r of recorders) r.opened(route) },
    closed: (route, code) => { for (const r of recorders) r.closed(route, code) },
    messageIn: (route, type) => { for (const r of recorders) r.messageIn(route, type) },
    messageOut: (route, type) => { for (const r of recorders) r.messageOut(route, type) },
    error: (route, code) => { for (const r of recorders) r.error(route, code) },
    handled: (route, type, start) => { for (const r of recorders) r.handled(route, type, start) }
  }
}
