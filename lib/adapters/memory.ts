// The default fan-out: in-process. Alone it has nobody to publish to; app
// instances that share one MemoryBus (tests, several apps in one process)
// behave like a cluster, which keeps the adapter contract honest.
import type { FanoutAdapter, FanoutReceive } from '../../types/adapter.js'

/** Shared by the MemoryAdapters that should see each other's broadcasts. */
export class MemoryBus {
  /** Room name to the adapters subscribed to it. */
  readonly rooms = new Map<string, Map<MemoryAdapter, FanoutReceive>>()
}

export class MemoryAdapter implements FanoutAdapter {
  readonly bus: MemoryBus

  constructor (bus: MemoryBus = new MemoryBus()) {
    this.bus = bus
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

  publish (room: string, frame: Buffer, volatile: boolean): void {
    const subscribers = this.bus.rooms.get(room)
    if (subscribers === undefined) return
    // The publisher already served its own members: skip it, as a cluster adapter drops its own node id.
    for (const [adapter, receive] of subscribers) {
      if (adapter !== this) receive(room, frame, volatile)
    }
  }

  close (): void {
    // Deleting the current entry while iterating a Map is safe.
    for (const [room, subscribers] of this.bus.rooms) {
      if (subscribers.delete(this) && subscribers.size === 0) this.bus.rooms.delete(room)
    }
  }
}
