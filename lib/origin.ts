// The Origin allow-list, checked before the upgrade. Browsers send Origin on
// every WebSocket handshake and a page cannot forge it, so an exact match of
// scheme, host and port stops cross-site WebSocket hijacking. Non-browser
// clients may omit it (or send anything): `missingOrigin` says what a request
// without one gets.
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
