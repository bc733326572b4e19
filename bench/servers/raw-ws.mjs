// Contender: a bare `ws` server with the hand-rolled room loop. The reference every ratio is taken against.
import { WebSocketServer } from 'ws'
import { createRoomLoop } from './room-loop.mjs'
import { options, serve } from './common.mjs'

await serve(async () => {
  const loop = createRoomLoop({ redisUrl: options.redis })
  await loop.ready()
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws', perMessageDeflate: false })
  await new Promise((resolve, reject) => {
    wss.once('listening', resolve)
    wss.once('error', reject)
  })
  wss.on('connection', (ws) => {
    ws.on('message', (raw) => loop.onMessage(ws, raw))
    ws.on('close', () => loop.onClose(ws))
  })
  return {
    port: wss.address().port,
    features: { rooms: true, redis: Boolean(options.redis) },
    async close () {
      for (const ws of wss.clients) ws.terminate()
      await new Promise((resolve) => wss.close(resolve))
      await loop.close()
    }
  }
})
