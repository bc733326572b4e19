// Declaring a real-time route: the definition is checked and its schemas
// compiled here, once, into a frozen table that lib/pipeline.ts dispatches
// from. Nothing here runs per message except `checkEmit`.
import { Compile } from 'typebox/compile'
import type { Validator } from 'typebox/compile'
import type { TSchema } from 'typebox'
import {
  FRT_ERR_EMIT_INVALID, FRT_ERR_EMIT_UNKNOWN_TYPE, FRT_ERR_ROUTE_INVALID, FRT_ERR_ROUTE_RESERVED_TYPE
} from './errors.js'
import { MessageType } from './protocol.js'
import { RouteLimiter } from './limits.js'
import { checkRouteRooms, type EmitChecker } from './rooms.js'
import { normalizeRouteAuth, type RouteAuthConfig } from './auth.js'
import { compileDelivery, deliveryOf, type Policy } from './delivery.js'
import type { MessageAuthorize, RouteAuthorize } from './authorize.js'
import type { ResolvedOptions } from './options.js'
import type { RateLimitStore } from '../types/store.js'
import type { RouteAuth } from '../types/auth.js'
import type { AcksOf, Connection, MessagesAsWritten, RouteDefinition, SchemaMap } from '../types/route.js'

const RESERVED = new Set<string>(Object.values(MessageType))

export interface CompiledMessage {
  readonly validator: Validator
  readonly handler: (conn: Connection, data: unknown) => unknown
  readonly authorize: MessageAuthorize | undefined
}

export type JoinCheck = (conn: Connection, room: string) => unknown

/** A declared route, as the pipeline reads it: frozen, every hook checked to be a function. */
export interface CompiledRoute extends EmitChecker {
  readonly path: string
  readonly messages: ReadonlyMap<string, CompiledMessage>
  /** The declared emit types (metrics label them; lib/recorder.ts). */
  readonly emits: ReadonlySet<string>
  /** The declared delivery policies by emit type (lib/delivery.ts); reliable where none is declared. */
  readonly policies: ReadonlyMap<string, Policy>
  readonly onOpen: ((conn: Connection) => unknown) | undefined
  readonly onClose: ((conn: Connection, code: number, reason: string) => unknown) | undefined
  readonly authorize: RouteAuthorize | undefined
  /** Whether the route or any of its messages has an `authorize` check. */
  readonly authorizes: boolean
  /** `room:join`/`room:leave` from clients: false (unknown types), true (any room) or the route's check. */
  readonly joinable: boolean | JoinCheck
  readonly presence: boolean
  /** The route's auth mode; null on a route without auth. */
  readonly auth: RouteAuthConfig | null
  /** The route's rate limits; null when the plugin's `rateLimit` is false. */
  readonly limiter: RouteLimiter | null
  /** Whether the route also answers over SSE + POST (lib/sse.ts). */
  readonly sse: boolean
  /** The definition's own Fastify route options (hooks, config, schema, ...), without fastify-realtime's keys. */
  readonly fastifyOptions: Record<string, unknown>
  /** Recovery (lib/recovery.ts): joins with `since`, sessions, kept data, snapshots. */
  readonly history: boolean
  readonly sessions: boolean
  readonly keep: ((conn: Connection) => unknown) | undefined
  readonly snapshot: ((room: string, conn: Connection) => unknown) | undefined
  readonly snapshotTimeout: number
}

/** The keys of a route definition that fastify-realtime reads; every other key is a Fastify route option. */
const REALTIME_KEYS = new Set(['messages', 'emits', 'onOpen', 'onClose', 'joinable', 'presence', 'auth', 'authorize', 'rateLimit',
  'history', 'sessions', 'keep', 'snapshot', 'snapshotTimeout', 'sse', 'delivery'])

const DEFAULT_SNAPSHOT_TIMEOUT = 5000

/** The recovery keys of a definition, checked against the plugin's options. */
function recoveryOf (path: string, definition: RouteDefinition<SchemaMap, SchemaMap>, options: ResolvedOptions):
Pick<CompiledRoute, 'history' | 'sessions' | 'keep' | 'snapshot' | 'snapshotTimeout'> {
  const { history = false, sessions = false, keep, snapshot, snapshotTimeout = DEFAULT_SNAPSHOT_TIMEOUT } = definition
  for (const [name, value, plugin] of [['history', history, options.history], ['sessions', sessions, options.sessions]] as const) {
    if (typeof value !== 'boolean') throw new FRT_ERR_ROUTE_INVALID(path, `"${name}" must be a boolean`)
    if (value && plugin === false) throw new FRT_ERR_ROUTE_INVALID(path, `"${name}" needs the plugin's "${name}" option`)
  }
  for (const [name, hook] of [['keep', keep], ['snapshot', snapshot]] as const) {
    if (hook !== undefined && typeof hook !== 'function') throw new FRT_ERR_ROUTE_INVALID(path, `"${name}" must be a function`)
  }
  if (!Number.isSafeInteger(snapshotTimeout) || snapshotTimeout < 1) {
    throw new FRT_ERR_ROUTE_INVALID(path, '"snapshotTimeout" must be a positive integer (ms)')
  }
  return {
    history,
    sessions,
    keep: keep as CompiledRoute['keep'],
    snapshot: snapshot as CompiledRoute['snapshot'],
    snapshotTimeout
  }
}

