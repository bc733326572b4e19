// W3C Trace Context `traceparent`: the one check of its shape, on the ground floor so that lib/protocol.ts (the
// envelope) and lib/tracing.ts (the channel) share it without importing each other.

// Level 1: version 00 is exactly 55 characters; a later version may append fields after a dash. Version ff,
// an all-zero trace id or parent id, and upper-case hex are invalid.
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
