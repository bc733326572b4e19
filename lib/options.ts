// Plugin options: one schema, compiled once at import, resolved once at register
// into a frozen object. A bad option fails the register with a coded error that
// names the field.
import Type from 'typebox'
import { Compile } from 'typebox/compile'
import { FRT_ERR_OPTIONS_INVALID } from './errors.js'
import { normalizeOrigin, type OriginPolicy } from './origin.js'
import { ProtocolPrefix } from './wire.js'

const RESUME_PREFIX = ProtocolPrefix.Resume
import type { UserType } from '@fastify/jwt'
import type { RealtimeOptions } from '../types/options.js'
import type { TokenSource } from '../types/auth.js'
import type { FanoutAdapter } from '../types/adapter.js'
import type { RateLimitStore } from '../types/store.js'
import type { HistoryBounds, HistoryStore } from '../types/history.js'
import type { SessionStore } from '../types/session.js'

const OptionsSchema = Type.Object({
  maxPayload: Type.Optional(Type.Integer({ minimum: 1 })),
  perMessageDeflate: Type.Optional(Type.Union([Type.Boolean(), Type.Object({})])),
  closeTimeout: Type.Optional(Type.Integer({ minimum: 1 })),
  shutdownGrace: Type.Optional(Type.Integer({ minimum: 0 })),
  errorBudget: Type.Optional(Type.Integer({ minimum: 0 })),
  validateEmits: Type.Optional(Type.Boolean()),
  websocket: Type.Optional(Type.Object({})),
  rateLimit: Type.Optional(Type.Union([Type.Literal(false), Type.Object({
    rate: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    burst: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    budget: Type.Optional(Type.Integer({ minimum: 1 })),
    storeTimeout: Type.Optional(Type.Integer({ minimum: 1 })),
    // An instance: checked by its methods in resolveOptions.
    store: Type.Optional(Type.Unknown())
  }, { additionalProperties: false })])),
  auth: Type.Optional(Type.Object({
    sources: Type.Optional(Type.Array(
      Type.Union([Type.Literal('header'), Type.Literal('cookie'), Type.Literal('protocol')]), { uniqueItems: true })),
    cookieName: Type.Optional(Type.String({ minLength: 1 })),
    protocolPrefix: Type.Optional(Type.String({ minLength: 1 })),
    queryParam: Type.Optional(Type.String({ minLength: 1 })),
    timeout: Type.Optional(Type.Integer({ minimum: 1 })),
    grace: Type.Optional(Type.Integer({ minimum: 0 })),
    forbiddenBudget: Type.Optional(Type.Integer({ minimum: 0 })),
    ticketTtl: Type.Optional(Type.Integer({ minimum: 1 })),
    // A function: checked by typeof in resolveOptions.
    userId: Type.Optional(Type.Unknown())
  }, { additionalProperties: false })),
  sse: Type.Optional(Type.Boolean()),
  origins: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Literal('same-origin'), Type.Literal('*')])),
  missingOrigin: Type.Optional(Type.Union([Type.Literal('allow'), Type.Literal('deny')])),
  subprotocols: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
  connections: Type.Optional(Type.Object({
    max: Type.Optional(Type.Integer({ minimum: 0 })),
    perIp: Type.Optional(Type.Integer({ minimum: 0 })),
    perUser: Type.Optional(Type.Integer({ minimum: 0 })),
    retryAfter: Type.Optional(Type.Integer({ minimum: 0 }))
  }, { additionalProperties: false })),
  maxRoomsPerConnection: Type.Optional(Type.Integer({ minimum: 1 })),
  heartbeat: Type.Optional(Type.Union([Type.Literal(false), Type.Object({
    interval: Type.Optional(Type.Integer({ minimum: 1 })),
    timeout: Type.Optional(Type.Integer({ minimum: 1 }))
  }, { additionalProperties: false })])),
  slowConsumer: Type.Optional(Type.Union([Type.Literal(false), Type.Object({
    softLimit: Type.Optional(Type.Integer({ minimum: 0 })),
    softTimeout: Type.Optional(Type.Integer({ minimum: 0 })),
    hardLimit: Type.Optional(Type.Integer({ minimum: 1 }))
  }, { additionalProperties: false })])),
  // An instance: checked by its methods in resolveOptions.
  adapter: Type.Optional(Type.Unknown()),
  // Checked by lib/metrics.ts, lib/admin.ts and lib/observability.ts.
  metrics: Type.Optional(Type.Unknown()),
  asyncapi: Type.Optional(Type.Unknown()),
  admin: Type.Optional(Type.Unknown()),
  history: Type.Optional(Type.Union([Type.Literal(false), Type.Object({
    // An instance and a RegExp or function: checked in resolveRecoveryOptions.
    store: Type.Optional(Type.Unknown()),
    rooms: Type.Optional(Type.Unknown()),
    replay: Type.Optional(Type.Object({
      maxCount: Type.Optional(Type.Integer({ minimum: 1 })),
      maxBytes: Type.Optional(Type.Integer({ minimum: 1 }))
    }, { additionalProperties: false })),
    hold: Type.Optional(Type.Object({
      maxCount: Type.Optional(Type.Integer({ minimum: 1 })),
      maxBytes: Type.Optional(Type.Integer({ minimum: 1 }))
    }, { additionalProperties: false }))
  }, { additionalProperties: false })])),
  sessions: Type.Optional(Type.Union([Type.Literal(false), Type.Object({
    store: Type.Optional(Type.Unknown()),
    window: Type.Optional(Type.Integer({ minimum: 1 })),
    maxUnicast: Type.Optional(Type.Integer({ minimum: 0 })),
    maxReplies: Type.Optional(Type.Integer({ minimum: 0 }))
  }, { additionalProperties: false })])),
  drain: Type.Optional(Type.Union([Type.Boolean(), Type.Object({
    spread: Type.Optional(Type.Integer({ minimum: 0 })),
    batch: Type.Optional(Type.Integer({ minimum: 1 }))
  }, { additionalProperties: false })]))
}, { additionalProperties: false })

