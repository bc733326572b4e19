// Room history in Redis, shared by every instance: per room a Stream of the
// last messages and a small hash holding the room's seq and epoch. One Lua
// script numbers a message, appends it to the stream and publishes it (PUBLISH,
// or SPUBLISH when sharded), so a seq is never taken without its message being
// kept and published, and history, seq and fan-out cannot disagree. It is the
// RedisAdapter's publish path with history added: same envelope, same channel.
//
// Keys (the hash tag {room} puts all of a room's keys and its channel on one
// Redis Cluster slot):
//   <prefix>{room}:h        hash  e = epoch, s = seq, t = ms of the newest entry
//   <prefix>{room}:x        stream, entry id `<ms>-<seq>`, one field d = the frame
//   <prefix>{room}:d:<id>   string `<seq>:<epoch>`, a published message id, for dedupeTtl
//
// The entry id carries both the time (so MINID trims by age) and the seq (so a
// read checks that the range it returns has no hole). Only a suffix of the
// stream is ever read: the `count` newest entries must be exactly the missed range.
//
// A room's life: its hash is created with a new epoch by the first read or
// append that finds none (or finds a seq but no stream: the stream was deleted
// or lost), deleting any stream left from before. Redis restarted without
// persistence, FLUSHALL, a deleted key: the next call starts a new life, and
// every old position is refused with reason 'epoch'.
import type {
  HistoryAppendOptions, HistoryAppended, HistoryBounds, HistoryRead, HistoryStore, NotRecoverable, RoomPosition
} from '../../types/history.js'
import { FRT_ERR_HISTORY_INVALID, FRT_ERR_HISTORY_REDIS } from '../errors.js'
import { epochSource } from '../recovery-ids.js'

/** What the store needs of its client: an ioredis `Redis` or `Cluster` (e.g. `fastify.redis`). */
export interface RedisHistoryClient {
  defineCommand (name: string, definition: { lua: string, numberOfKeys?: number }): void
}

export interface RedisHistoryOptions {
  /** The caller's client; never closed by the store. */
  client: RedisHistoryClient
  /** Before every key, and the channel. Default `'frt:'` (the RedisAdapter's). */
  prefix?: string
  /** Most messages kept per room (exact MAXLEN). Default 1000. */
  maxCount?: number
  /** Milliseconds a message is kept (MINID on the Redis clock). Default 120000. */
  maxAge?: number
  /** Milliseconds a silent room's seq, epoch and stream are kept; then its next message starts a new life. Default 86400000. */
  ttl?: number
  /** Milliseconds a message id is remembered to refuse a retried append. Default 60000. */
  dedupeTtl?: number
  /**
   * Publish each appended message on the room's channel `<prefix>{room}` as `header + seq + ':' + frame` (the
   * RedisAdapter's envelope: `header` is its `roomHeader(id, false)`). Null (default): keep only, publish nothing.
   */
  publish?: { header: string, sharded: boolean } | null
}

// The version is in the names so that two fastify-realtime versions sharing a
// client never run each other's scripts.
const APPEND = 'frtHistoryAppendV1'
const SINCE = 'frtHistorySinceV1'

// Shared by both scripts: find the room's life, or start a new one with ARGV[1]
// (a fresh epoch from the caller: Lua in Redis has no good randomness). A hash
// with seq > 0 but no stream means the stream was lost: the messages it held
// are gone, so the numbering cannot go on in the same epoch.
const LIFE = `
if redis.replicate_commands then redis.replicate_commands() end
local meta = redis.call('HMGET', KEYS[1], 'e', 's', 't')
local epoch = meta[1]
local seq = tonumber(meta[2])
local last = tonumber(meta[3])
if not epoch or (seq > 0 and redis.call('EXISTS', KEYS[2]) == 0) then
  epoch = ARGV[1]
  seq = 0
  last = 0
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 's', 0, 't', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`

