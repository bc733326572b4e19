// The machine-readable contract: an AsyncAPI 3.0 document built from the declared routes. A pure function of
// the route table and the plugin options; it reads nothing at run time, so it can be generated in a build step.
// The document describes the server: `receive` operations are what clients send, `send` what the server sends.
import { CloseCode, ErrorCode, MessageType, PROTOCOL_VERSION } from './protocol.js'
import type { RouteAuth } from '../types/auth.js'
import type { AsyncApiInfo } from '../types/observability.js'

/** What the generator needs of a declared route: its path and the parts of its definition the wire shows. */
export interface DeclaredRoute {
  path: string
  definition: {
    messages: Record<string, { schema: unknown }>
    emits?: Record<string, unknown>
    auth?: RouteAuth
    joinable?: unknown
    presence?: boolean
  }
}

/** What the generator needs of the plugin options. */
export interface AsyncApiSettings {
  sources: readonly string[]
  protocolPrefix: string
  cookieName: string
  queryParam: string
  subprotocols: readonly string[]
}

type Json = Record<string, unknown>

const { Session, Reconnect } = MessageType

const ref = (path: string): Json => ({ $ref: path })
const envelope = (type: string, extra: Json, required: string[]): Json => ({
  type: 'object',
  required: ['type', ...required],
  properties: { type: { const: type }, ...extra }
})

const MessageId = { oneOf: [{ type: 'string', maxLength: 128 }, { type: 'number' }], description: 'Makes the message a request: it gets exactly one ack or error with the same id.' }
const Traceparent = {
  type: 'string',
  pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$',
  description: 'W3C trace context; continued by the server through the handler. An invalid value is ignored.'
}
const Member = { type: 'object', required: ['connId', 'userId'], properties: { connId: { type: 'string' }, userId: { type: ['string', 'null'] } } }
const Position = { type: 'object', required: ['seq', 'epoch'], properties: { seq: { type: 'integer', minimum: 0 }, epoch: { type: 'string' } } }
const RoomFields = {
  room: { type: 'string', description: 'Present on a room message: the room it was sent to.' },
  seq: { type: 'integer', minimum: 1, description: 'Per room, one more per message; a jump is a gap.' }
}

