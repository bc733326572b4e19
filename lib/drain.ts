// A rolling restart of this instance (PROTOCOL.md "Rolling restarts"): new
// upgrades are refused with 503 and Retry-After, then the clients, in batches
// spread over `spread` ms, are told `reconnect { after }` and closed with 1012.
// `after` is jittered within the batch's slot, so the reconnects of the whole
// instance land spread over the window instead of storming the other
// instances. Sessions are saved at the close (1012 is not 1000), so each
// client resumes elsewhere with nothing lost.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { CloseCode, serializeReconnect } from './protocol.js'
import { FRT_ERR_OPTIONS_INVALID, FRT_ERR_SHUTDOWN_DRAINING } from './errors.js'
import { recoveryDefaults, type ResolvedDrain, type ResolvedOptions } from './options.js'
import type { Hub } from './hub.js'

export class Drain {
  readonly #hub: Hub
  readonly #grace: number
  #retryAfter = '1'

  constructor (hub: Hub, options: ResolvedOptions) {
    this.#hub = hub
    this.#grace = options.shutdownGrace
  }

  /** `app.realtime.drain(options)`: checked like the plugin's `drain` option. */
  resolve (options: { spread?: number, batch?: number } = {}): ResolvedDrain {
    const { spread = recoveryDefaults.spread, batch = recoveryDefaults.batch } = options ?? {}
    if (!Number.isSafeInteger(spread) || spread < 0) throw new FRT_ERR_OPTIONS_INVALID('drain.spread', 'must be an integer >= 0 (ms)')
    if (!Number.isSafeInteger(batch) || batch < 1) throw new FRT_ERR_OPTIONS_INVALID('drain.batch', 'must be a positive integer')
    return { spread, batch }
  }

  /** A route's `onRequest`: while draining, an upgrade gets 503 and Retry-After (the client goes to another instance). */
  readonly refuse = (_request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void => {
    if (!this.#hub.draining) return done()
    reply.header('retry-after', this.#retryAfter)
    done(new FRT_ERR_SHUTDOWN_DRAINING())
  }

  /** Tells every client to reconnect, batch by batch; resolves once they all left or the grace passed. */
  async run ({ spread, batch }: ResolvedDrain): Promise<void> {
    const hub = this.#hub
    if (hub.draining) return
    hub.draining = true
    this.#retryAfter = String(Math.max(1, Math.ceil(spread / 1000)))
    const connections = [...hub.connections] as unknown as Array<{ send: (frame: string) => void, close: (code: number, reason: string) => void }>
    const batches = Math.ceil(connections.length / batch)
    const slot = batches === 0 ? 0 : spread / batches
    // On a fixed schedule from the start, so that a busy event loop does not push the batches (and with them
    // the reconnects) past the window: each client is told to come back at a random moment of its batch's slot.
    const start = Date.now()
    for (let i = 0; i < batches; i++) {
      const now = Date.now()
      for (const conn of connections.slice(i * batch, (i + 1) * batch)) {
        const at = start + (i + Math.random()) * slot
        conn.send(serializeReconnect(Math.max(0, Math.floor(at - now))))
        conn.close(CloseCode.ServiceRestart, 'Server restarting')
      }
      if (i + 1 < batches) await sleep(start + (i + 1) * slot - Date.now())
    }
    await hub.drained(this.#grace)
  }
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => { setTimeout(resolve, Math.max(0, ms)).unref() })
}