const checkOptions = Compile(OptionsSchema)

export const defaults = {
  /** Largest inbound frame in bytes; bigger ones close the socket with 1009. */
  maxPayload: 64 * 1024,
  /** Compression costs CPU and memory per socket and invites zip bombs: off unless asked. */
  perMessageDeflate: false as boolean | Record<string, unknown>,
  /** How long ws waits for the peer's close frame before destroying the socket. */
  closeTimeout: 3000,
  /** How long `app.close()` waits for close handshakes before terminating sockets. */
  shutdownGrace: 2000,
  /** Invalid frames a connection may send before it is closed with 4400. */
  errorBudget: 10,
  /** Validate outgoing messages against the route's `emits` schemas (for development and tests). */
  validateEmits: false,
  /** Extra `ws` server options, used only when fastify-realtime registers @fastify/websocket itself. */
  websocket: {} as Record<string, unknown>,
  /**
   * Message rate per connection: a token bucket of `burst` refilled at `rate` per second. Past it a
   * message gets `rate_limited`; `budget` such refusals (refilled one per second) and the socket closes
   * with 4429. `store` counts limits shared between connections (lib/limits.ts); each asynchronous store
   * call gets `storeTimeout` ms before the failure policy applies (lib/timeout.ts).
   */
  rateLimit: { rate: 50, burst: 100, budget: 20, storeTimeout: 1000, store: null } as false |
    Readonly<{ rate: number, burst: number, budget: number, storeTimeout: number, store: RateLimitStore | null }>,
  /** Token sources, first-message auth and expiry (lib/auth.ts, lib/token.ts). */
  auth: {
    sources: ['header', 'protocol'] as readonly TokenSource[],
    cookieName: 'token',
    protocolPrefix: 'bearer.',
    // RFC 6750's name for a token in a URI.
    queryParam: 'access_token',
    timeout: 5000,
    // Secure by default: a client refreshes before `exp`, not after.
    grace: 0,
    forbiddenBudget: 5,
    /** ms a stream ticket (SSE transport, lib/sse.ts) stays valid; single use. */
    ticketTtl: 30_000,
    userId: defaultUserId as (user: UserType) => string | number | undefined
  },
  /** Routes also answer over Server-Sent Events + POST (lib/sse.ts) unless their definition says `sse: false`. */
  sse: false as boolean,
  /**
   * Allowed origins, serialized; by default the Origin's host must be the request's (same-origin), and
   * '*' turns the check off (lib/origin.ts). Secure by default against cross-site WebSocket hijacking.
   */
  origins: 'same-origin' as OriginPolicy,
  /** Browsers always send Origin on a WebSocket handshake, so a request without one is not a browser page's. */
  missingOrigin: 'allow' as 'allow' | 'deny',
  /** Application subprotocols the server may select; a token entry never is. */
  subprotocols: [] as readonly string[],
  /** Connection caps; 0 means no cap (lib/caps.ts). */
  connections: { max: 0, perIp: 0, perUser: 0, retryAfter: 5 },
  /** Rooms one connection may be in at once (lib/rooms.ts). */
  maxRoomsPerConnection: 128,
  /** Protocol pings from one sweep timer; a peer silent for `timeout` ms after a ping is terminated (lib/heartbeat.ts). */
  heartbeat: { interval: 30_000, timeout: 10_000 } as false | Readonly<{ interval: number, timeout: number }>,
  /** Bytes buffered for one client: over hardLimit, or over softLimit for softTimeout ms, closes it with 4008 (lib/backpressure.ts). */
  slowConsumer: { softLimit: 512 * 1024, softTimeout: 10_000, hardLimit: 4 * 1024 * 1024 } as
    false | Readonly<{ softLimit: number, softTimeout: number, hardLimit: number }>,
  /** The fan-out adapter; null: an in-memory one of the plugin's own (lib/adapters/memory.ts). */
  adapter: null as FanoutAdapter | null,
  /**
   * Room history (lib/recovery.ts): `store` null means the adapter's (RedisAdapter with `history`) or an
   * in-memory one of the plugin's own; `rooms` says which rooms keep it (the same on every instance).
   */
  history: false as false | ResolvedHistory,
  /** Sessions (lib/sessions.ts): `store` null means an in-memory one of the plugin's own. */
  sessions: false as false | ResolvedSessions,
  /** A rolling restart on close: reconnect advice, 1012, in batches over `spread` ms (lib/drain.ts). */
  drain: false as false | ResolvedDrain
}

