// A WebSocket stand-in for the client tests where time is the subject (backoff,
// ping, throttled timers): driven by hand, on @tapjs/clock's fake clock.
import { Clock } from '@tapjs/clock'
import { createClient, type ClientOptions, type CloseEvent, type GapEvent, type RealtimeClient, type RealtimeError } from '../../lib/client/index.js'

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

/**
 * A client of `ws://example.test/chat` on fake sockets and the fake clock (entered until the test ends), with
 * the idle ping off unless `options` turn it on, and its close, error and gap events collected.
 */
export function fakeClient (t: { teardown: (fn: () => unknown) => void }, options: ClientOptions = {}): {
  clock: Clock, sockets: ReturnType<typeof fakeSockets>, c: RealtimeClient<any>, closes: CloseEvent[], errors: RealtimeError[], gaps: GapEvent[]
} {
  const clock = new Clock()
  t.teardown(clock.enter())
  const sockets = fakeSockets()
  const c = createClient<any>('ws://example.test/chat', { WebSocket: sockets.WebSocket, ping: false, ...options })
  t.teardown(() => c.close())
  const closes: CloseEvent[] = []
  c.events.on('close', (event) => closes.push(event))
  const errors: RealtimeError[] = []
  c.events.on('error', (err) => errors.push(err))
  const gaps: GapEvent[] = []
  c.events.on('gap', (gap) => gaps.push(gap))
  return { clock, sockets, c, closes, errors, gaps }
}
