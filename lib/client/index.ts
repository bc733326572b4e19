// fastify-realtime/client: the browser and Node client. Nothing here imports
// server code; types come from the route definition with `import type`.
export { createClient, RealtimeClient, type ClientOptions, type NetworkEvents } from './client.js'
export { RealtimeError, ClientErrorCode, isRealtimeError, type KnownErrorCode } from './errors.js'
export { fullJitter, type BackoffOptions } from './backoff.js'
export type {
  AckOf, ClientEvents, CloseEvent, ConnectionState, EmitData, GapEvent, InboundData, MessageMeta, PresenceMember,
  RequestOptions, SendOptions, WebSocketConstructor, WebSocketLike
} from './types.js'
export { Backoff, CloseCode, ErrorCode, MessageType, PROTOCOL_VERSION, RetryPolicy, type RetryAction } from '../wire.js'
