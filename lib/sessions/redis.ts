// Sessions in Redis, so that a client may resume on any instance, and a
// session survives its instance being killed outright (it was saved on every
// join and leave, and its expiry is pushed back while it lives). Redis expires
// them: no timer here.
//
// Keys (the hash tag puts a session's three keys on one Redis Cluster slot):
//   <prefix>{key}      hash  u = the user key as JSON, s = the state as JSON
//   <prefix>{key}:u    list  unicast messages sent while away, newest last
//   <prefix>{key}:r    list  replies, each JSON [id, frame], newest last
// `key` is the hash of a resume token (lib/recovery-ids.ts), never the token.
import type { SessionAppend, SessionReply, SessionState, SessionStore, SessionTaken } from '../../types/session.js'
import { FRT_ERR_SESSION_INVALID, FRT_ERR_SESSION_REDIS } from '../errors.js'

/** What the store needs of its client: an ioredis `Redis` or `Cluster` (e.g. `fastify.redis`). */
export interface RedisSessionsClient {
  defineCommand (name: string, definition: { lua: string, numberOfKeys?: number }): void
}

export interface RedisSessionsOptions {
  /** The caller's client; never closed by the store. */
  client: RedisSessionsClient
  /** Before every key. Default `'frt:s:'`. */
  prefix?: string
}

const SAVE = 'frtSessionSaveV1'
const APPEND = 'frtSessionAppendV1'
const TAKE = 'frtSessionTakeV1'

// KEYS: hash, unicast list, reply list. ARGV: user, state, ttl.
const SAVE_LUA = `
redis.call('HSET', KEYS[1], 'u', ARGV[1], 's', ARGV[2])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 1
`

// KEYS: as SAVE. ARGV: ttl, maxUnicast, maxReplies, number of unicast items, the unicast items, the replies.
// Nothing is added to a session that is not saved (taken or expired): no orphan lists.
const APPEND_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local unicast = tonumber(ARGV[4])
if unicast > 0 then
  redis.call('RPUSH', KEYS[2], unpack(ARGV, 5, 4 + unicast))
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
end
if #ARGV > 4 + unicast then
  redis.call('RPUSH', KEYS[3], unpack(ARGV, 5 + unicast, #ARGV))
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
return 1
`

// KEYS: as SAVE. ARGV: the taker's user. Single use: read and delete in one step; another user's take
// deletes nothing. Returns {0} missing, {2} another user, or {1, state, unicast list, reply list}.
const TAKE_LUA = `
local saved = redis.call('HMGET', KEYS[1], 'u', 's')
if not saved[1] then return {0} end
if saved[1] ~= ARGV[1] then return {2} end
local unicast = redis.call('LRANGE', KEYS[2], 0, -1)
local replies = redis.call('LRANGE', KEYS[3], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return {1, saved[2], unicast, replies}
`

type Save = (hash: string, unicast: string, replies: string, user: string, state: string, ttl: number) => Promise<number>
type Append = (hash: string, unicast: string, replies: string, ttl: number, maxUnicast: number, maxReplies: number,
  count: number, ...items: string[]) => Promise<number>
type Take = (hash: string, unicast: string, replies: string, user: string) => Promise<[0 | 2] | [1, string, string[], string[]]>

function invalid (field: string, rule: string): never {
  throw new FRT_ERR_SESSION_INVALID(`RedisSessions option ${field} must be ${rule}`)
}

function fail (err: Error): never {
  throw new FRT_ERR_SESSION_REDIS(err.message, { cause: err })
}

function readReply (text: string): SessionReply {
  const [id, frame] = JSON.parse(text) as [string | number, string]
  return { id, frame }
}

export class RedisSessions implements SessionStore {
  readonly #save: Save
  readonly #append: Append
  readonly #take: Take
  readonly #prefix: string

  constructor (options: RedisSessionsOptions) {
    if (options === null || typeof options !== 'object') invalid('options', 'an object with a client')
    const { client, prefix = 'frt:s:' } = options
    if (client === null || typeof client !== 'object' || typeof client.defineCommand !== 'function') {
      invalid('client', 'an ioredis Redis or Cluster client (e.g. fastify.redis)')
    }
    if (typeof prefix !== 'string') invalid('prefix', 'a string')
    this.#prefix = prefix
    const commands = client as unknown as Record<string, unknown>
    for (const [name, lua] of [[SAVE, SAVE_LUA], [APPEND, APPEND_LUA], [TAKE, TAKE_LUA]]) {
      if (typeof commands[name] !== 'function') client.defineCommand(name, { lua, numberOfKeys: 3 })
    }
    this.#save = (commands[SAVE] as Save).bind(client)
    this.#append = (commands[APPEND] as Append).bind(client)
    this.#take = (commands[TAKE] as Take).bind(client)
  }

  async save (key: string, state: SessionState, ttl: number): Promise<void> {
    const hash = this.#prefix + '{' + key + '}'
    await this.#save(hash, hash + ':u', hash + ':r', JSON.stringify(state.userKey), JSON.stringify(state), ttl).catch(fail)
  }

  async append (key: string, items: SessionAppend, ttl: number): Promise<boolean> {
    const hash = this.#prefix + '{' + key + '}'
    const unicast = items.unicast ?? []
    const replies = (items.replies ?? []).map(({ id, frame }) => JSON.stringify([id, frame]))
    return await this.#append(hash, hash + ':u', hash + ':r', ttl, items.maxUnicast, items.maxReplies,
      unicast.length, ...unicast, ...replies).catch(fail) === 1
  }

  async take (key: string, userKey: string | null): Promise<SessionTaken> {
    const hash = this.#prefix + '{' + key + '}'
    const reply = await this.#take(hash, hash + ':u', hash + ':r', JSON.stringify(userKey)).catch(fail)
    if (reply[0] === 0) return { found: false, reason: 'missing' }
    if (reply[0] === 2) return { found: false, reason: 'user' }
    const [, state, unicast, replies] = reply as [1, string, string[], string[]]
    return { found: true, state: JSON.parse(state) as SessionState, unicast, replies: replies.map(readReply) }
  }

  /** Nothing to release: the scripts stay defined on the client, which belongs to the caller. */
  close (): void {}
}
