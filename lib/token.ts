// Where a handshake token may come from, and keeping it out of places it must
// not reach: the URL Fastify routes and logs, and the subprotocol ws echoes.
import type { IncomingMessage } from 'node:http'
import type { FastifyRequest } from 'fastify'
import type { TokenSource } from '../types/auth.js'

export interface TokenSourceOptions {
  readonly sources: readonly TokenSource[]
  readonly cookieName: string
  readonly protocolPrefix: string
}

const kQueryToken = Symbol('fastify-realtime.queryToken')
type RawRequest = IncomingMessage & { [kQueryToken]?: string }

const BEARER = /^Bearer +(\S+) *$/i

/**
 * The token of an upgrade request, from the configured sources, then from the
 * query string when the route opted in. Undefined when there is none.
 */
export function findToken (request: FastifyRequest, options: TokenSourceOptions, query: boolean): string | undefined {
  const headers = request.headers
  for (const source of options.sources) {
    let token: string | undefined
    if (source === 'header') {
      token = BEARER.exec(headers.authorization ?? '')?.[1]
    } else if (source === 'cookie') {
      token = cookieValue(headers.cookie, options.cookieName)
    } else {
      token = protocolToken(headers['sec-websocket-protocol'], options.protocolPrefix)
    }
    if (token !== undefined && token !== '') return token
  }
  return query ? (request.raw as RawRequest)[kQueryToken] : undefined
}

// Only the one cookie is wanted, so no cookie parser (and no @fastify/cookie):
// a JWT is cookie-safe as is, quotes are allowed by RFC 6265.
function cookieValue (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue
    const value = pair.slice(eq + 1).trim()
    return value.length > 1 && value[0] === '"' && value.at(-1) === '"' ? value.slice(1, -1) : value
  }
  return undefined
}

function protocolToken (header: string | undefined, prefix: string): string | undefined {
  if (header === undefined) return undefined
  for (const entry of header.split(',')) {
    const protocol = entry.trim()
    if (protocol.startsWith(prefix)) return protocol.slice(prefix.length)
  }
  return undefined
}

/**
 * The `upgrade` listener, put before @fastify/websocket's: takes the token
 * parameter out of the URL before Fastify routes the request, so it appears in
 * no log line, in `request.url` nor in `request.query`, whatever the route.
 * Only a route that opted in will read it back from where it is kept.
 */
export function queryTokenStripper (param: string): (request: IncomingMessage) => void {
  const marker = param + '='
  return function stripQueryToken (request: RawRequest): void {
    // Node's server and injectWS always set url on a server-side request; `undefined` is only in the type.
    const url = request.url as string
    const q = url.indexOf('?')
    // A name may come percent-encoded (`access%5Ftoken=`): URLSearchParams decodes names, so any `%` in
    // the query takes the full parse; only a query with neither the marker nor a `%` is skipped cheaply.
    if (q === -1 || (!url.includes(marker, q) && !url.includes('%', q))) return
    const params = new URLSearchParams(url.slice(q + 1))
    const token = params.get(param)
    if (token === null) return
    params.delete(param)
    const rest = params.toString()
    request.url = url.slice(0, q) + (rest === '' ? '' : '?' + rest)
    request[kQueryToken] = token
  }
}

type HandleProtocols = (protocols: Set<string>, request: IncomingMessage) => string | false

// A handshake token or a session resume token (protocol 1.1): offered, never selected.
const RESUME = 'resume.'
function isTokenEntry (protocol: string, prefix: string): boolean {
  return protocol.startsWith(prefix) || protocol.startsWith(RESUME)
}

/**
 * The ws `handleProtocols`: selects the first offered subprotocol in the allow
 * list, never a token entry. Without it ws would answer with the first offered
 * protocol, which may be `bearer.<token>`. An app's own `handleProtocols` (when
 * it registered @fastify/websocket itself) still decides, but never sees tokens.
 */
export function protocolSelector (allowed: readonly string[], prefix: string, own?: HandleProtocols | null): HandleProtocols {
  const allow = new Set(allowed)
  return function handleProtocols (protocols, request) {
    // ws defaults the option to null.
    if (typeof own === 'function') {
      const offered = new Set<string>()
      for (const protocol of protocols) if (!isTokenEntry(protocol, prefix)) offered.add(protocol)
      const chosen = own(offered, request)
      return typeof chosen === 'string' && !isTokenEntry(chosen, prefix) ? chosen : false
    }
    for (const protocol of protocols) if (allow.has(protocol) && !isTokenEntry(protocol, prefix)) return protocol
    return false
  }
}

// fast-jwt codes that mean the server could not get or use its key: not the
// client's fault. Every other FAST_JWT_* code is about the token itself.
const SERVER_KEY_FAULTS: ReadonlySet<string> = new Set(['FAST_JWT_KEY_FETCHING_ERROR', 'FAST_JWT_INVALID_OPTION', 'FAST_JWT_MISSING_KEY'])

/**
 * Whether a `jwtVerify` failure is the token's fault (401): @fastify/jwt maps only some fast-jwt codes to
 * 401 and lets the others through as 500 (a token signed with an algorithm the app does not accept gets
 * FAST_JWT_INVALID_ALGORITHM, malformed claims FAST_JWT_INVALID_CLAIM_TYPE, ...). Only a failing key
 * provider (a JWKS fetch, a vault) or a broken key configuration is the server's.
 */
export function isTokenFault (err: unknown): boolean {
  const { code, statusCode } = (err ?? {}) as { code?: unknown, statusCode?: unknown }
  if (statusCode === 400 || statusCode === 401) return true
  return typeof code === 'string' && code.startsWith('FAST_JWT_') && !SERVER_KEY_FAULTS.has(code)
}