export interface ResolvedHistory {
  readonly store: HistoryStore | null
  readonly rooms: (room: string) => boolean
  readonly replay: Readonly<HistoryBounds>
  readonly hold: Readonly<HistoryBounds>
}

export interface ResolvedSessions {
  readonly store: SessionStore | null
  readonly window: number
  readonly maxUnicast: number
  readonly maxReplies: number
}

export interface ResolvedDrain {
  readonly spread: number
  readonly batch: number
}

export const recoveryDefaults = {
  replay: { maxCount: 1000, maxBytes: 1024 * 1024 },
  hold: { maxCount: 10_000, maxBytes: 4 * 1024 * 1024 },
  window: 120_000,
  maxUnicast: 100,
  maxReplies: 256,
  spread: 10_000,
  batch: 100
} as const

export type ResolvedOptions = Readonly<typeof defaults>

export function resolveOptions (options: RealtimeOptions = {}): ResolvedOptions {
  if (!checkOptions.Check(options)) {
    const [first] = checkOptions.Errors(options)
    // TypeBox reports an unknown property at its own path ('schema is false'), so an error at the root is
    // about the option set as a whole.
    const field = first.instancePath === '' ? 'options' : first.instancePath.slice(1).replaceAll('/', '.')
    throw new FRT_ERR_OPTIONS_INVALID(field, first.message)
  }
  const auth = Object.freeze({ ...defaults.auth, ...options.auth })
  if (typeof auth.userId !== 'function') throw new FRT_ERR_OPTIONS_INVALID('auth.userId', 'must be a function')
  let origins: OriginPolicy = defaults.origins
  if (typeof options.origins === 'string') {
    origins = options.origins
  } else if (options.origins !== undefined) {
    origins = Object.freeze(options.origins.map((entry, i) => {
      const origin = normalizeOrigin(entry)
      if (origin === undefined) {
        throw new FRT_ERR_OPTIONS_INVALID(`origins.${i}`, 'must be an origin: scheme://host[:port], no path')
      }
      return origin
    }))
  }
  if (origins === '*' && auth.sources.includes('cookie')) {
    // A browser sends cookies on a cross-site WebSocket handshake, so cookie
    // auth without an Origin check is open to cross-site WebSocket hijacking.
    throw new FRT_ERR_OPTIONS_INVALID('origins', 'must not be "*" when auth.sources includes "cookie"')
  }
  const subprotocols = Object.freeze([...options.subprotocols ?? []])
  const bearer = subprotocols.find((protocol) => protocol.startsWith(auth.protocolPrefix) || protocol.startsWith(RESUME_PREFIX))
  if (bearer !== undefined) {
    throw new FRT_ERR_OPTIONS_INVALID('subprotocols', `"${bearer}" starts with a token prefix ("${auth.protocolPrefix}" or "${RESUME_PREFIX}")`)
  }
  return Object.freeze({
    ...defaults,
    ...options,
    auth,
    origins,
    subprotocols,
    connections: Object.freeze({ ...defaults.connections, ...options.connections }),
    ...resolveRoomOptions(options),
    ...resolveRecoveryOptions(options),
    rateLimit: resolveRateLimit(options)
  })
}

