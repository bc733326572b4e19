// The hand-rolled baseline most tutorials show: a Map of room name to a Set of sockets, JSON.stringify once
// per broadcast and ws.send() to each member. Shared by the raw `ws` and @fastify/websocket contenders so
// they differ only in how the upgrade is served. With a Redis URL it becomes the hand-rolled cross-instance
// version: publish the serialized frame to a channel per room and send what arrives to the local members.
import { Redis } from 'ioredis'
import { check } from './schemas.mjs'

const CHANNEL_PREFIX = 'bench:room:'

export function createRoomLoop ({ redisUrl } = {}) {
  const rooms = new Map()
  const seqs = new Map()
  const roomsOf = new Map()
  const subscribed = new Map()
  let pub = null
  let sub = null

  if (redisUrl) {
    pub = new Redis(redisUrl, { lazyConnect: false })
    sub = new Redis(redisUrl, { lazyConnect: false })
    sub.on('message', (channel, frame) => deliverLocal(channel.slice(CHANNEL_PREFIX.length), frame))
  }

  function deliverLocal (room, frame) {
    const members = rooms.get(room)
    if (members === undefined) return
    for (const ws of members) ws.send(frame)
  }

  function join (ws, room) {
    let members = rooms.get(room)
    if (members === undefined) {
      members = new Set()
      rooms.set(room, members)
      if (sub) subscribed.set(room, sub.subscribe(CHANNEL_PREFIX + room))
    }
    members.add(ws)
    let joined = roomsOf.get(ws)
    if (joined === undefined) {
      joined = new Set()
      roomsOf.set(ws, joined)
    }
    joined.add(room)
    // The join is acknowledged only once this instance receives the room's channel, so no publish is lost.
    return subscribed.get(room)
  }

  function broadcast (room, data) {
    const seq = (seqs.get(room) ?? 0) + 1
    seqs.set(room, seq)
    const frame = JSON.stringify({ type: 'msg', room, seq, data })
    if (pub) pub.publish(CHANNEL_PREFIX + room, frame)
    else deliverLocal(room, frame)
  }

  const handlers = {
    join (ws, data) { return join(ws, data.room) },
    pub (ws, data) { broadcast(data.room, { t: data.t, body: data.body }) },
    echo (ws, data) { return data }
  }

  function onMessage (ws, raw) {
    let msg
    try {
      msg = JSON.parse(raw)
    } catch {
      ws.close(4400, 'bad message')
      return
    }
    const handler = handlers[msg?.type]
    if (handler === undefined || !check[msg.type].Check(msg.data)) {
      ws.send(JSON.stringify({ type: 'error', id: msg?.id, data: { code: 'bad message' } }))
      return
    }
    const result = handler(ws, msg.data)
    if (msg.id === undefined) return
    if (typeof result?.then === 'function') {
      result.then(() => ws.send(JSON.stringify({ type: 'ack', id: msg.id })))
    } else {
      ws.send(JSON.stringify({ type: 'ack', id: msg.id, data: result }))
    }
  }

  function onClose (ws) {
    const joined = roomsOf.get(ws)
    if (joined === undefined) return
    roomsOf.delete(ws)
    for (const room of joined) {
      const members = rooms.get(room)
      members.delete(ws)
      if (members.size === 0) {
        rooms.delete(room)
        if (sub) {
          subscribed.delete(room)
          sub.unsubscribe(CHANNEL_PREFIX + room)
        }
      }
    }
  }

  /** Resolves once Redis (if any) is connected, so "ready" means ready to fan out. */
  async function ready () {
    if (pub) await Promise.all([pub.ping(), sub.ping()])
  }

  async function close () {
    if (pub) await Promise.allSettled([pub.quit(), sub.quit()])
  }

  return { onMessage, onClose, ready, close }
}
