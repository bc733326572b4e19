// Shared set-up of the client tests: a real fastify-realtime app on a loopback
// port (restartable on the same port), a scripted `ws` server that speaks the
// 1.1 contract frame by frame, and client options for Node 20 (`ws`'s class).
import Fastify, { type FastifyInstance } from 'fastify'
import jwt from '@fastify/jwt'
import Type from 'typebox'
import { WebSocket, WebSocketServer, type WebSocket as ServerSocket } from 'ws'
import type { AddressInfo } from 'node:net'
import type { IncomingMessage } from 'node:http'
import realtime, { defineRoute, type RealtimeOptions } from '../../index.js'
import { createClient, type ClientOptions, type RealtimeClient } from '../../lib/client/index.js'

export const SECRET = 'test-secret-test-secret-test-secret!'

/** The chat route the client tests run against. */
export const chat = defineRoute({
  joinable: true,
  presence: true,
  messages: {
    echo: {
      schema: Type.Object({ text: Type.String({ maxLength: 10 }) }),
      handler: (conn, data) => {
        conn.emit('echoed', { text: data.text })
        return { text: data.text }
      }
    },
    say: {
      schema: Type.Object({ room: Type.String(), text: Type.String() }),
      handler: (conn, data) => {
        // The ordering bug of the issue: a message that arrives before its room was re-joined is refused.
        if (!conn.rooms.has(data.room)) throw Object.assign(new Error(`Not in "${data.room}"`), { statusCode: 409, code: 'not_in_room' })
        conn.to(data.room).emit('said', { text: data.text })
        return true
      }
    },
    hang: { schema: Type.Null(), handler: () => new Promise(() => {}) },
    refuse: {
      schema: Type.Null(),
      handler: () => { throw Object.assign(new Error('No way'), { statusCode: 403, code: 'NO_WAY' }) }
    },
    /** Makes the server close this socket with a code (and optionally send frames first). */
    closeMe: {
      schema: Type.Object({ code: Type.Integer(), frames: Type.Optional(Type.Array(Type.String())) }),
      handler: (conn, data) => {
        setTimeout(() => {
          for (const frame of data.frames ?? []) conn.socket.send(frame)
          if (data.code === 1006) conn.socket.terminate()
          else conn.socket.close(data.code, 'closed by the test')
        }, 5)
        return null
      }
    }
  },
  emits: {
    echoed: Type.Object({ text: Type.String() }),
    said: Type.Object({ text: Type.String() })
  }
})

export interface Server {
  app: FastifyInstance
  port: number
  url: string
  /** Every message the route's handlers saw, in order, as `type:text`. */
  seen: string[]
  /** Connections opened so far. */
  opens: number
  /** app.close() then a new app on the same port (`seen` and `opens` carry over). */
  restart: () => Promise<void>
  sign: (sub: string, seconds: number) => string
}

export interface ServerOptions {
  plugin?: RealtimeOptions
  auth?: 'handshake' | 'message'
  port?: number
}

/** A real server with the chat route, listening on 127.0.0.1 (a random port unless given). */
export async function startServer (t: { teardown: (fn: () => unknown) => void }, options: ServerOptions = {}): Promise<Server> {
  const server = { seen: [] as string[], opens: 0 } as Server
  async function build (port: number): Promise<void> {
    const app = Fastify()
    await app.register(jwt, { secret: SECRET, sign: { algorithm: 'HS256' }, verify: { algorithms: ['HS256'] } })
    await app.register(realtime, { subprotocols: ['chat.v1'], rateLimit: false, heartbeat: false, shutdownGrace: 200, ...options.plugin })
    const seen = server.seen
    app.realtime('/chat', {
      ...chat,
      ...(options.auth === undefined ? {} : { auth: options.auth }),
      // The route uses what the plugin turns on (protocol 1.1 recovery).
      history: options.plugin?.history !== undefined && options.plugin.history !== false,
      sessions: options.plugin?.sessions !== undefined && options.plugin.sessions !== false,
      onOpen: () => { server.opens++ },
      messages: Object.fromEntries(Object.entries(chat.messages).map(([type, definition]) => [type, {
        ...definition,
        handler: (conn: any, data: any) => {
          seen.push(`${type}:${data?.text ?? ''}`)
          return (definition.handler as (c: unknown, d: unknown) => unknown)(conn, data)
        }
      }])) as typeof chat.messages
    })
    await app.listen({ port, host: '127.0.0.1' })
    server.app = app
    server.port = (app.server.address() as AddressInfo).port
    server.url = `ws://127.0.0.1:${server.port}/chat`
    server.sign = (sub, seconds) => app.jwt.sign({ sub }, { expiresIn: seconds })
  }
  await build(options.port ?? 0)
  server.restart = async () => {
    await server.app.close()
    await build(server.port)
  }
  t.teardown(() => server.app.close())
  return server
}

