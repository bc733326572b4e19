// Contender: Fastify 5 + @fastify/websocket serving the same hand-rolled room loop as raw-ws.mjs, so the
// difference between the two is what routing the upgrade through Fastify costs.
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import { createRoomLoop } from './room-loop.mjs'
import { options, serve } from './common.mjs'

await serve(async () => {
  const loop = createRoomLoop({ redisUrl: options.redis })
  await loop.ready()
  const app = Fastify({ logger: false })
  await app.register(websocket, { options: { perMessageDeflate: false } })
  app.get('/ws', { websocket: true }, (socket) => {
    socket.on('message', (raw) => loop.onMessage(socket, raw))
    socket.on('close', () => loop.onClose(socket))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return {
    port: app.server.address().port,
    features: { rooms: true, redis: Boolean(options.redis) },
    async close () {
      await app.close()
      await loop.close()
    }
  }
})