const everyRoom = (): boolean => true

function resolveRecoveryOptions (options: RealtimeOptions): Pick<ResolvedOptions, 'history' | 'sessions' | 'drain'> {
  let history: ResolvedOptions['history'] = false
  if (options.history !== undefined && options.history !== false) {
    const { store = null, rooms, replay, hold } = options.history
    if (store !== null && ['append', 'since'].some((method) => typeof (store as unknown as Record<string, unknown>)?.[method] !== 'function')) {
      throw new FRT_ERR_OPTIONS_INVALID('history.store', 'must have append and since methods')
    }
    let match: (room: string) => boolean = everyRoom
    if (rooms instanceof RegExp) {
      // A copy without the global/sticky flags, whose lastIndex would make test() stateful.
      const pattern = new RegExp(rooms.source, rooms.flags.replace(/[gy]/g, ''))
      match = (room) => pattern.test(room)
    } else if (typeof rooms === 'function') {
      match = rooms as (room: string) => boolean
    } else if (rooms !== undefined) {
      throw new FRT_ERR_OPTIONS_INVALID('history.rooms', 'must be a RegExp or a function (room) => boolean')
    }
    history = Object.freeze({
      store: store as HistoryStore | null,
      rooms: match,
      replay: Object.freeze({ ...recoveryDefaults.replay, ...replay }),
      hold: Object.freeze({ ...recoveryDefaults.hold, ...hold })
    })
  }
  let sessions: ResolvedOptions['sessions'] = false
  if (options.sessions !== undefined && options.sessions !== false) {
    const { store = null, window = recoveryDefaults.window, maxUnicast = recoveryDefaults.maxUnicast, maxReplies = recoveryDefaults.maxReplies } = options.sessions
    if (store !== null && ['save', 'append', 'take'].some((method) => typeof (store as unknown as Record<string, unknown>)?.[method] !== 'function')) {
      throw new FRT_ERR_OPTIONS_INVALID('sessions.store', 'must have save, append and take methods')
    }
    sessions = Object.freeze({ store: store as SessionStore | null, window, maxUnicast, maxReplies })
  }
  const drain = options.drain === undefined || options.drain === false
    ? false
    : Object.freeze({ spread: recoveryDefaults.spread, batch: recoveryDefaults.batch, ...(options.drain === true ? {} : options.drain) })
  return { history, sessions, drain }
}

