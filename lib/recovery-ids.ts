// The random identifiers of recovery: room epochs and resume tokens. A token
// is shown to its client once and stored only as a hash, so a leaked store
// (a Redis dump, a log of keys) does not hand out live sessions.
import { createHash, randomBytes } from 'node:crypto'

// 96 bits: two lives of one room never share an epoch in practice. 16 characters.
const EPOCH_BYTES = 12
// 144 bits (the contract asks for at least 128): 24 base64url characters, no padding.
const TOKEN_BYTES = 18
const TOKEN = /^[\w-]{24}$/

/** A fresh room epoch: 16 base64url characters. */
export function newEpoch (): string {
  return randomBytes(EPOCH_BYTES).toString('base64url')
}

/**
 * Epochs for a store that must offer one on every call (the Redis scripts create a room's epoch when they find
 * none, and Lua has no good randomness): a random prefix of this source plus a counter, so no two calls ever
 * offer the same epoch, at the cost of an increment rather than a random draw. At most 22 characters.
 */
export function epochSource (): () => string {
  const prefix = randomBytes(8).toString('base64url')
  let count = 0
  return () => prefix + (count++).toString(36)
}

/** A fresh resume token: 144 random bits, 24 base64url characters. */
export function newResumeToken (): string {
  return randomBytes(TOKEN_BYTES).toString('base64url')
}

/** Whether a value a client sent can be one of our tokens; checked before hashing anything it sent. */
export function isResumeToken (value: unknown): value is string {
  return typeof value === 'string' && TOKEN.test(value)
}

/** The key a session is stored under: the token's SHA-256, base64url. The token itself is never stored. */
export function resumeKey (token: string): string {
  return createHash('sha256').update(token).digest('base64url')
}
