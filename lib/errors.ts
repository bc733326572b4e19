// Every error fastify-realtime creates, made once here with @fastify/error.
// Codes are FRT_ERR_<AREA>_<WHAT>; test/errors.test.ts checks each code equals
// its key and is listed in the README.
// The named import, not the default: the emitted .d.ts then names `FastifyErrorConstructor` through an
// import that resolves under every moduleResolution (with the default import, `createError.X` in errors.d.ts
// is not a namespace under "bundler" without esModuleInterop: TS2503, issue 11).
import { createError } from '@fastify/error'

export const FRT_ERR_OPTIONS_INVALID = createError(
  'FRT_ERR_OPTIONS_INVALID', 'Invalid fastify-realtime option %s: %s', 500, TypeError)

export const FRT_ERR_ROUTE_INVALID = createError(
  'FRT_ERR_ROUTE_INVALID', 'Invalid real-time route %s: %s', 500, TypeError)

export const FRT_ERR_ROUTE_RESERVED_TYPE = createError(
  'FRT_ERR_ROUTE_RESERVED_TYPE', 'Real-time route %s declares the reserved message type "%s"', 500, TypeError)

export const FRT_ERR_ROUTE_DELIVERY_CONFLICT = createError(
  'FRT_ERR_ROUTE_DELIVERY_CONFLICT',
  'Real-time route %s declares a "delivery" for "%s" unlike route %s: app.realtime.to() could not tell which applies (share one policy, the same latest function)',
  500, TypeError)

export const FRT_ERR_EMIT_UNKNOWN_TYPE = createError(
  'FRT_ERR_EMIT_UNKNOWN_TYPE', 'Message type "%s" is not declared in the route\'s emits', 500, TypeError)

export const FRT_ERR_EMIT_INVALID = createError(
  'FRT_ERR_EMIT_INVALID', 'Outgoing "%s" message does not match its schema: %s', 500, TypeError)

export const FRT_ERR_STORE_INVALID = createError(
  'FRT_ERR_STORE_INVALID', 'Invalid rate-limit store: %s', 500, TypeError)

export const FRT_ERR_STORE_REDIS = createError(
  'FRT_ERR_STORE_REDIS', 'Redis rate-limit store failed: %s', 500)

export const FRT_ERR_TESTING_TIMEOUT = createError(
  'FRT_ERR_TESTING_TIMEOUT', 'Timed out after %d ms waiting for %s', 500)

export const FRT_ERR_TESTING_CLOSED = createError(
  'FRT_ERR_TESTING_CLOSED', 'The socket closed (code %d) while waiting for %s', 500)

export const FRT_ERR_TESTING_REQUEST = createError(
  'FRT_ERR_TESTING_REQUEST', 'Request "%s" failed with %s: %s', 500)

export const FRT_ERR_AUTH_NO_JWT = createError(
  'FRT_ERR_AUTH_NO_JWT', 'Real-time route %s requires auth, but @fastify/jwt is not registered', 500, TypeError)

export const FRT_ERR_AUTH_TOKEN_MISSING = createError(
  'FRT_ERR_AUTH_TOKEN_MISSING', 'No bearer token in the request', 401)

export const FRT_ERR_AUTH_TOKEN_EXPIRED = createError(
  'FRT_ERR_AUTH_TOKEN_EXPIRED', 'The token has expired', 401)

export const FRT_ERR_AUTH_TOKEN_INVALID = createError(
  'FRT_ERR_AUTH_TOKEN_INVALID', 'The token is invalid', 401)

export const FRT_ERR_ORIGIN_FORBIDDEN = createError(
  'FRT_ERR_ORIGIN_FORBIDDEN', 'The request origin is not allowed', 403)

export const FRT_ERR_CAPS_ADDRESS = createError(
  'FRT_ERR_CAPS_ADDRESS', 'Too many connections from this address', 429)

export const FRT_ERR_CAPS_USER = createError(
  'FRT_ERR_CAPS_USER', 'Too many connections for this user', 429)

export const FRT_ERR_CAPS_TOTAL = createError(
  'FRT_ERR_CAPS_TOTAL', 'The server has no room for more connections', 503)