// KEYS: hash, stream, dedupe key (the hash again when there is no id).
// ARGV: new epoch, ttl, head, tail, maxCount, maxAge, skipped, dedupe ttl ('0': no id), channel ('': do not
// publish), header, publish command. Returns {seq, epoch, duplicate 0|1}.
const APPEND_LUA = `
if ARGV[8] ~= '0' then
  local done = redis.call('GET', KEYS[3])
  if done then
    local colon = string.find(done, ':', 1, true)
    return {tonumber(string.sub(done, 1, colon - 1)), string.sub(done, colon + 1), 1}
  end
end
${LIFE}
seq = redis.call('HINCRBY', KEYS[1], 's', 1 + tonumber(ARGV[7]))
-- Entry ids must grow: a clock that stepped back reuses the newest entry's ms (the seq part still grows).
if now < last then now = last end
redis.call('HSET', KEYS[1], 't', now)
local frame = ARGV[3] .. seq .. ARGV[4]
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], now .. '-' .. seq, 'd', frame)
redis.call('XTRIM', KEYS[2], 'MINID', now - tonumber(ARGV[6]) + 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if ARGV[9] ~= '' then redis.call(ARGV[11], ARGV[9], ARGV[10] .. seq .. ':' .. frame) end
if ARGV[8] ~= '0' then redis.call('SET', KEYS[3], seq .. ':' .. epoch, 'PX', ARGV[8]) end
return {seq, epoch, 0}
`

// KEYS: hash, stream. ARGV: new epoch, ttl, since seq ('': position only), since epoch, maxCount, maxBytes,
// maxAge. Returns {seq, epoch, 'ok', frame...} with the frames of since + 1 .. seq in order, or
// {seq, epoch, reason}. The range is the newest seq - since entries; it is returned only when every one of
// them is there, with the expected seq, young enough, and within the bounds.
const SINCE_LUA = `
${LIFE}
if ARGV[3] == '' then return {seq, epoch, 'ok'} end
if ARGV[4] ~= epoch then return {seq, epoch, 'epoch'} end
local from = tonumber(ARGV[3])
if from > seq then return {seq, epoch, 'ahead'} end
local count = seq - from
if count == 0 then return {seq, epoch, 'ok'} end
if count > tonumber(ARGV[5]) then return {seq, epoch, 'bound'} end
local entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', count)
if #entries < count then return {seq, epoch, 'trimmed'} end
local oldest = now - tonumber(ARGV[7])
local maxBytes = tonumber(ARGV[6])
local bytes = 0
local out = {seq, epoch, 'ok'}
for i = count, 1, -1 do
  local id = entries[i][1]
  local dash = string.find(id, '-', 1, true)
  if tonumber(string.sub(id, dash + 1)) ~= seq - i + 1 or tonumber(string.sub(id, 1, dash - 1)) <= oldest then
    return {seq, epoch, 'trimmed'}
  end
  local frame = entries[i][2][2]
  bytes = bytes + #frame
  if bytes > maxBytes then return {seq, epoch, 'bound'} end
  out[#out + 1] = frame
end
return out
`

type Append = (hash: string, stream: string, dedupe: string, epoch: string, ttl: string, head: string, tail: string,
  maxCount: string, maxAge: string, skipped: number, dedupeTtl: string, channel: string, header: string, command: string) => Promise<[number, string, number]>
type Since = (hash: string, stream: string, epoch: string, ttl: string, since: string, sinceEpoch: string,
  maxCount: number, maxBytes: number, maxAge: string) => Promise<Array<number | Buffer>>

const defaults = { prefix: 'frt:', maxCount: 1000, maxAge: 120_000, ttl: 86_400_000, dedupeTtl: 60_000 }

function invalid (field: string, rule: string): never {
  throw new FRT_ERR_HISTORY_INVALID(`RedisHistory option ${field} must be ${rule}`)
}

function positive (options: RedisHistoryOptions, field: 'maxCount' | 'maxAge' | 'ttl' | 'dedupeTtl'): string {
  const value = options[field] ?? defaults[field]
  if (!Number.isSafeInteger(value) || value < 1) invalid(field, 'a positive integer')
  return String(value)
}

