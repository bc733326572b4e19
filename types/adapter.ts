/**
 * Delivers a frame published on another instance to this instance's members of `room`.
 * The core calls nothing else on receipt: the bytes are sent as they came, never parsed again.
 */
export type FanoutReceive = (room: string, frame: Buffer, volatile: boolean) => void

/**
 * Moves room broadcasts between instances of the app. The core owns rooms, membership and `seq`;
 * an adapter only carries already-serialized frames. The in-memory default is `MemoryAdapter`.
 */
export interface FanoutAdapter {
  /** This instance has its first local member of `room`: start receiving its frames through `receive`. */
  subscribe (room: string, receive: FanoutReceive): void | Promise<void>
  /** The last local member of `room` left: stop receiving its frames. */
  unsubscribe (room: string): void | Promise<void>
  /** A broadcast made on this instance (its local members are already served): send it to the others. */
  publish (room: string, frame: Buffer, volatile: boolean): void
  /** Called on `app.close()`: release what the adapter opened itself (never a client the app passed in). */
  close? (): void | Promise<void>
}