export const FRT_ERR_ROOM_NAME = createError(
  'FRT_ERR_ROOM_NAME', 'Invalid room name %s: use 1-128 characters of A-Z a-z 0-9 _ - . : @ /', 400, TypeError)

export const FRT_ERR_ROOM_LIMIT = createError(
  'FRT_ERR_ROOM_LIMIT', 'A connection may be in at most %d rooms', 400)

export const FRT_ERR_RATE_LIMITED = createError(
  'FRT_ERR_RATE_LIMITED', 'Too many messages; retry later', 429)

export const FRT_ERR_ADAPTER_INVALID = createError(
  'FRT_ERR_ADAPTER_INVALID', 'Invalid fan-out adapter: %s', 500, TypeError)

export const FRT_ERR_ADAPTER_REDIS = createError(
  'FRT_ERR_ADAPTER_REDIS', 'Redis fan-out adapter: %s', 500)

export const FRT_ERR_ROUTE_UPGRADE_REQUIRED = createError(
  'FRT_ERR_ROUTE_UPGRADE_REQUIRED', 'This route only accepts WebSocket upgrades', 426)

export const FRT_ERR_INSPECT_QUERY = createError(
  'FRT_ERR_INSPECT_QUERY', 'Invalid inspect query: %s %s', 400, TypeError)

export const FRT_ERR_HISTORY_INVALID = createError(
  'FRT_ERR_HISTORY_INVALID', 'Invalid history store: %s', 500, TypeError)

export const FRT_ERR_HISTORY_REDIS = createError(
  'FRT_ERR_HISTORY_REDIS', 'Redis history store failed: %s', 500)

export const FRT_ERR_SESSION_INVALID = createError(
  'FRT_ERR_SESSION_INVALID', 'Invalid session store: %s', 500, TypeError)

export const FRT_ERR_SESSION_REDIS = createError(
  'FRT_ERR_SESSION_REDIS', 'Redis session store failed: %s', 500)

export const FRT_ERR_AUTH_KEY_PROVIDER = createError(
  'FRT_ERR_AUTH_KEY_PROVIDER', 'Could not verify the token: the key provider or key configuration failed (%s)', 500)

export const FRT_ERR_STORE_TIMEOUT = createError(
  'FRT_ERR_STORE_TIMEOUT', 'The rate-limit store did not answer within %d ms', 503)

export const FRT_ERR_SHUTDOWN_DRAINING = createError(
  'FRT_ERR_SHUTDOWN_DRAINING', 'The server is restarting; reconnect to another instance', 503)

export const FRT_ERR_SNAPSHOT_TIMEOUT = createError(
  'FRT_ERR_SNAPSHOT_TIMEOUT', 'The snapshot of room %s took longer than %d ms', 408)

export const FRT_ERR_SSE_SESSION_MISSING = createError(
  'FRT_ERR_SSE_SESSION_MISSING', 'A message needs the Realtime-Session header of its stream', 400)

export const FRT_ERR_SSE_SESSION_UNKNOWN = createError(
  'FRT_ERR_SSE_SESSION_UNKNOWN', 'No open stream has this session id on this route', 404)

export const FRT_ERR_SSE_SESSION_USER = createError(
  'FRT_ERR_SSE_SESSION_USER', 'The stream of this session belongs to another user', 403)

export const FRT_ERR_SSE_DUPLICATE = createError(
  'FRT_ERR_SSE_DUPLICATE', 'A request with this id is already waiting for its reply', 409)

export const FRT_ERR_SSE_BUSY = createError(
  'FRT_ERR_SSE_BUSY', 'At most %d requests may wait for their reply at once', 429)

export const FRT_ERR_SSE_CLOSED = createError(
  'FRT_ERR_SSE_CLOSED', 'The stream closed before the reply', 410)

export const FRT_ERR_AUTH_TICKET_INVALID = createError(
  'FRT_ERR_AUTH_TICKET_INVALID', 'The ticket is unknown, used or expired', 401)

export const FRT_ERR_SSE_SHUTDOWN = createError(
  'FRT_ERR_SSE_SHUTDOWN', 'The server is shutting down', 503)
