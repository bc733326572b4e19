// Cluster-wide counts for inspection and the admin page: what this instance publishes about itself (through a fan-out
// adapter that shares counts: the RedisAdapter's `countsInterval`), and the cluster view made of every live
// instance's latest publish. The adapter only moves the JSON; it is built and checked here. Entries read from
// Redis may be anything (another client wrote them): each is bounded and checked field by field, or ignored.
import { readQuery } from './inspect.js'
import type { FanoutAdapter } from '../types/adapter.js'
import type { RealtimeStats } from '../types/fastify.js'
import type { ClusterCounts, ClusterTotals, InspectQuery, InstanceCounts } from '../types/observability.js'

// An entry we wrote is well under 4 KB (bounded labels); anything larger did not come from us.
const MAX_ENTRY = 16_384
const MAX_LABELS = 64
const MAX_LABEL = 32
const MAX_ID = 64
const NUMBERS = ['at', 'connections', 'rooms', 'members', 'messagesIn', 'messagesOut', 'errors',
  'messagesInRate', 'messagesOutRate', 'errorRate'] as const

/** What the counts are made of: the hub's stats, and the admin page's close and error codes when it is on. */
export interface CountSources {
  readonly stats: () => RealtimeStats
  readonly closes: ReadonlyMap<string, number> | null
  readonly errors: ReadonlyMap<string, number> | null
}

export class Cluster {
  readonly #id: string
  readonly #sources: CountSources
  readonly #adapter: FanoutAdapter
  /** The totals at the last publish, for the rates. */
  #last: { at: number, messagesIn: number, messagesOut: number, errors: number } | null = null
  #rates = { messagesInRate: 0, messagesOutRate: 0, errorRate: 0 }

  constructor (id: string, sources: CountSources, adapter: FanoutAdapter) {
    this.#id = id
    this.#sources = sources
    this.#adapter = adapter
  }

  /** This instance's counts now; the rates are those of the last interval between two publishes. */
  now (): InstanceCounts {
    const stats = this.#sources.stats()
    return {
      id: this.#id,
      at: Date.now(),
      connections: stats.connections,
      rooms: stats.rooms,
      members: stats.members,
      messagesIn: stats.messagesIn,
      messagesOut: stats.messagesOut,
      errors: stats.protocolErrors + stats.handlerErrors,
      ...this.#rates,
      closes: Object.fromEntries(this.#sources.closes ?? []),
      errorCodes: Object.fromEntries(this.#sources.errors ?? [])
    }
  }

  /** What the adapter publishes (FanoutCore.counts): the counts now, the rates since the last publish. */
  publish (): string {
    const counts = this.now()
    const last = this.#last
    if (last !== null) {
      const seconds = Math.max((counts.at - last.at) / 1000, 0.001)
      this.#rates = {
        messagesInRate: round((counts.messagesIn - last.messagesIn) / seconds),
        messagesOutRate: round((counts.messagesOut - last.messagesOut) / seconds),
        errorRate: round((counts.errors - last.errors) / seconds)
      }
      Object.assign(counts, this.#rates)
    }
    this.#last = { at: counts.at, messagesIn: counts.messagesIn, messagesOut: counts.messagesOut, errors: counts.errors }
    return JSON.stringify(counts)
  }

  /**
   * This instance, and, when the adapter shares counts, every live instance (this one's counts taken now), a page
   * at a time by id, with the totals over all of them.
   */
  view (query?: InspectQuery): { instance: InstanceCounts, cluster: ClusterCounts | null } {
    const { limit, cursor } = readQuery(query)
    const instance = this.now()
    const read = this.#adapter.instanceCounts?.() ?? null
    if (read === null) return { instance, cluster: null }
    const all: InstanceCounts[] = [instance]
    let ignored = 0
    for (const [id, json] of read.entries) {
      const counts = parseCounts(id, json)
      if (counts === null) ignored++
      else all.push(counts)
    }
    // Ids are unique (the fields of one hash, and ours is never among them).
    all.sort((a, b) => (a.id < b.id ? -1 : 1))
    const after = cursor === null ? all : all.filter((c) => c.id > cursor)
    const page = after.slice(0, limit)
    return {
      instance,
      cluster: {
        at: read.at,
        instances: page,
        next: after.length > limit ? page[page.length - 1].id : null,
        totals: totalsOf(all),
        ignored
      }
    }
  }
}

function round (n: number): number {
  return Math.round(n * 10) / 10
}

function totalsOf (all: InstanceCounts[]): ClusterTotals {
  const totals: ClusterTotals = {
    instances: all.length,
    connections: 0,
    rooms: 0,
    members: 0,
    messagesIn: 0,
    messagesOut: 0,
    errors: 0,
    messagesInRate: 0,
    messagesOutRate: 0,
    errorRate: 0,
    // Null prototypes: a label read from Redis such as "__proto__" stays a plain key.
    closes: Object.create(null),
    errorCodes: Object.create(null)
  }
  for (const counts of all) {
    for (const key of NUMBERS) if (key !== 'at') totals[key] += counts[key]
    add(totals.closes, counts.closes)
    add(totals.errorCodes, counts.errorCodes)
  }
  for (const key of ['messagesInRate', 'messagesOutRate', 'errorRate'] as const) totals[key] = round(totals[key])
  return totals
}

function add (into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, n] of Object.entries(from)) into[key] = (into[key] ?? 0) + n
}

/** One instance's counts as read back, or null when they are not counts this module wrote. */
export function parseCounts (id: string, json: string): InstanceCounts | null {
  if (id.length === 0 || id.length > MAX_ID || json.length > MAX_ENTRY) return null
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null) return null
  const o = value as Record<string, unknown>
  const counts = { id } as InstanceCounts
  for (const key of NUMBERS) {
    const n = o[key]
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return null
    counts[key] = n
  }
  const closes = labels(o.closes)
  const errorCodes = labels(o.errorCodes)
  if (closes === null || errorCodes === null) return null
  counts.closes = closes
  counts.errorCodes = errorCodes
  return counts
}

function labels (value: unknown): Record<string, number> | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null
  const entries = Object.entries(value)
  if (entries.length > MAX_LABELS) return null
  // A null prototype: a label such as "__proto__" is a plain key.
  const out: Record<string, number> = Object.create(null)
  for (const [key, n] of entries) {
    if (key.length > MAX_LABEL || typeof n !== 'number' || !Number.isFinite(n) || n < 0) return null
    out[key] = n
  }
  return out
}