function resolveRateLimit (options: RealtimeOptions): ResolvedOptions['rateLimit'] {
  if (options.rateLimit === false) return false
  const rateLimit = Object.freeze({ ...defaults.rateLimit as object, ...options.rateLimit } as
    { rate: number, burst: number, budget: number, storeTimeout: number, store: RateLimitStore | null })
  const store = rateLimit.store
  if (store !== null && typeof (store as unknown as Record<string, unknown>)?.take !== 'function') {
    throw new FRT_ERR_OPTIONS_INVALID('rateLimit.store', 'must have a take method')
  }
  return rateLimit
}

// Nested room options merge with their defaults field by field; `false` turns a feature off.
function resolveRoomOptions (options: RealtimeOptions): Pick<ResolvedOptions, 'heartbeat' | 'slowConsumer' | 'adapter'> {
  const heartbeat = options.heartbeat === false
    ? false
    : Object.freeze({ ...defaults.heartbeat as object, ...options.heartbeat } as { interval: number, timeout: number })
  const slowConsumer = options.slowConsumer === false
    ? false
    : Object.freeze({ ...defaults.slowConsumer as object, ...options.slowConsumer } as { softLimit: number, softTimeout: number, hardLimit: number })
  if (slowConsumer !== false && slowConsumer.softLimit > slowConsumer.hardLimit) {
    throw new FRT_ERR_OPTIONS_INVALID('slowConsumer.softLimit', 'must not exceed slowConsumer.hardLimit')
  }
  const adapter = options.adapter ?? null
  if (adapter !== null && (typeof adapter !== 'object' || ['subscribe', 'unsubscribe', 'publish']
    .some((method) => typeof (adapter as unknown as Record<string, unknown>)[method] !== 'function'))) {
    throw new FRT_ERR_OPTIONS_INVALID('adapter', 'must have subscribe, unsubscribe and publish methods')
  }
  return { heartbeat, slowConsumer, adapter }
}

/**
 * The key a user is known by everywhere (the userId -> connections index, caps, presence, shared limits):
 * what the `auth.userId` option returns, as a string; undefined when anonymous or without an id.
 */
export function userKey (userId: (user: UserType) => unknown, user: UserType | null | undefined): string | undefined {
  if (user == null) return undefined
  const id = userId(user)
  return id === undefined || id === null ? undefined : String(id)
}

function defaultUserId (user: UserType): string | number | undefined {
  const { sub, id } = (user ?? {}) as { sub?: unknown, id?: unknown }
  if (typeof sub === 'string' || typeof sub === 'number') return sub
  return typeof id === 'string' || typeof id === 'number' ? id : undefined
}

// ws server options fastify-realtime sets from its own plugin options: the same option under `websocket`
// would be overwritten, so it is refused at register rather than silently ignored.
const WS_OWNED = { maxPayload: 'maxPayload', perMessageDeflate: 'perMessageDeflate', closeTimeout: 'closeTimeout' } as const

/**
 * Options that would be silently ignored fail the register instead: a ws option under `websocket` that a
 * plugin option sets, and, when the app registered @fastify/websocket itself (`ownServer` false), the
 * plugin's ws-level options, which only apply to a server fastify-realtime registers.
 */
export function checkServerOptions (options: RealtimeOptions, ownServer: boolean): void {
  const ws = (options.websocket ?? {}) as Record<string, unknown>
  for (const [key, plugin] of Object.entries(WS_OWNED)) {
    if (ws[key] !== undefined) {
      throw new FRT_ERR_OPTIONS_INVALID(`websocket.${key}`, `is set by fastify-realtime's own option "${plugin}": use that instead`)
    }
  }
  if (ownServer) return
  for (const key of [...Object.keys(WS_OWNED), 'websocket'] as const) {
    if ((options as Record<string, unknown>)[key] !== undefined) {
      throw new FRT_ERR_OPTIONS_INVALID(key, 'has no effect: the app registered @fastify/websocket itself; set it in that registration\'s options')
    }
  }
}