// The reserved messages, in components; a channel lists those its route uses.
const reserved: Record<string, Json> = {
  ack: {
    name: MessageType.Ack,
    summary: 'The reply to a request: what the handler returned, or null.',
    payload: envelope(MessageType.Ack, { id: MessageId, data: {} }, ['data'])
  },
  error: {
    name: MessageType.Error,
    summary: 'A refused message; with the request id when it had one.',
    payload: envelope(MessageType.Error, {
      id: MessageId,
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', description: `One of ${Object.values(ErrorCode).join(', ')}, or a handler's own code.` },
          message: { type: 'string' },
          details: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
          retryAfter: { type: 'number', description: 'With rate_limited: ms until a retry can succeed.' }
        }
      }
    }, ['error'])
  },
  ping: { name: MessageType.Ping, summary: 'Application-level ping; answered with pong.', payload: envelope(MessageType.Ping, { id: MessageId }, []) },
  pong: { name: MessageType.Pong, summary: 'The answer to ping.', payload: envelope(MessageType.Pong, {}, []) },
  auth: {
    name: MessageType.Auth,
    summary: 'The token: the first frame on a first-message auth route, or a refresh on any auth route. Acked with { exp }.',
    payload: envelope(MessageType.Auth, {
      id: MessageId,
      data: { type: 'object', required: ['token'], properties: { token: { type: 'string' }, resume: { type: 'string', description: '1.1: a session token to resume.' } } }
    }, ['data'])
  },
  roomJoin: {
    name: MessageType.RoomJoin,
    summary: 'Asks to join a room (routes with joinable). Acked once the client receives the room.',
    payload: envelope(MessageType.RoomJoin, {
      id: MessageId,
      data: { type: 'object', required: ['room'], properties: { room: { type: 'string', minLength: 1, maxLength: 128 }, since: Position } }
    }, ['data'])
  },
  roomLeave: {
    name: MessageType.RoomLeave,
    summary: 'Asks to leave a room (routes with joinable).',
    payload: envelope(MessageType.RoomLeave, {
      id: MessageId,
      data: { type: 'object', required: ['room'], properties: { room: { type: 'string', minLength: 1, maxLength: 128 } } }
    }, ['data'])
  },
  presenceJoin: {
    name: MessageType.PresenceJoin,
    summary: 'A member joined a room (routes with presence).',
    payload: envelope(MessageType.PresenceJoin, { ...RoomFields, data: Member }, ['room', 'seq', 'data'])
  },
  presenceLeave: {
    name: MessageType.PresenceLeave,
    summary: 'A member left a room (routes with presence).',
    payload: envelope(MessageType.PresenceLeave, { ...RoomFields, data: Member }, ['room', 'seq', 'data'])
  },
  session: {
    name: Session,
    summary: 'Protocol 1.1, routes with sessions on: the resume token of this connection, sent first.',
    payload: envelope(Session, {
      data: {
        type: 'object',
        required: ['token', 'window', 'recovered'],
        properties: { token: { type: 'string' }, window: { type: 'integer' }, recovered: { type: 'boolean' }, rooms: { type: 'array', items: Position } }
      }
    }, ['data'])
  },
  reconnect: {
    name: Reconnect,
    summary: 'Protocol 1.1: the server is restarting; reconnect after data.after ms. Followed by close 1012.',
    payload: envelope(Reconnect, { data: { type: 'object', required: ['after'], properties: { after: { type: 'integer', minimum: 0 } } } }, ['data'])
  }
}

const closeCodes: Record<string, number> = { ...CloseCode }

/** The AsyncAPI 3.0 document of these routes. */
export function asyncapi (routes: readonly DeclaredRoute[], settings: AsyncApiSettings, info: AsyncApiInfo = {}): Json {
  const channels: Json = {}
  const operations: Json = {}
  const messages: Json = {}
  const securitySchemes: Json = {}
  const used = new Set<string>()
  for (const { path, definition } of routes) {
    const id = channelId(path, used)
    const channelMessages: Json = {}
    const inbound: string[] = []
    const outbound: string[] = []
    for (const [type, { schema }] of Object.entries(definition.messages)) {
      const key = `${id}.in.${type}`
      channelMessages[key] = {
        name: type,
        title: type,
        payload: envelope(type, { id: MessageId, traceparent: Traceparent, data: jsonSchema(schema) }, ['data'])
      }
      inbound.push(key)
    }
    for (const [type, schema] of Object.entries(definition.emits ?? {})) {
      const key = `${id}.out.${type}`
      channelMessages[key] = { name: type, title: type, payload: envelope(type, { ...RoomFields, data: jsonSchema(schema) }, ['data']) }
      outbound.push(key)
    }
    const mode = authMode(definition.auth)
    const use = (name: string, list: string[]): void => {
      channelMessages[name] = ref(`#/components/messages/${name}`)
      messages[name] = reserved[name]
      list.push(name)
    }
    use('ping', inbound)
    use('ack', outbound)
    use('error', outbound)
    use('pong', outbound)
    use('reconnect', outbound)
    use('session', outbound)
    if (mode !== null) use('auth', inbound)
    if (definition.joinable !== undefined && definition.joinable !== false) {
      use('roomJoin', inbound)
      use('roomLeave', inbound)
    }
    if (definition.presence === true) {
      use('presenceJoin', outbound)
      use('presenceLeave', outbound)
    }
    const { address, parameters } = addressOf(path)
    channels[id] = {
      address,
      title: path,
      ...(parameters === null ? {} : { parameters }),
      messages: channelMessages,
      'x-fastify-realtime-auth': mode ?? 'none'
    }
    const security = mode === null ? undefined : schemesFor(mode, definition.auth, settings, securitySchemes)
    operations[`${id}.receive`] = {
      action: 'receive',
      channel: ref(`#/channels/${id}`),
      summary: `Messages clients send on ${path}`,
      ...(security === undefined ? {} : { security }),
      messages: inbound.map((key) => ref(`#/channels/${id}/messages/${key}`))
    }
    operations[`${id}.send`] = {
      action: 'send',
      channel: ref(`#/channels/${id}`),
      summary: `Messages the server sends on ${path}`,
      messages: outbound.map((key) => ref(`#/channels/${id}/messages/${key}`))
    }
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: info.title ?? 'fastify-realtime API',
      version: info.version ?? '1.0.0',
      description: info.description ??
        `Real-time routes over WebSocket: one JSON object per text frame (fastify-realtime protocol ${PROTOCOL_VERSION}, see PROTOCOL.md).`
    },
    defaultContentType: 'application/json',
    ...(info.servers === undefined ? {} : { servers: info.servers }),
    channels,
    operations,
    components: { messages, securitySchemes },
    'x-fastify-realtime': {
      protocolVersion: PROTOCOL_VERSION,
      subprotocols: [...settings.subprotocols],
      closeCodes,
      errorCodes: { ...ErrorCode }
    }
  }
}

