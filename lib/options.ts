// Plugin options: one schema, compiled once at import, resolved once at register
// into a frozen object. A bad option fails the register with a coded error that
// names the field.
import Type from 'typebox'
import { Compile } from 'typebox/compile'
import { FRT_ERR_OPTIONS_INVALID } from './errors.js'
import type { RealtimeOptions } from '../types/options.js'

const OptionsSchema = Type.Object({
  maxPayload: Type.Optional(Type.Integer({ minimum: 1 })),
  perMessageDeflate: Type.Optional(Type.Union([Type.Boolean(), Type.Object({})])),
  closeTimeout: Type.Optional(Type.Integer({ minimum: 1 })),
  shutdownGrace: Type.Optional(Type.Integer({ minimum: 0 })),
  errorBudget: Type.Optional(Type.Integer({ minimum: 0 })),
  validateEmits: Type.Optional(Type.Boolean()),
  websocket: Type.Optional(Type.Object({}))
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
  websocket: {} as Record<string, unknown>
}

export type ResolvedOptions = Readonly<typeof defaults>

export function resolveOptions (options: RealtimeOptions = {}): ResolvedOptions {
  if (!checkOptions.Check(options)) {
    const [first] = checkOptions.Errors(options)
    const field = first.instancePath === ''
      ? String((first.params as { additionalProperties?: string[] }).additionalProperties?.[0] ?? 'options')
      : first.instancePath.slice(1).replaceAll('/', '.')
    throw new FRT_ERR_OPTIONS_INVALID(field, first.message)
  }
  return Object.freeze({ ...defaults, ...options })
}
