// The Lua scripts of the Redis adapter (lib/adapters/redis.ts), defined once per
// client: publishing with a cluster-wide seq, and presence. Kept apart so that
// the adapter reads as subscriptions, ordering and presence bookkeeping.

/** What defining the scripts needs of the app's client. */
export interface ScriptClient {
  defineCommand (name: string, definition: { lua: string, numberOfKeys?: number }): void
}

export interface Scripts {
  readonly publish: Publish
  readonly presenceWrite: PresenceWrite
  readonly presenceRefresh: PresenceRefresh
  readonly presenceList: PresenceList
  readonly counts: Counts
}

// The version is in the names so that two fastify-realtime versions sharing a
// client never run each other's scripts.
const PUBLISH = 'frtPublishV1'
const PRESENCE_WRITE = 'frtPresenceWriteV1'
const PRESENCE_REFRESH = 'frtPresenceRefreshV1'
const PRESENCE_LIST = 'frtPresenceListV1'
const COUNTS = 'frtCountsV1'

// KEYS[1]: the room's seq counter (on a cluster it also routes the call to the
// shard of the room's channel: both carry the hash tag {room}).
// ARGV: channel, header, head, tail, seq ttl ('0': no seq, the message is `header .. head`), '1' when sharded,
// and how many of this room's messages this instance could not publish since its last publish: the seq
// skips them, so that the other instances see the gap (and this one's members, which got them numbered
// locally, see none). INCR and PUBLISH in one script: a seq is never taken without its message being
// published, and the frame gets its seq without being serialized again.
const PUBLISH_LUA = `
local publish = 'PUBLISH'
if ARGV[6] == '1' then publish = 'SPUBLISH' end
if ARGV[5] == '0' then
  redis.call(publish, ARGV[1], ARGV[2] .. ARGV[3])
  return 0
end
local seq = redis.call('INCRBY', KEYS[1], 1 + tonumber(ARGV[7]))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call(publish, ARGV[1], ARGV[2] .. seq .. ':' .. ARGV[3] .. seq .. ARGV[4])
return seq
`

// KEYS[1]: the room's set of instances with members; KEYS[2]: this instance's hash connId -> userId.
// ARGV: instance id, ttl, mode ('add', 'remove' or 'replace'), then connId[, userId] pairs.
// Both expire unless refreshed, so a dead instance's members leave within the ttl.
const PRESENCE_WRITE_LUA = `
local mode = ARGV[3]
if mode == 'replace' then redis.call('DEL', KEYS[2]) end
if mode == 'remove' then
  for i = 4, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end
else
  for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  redis.call('SADD', KEYS[1], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('SREM', KEYS[1], ARGV[1])
end
return 1
`

// Same keys and ARGV[1..2]. Returns 0 when this instance's hash is gone (Redis
// restarted, or it expired during an outage): the adapter then rewrites it.
const PRESENCE_REFRESH_LUA = `
if redis.call('PEXPIRE', KEYS[2], ARGV[2]) == 0 then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`

// KEYS[1]: the room's set of instances. ARGV[1]: this instance (left out: the
// core lists its own members). Returns a flat list of connId, userId pairs; the
// entries of instances whose hash expired are removed on the way. The hash keys
// are derived from KEYS[1] and share its hash tag, hence its cluster slot.
const PRESENCE_LIST_LUA = `
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if id ~= ARGV[1] then
    local members = redis.call('HGETALL', KEYS[1] .. ':' .. id)
    if #members == 0 then redis.call('SREM', KEYS[1], id) end
    for _, value in ipairs(members) do out[#out + 1] = value end
  end
end
return out
`

// KEYS[1]: the hash of every instance's counts, `<prefix>{instances}`: field instance id, value
// `<expires at, ms>:<counts JSON>` (the clock is Redis's, so the instances' clocks need not agree).
// ARGV: instance id, this instance's counts ('' to write nothing: read only; '-' to remove its entry), ttl (ms),
// the most entries to return. Writes this instance's entry, removes every expired (or malformed) one on the way,
// and returns the others' as a flat list of id, JSON. The hash itself expires when no instance writes any more.
const COUNTS_LUA = `
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if ARGV[2] == '-' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return {}
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], (now + tonumber(ARGV[3])) .. ':' .. ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local value = all[i + 1]
  local colon = string.find(value, ':', 1, true)
  local expires = colon and tonumber(string.sub(value, 1, colon - 1))
  if expires == nil or expires <= now then
    redis.call('HDEL', KEYS[1], all[i])
  elseif all[i] ~= ARGV[1] and #out < tonumber(ARGV[4]) * 2 then
    out[#out + 1] = all[i]
    out[#out + 1] = string.sub(value, colon + 1)
  end
end
return out
`

export type Publish = (key: string, channel: string, header: string, head: string, tail: string, ttl: string, sharded: string, skipped: number) => Promise<number>
export type PresenceWrite = (set: string, hash: string, id: string, ttl: string, mode: string, ...pairs: string[]) => Promise<number>
export type PresenceRefresh = (set: string, hash: string, id: string, ttl: string) => Promise<number>
export type PresenceList = (set: string, id: string) => Promise<string[]>
export type Counts = (hash: string, id: string, entry: string, ttl: string, max: string) => Promise<string[]>

/**
 * Defines the scripts on the client, once per client: other adapters on the same client reuse the scripts
 * and ioredis's cached SHAs (it falls back to EVAL by itself after a Redis restart).
 */
export function defineScripts (client: ScriptClient): Scripts {
  const commands = client as unknown as Record<string, unknown>
  for (const [name, lua, keys] of [[PUBLISH, PUBLISH_LUA, 1], [PRESENCE_WRITE, PRESENCE_WRITE_LUA, 2],
    [PRESENCE_REFRESH, PRESENCE_REFRESH_LUA, 2], [PRESENCE_LIST, PRESENCE_LIST_LUA, 1], [COUNTS, COUNTS_LUA, 1]] as const) {
    if (typeof commands[name] !== 'function') client.defineCommand(name, { lua, numberOfKeys: keys })
  }
  return {
    publish: (commands[PUBLISH] as Publish).bind(client),
    presenceWrite: (commands[PRESENCE_WRITE] as PresenceWrite).bind(client),
    presenceRefresh: (commands[PRESENCE_REFRESH] as PresenceRefresh).bind(client),
    presenceList: (commands[PRESENCE_LIST] as PresenceList).bind(client),
    counts: (commands[COUNTS] as Counts).bind(client)
  }
}