function authMode (auth: RouteAuth | undefined): 'handshake' | 'message' | null {
  if (auth === undefined) return null
  if (typeof auth === 'string') return auth
  return auth.mode ?? 'handshake'
}

function schemesFor (mode: 'handshake' | 'message', auth: RouteAuth | undefined, settings: AsyncApiSettings, schemes: Json): Json[] {
  const add = (name: string, scheme: Json): Json => {
    schemes[name] = scheme
    return ref(`#/components/securitySchemes/${name}`)
  }
  if (mode === 'message') {
    return [add('firstMessage', {
      type: 'httpApiKey',
      in: 'query',
      name: 'none',
      description: `First-message auth: the first frame must be {"type":"${MessageType.Auth}","data":{"token":"<jwt>"}}; ` +
        `else close ${CloseCode.Unauthorized} (or ${CloseCode.Timeout} when it does not come in time). The query name is a placeholder: AsyncAPI has no scheme for an in-band token.`
    })]
  }
  const out: Json[] = []
  for (const source of settings.sources) {
    if (source === 'header') out.push(add('bearer', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }))
    if (source === 'cookie') out.push(add('cookie', { type: 'httpApiKey', in: 'cookie', name: settings.cookieName }))
    if (source === 'protocol') {
      out.push(add('subprotocol', {
        type: 'httpApiKey',
        in: 'header',
        name: 'Sec-WebSocket-Protocol',
        description: `An entry "${settings.protocolPrefix}<jwt>" (never selected as the subprotocol); offer an application protocol too.`
      }))
    }
  }
  if (typeof auth === 'object' && auth.query === true) {
    out.push(add('query', { type: 'httpApiKey', in: 'query', name: settings.queryParam }))
  }
  return out
}

// Channel ids must be unique keys usable in a $ref: /chat/:room -> chat_room.
function channelId (path: string, used: Set<string>): string {
  const base = path.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '') || 'root'
  let id = base
  for (let i = 2; used.has(id); i++) id = `${base}_${i}`
  used.add(id)
  return id
}

// Fastify's `:param` is AsyncAPI's `{param}`.
function addressOf (path: string): { address: string, parameters: Json | null } {
  const names: string[] = []
  const address = path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => {
    names.push(name)
    return `{${name}}`
  })
  if (names.length === 0) return { address, parameters: null }
  return { address, parameters: Object.fromEntries(names.map((name) => [name, {}])) }
}

/** A TypeBox schema as plain JSON Schema: TypeBox's own `~`-keys (and its symbols) removed. */
export function jsonSchema (schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(jsonSchema)
  if (typeof schema !== 'object' || schema === null) return schema
  const out: Json = {}
  for (const [key, value] of Object.entries(schema)) {
    if (!key.startsWith('~')) out[key] = jsonSchema(value)
  }
  return out
}
