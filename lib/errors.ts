// Every error fastify-realtime creates, made once here with @fastify/error.
// Codes are FRT_ERR_<AREA>_<WHAT>; test/errors.test.ts checks each code equals
// its key and is listed in the README.
import createError from '@fastify/error'

export const FRT_ERR_OPTIONS_INVALID = createError(
  'FRT_ERR_OPTIONS_INVALID', 'Invalid fastify-realtime option %s: %s', 500, TypeError)

export const FRT_ERR_ROUTE_INVALID = createError(
  'FRT_ERR_ROUTE_INVALID', 'Invalid real-time route %s: %s', 500, TypeError)

export const FRT_ERR_ROUTE_RESERVED_TYPE = createError(
  'FRT_ERR_ROUTE_RESERVED_TYPE', 'Real-time route %s declares the reserved message type "%s"', 500, TypeError)

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
