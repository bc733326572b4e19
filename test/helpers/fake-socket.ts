// A WebSocket stand-in for the client tests where time is the subject (backoff,
// ping, throttled timers): driven by hand, on @tapjs/clock's fake clock.
import type { ClientOptions } from '../../lib/client/index.js'

export interface FakeSocket {
  url: string
  protocols: string[]
  readyState: number
  sent: any[]
  closedWith: [number | undefined, string | undefined] | undefined
  onopen: ((event: any) => void) | null
  onmessage: ((event: any) => void) | null
  onclose: ((event: any) => void) | null
  onerror: ((event: any) => void) | null
  send: (data: string) => void
  close: (code?: number, reason?: string) => void
  /** The server accepted: `open` fires. */
  open: () => void
  /** A frame from the server. */
  receive: (frame: object) => void
  /** The connection ends with `code` (1006: dropped). */
  drop: (code?: number, reason?: string) => void
}

/** A WebSocket class whose instances are collected in `made`, newest last. */
export function fakeSockets (): { WebSocket: ClientOptions['WebSocket'], made: FakeSocket[], last: () => FakeSocket } {
  const made: FakeSocket[] = []
  class Fake implements FakeSocket {
    readyState = 0
    sent: any[] = []
    closedWith: [number | undefined, string | undefined] | undefined
    onopen: ((event: any) => void) | null = null
    onmessage: ((event: any) => void) | null = null
    onclose: ((event: any) => void) | null = null
    onerror: ((event: any) => void) | null = null
    constructor (readonly url: string, readonly protocols: string[] = []) {
      made.push(this)
    }

    send (data: string): void { this.sent.push(JSON.parse(data)) }
    close (code?: number, reason?: string): void {
      this.closedWith = [code, reason]
      this.readyState = 3
    }

    open (): void {
      this.readyState = 1
      this.onopen?.({})
    }

    receive (frame: object): void { this.onmessage?.({ data: JSON.stringify(frame) }) }
    drop (code = 1006, reason = ''): void {
      this.readyState = 3
      this.onerror?.({})
      this.onclose?.({ code, reason })
    }
  }
  return { WebSocket: Fake as unknown as ClientOptions['WebSocket'], made, last: () => made[made.length - 1] }
}
