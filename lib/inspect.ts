// The inspection API for admin pages: what this instance holds, a bounded page at a time. Connections are
// listed in order of arrival (their serial is the cursor: the hub's Set keeps that order); rooms by name.
import { FRT_ERR_INSPECT_QUERY } from './errors.js'
import { userKey } from './options.js'
import type { UserType } from '@fastify/jwt'
import type {
  InspectedConnection, InspectedRoom, InspectPage, InspectQuery, RealtimeInspect
} from '../types/observability.js'

const DEFAULT_LIMIT = 100
const MAX_LIMIT = 500

/** What inspect needs of a connection (lib/connection.ts). */
export interface InspectableConnection {
  readonly id: string
  readonly serial: number
  readonly openedAt: number
  readonly user: UserType | undefined
  readonly path: string
  readonly rooms: ReadonlySet<string>
  readonly socket: { readonly bufferedAmount: number }
}

/** What inspect needs of the hub (lib/hub.ts). */
export interface InspectableHub {
  readonly connections: Iterable<InspectableConnection>
  readonly rooms: { readonly byName: Map<string, { readonly members: { readonly size: number }, readonly seq: number }> }
}

/** This instance's connections and rooms (lib/observability.ts adds `cluster`, lib/cluster.ts). */
export function createInspect (hub: InspectableHub, userId: (user: UserType) => unknown): Omit<RealtimeInspect, 'cluster'> {
  return {
    connections (query) {
      const { limit, cursor } = readQuery(query)
      const after = cursor === null ? 0 : Number(cursor)
      if (!Number.isSafeInteger(after) || after < 0) throw new FRT_ERR_INSPECT_QUERY('cursor', 'is not a cursor this API returned')
      const items: InspectedConnection[] = []
      const now = Date.now()
      let last: InspectableConnection | null = null
      let more = false
      // The Set is in order of arrival, which is serial order: skip what earlier pages listed.
      for (const conn of hub.connections) {
        if (conn.serial <= after) continue
        if (items.length === limit) {
          more = true
          break
        }
        items.push({
          id: conn.id,
          user: userKey(userId, conn.user) ?? null,
          route: conn.path,
          rooms: [...conn.rooms],
          bufferedBytes: conn.socket.bufferedAmount,
          age: now - conn.openedAt
        })
        last = conn
      }
      return { items, next: more && last !== null ? String(last.serial) : null }
    },
    rooms (query) {
      const { limit, cursor } = readQuery(query)
      // Rooms come and go in any order: page by name. The page is the `limit` smallest names after the cursor.
      const names: string[] = []
      for (const name of hub.rooms.byName.keys()) if (cursor === null || name > cursor) names.push(name)
      names.sort()
      const page = names.slice(0, limit)
      const items: InspectedRoom[] = page.map((name) => {
        const room = hub.rooms.byName.get(name) as { members: { size: number }, seq: number }
        return { name, members: room.members.size, seq: room.seq }
      })
      return { items, next: names.length > limit ? page[page.length - 1] : null } satisfies InspectPage<InspectedRoom>
    }
  }
}

/** The paging arguments, checked (shared by lib/cluster.ts). */
export function readQuery (query: InspectQuery = {}): { limit: number, cursor: string | null } {
  const { limit = DEFAULT_LIMIT, cursor = null } = query
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new FRT_ERR_INSPECT_QUERY('limit', `must be an integer from 1 to ${MAX_LIMIT}`)
  }
  if (cursor !== null && typeof cursor !== 'string') throw new FRT_ERR_INSPECT_QUERY('cursor', 'must be a string')
  return { limit, cursor }
}
