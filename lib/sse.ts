// The SSE transport's HTTP side, for routes with `sse`: `GET <path>` asking for
// `text/event-stream` opens a stream (lib/sse-stream.ts) that the route's
// pipeline accepts as it would a ws socket; `POST <path>` with the stream's
// session id in the `Realtime-Session` header carries one client message and
// answers with its reply; `POST <path>` without one, authenticated, answers a
// single-use ticket for opening a stream from an `EventSource` (which cannot
// send headers). The Origin check, caps and handshake auth run on these
// requests as on an upgrade (lib/handshake.ts); every POST is authenticated
// again and must be the stream's user's. Streams live on this instance: behind
// a load balancer, POSTs must reach the instance of their stream (sticky sessions).
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify'
import type { WebSocket } from 'ws'
import type { UserType } from '@fastify/jwt'
import {
  FRT_ERR_ROUTE_UPGRADE_REQUIRED, FRT_ERR_SSE_CLOSED, FRT_ERR_SSE_SESSION_MISSING, FRT_ERR_SSE_SESSION_UNKNOWN,
  FRT_ERR_SSE_SESSION_USER, FRT_ERR_SSE_SHUTDOWN
} from './errors.js'
import { MessageType } from './protocol.js'
import { SseStream } from './sse-stream.js'
import { isStreamRequest } from './transport.js'
import type { Auth, RouteAuthConfig } from './auth.js'
import type { Pipeline } from './pipeline.js'

/** The header a POST names its stream's session with. */
export const SESSION_HEADER = 'realtime-session'

// What turns buffering off on the way: `no-cache` for caches and browsers (and `no-transform` so that a proxy
// does not compress, which buffers), `X-Accel-Buffering: no` for nginx, and the event-stream type itself,
// which most proxies already stream.
const STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no'
} as const

const EMPTY = Buffer.alloc(0)

export class SseEndpoint {
  /** Open streams by session id, every route of the instance. */
  readonly sessions = new Map<string, SseStream>()
  /** Set when the app starts closing: the hub's shutdown has closed the streams, no new one may open. */
  closing = false
  readonly #auth: Auth
  readonly #closeTimeout: number
  readonly #maxPayload: number

  constructor (auth: Auth, closeTimeout: number, maxPayload: number) {
    this.#auth = auth
    this.#closeTimeout = closeTimeout
    this.#maxPayload = maxPayload
  }

  /** The GET handler of a route with `sse`: a stream request opens one, anything else is told to upgrade. */
  streamHandler (pipeline: Pipeline): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
    return async (request, reply) => {
      if (!isStreamRequest(request)) throw new FRT_ERR_ROUTE_UPGRADE_REQUIRED()
      if (this.closing) throw new FRT_ERR_SSE_SHUTDOWN()
      this.open(request, reply, pipeline)
    }
  }

  open (request: FastifyRequest, reply: FastifyReply, pipeline: Pipeline): void {
    reply.hijack()
    const res = reply.raw
    // Headers the app's hooks set (CORS, say) go out with ours. Over HTTP/1.1 the connection ends with the
    // stream: kept alive, it would be idle only after server.close() looked for idle connections to close.
    const headers: Record<string, unknown> = { ...reply.getHeaders(), ...STREAM_HEADERS }
    if (request.raw.httpVersionMajor === 1) headers.connection = 'close'
    res.writeHead(200, headers as Record<string, string>)
    const stream = new SseStream(res, this.sessions, pipeline, this.#auth.userKey((request as { user?: UserType }).user),
      request.headers['last-event-id'], this.#closeTimeout)
    // First, before onOpen can send anything: the id the client's POSTs name.
    stream.writeEvent(MessageType.SseSession, { session: stream.sessionId })
    pipeline.accept(stream as unknown as WebSocket, request)
  }

  /** Declares `POST <path>` in its own context, where bodies stay raw bytes: the pipeline parses them as frames. */
  declarePosts (instance: FastifyInstance, path: string, routeOptions: RouteShorthandOptions, pipeline: Pipeline,
    routeAuth: RouteAuthConfig | null): void {
    const maxPayload = this.#maxPayload
    const handler = this.#postHandler(pipeline, routeAuth)
    instance.register(async function realtimePosts (child) {
      child.removeAllContentTypeParsers()
      child.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxPayload }, keepRaw)
      child.route({ ...routeOptions, method: 'POST', url: path, handler })
    })
  }

  #postHandler (pipeline: Pipeline, routeAuth: RouteAuthConfig | null):
  (request: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
    const auth = this.#auth
    const handshake = routeAuth?.mode === 'handshake'
    return async (request, reply) => {
      reply.header('cache-control', 'no-store')
      const session = request.headers[SESSION_HEADER]
      if (typeof session !== 'string' || session === '') {
        // Without a session: a ticket, for a user the handshake hook has just authenticated.
        if (!handshake) throw new FRT_ERR_SSE_SESSION_MISSING()
        return auth.issueTicket(request)
      }
      const stream = this.sessions.get(session)
      if (stream === undefined || stream.owner !== pipeline) throw new FRT_ERR_SSE_SESSION_UNKNOWN()
      if (handshake && auth.userKey((request as { user?: UserType }).user) !== stream.userKey) {
        throw new FRT_ERR_SSE_SESSION_USER()
      }
      const result = stream.deliver((request.body as Buffer | undefined) ?? EMPTY)
      if (result === null) {
        reply.code(202)
        return ''
      }
      const replied = await result
      if (replied === null) throw new FRT_ERR_SSE_CLOSED()
      reply.type('application/json; charset=utf-8')
      return replied
    }
  }
}

function keepRaw (_request: FastifyRequest, body: Buffer, done: (err: null, body: Buffer) => void): void {
  done(null, body)
}