function fail (err: Error): never {
  throw new FRT_ERR_HISTORY_REDIS(err.message, { cause: err })
}

export class RedisHistory implements HistoryStore {
  readonly #append: Append
  readonly #since: Since
  readonly #prefix: string
  readonly #maxCount: string
  readonly #maxAge: string
  readonly #ttl: string
  readonly #dedupeTtl: string
  readonly #header: string
  readonly #command: string
  readonly #publish: boolean
  readonly #epoch = epochSource()

  constructor (options: RedisHistoryOptions) {
    if (options === null || typeof options !== 'object') invalid('options', 'an object with a client')
    const { client, prefix = defaults.prefix, publish = null } = options
    if (client === null || typeof client !== 'object' || typeof client.defineCommand !== 'function') {
      invalid('client', 'an ioredis Redis or Cluster client (e.g. fastify.redis)')
    }
    if (typeof prefix !== 'string') invalid('prefix', 'a string')
    if (publish !== null && (typeof publish !== 'object' || typeof publish.header !== 'string' || typeof publish.sharded !== 'boolean')) {
      invalid('publish', 'null or { header: string, sharded: boolean }')
    }
    this.#prefix = prefix
    this.#maxCount = positive(options, 'maxCount')
    this.#maxAge = positive(options, 'maxAge')
    this.#ttl = positive(options, 'ttl')
    this.#dedupeTtl = positive(options, 'dedupeTtl')
    this.#publish = publish !== null
    this.#header = publish?.header ?? ''
    this.#command = publish?.sharded === true ? 'SPUBLISH' : 'PUBLISH'
    const commands = client as unknown as Record<string, unknown>
    // Once per client: other stores on the same client reuse the scripts and
    // ioredis's cached SHAs (it falls back to EVAL by itself after a Redis restart).
    if (typeof commands[APPEND] !== 'function') client.defineCommand(APPEND, { lua: APPEND_LUA, numberOfKeys: 3 })
    if (typeof commands[SINCE] !== 'function') client.defineCommand(SINCE, { lua: SINCE_LUA, numberOfKeys: 2 })
    this.#append = (commands[APPEND] as Append).bind(client)
    // The Buffer variant ioredis defines alongside: frames come back as the bytes that were published.
    this.#since = (commands[SINCE + 'Buffer'] as Since).bind(client)
  }

  async append (room: string, head: string, tail: string, options?: HistoryAppendOptions): Promise<HistoryAppended> {
    const key = this.#prefix + '{' + room + '}'
    const id = options?.id
    const [seq, epoch, duplicate] = await this.#append(key + ':h', key + ':x', id === undefined ? key + ':h' : key + ':d:' + id,
      this.#epoch(), this.#ttl, head, tail, this.#maxCount, this.#maxAge, options?.skipped ?? 0,
      id === undefined ? '0' : this.#dedupeTtl, this.#publish ? key : '', this.#header, this.#command).catch(fail)
    return { seq, epoch, duplicate: duplicate === 1 }
  }

  async since (room: string, since: RoomPosition | null, bounds: HistoryBounds): Promise<HistoryRead> {
    const key = this.#prefix + '{' + room + '}'
    // Not a seq this room ever had: asked as a position far ahead, so the script answers 'ahead' with the position.
    if (since !== null && (!Number.isSafeInteger(since.seq) || since.seq < 0)) since = { seq: Number.MAX_SAFE_INTEGER, epoch: since.epoch }
    const reply = await this.#since(key + ':h', key + ':x', this.#epoch(), this.#ttl,
      since === null ? '' : String(since.seq), since === null ? '' : since.epoch,
      bounds.maxCount, bounds.maxBytes, this.#maxAge).catch(fail)
    const seq = reply[0] as number
    const epoch = reply[1].toString()
    const status = reply[2].toString()
    if (status !== 'ok') return { recovered: false, seq, epoch, reason: status as NotRecoverable }
    return { recovered: true, seq, epoch, frames: reply.slice(3) as Buffer[] }
  }

  /** Nothing to release: the scripts stay defined on the client, which belongs to the caller. */
  close (): void {}
}
