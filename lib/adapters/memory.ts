// The default fan-out: in-process. Alone it has nobody to publish to; app
// instances that share one MemoryBus (tests, several apps in one process)
// behave like a cluster, which keeps the adapter contract honest: broadcasts,
// presence and disconnectUser all cross the bus. seq stays per instance.
import type { FanoutAdapter, FanoutCore, FanoutReceive } from '../../types/adapter.js'
import type { PresenceMember } from '../../types/rooms.js'
import { instanceId } from './envelope.js'

/** Shared by the MemoryAdapters that should see each other's broadcasts. */
export class MemoryBus {
  /** Room name to the adapters subscribed to it. */
  readonly rooms = new Map<string, Map<MemoryAdapter, FanoutReceive>>()
  /** The attached adapters, for disconnectUser. */
  readonly adapters = new Map<MemoryAdapter, FanoutCore>()
}

export class MemoryAdapter implements FanoutAdapter {
  /** This instance's id on the bus. */
  readonly id = instanceId()
  readonly bus: MemoryBus
  /** This instance's members by room, as the core reported them. */
  readonly members = new Map<string, Map<string, PresenceMember>>()

  constructor (bus: MemoryBus = new MemoryBus()) {
    this.bus = bus
  }

  attach (core: FanoutCore): void {
    this.bus.adapters.set(this, core)
  }

  subscribe (room: string, receive: FanoutReceive): void {
    let subscribers = this.bus.rooms.get(room)
    if (subscribers === undefined) {
      subscribers = new Map()
      this.bus.rooms.set(room, subscribers)
    }
    subscribers.set(this, receive)
  }

  unsubscribe (room: string): void {
    const subscribers = this.bus.rooms.get(room)
    if (subscribers?.delete(this) === true && subscribers.size === 0) this.bus.rooms.delete(room)
  }

  publish (room: string, frame: Buffer, volatile: boolean, latest?: string, traceparent?: string): void {
    const subscribers = this.bus.rooms.get(room)
    if (subscribers === undefined) return
    // The publisher already served its own members: skip it, as a cluster adapter drops its own node id.
    for (const [adapter, receive] of subscribers) {
      if (adapter !== this) receive(room, frame, volatile, undefined, latest, traceparent)
    }
  }

  addMember (room: string, member: PresenceMember): void {
    let members = this.members.get(room)
    if (members === undefined) this.members.set(room, members = new Map())
    members.set(member.connId, member)
  }

  removeMember (room: string, member: PresenceMember): void {
    const members = this.members.get(room)
    if (members?.delete(member.connId) === true && members.size === 0) this.members.delete(room)
  }

  async remoteMembers (room: string): Promise<PresenceMember[]> {
    const out: PresenceMember[] = []
    for (const adapter of this.bus.adapters.keys()) {
      if (adapter === this) continue
      for (const member of adapter.members.get(room)?.values() ?? []) out.push({ ...member })
    }
    return out
  }

  disconnectUser (userId: string, reason?: string): void {
    for (const [adapter, core] of this.bus.adapters) {
      if (adapter !== this) core.disconnectUser(userId, reason)
    }
  }

  close (): void {
    // Deleting the current entry while iterating a Map is safe.
    for (const [room, subscribers] of this.bus.rooms) {
      if (subscribers.delete(this) && subscribers.size === 0) this.bus.rooms.delete(room)
    }
    this.bus.adapters.delete(this)
    this.members.clear()
  }
}
