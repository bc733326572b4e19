// Contender: Socket.IO 4 with the websocket transport only (no long-polling upgrade dance), rooms through
// socket.join / io.to(room).emit, acks through the callback, and @socket.io/redis-adapter across instances.
import { createServer } from 'node:http'
import { Server } from 'socket.io'
import { createAdapter } from '@socket.io/redis-adapter'
import { Redis } from 'ioredis'
import { check } from './schemas.mjs'
import { options, serve } from './common.mjs'

await serve(async () => {
  const httpServer = createServer()
  let redis = null
  const io = new Server(httpServer, { transports: ['websocket'], serveClient: false, perMessageDeflate: false })
  if (options.redis) {
    const pub = new Redis(options.redis)
    const sub = pub.duplicate()
    await Promise.all([pub.ping(), sub.ping()])
    redis = [pub, sub]
    io.adapter(createAdapter(pub, sub))
    // Commands on one connection run in order: this answers once the adapter's PSUBSCRIBE is in place.
    await sub.ping()
  }
  io.on('connection', (socket) => {
    socket.on('join', (data, ack) => {
      if (!check.join.Check(data)) return
      socket.join(data.room)
      if (typeof ack === 'function') ack()
    })
    socket.on('pub', (data) => {
      if (!check.pub.Check(data)) return
      io.to(data.room).emit('msg', { t: data.t, body: data.body })
    })
    socket.on('echo', (data, ack) => {
      if (!check.echo.Check(data) || typeof ack !== 'function') return
      ack(data)
    })
  })
  await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', resolve))
  return {
    port: httpServer.address().port,
    features: { rooms: true, redis: Boolean(options.redis), protocol: 'socket.io' },
    async close () {
      await new Promise((resolve) => io.close(() => resolve()))
      if (redis) await Promise.allSettled(redis.map((c) => c.quit()))
    }
  }
})
