// The heartbeat: one sweep timer for every connection of the app (never a timer
// per connection). Each sweep pings the connections whose ping is due and
// terminates those whose ping went unanswered for `timeout`. Terminated sockets
// emit 'close' like any other, so they leave their rooms the usual way.
import type { WebSocket } from 'ws'
import type { Hub } from './hub.js'

// Sweep numbers are kept on the socket so the pong listener, shared by every
// socket, needs no closure.
const kPingedAt = Symbol('fastify-realtime.pingedAt')
const kNextPing = Symbol('fastify-realtime.nextPing')
type TrackedSocket = WebSocket & { [kPingedAt]?: number, [kNextPing]?: number }

export interface HeartbeatOptions { interval: number, timeout: number }

export class Heartbeat {
  readonly hub: Hub
  /** Milliseconds between sweeps: the smaller of interval and timeout. */
  readonly period: number
  readonly intervalSweeps: number
  readonly timeoutSweeps: number
  #sweeps = 0
  #timer: NodeJS.Timeout | null = null

  constructor (hub: Hub, options: HeartbeatOptions) {
    this.hub = hub
    this.period = Math.min(options.interval, options.timeout)
    // In whole sweeps, so that a late timer can never make a peer look late:
    // a peer is judged only after `timeout` worth of sweeps, rounded up.
    this.intervalSweeps = Math.round(options.interval / this.period)
    this.timeoutSweeps = Math.ceil(options.timeout / this.period)
  }

  start (): void {
    if (this.#timer !== null) return
    this.#timer = setInterval(() => this.sweep(), this.period)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer === null) return
    clearInterval(this.#timer)
    this.#timer = null
  }

  sweep (): void {
    const now = ++this.#sweeps
    const { backpressure, counters } = this.hub
    for (const conn of this.hub.connections) {
      if (conn.closed) continue
      const socket = conn.socket as TrackedSocket
      const pingedAt = socket[kPingedAt]
      if (pingedAt === undefined) {
        // First sight: the clock starts now, the first ping is one interval away.
        socket.on('pong', onPong)
        socket[kPingedAt] = -1
        socket[kNextPing] = now + this.intervalSweeps
      } else if (pingedAt >= 0) {
        if (now - pingedAt >= this.timeoutSweeps) {
          counters.heartbeatTerminations++
          conn.log.info('terminating a connection that missed its heartbeat')
          socket.terminate()
          continue
        }
      } else if (now >= (socket[kNextPing] as number)) {
        socket[kPingedAt] = now
        socket[kNextPing] = now + this.intervalSweeps
        socket.ping()
      }
      // A slow consumer that is sent nothing more is still closed once its soft timeout passes.
      if (conn.slowSince !== 0) backpressure.check(conn)
    }
  }
}

function onPong (this: WebSocket): void {
  (this as TrackedSocket)[kPingedAt] = -1
}