/** Options every Node test client needs, plus fast reconnects (full jitter still applies). */
export function clientOptions (extra: ClientOptions = {}): ClientOptions {
  return {
    WebSocket: WebSocket as unknown as ClientOptions['WebSocket'],
    protocols: ['chat.v1'],
    reconnect: { base: 20, cap: 100 },
    ping: false,
    timeout: 2000,
    ...extra
  }
}

/** A client closed at the end of the test. */
export function client<R = typeof chat> (t: { teardown: (fn: () => unknown) => void }, url: string, options: ClientOptions = {}): RealtimeClient<R> {
  const c = createClient<R>(url, clientOptions(options))
  t.teardown(() => c.close())
  return c
}

/** Resolves with the next emission of a client event (`state` resolves on a given state). */
export function nextEvent<T = unknown> (c: RealtimeClient<any>, name: 'open' | 'close' | 'gap' | 'error', timeout = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no "${name}" event within ${timeout} ms`)) }, timeout)
    const off = c.events.on(name, ((value: T) => { clearTimeout(timer); off(); resolve(value) }) as never)
  })
}

/** Resolves when the client reaches `state`. */
export function stateOf (c: RealtimeClient<any>, state: string, timeout = 5000): Promise<void> {
  if (c.state === state) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`state "${state}" not reached within ${timeout} ms (now ${c.state})`)) }, timeout)
    const off = c.events.on('state', (now) => {
      if (now !== state) return
      clearTimeout(timer)
      off()
      resolve()
    })
  })
}

/** One connection of the scripted server. */
export interface ScriptedConnection {
  socket: ServerSocket
  request: IncomingMessage
  /** The subprotocol entries the client offered. */
  protocols: string[]
  /** Frames received, parsed, in order. */
  frames: any[]
  send: (frame: object) => void
  /** Resolves with the next frame matching `accept` (also one already received and not yet taken). */
  next: (accept?: (frame: any) => boolean, timeout?: number) => Promise<any>
}

export interface ScriptedServer {
  url: string
  port: number
  connections: ScriptedConnection[]
  /** Resolves with the n-th connection (1-based), once it is open. */
  connection: (n: number, timeout?: number) => Promise<ScriptedConnection>
  close: () => Promise<void>
}

/**
 * A bare `ws` server for the parts of the contract the real server does not speak yet (sessions, join `since`,
 * de-duplication): the test plays the server's side frame by frame. It selects `chat.v1` when offered.
 */
export async function scriptedServer (t: { teardown: (fn: () => unknown) => void }): Promise<ScriptedServer> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    handleProtocols: (protocols) => protocols.has('chat.v1') ? 'chat.v1' : false
  })
  await new Promise((resolve) => wss.once('listening', resolve))
  const port = (wss.address() as AddressInfo).port
  const connections: ScriptedConnection[] = []
  const waiting: Array<() => void> = []
  wss.on('connection', (socket, request) => {
    const frames: any[] = []
    const unread: any[] = []
    const waiters: Array<{ accept: (f: any) => boolean, resolve: (f: any) => void }> = []
    socket.on('message', (raw) => {
      const frame = JSON.parse(raw.toString())
      frames.push(frame)
      const index = waiters.findIndex((w) => w.accept(frame))
      if (index === -1) unread.push(frame)
      else waiters.splice(index, 1)[0].resolve(frame)
    })
    connections.push({
      socket,
      request,
      protocols: (request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter((p) => p !== ''),
      frames,
      send: (frame) => socket.send(JSON.stringify(frame)),
      next: (accept = () => true, timeout = 5000) => {
        const index = unread.findIndex(accept)
        if (index !== -1) return Promise.resolve(unread.splice(index, 1)[0])
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no matching frame within ${timeout} ms; got ${JSON.stringify(frames)}`)), timeout)
          waiters.push({ accept, resolve: (f) => { clearTimeout(timer); resolve(f) } })
        })
      }
    })
    for (const wake of waiting.splice(0)) wake()
  })
  const server: ScriptedServer = {
    url: `ws://127.0.0.1:${port}/chat`,
    port,
    connections,
    connection: async (n, timeout = 5000) => {
      const deadline = Date.now() + timeout
      while (connections.length < n) {
        if (Date.now() > deadline) throw new Error(`connection ${n} not made within ${timeout} ms`)
        await new Promise<void>((resolve) => {
          waiting.push(resolve)
          setTimeout(resolve, 50)
        })
      }
      return connections[n - 1]
    },
    close: () => new Promise((resolve) => {
      for (const ws of wss.clients) ws.terminate()
      wss.close(() => resolve())
    })
  }
  t.teardown(() => server.close())
  return server
}
