// The example chat's real-time route, kept apart from the server so that tests
// (and the README) can type a test client from it. Users are guests: the page
// gets a short-lived token for a name from POST /token, and presence lists
// user ids (the names), so the list stays right across instances.
import Type from 'typebox'
import { defineRoute } from '../index.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub: string }
    user: { sub: string }
  }
}

export const Name = Type.String({ minLength: 1, maxLength: 32, pattern: '^[A-Za-z0-9 _.-]+$' })
const Room = Type.String({ minLength: 1, maxLength: 32, pattern: '^[a-z0-9-]+$' })

export const chat = defineRoute({
  auth: 'handshake',
  presence: true,
  messages: {
    enter: {
      schema: Type.Object({ room: Room }, { additionalProperties: false }),
      // The ack is the room's member list; presence:join/leave events keep it current.
      handler: async (conn, { room }) => {
        await conn.join(`room:${room}`)
        return conn.request.server.realtime.presence(`room:${room}`)
      }
    },
    leave: {
      schema: Type.Object({ room: Room }, { additionalProperties: false }),
      handler: (conn, { room }) => conn.leave(`room:${room}`)
    },
    say: {
      schema: Type.Object({ room: Room, text: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false }),
      rateLimit: { rate: 2, burst: 10 },
      handler: (conn, { room, text }) => {
        if (!conn.rooms.has(`room:${room}`)) return false
        // auth: 'handshake' types conn.user as always there (no cast).
        conn.to(`room:${room}`).emit('said', { from: conn.user.sub, text, at: Date.now() })
        return true
      }
    }
  },
  emits: {
    said: Type.Object({ from: Type.String(), text: Type.String(), at: Type.Number() })
  }
})
