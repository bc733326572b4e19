// The example chat's real-time route, kept apart from the server so that tests
// (and the README) can type a test client from it.
import Type from 'typebox'
import { defineRoute, type Connection } from '../index.js'

const Name = Type.String({ minLength: 1, maxLength: 32, pattern: '^[\\w .-]+$' })

const emits = {
  said: Type.Object({ from: Type.String(), text: Type.String(), at: Type.Number() })
}

export const chat = defineRoute({
  messages: {
    hello: {
      schema: Type.Object({ name: Name }, { additionalProperties: false }),
      handler: (conn, data) => {
        names.set(conn.id, data.name)
        return { you: data.name }
      }
    },
    say: {
      schema: Type.Object({ text: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false }),
      handler: (conn, data) => {
        const from = names.get(conn.id) ?? 'anonymous'
        const message = { from, text: data.text, at: Date.now() }
        for (const peer of peers) peer.emit('said', message)
        return { delivered: peers.size }
      }
    }
  },
  emits,
  onOpen: (conn) => { peers.add(conn) },
  onClose: (conn) => {
    peers.delete(conn)
    names.delete(conn.id)
  }
})

// Until rooms land in the example, the chat is one room kept here.
const peers = new Set<Connection<typeof emits>>()
const names = new Map<string, string>()
