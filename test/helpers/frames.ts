// Raw WebSocket frames written by hand to an upgraded socket, for tests of what
// a hostile or broken client can send that no WebSocket library would.
import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'

/** One client frame: masked unless `masked` is false; `length` may lie about the payload. */
export function frame (opcode: number, payload: Buffer | string, options: { fin?: boolean, masked?: boolean, length?: number, rsv?: number } = {}): Buffer {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
  const { fin = true, masked = true, length = data.length, rsv = 0 } = options
  const head: number[] = [(fin ? 0x80 : 0) | rsv | opcode]
  const mask = masked ? 0x80 : 0
  if (length < 126) {
    head.push(mask | length)
  } else if (length < 65536) {
    head.push(mask | 126, length >> 8, length & 0xff)
  } else {
    const big = Buffer.alloc(8)
    big.writeBigUInt64BE(BigInt(length))
    head.push(mask | 127, ...big)
  }
  if (!masked) return Buffer.concat([Buffer.from(head), data])
  const key = randomBytes(4)
  const body = Buffer.from(data)
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3]
  return Buffer.concat([Buffer.from(head), key, body])
}

export const Opcode = { Continuation: 0, Text: 1, Binary: 2, Close: 8, Ping: 9, Pong: 10 } as const

/** Server frames on a raw socket, parsed as they arrive (the server never masks). */
export class FrameReader {
  readonly frames: Array<{ opcode: number, payload: Buffer }> = []
  ended = false
  #buffer = Buffer.alloc(0)
  #waiters: Array<() => void> = []

  constructor (socket: Duplex) {
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk])
      this.#parse()
      this.#wake()
    })
    const end = (): void => { this.ended = true; this.#wake() }
    socket.on('close', end)
    socket.on('end', end)
    socket.on('error', end)
  }

  #wake (): void {
    for (const waiter of this.#waiters.splice(0)) waiter()
  }

  #parse (): void {
    for (;;) {
      const b = this.#buffer
      if (b.length < 2) return
      let length = b[1] & 0x7f
      let offset = 2
      if (length === 126) {
        if (b.length < 4) return
        length = b.readUInt16BE(2)
        offset = 4
      } else if (length === 127) {
        if (b.length < 10) return
        length = Number(b.readBigUInt64BE(2))
        offset = 10
      }
      if (b.length < offset + length) return
      this.frames.push({ opcode: b[0] & 0x0f, payload: b.subarray(offset, offset + length) })
      this.#buffer = b.subarray(offset + length)
    }
  }

  /** The close code the server sent, or 1006 when the connection ended without a close frame. */
  async closeCode (): Promise<number> {
    for (;;) {
      const close = this.frames.find((f) => f.opcode === Opcode.Close)
      if (close !== undefined) return close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005
      if (this.ended) return 1006
      await new Promise<void>((resolve) => this.#waiters.push(resolve))
    }
  }

  /** Text frames received so far, parsed as JSON. */
  messages (): unknown[] {
    return this.frames.filter((f) => f.opcode === Opcode.Text).map((f) => JSON.parse(f.payload.toString()))
  }
}
