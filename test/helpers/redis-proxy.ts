// A TCP proxy between a Redis client and a real redis-server, to lose a reply
// for real: `loseReplyTo(marker)` lets the next command whose bytes contain
// `marker` through to Redis (so Redis runs it), then, when Redis answers on that
// connection, drops the answer and the connection with it. The client sees a
// command sent and a connection reset, never the reply: what a network fault
// between a command and its answer looks like.
//
//   const proxy = await startRedisProxy(redis.port)
//   t.teardown(() => proxy.close())
//   const client = new Redis(proxy.port, '127.0.0.1')
//   const lost = proxy.loseReplyTo('"text":"once"')
//   ... the command carrying the marker ...
//   await lost       // resolves once the reply was dropped
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'

const HOST = '127.0.0.1'

export interface RedisProxy {
  readonly port: number
  /** Connections made through the proxy so far (a reconnect makes one more). */
  readonly connections: number
  /** Resolves once Redis answered a command containing `marker` and that answer was dropped with its connection. */
  loseReplyTo (marker: string): Promise<void>
  /** Closes the proxy and every connection through it. */
  close (): Promise<void>
}

interface Armed { marker: string, dropped: () => void }

export async function startRedisProxy (redisPort: number): Promise<RedisProxy> {
  const sockets = new Set<Socket>()
  let armed: Armed | null = null
  let connections = 0
  const server = createServer((downstream) => {
    connections++
    const upstream = connect(redisPort, HOST)
    sockets.add(downstream)
    sockets.add(upstream)
    // Set on the connection that carried the marker: Redis's next bytes on it are the answer to drop.
    let victim: Armed | null = null
    const end = (): void => {
      downstream.destroy()
      upstream.destroy()
      sockets.delete(downstream)
      sockets.delete(upstream)
    }
    downstream.on('data', (chunk: Buffer) => {
      if (armed !== null && chunk.includes(armed.marker)) {
        victim = armed
        armed = null
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (victim === null) {
        downstream.write(chunk)
        return
      }
      end()
      victim.dropped()
    })
    for (const socket of [downstream, upstream]) {
      socket.on('error', end)
      socket.on('close', end)
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, HOST, resolve)
  })
  return {
    port: (server.address() as AddressInfo).port,
    get connections () { return connections },
    loseReplyTo (marker) {
      return new Promise((resolve) => { armed = { marker, dropped: resolve } })
    },
    async close () {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    }
  }
}