/** Checks a route definition and compiles it; throws a coded error naming the path on anything wrong. */
export function compileRoute (path: string, definition: RouteDefinition<SchemaMap, SchemaMap>,
  options: ResolvedOptions, store: RateLimitStore | null): CompiledRoute {
  if (typeof definition !== 'object' || definition === null) {
    throw new FRT_ERR_ROUTE_INVALID(path, 'the definition must be an object')
  }
  const { messages, emits = {}, onOpen, onClose } = definition
  if (typeof messages !== 'object' || messages === null) {
    throw new FRT_ERR_ROUTE_INVALID(path, '"messages" must be an object of { schema, handler }')
  }
  const compiled = new Map<string, CompiledMessage>()
  let authorizes = false
  for (const [type, message] of Object.entries(messages)) {
    if (RESERVED.has(type)) throw new FRT_ERR_ROUTE_RESERVED_TYPE(path, type)
    if (typeof message?.handler !== 'function') {
      throw new FRT_ERR_ROUTE_INVALID(path, `message "${type}" needs a handler function`)
    }
    if (message.authorize !== undefined && typeof message.authorize !== 'function') {
      throw new FRT_ERR_ROUTE_INVALID(path, `message "${type}" has an "authorize" that is not a function`)
    }
    authorizes ||= message.authorize !== undefined
    compiled.set(type, Object.freeze({
      validator: compileSchema(path, `message "${type}"`, message.schema),
      handler: message.handler as CompiledMessage['handler'],
      authorize: message.authorize as MessageAuthorize | undefined
    }))
  }
  if (typeof emits !== 'object' || emits === null) {
    throw new FRT_ERR_ROUTE_INVALID(path, '"emits" must be an object of schemas')
  }
  const emitValidators = new Map<string, Validator>()
  for (const [type, schema] of Object.entries(emits)) {
    if (RESERVED.has(type)) throw new FRT_ERR_ROUTE_RESERVED_TYPE(path, type)
    emitValidators.set(type, compileSchema(path, `emit "${type}"`, schema))
  }
  const emitTypes = new Set(emitValidators.keys())
  const policies = compileDelivery(path, definition.delivery, emitTypes)
  authorizes ||= definition.authorize !== undefined
  for (const [name, hook] of [['onOpen', onOpen], ['onClose', onClose], ['authorize', definition.authorize]] as const) {
    if (hook !== undefined && typeof hook !== 'function') {
      throw new FRT_ERR_ROUTE_INVALID(path, `"${name}" must be a function`)
    }
  }
  checkRouteRooms(path, definition)
  if (definition.sse !== undefined && typeof definition.sse !== 'boolean') {
    throw new FRT_ERR_ROUTE_INVALID(path, '"sse" must be a boolean')
  }
  const limiter = options.rateLimit === false || store === null
    ? null
    : new RouteLimiter(path, options, definition.rateLimit, messages, store)
  const auth = normalizeRouteAuth(path, definition.auth)
  const fastifyOptions: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(definition)) {
    if (!REALTIME_KEYS.has(key)) fastifyOptions[key] = value
  }
  const validateEmits = options.validateEmits
  return Object.freeze({
    path,
    messages: compiled,
    emits: emitTypes,
    policies,
    onOpen: onOpen as CompiledRoute['onOpen'],
    onClose: onClose as CompiledRoute['onClose'],
    authorize: definition.authorize as RouteAuthorize | undefined,
    authorizes,
    joinable: (definition.joinable ?? false) as boolean | JoinCheck,
    presence: definition.presence === true,
    auth,
    limiter,
    sse: definition.sse ?? options.sse,
    fastifyOptions,
    ...recoveryOf(path, definition, options),
    /** Throws on an undeclared type, and, when `validateEmits` is on, on a payload its schema refuses. */
    checkEmit (type: string, data: unknown): void {
      const validator = emitValidators.get(type)
      if (validator === undefined) throw new FRT_ERR_EMIT_UNKNOWN_TYPE(type)
      if (validateEmits && !validator.Check(data)) {
        const [first] = validator.Errors(data)
        throw new FRT_ERR_EMIT_INVALID(type, `${first.instancePath || '/'} ${first.message}`)
      }
    },
    /** The declared delivery of one message; after checkEmit, so the type is a declared one. */
    delivery (type: string, data: unknown) {
      return deliveryOf(policies.get(type), type, data)
    }
  })
}

function compileSchema (path: string, what: string, schema: unknown): Validator {
  if (typeof schema !== 'object' || schema === null) {
    throw new FRT_ERR_ROUTE_INVALID(path, `${what} needs a TypeBox schema`)
  }
  try {
    return Compile(schema as TSchema)
  } catch (err) {
    throw new FRT_ERR_ROUTE_INVALID(path, `${what} has a schema that does not compile: ${(err as Error).message}`)
  }
}

/**
 * Types a route definition kept in its own module, so that `app.realtime(path, chat)`, the test client
 * (`connect<typeof chat>`) and the client (`createClient<typeof chat>`) share its message types, acks included.
 * Returns the definition unchanged.
 */
// `A` is the route's auth, so conn.user is typed by it (types/route.ts UserOf). `Messages` is the `messages`
// object as written: TypeScript infers `In` from the schemas (which types each handler's `data`), and
// `Messages` keeps what `RouteDefinition` alone would widen to `unknown`, the handlers' return types. Its
// constraint refuses a message key `RouteDefinition` does not know, as the excess-property check did before.
export function defineRoute<In extends SchemaMap, Emits extends SchemaMap = {}, A extends RouteAuth | undefined = undefined,
  Messages extends MessagesAsWritten<Messages> = MessagesAsWritten<{}>> (
  definition: RouteDefinition<In, Emits, A> & { messages: Messages }): RouteDefinition<In, Emits, A, AcksOf<Messages, In>> {
  // The same object: only its type is narrowed to the acks the handlers were seen to return.
  return definition as RouteDefinition<In, Emits, A> as RouteDefinition<In, Emits, A, AcksOf<Messages, In>>
}
