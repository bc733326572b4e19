// The Origin check, before the upgrade. Browsers send Origin on every
// WebSocket handshake and a page cannot forge it, so checking it stops
// cross-site WebSocket hijacking (a page on another site opening a socket with
// the user's cookies or network position). By default the Origin's host must
// be the request's own host (same-origin, as Phoenix's check_origin); an
// allow-list matches scheme, host and port exactly; `'*'` turns the check off.
// Non-browser clients may omit Origin (or send anything): `missingOrigin` says
// what a request without one gets.
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { FRT_ERR_ORIGIN_FORBIDDEN } from './errors.js'
import { isSseRequest, isStreamRequest } from './transport.js'

/**
 * The serialized origin of an allow-list entry (lower-case host, no default
 * port), or undefined when the entry is not exactly an origin: a path, query,
 * credentials or a scheme without an origin (`null`, `file:`) are refused.
 */
export function normalizeOrigin (entry: string): string | undefined {
  let url: URL
  try {
    url = new URL(entry)
  } catch {
    return undefined
  }
  if (url.origin === 'null' || url.username !== '' || url.password !== '' ||
    url.pathname !== '/' || url.search !== '' || url.hash !== '' || entry.endsWith('/')) {
    return undefined
  }
  return url.origin
}

export type OriginHook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void

/** An `onRequest` hook refusing upgrades from origins not in `allowed` with HTTP 403. */
export function originGuard (allowed: readonly string[], missing: 'allow' | 'deny'): OriginHook {
  const allow = new Set(allowed)
  return function checkOrigin (request, _reply, done) {
    if (!request.ws && !isSseRequest(request)) return done()
    const origin = request.headers.origin
    // The header is compared as sent: browsers serialize origins canonically,
    // and anything else is not a browser, so normalizing would only widen the match.
    // A browser sends no Origin on a same-origin GET, so an SSE stream without one passes; its
    // POSTs (which browsers always send it on) are where a cross-site page would act.
    if (origin === undefined ? missing === 'allow' || isStreamRequest(request) : allow.has(origin)) return done()
    done(new FRT_ERR_ORIGIN_FORBIDDEN())
  }
}

/** The `origins` option resolved: an allow-list, same-origin (the default) or any origin (`'*'`). */
export type OriginPolicy = readonly string[] | 'same-origin' | '*'

/**
 * An `onRequest` hook refusing cross-origin upgrades with HTTP 403: the Origin's `host[:port]` must equal
 * the request's host (`request.host`: the Host header, or X-Forwarded-Host with Fastify's `trustProxy`).
 */
export function sameOriginGuard (missing: 'allow' | 'deny'): OriginHook {
  return function checkSameOrigin (request, _reply, done) {
    if (!request.ws) return done()
    const origin = request.headers.origin
    if (origin === undefined ? missing === 'allow' : hostOf(origin) === request.host.toLowerCase()) return done()
    done(new FRT_ERR_ORIGIN_FORBIDDEN())
  }
}

// The host[:port] of a serialized origin as browsers send it; undefined for `null` and anything unparsable.
function hostOf (origin: string): string | undefined {
  try {
    const { host, origin: serialized } = new URL(origin)
    return serialized === 'null' ? undefined : host
  } catch {
    return undefined
  }
}

/** The Origin hook of a policy, or null for `'*'` (no check). */
export function originHook (policy: OriginPolicy, missing: 'allow' | 'deny'): OriginHook | null {
  if (policy === '*') return null
  return policy === 'same-origin' ? sameOriginGuard(missing) : originGuard(policy, missing)
}
