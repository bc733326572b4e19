// A deliberately minimal WebSocket client (RFC 6455) for the load generator. The generator shares the two
// cores with the server under test, and the `ws` client spends several microseconds per received message
// and a fraction of a millisecond per handshake in machinery a benchmark does not need (an http.request per
// connection, a stream per socket, an event per frame). This one writes a fixed upgrade request on a plain
// net.Socket and parses unfragmented frames from 'data' chunks, so the CPU left over goes to the servers.
// It is a test client, not a general one: it trusts its loopback peer and ignores extensions.
import net from 'node:net'

// A fixed key: servers only echo its hash, and nothing here needs to tell connections apart by it.
const UPGRADE_KEY = 'dGhlIHNhbXBsZSBub25jZQ=='
const HEADER_END = Buffer.from('\r\n\r\n')
const OP_CONT = 0x0
const OP_TEXT = 0x1
const OP_BINARY = 0x2
const OP_CLOSE = 0x8
const OP_PING = 0x9

export class WireSocket {
  /** Called with each complete text or binary message, as a Buffer view valid only during the call. */
  onmessage = null
  /** Called once when the connection ends, with the close code if the server sent one. */
  onclose = null
  closed = false
  closeCode = 0
  #socket
  #pending = null
  #fragments = null

  constructor (socket) {
    this.#socket = socket
    socket.on('data', (chunk) => this.#read(chunk))
    socket.on('error', () => {})
    socket.on('close', () => {
      this.closed = true
      this.onclose?.(this.closeCode)
    })
  }

  /** Sends a text frame. The mask key is zero, so the payload goes out as is (servers must only unmask). */
  send (text) {
    if (this.closed) return
    const len = Buffer.byteLength(text)
    const head = len < 126 ? 6 : len < 65536 ? 8 : 14
    const frame = Buffer.allocUnsafe(head + len)
    frame[0] = 0x80 | OP_TEXT
    if (len < 126) {
      frame[1] = 0x80 | len
    } else if (len < 65536) {
      frame[1] = 0x80 | 126
      frame.writeUInt16BE(len, 2)
    } else {
      frame[1] = 0x80 | 127
      frame.writeUInt32BE(0, 2)
      frame.writeUInt32BE(len, 6)
    }
    frame.writeUInt32BE(0, head - 4)
    frame.utf8Write(text, head)
    this.#socket.write(frame)
  }

  #control (opcode, payload) {
    const frame = Buffer.allocUnsafe(6 + payload.length)
    frame[0] = 0x80 | opcode
    frame[1] = 0x80 | payload.length
    frame.writeUInt32BE(0, 2)
    payload.copy(frame, 6)
    this.#socket.write(frame)
  }

  /** Ends the connection with a TCP reset: no close handshake, and no TIME_WAIT left on our port. */
  reset () {
    if (!this.#socket.destroyed) this.#socket.resetAndDestroy()
  }

  #read (chunk) {
    let buf = this.#pending === null ? chunk : Buffer.concat([this.#pending, chunk])
    let off = 0
    const end = buf.length
    while (end - off >= 2) {
      const b0 = buf[off]
      let len = buf[off + 1] & 0x7f
      let head = 2
      if (len === 126) {
        if (end - off < 4) break
        len = buf.readUInt16BE(off + 2)
        head = 4
      } else if (len === 127) {
        if (end - off < 10) break
        len = buf.readUInt32BE(off + 2) * 2 ** 32 + buf.readUInt32BE(off + 6)
        head = 10
      }
      if (end - off < head + len) break
      const payload = buf.subarray(off + head, off + head + len)
      off += head + len
      this.#frame(b0, payload)
    }
    if (off === end) {
      this.#pending = null
    } else {
      // Copy the partial frame: keeping a view would pin the whole chunk until the frame completes.
      this.#pending = Buffer.from(buf.subarray(off))
    }
    buf = null
  }

  #frame (b0, payload) {
    const fin = (b0 & 0x80) !== 0
    const opcode = b0 & 0x0f
    if (opcode === OP_TEXT || opcode === OP_BINARY) {
      if (fin) this.onmessage?.(payload)
      else this.#fragments = [Buffer.from(payload)]
    } else if (opcode === OP_CONT && this.#fragments !== null) {
      this.#fragments.push(Buffer.from(payload))
      if (fin) {
        const whole = Buffer.concat(this.#fragments)
        this.#fragments = null
        this.onmessage?.(whole)
      }
    } else if (opcode === OP_PING) {
      this.#control(0xA, payload)
    } else if (opcode === OP_CLOSE) {
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005
      this.#control(OP_CLOSE, payload.subarray(0, 2))
      this.#socket.end()
    }
  }
}

/**
 * Opens a WebSocket to ws://host:port + path and resolves once the server has answered 101.
 * `onopen` runs and `onmessage` is set before any frame is read, so none that arrives with the response
 * (Socket.IO's open packet does) finds the caller unprepared.
 * @param {{ host: string, port: number, path: string, localAddress?: string, timeoutMs?: number,
 *   onopen: (wire: WireSocket) => void, onmessage: (payload: Buffer) => void }} target
 */
export function openWire ({ host, port, path, localAddress, timeoutMs = 10_000, onopen, onmessage }) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localAddress, noDelay: true })
    let head = null
    const timer = setTimeout(() => fail(new Error(`no upgrade from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs)
    function fail (err) {
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    }
    socket.once('error', fail)
    socket.once('close', () => fail(new Error('closed during the upgrade')))
    socket.on('data', function onHead (chunk) {
      head = head === null ? chunk : Buffer.concat([head, chunk])
      const at = head.indexOf(HEADER_END)
      if (at === -1) {
        if (head.length > 16_384) fail(new Error('upgrade response too large'))
        return
      }
      const status = head.latin1Slice(0, head.indexOf(13))
      socket.off('data', onHead)
      socket.removeAllListeners('close')
      socket.off('error', fail)
      clearTimeout(timer)
      if (!/^HTTP\/1\.1 101 /.test(status)) {
        socket.destroy()
        reject(new Error(`upgrade refused: ${status}`))
        return
      }
      const wire = new WireSocket(socket)
      wire.onmessage = onmessage
      onopen?.(wire)
      resolve(wire)
      const rest = head.subarray(at + 4)
      if (rest.length > 0) socket.emit('data', Buffer.from(rest))
    })
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${UPGRADE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
  })
}
