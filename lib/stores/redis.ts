// The rate-limit store shared by every instance: one token bucket per key in
// Redis, taken from by one Lua script, so a limit holds across the cluster.
import type { RateLimitResult, RateLimitStore } from '../../types/store.js'
import { FRT_ERR_STORE_INVALID, FRT_ERR_STORE_REDIS } from '../errors.js'

/**
 * What the store needs of its client: an ioredis `Redis` or `Cluster`, such as `fastify.redis` from
 * @fastify/redis. Typed by shape so that fastify-realtime depends on no ioredis version.
 */
export interface RedisStoreClient {
  defineCommand (name: string, definition: { lua: string, numberOfKeys?: number }): void
}

export interface RedisStoreOptions {
  /** The caller's client; the store never closes it. */
  client: RedisStoreClient
  /** Put before every bucket key. Default `'frt:rl:'`. */
  prefix?: string
}

// The version is in the name so that two fastify-realtime versions sharing a
// client never run each other's script.
const COMMAND = 'frtTakeTokensV1'

// KEYS[1]: the bucket, a hash of `tokens` and `ts` (ms on the Redis clock).
// ARGV: rate (tokens per second), burst, cost. Returns {allowed 0|1, remaining, retryAfter ms}.
// The clock is Redis's TIME, so instances with skewed clocks still agree. The key
// expires when the bucket would be full again: a missing bucket is a full one.
const LUA = `
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local tokens = burst
local ts = now
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
if state[1] then
  tokens = tonumber(state[1])
  ts = tonumber(state[2])
  if now > ts then
    tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
    ts = now
  end
end
if tokens < cost then
  return {0, math.floor(tokens), math.ceil((cost - tokens) * 1000 / rate)}
end
tokens = tokens - cost
local ttl = math.ceil(ts - now + (burst - tokens) * 1000 / rate)
if ttl > 0 then
  redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', ts)
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('DEL', KEYS[1])
end
return {1, math.floor(tokens), 0}
`

type Reply = [allowed: number, remaining: number, retryAfter: number]
type TakeTokens = (key: string, rate: number, burst: number, cost: number) => Promise<Reply>

function toResult ([allowed, remaining, retryAfter]: Reply): RateLimitResult {
  return { allowed: allowed === 1, remaining, retryAfter }
}

function fail (err: Error): never {
  throw new FRT_ERR_STORE_REDIS(err.message, { cause: err })
}

function invalid (field: string, rule: string): never {
  throw new FRT_ERR_STORE_INVALID(`RedisStore option ${field} must be ${rule}`)
}

export class RedisStore implements RateLimitStore {
  /** The caller's client (never closed by the store); its 'error' event is watched when nobody else does (lib/redis-errors.ts). */
  readonly client: RedisStoreClient
  readonly #take: TakeTokens
  readonly #prefix: string

  constructor (options: RedisStoreOptions) {
    if (options === null || typeof options !== 'object') invalid('options', 'an object with a client')
    const { client, prefix = 'frt:rl:' } = options
    if (client === null || typeof client !== 'object' || typeof client.defineCommand !== 'function') {
      invalid('client', 'an ioredis Redis or Cluster client (e.g. fastify.redis)')
    }
    if (typeof prefix !== 'string') invalid('prefix', 'a string')
    const commands = client as unknown as Record<string, TakeTokens | undefined>
    // Once per client: another store on the same client reuses the script and
    // ioredis's cached SHA (it falls back to EVAL by itself after a Redis restart).
    if (typeof commands[COMMAND] !== 'function') {
      client.defineCommand(COMMAND, { lua: LUA, numberOfKeys: 1 })
    }
    this.#take = (commands[COMMAND] as TakeTokens).bind(client)
    this.#prefix = prefix
    this.client = client
  }

  take (key: string, rate: number, burst: number, cost = 1): Promise<RateLimitResult> {
    return this.#take(this.#prefix + key, rate, burst, cost).then(toResult, fail)
  }

  /** Nothing to release: the script stays defined on the client, which belongs to the caller. */
  close (): void {}
}
