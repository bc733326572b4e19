// Clients for the load generator, one wire format each: the JSON envelope shared by the plugin and the
// hand-rolled baselines, and Socket.IO's Engine.IO v4 framing spoken directly. Both ride on the same minimal
// WebSocket client (wire.mjs) so the generator costs the same CPU whichever server it drives; the official
// socket.io-client would add its own per-message cost to a process that shares the cores with the server.
// Frames are inspected with Buffer.indexOf and only acks are fully parsed: the generator must stay cheap.
import { openWire } from './wire.mjs'

export const BODY = 'x'.repeat(64)

const T_KEY = Buffer.from('"t":')
const MSG_TYPE = Buffer.from('"type":"msg"')
const ACK_TYPE = Buffer.from('"type":"ack"')
const CH_0 = 0x30
const CH_2 = 0x32
const CH_3 = 0x33
const CH_4 = 0x34

/**
 * What the scenario wants to hear about. Swapped per phase by the generator; one shared object so that no
 * closure is made per client or per message.
 */
export const sink = {
  delivery (client, t) {},
  other (client, buf) {}
}

function readT (buf, from) {
  const i = buf.indexOf(T_KEY, from)
  return i === -1 ? NaN : parseFloat(buf.latin1Slice(i + 4, i + 40))
}

function settle (client, id, data) {
  const cb = client.pending.get(id)
  if (cb === undefined) return false
  client.pending.delete(id)
  cb(data)
  return true
}

const json = {
  path: '/ws',
  pub (room, t) {
    return '{"type":"pub","data":{"room":"' + room + '","t":' + t + ',"body":"' + BODY + '"}}'
  },
  request (id, type, dataJson) {
    return '{"type":"' + type + '","id":' + id + ',"data":' + dataJson + '}'
  },
  onOpen (client, resolve) { resolve() },
  onMessage (client, buf) {
    if (buf.indexOf(MSG_TYPE) !== -1) {
      sink.delivery(client, readT(buf, 0))
    } else if (buf.indexOf(ACK_TYPE) !== -1) {
      const msg = JSON.parse(buf)
      if (!settle(client, msg.id, msg.data)) sink.other(client, buf)
    } else {
      sink.other(client, buf)
    }
  }
}

const socketio = {
  path: '/socket.io/?EIO=4&transport=websocket',
  pub (room, t) {
    return '42["pub",{"room":"' + room + '","t":' + t + ',"body":"' + BODY + '"}]'
  },
  request (id, type, dataJson) {
    return '42' + id + '["' + type + '",' + dataJson + ']'
  },
  onOpen (client, resolve) {
    // Engine.IO sends its open packet ("0{...}"), we connect to the main namespace ("40") and are in once
    // the server answers "40{...}".
    if (client.connected === true) resolve()
    else client.connected = resolve
  },
  onMessage (client, buf) {
    const c0 = buf[0]
    if (c0 === CH_4) {
      const c1 = buf[1]
      if (c1 === CH_2) {
        sink.delivery(client, readT(buf, 2))
      } else if (c1 === CH_3) {
        let i = 2
        let id = 0
        while (buf[i] >= CH_0 && buf[i] <= CH_0 + 9) id = id * 10 + buf[i++] - CH_0
        const args = JSON.parse(buf.latin1Slice(i))
        if (!settle(client, id, args[0])) sink.other(client, buf)
      } else if (c1 === CH_0) {
        if (typeof client.connected === 'function') client.connected()
        client.connected = true
      } else {
        sink.other(client, buf)
      }
    } else if (c0 === CH_2) {
      client.conn.send('3')
    } else if (c0 === CH_0) {
      client.conn.send('40')
    } else {
      sink.other(client, buf)
    }
  }
}

export const protocols = { json, socketio }

/**
 * Opens one client and resolves once it can send application messages.
 * @param {'json'|'socketio'} protocol
 * @param {{ host: string, port: number }} server
 * @param {string|undefined} localAddress source address, to spread connections over 127.0.0.x
 */
export async function connect (protocol, server, localAddress) {
  const proto = protocols[protocol]
  const client = { conn: null, proto, pending: new Map(), nextId: 1, connected: null, closed: false, index: -1 }
  await openWire({
    host: server.host,
    port: server.port,
    path: proto.path,
    localAddress,
    onopen: (conn) => { client.conn = conn },
    onmessage: (buf) => proto.onMessage(client, buf)
  })
  client.conn.onclose = () => { client.closed = true }
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no namespace connect within 10 s')), 10_000)
    proto.onOpen(client, () => {
      clearTimeout(timer)
      resolve()
    })
  })
  return client
}

/** Sends a request and calls `cb(data)` with the ack's data. */
export function request (client, type, dataJson, cb) {
  const id = client.nextId++
  client.pending.set(id, cb)
  client.conn.send(client.proto.request(id, type, dataJson))
}

export function requestAsync (client, type, dataJson, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack to "${type}" within ${timeoutMs} ms`)), timeoutMs)
    request(client, type, dataJson, (data) => {
      clearTimeout(timer)
      resolve(data)
    })
  })
}

export function publish (client, room, t) {
  client.conn.send(client.proto.pub(room, t))
}
