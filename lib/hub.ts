// The registry of live connections on this instance, its counters, and the
// bounded shutdown: close every socket with 1001, wait for the handshakes up to
// a grace period, terminate whatever is left.
import { CloseCode } from './protocol.js'
import type { RealtimeStats } from '../types/fastify.js'
import type { RealtimeConnection } from './connection.js'

export class Hub {
  readonly connections = new Set<RealtimeConnection>()
  readonly counters = { messagesIn: 0, messagesOut: 0, protocolErrors: 0, handlerErrors: 0 }
  #drained: (() => void) | null = null

  add (conn: RealtimeConnection): void {
    this.connections.add(conn)
  }

  delete (conn: RealtimeConnection): void {
    if (this.connections.delete(conn) && this.connections.size === 0 && this.#drained !== null) {
      this.#drained()
    }
  }

  stats (): RealtimeStats {
    return { connections: this.connections.size, ...this.counters }
  }

  async shutdown (grace: number): Promise<void> {
    if (this.connections.size === 0) return
    for (const conn of this.connections) conn.close(CloseCode.GoingAway, 'Server shutting down')
    await this.#drain(grace)
    for (const conn of this.connections) conn.socket.terminate()
    // A terminated socket emits 'close' on a later tick; wait for it so that
    // onClose hooks have run when app.close() resolves.
    await this.#drain(grace)
  }

  #drain (timeout: number): Promise<void> {
    if (this.connections.size === 0) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeout).unref()
      const self = this
      function done (): void {
        clearTimeout(timer)
        self.#drained = null
        resolve()
      }
      this.#drained = done
    })
  }
}
