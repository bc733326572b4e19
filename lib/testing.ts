// The test client for users' tap suites: a real WebSocket upgrade through
// `app.injectWS` (no port), speaking the protocol, typed from the route.
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Static } from 'typebox'
import type { WebSocket } from 'ws'
import { FRT_ERR_TESTING_CLOSED, FRT_ERR_TESTING_REQUEST, FRT_ERR_TESTING_TIMEOUT } from './errors.js'
import { MessageType, type WireError } from './protocol.js'
import type { EmitsOf, InboundOf, SchemaMap } from '../types/route.js'

/** A message as the client received it. */
export interface ReceivedMessage<T extends string = string, D = unknown> {
  type: T
  data: D
  id?: string | number
  error?: WireError
  [key: string]: unknown
}

export interface ConnectOptions {
  /** Headers of the upgrade request (e.g. `authorization`). */
  headers?: Record<string, string>
  /** Default timeout of `request` and `next`, in ms. Default 2000. */
  timeout?: number
}

export interface WaitOptions {
  /** Milliseconds before the wait fails with FRT_ERR_TESTING_TIMEOUT. */
  timeout?: number
}

/** Why and how the socket closed. */
export interface CloseInfo { code: number, reason: string }

/** A request's error reply, thrown by `request`. */
export interface RequestError extends Error {
  code: 'FRT_ERR_TESTING_REQUEST'
  /** The `error` object the server replied with. */
  error: WireError
}

export interface TestClient<In extends SchemaMap = SchemaMap, Emits extends SchemaMap = SchemaMap> {
  /** The client-side `ws` socket. */
  readonly socket: WebSocket
  /** Every message received so far, in order, including those already taken by `next`. */
  readonly received: ReceivedMessage[]
  /** Resolves once the socket has closed. */
  readonly closed: Promise<CloseInfo>
  /** Sends a declared client-to-server message without waiting. */
  send<K extends keyof In & string>(type: K, data: Static<In[K]>): void
  /** Sends any text or bytes as one frame, for hostile-input tests. */
  sendRaw (frame: string | Buffer): void
  /** Sends a message with an id and resolves with its ack's data; rejects with a RequestError on an error reply. */
  request<K extends keyof In & string>(type: K, data: Static<In[K]>, options?: WaitOptions): Promise<unknown>
  /** Takes the next not-yet-taken message of `type` (an emitted type, 'error' or 'pong'). */
  next<K extends keyof Emits & string>(type: K, options?: WaitOptions): Promise<ReceivedMessage<K, Static<Emits[K]>>>
  next (type: 'error' | 'pong', options?: WaitOptions): Promise<ReceivedMessage>
  /** Closes the socket and resolves once closed. */
  close (code?: number, reason?: string): Promise<CloseInfo>
}

interface Waiter {
  accept: (msg: ReceivedMessage) => boolean
  resolve: (msg: ReceivedMessage) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
}

/**
 * Opens a test client on `path`. Type it from the route definition:
 * `connect<typeof chat>(app, '/chat')`. Rejects when the upgrade is refused
 * (the error's `statusCode` is the HTTP status).
 */
export async function connect<R = unknown> (app: FastifyInstance, path: string, options: ConnectOptions = {}):
Promise<TestClient<InboundOf<R> extends never ? SchemaMap : InboundOf<R>, EmitsOf<R> extends never ? SchemaMap : EmitsOf<R>>> {
  const defaultTimeout = options.timeout ?? 2000
  // Before ready, Fastify's router would leave the upgrade unanswered.
  await app.ready()
  let socket: WebSocket
  // injectWS joins client and server by in-memory streams that never emit
  // 'close' on their own, so the server side would hold a closed socket until
  // ws's close timer fires. Behave like TCP instead: once the client has ended
  // its side, the server's stream is destroyed. injectWS emits 'upgrade'
  // synchronously, so this listener sees exactly this connection's stream.
  // `closed` waits for the server's side too, so that when it resolves the
  // server has run its close handling (onClose, rooms, stats) and a test can
  // assert on it without polling.
  let serverClosed!: Promise<void>
  app.server.once('upgrade', (_req: unknown, serverStream: Duplex) => {
    serverStream.once('end', () => setImmediate(() => serverStream.destroy()))
    serverClosed = new Promise((resolve) => serverStream.once('close', () => setImmediate(resolve)))
  })
  try {
    socket = await app.injectWS(path, { headers: options.headers ?? {} })
  } catch (err) {
    // injectWS reports a refused upgrade only in its message ("Unexpected server response: 401").
    const status = /(\d{3})/.exec((err as Error).message)
    /* c8 ignore next: injectWS rejects with nothing else; any other error is rethrown as it is */
    if (status !== null) Object.assign(err as Error, { statusCode: Number(status[1]) })
    throw err
  }

  const received: ReceivedMessage[] = []
  const unread: ReceivedMessage[] = []
  const waiters = new Set<Waiter>()
  let nextId = 0
  let closeInfo: CloseInfo | undefined

  const closed = new Promise<CloseInfo>((resolve) => {
    socket.on('close', (code, reason) => {
      closeInfo = { code, reason: reason.toString() }
      for (const waiter of waiters) {
        clearTimeout(waiter.timer)
        waiter.reject(new FRT_ERR_TESTING_CLOSED(code, 'a message'))
      }
      waiters.clear()
      const info = closeInfo
      serverClosed.then(() => resolve(info))
    })
  })

  socket.on('message', (raw) => {
    const msg = JSON.parse(raw.toString()) as ReceivedMessage
    received.push(msg)
    for (const waiter of waiters) {
      if (waiter.accept(msg)) {
        waiters.delete(waiter)
        clearTimeout(waiter.timer)
        waiter.resolve(msg)
        return
      }
    }
    unread.push(msg)
  })

  function wait (what: string, accept: (msg: ReceivedMessage) => boolean, timeout = defaultTimeout): Promise<ReceivedMessage> {
    const index = unread.findIndex(accept)
    if (index !== -1) return Promise.resolve(unread.splice(index, 1)[0])
    if (closeInfo !== undefined) return Promise.reject(new FRT_ERR_TESTING_CLOSED(closeInfo.code, what))
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        accept,
        resolve,
        reject,
        timer: setTimeout(() => {
          waiters.delete(waiter)
          reject(new FRT_ERR_TESTING_TIMEOUT(timeout, what))
        }, timeout)
      }
      waiters.add(waiter)
    })
  }

  const client: TestClient = {
    socket,
    received,
    closed,
    send (type, data) {
      socket.send(JSON.stringify({ type, data }))
    },
    sendRaw (frame) {
      socket.send(frame)
    },
    async request (type, data, waitOptions = {}) {
      const id = ++nextId
      socket.send(JSON.stringify({ type, data, id }))
      const reply = await wait(`the reply to "${type}" (id ${id})`,
        (msg) => msg.id === id && (msg.type === MessageType.Ack || msg.type === MessageType.Error),
        waitOptions.timeout)
      if (reply.type === MessageType.Error) {
        const err = new FRT_ERR_TESTING_REQUEST(type, reply.error?.code, reply.error?.message)
        throw Object.assign(err, { error: reply.error })
      }
      return reply.data
    },
    next (type: string, waitOptions: WaitOptions = {}) {
      return wait(`a "${type}" message`, (msg) => msg.type === type, waitOptions.timeout)
    },
    close (code, reason) {
      if (closeInfo === undefined) socket.close(code, reason)
      return closed
    }
  } as TestClient
  return client as never
}
