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
// On a route with history or sessions, a stream's resume cursor (lib/sse-cursor.ts)
// is made here from its connection's rooms, and a `Last-Event-ID` read back into one.
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify'
import type { WebSocket } from 'ws'
import type { UserType } from '@fastify/jwt'
import {
  FRT_ERR_ROUTE_UPGRADE_REQUIRED, FRT_ERR_SSE_CLOSED, FRT_ERR_SSE_SESSION_MISSING, FRT_ERR_SSE_SESSION_UNKNOWN,
  FRT_ERR_SSE_SESSION_USER, FRT_ERR_SSE_SHUTDOWN
} from './errors.js'
import { MessageType } from './protocol.js'
import { SseStream, type CursorSource } from './sse-stream.js'
import { decodeCursor, encodeCursor, type StreamResume } from './sse-cursor.js'
import { isStreamRequest } from './transport.js'
import type { Auth, RouteAuthConfig } from './auth.js'
import { connectionOf, type Pipeline } from './pipeline.js'
import type { Room, Rooms } from './rooms.js'
import type { RoomPosition } from '../types/history.js'

/** What of a route the resume cursor depends on (lib/route.ts's CompiledRoute). */
export interface ResumableRoute {
  readonly history: boolean
  readonly sessions: boolean
}

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
  readonly #rooms: Rooms
  /** One function for the streams of every route with history: the cursor of a stream's connection as it stands. */
  readonly #cursor: CursorSource = (stream) => this.#cursorOf(stream, true)
  /** For routes with sessions and no history: the token alone. */
  readonly #tokenCursor: CursorSource = (stream) => this.#cursorOf(stream, false)

  constructor (auth: Auth, closeTimeout: number, maxPayload: number, rooms: Rooms) {
    this.#auth = auth
    this.#closeTimeout = closeTimeout
    this.#maxPayload = maxPayload
    this.#rooms = rooms
  }

  /** The GET handler of a route with `sse`: a stream request opens one, anything else is told to upgrade. */
  streamHandler (pipeline: Pipeline, route: ResumableRoute): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
    return async (request, reply) => {
      if (!isStreamRequest(request)) throw new FRT_ERR_ROUTE_UPGRADE_REQUIRED()
      if (this.closing) throw new FRT_ERR_SSE_SHUTDOWN()
      this.open(request, reply, pipeline, route)
    }
  }

  open (request: FastifyRequest, reply: FastifyReply, pipeline: Pipeline, route: ResumableRoute): void {
    reply.hijack()
    const res = reply.raw
    // Headers the app's hooks set (CORS, say) go out with ours. Over HTTP/1.1 the connection ends with the
    // stream: kept alive, it would be idle only after server.close() looked for idle connections to close.
    const headers: Record<string, unknown> = { ...reply.getHeaders(), ...STREAM_HEADERS }
    if (request.raw.httpVersionMajor === 1) headers.connection = 'close'
    res.writeHead(200, headers as Record<string, string>)
    const resumable = route.history || route.sessions
    const stream = new SseStream(res, this.sessions, pipeline, this.#auth.userKey((request as { user?: UserType }).user),
      resumable ? resumeOf(request.headers['last-event-id'], route) : null,
      route.history ? this.#cursor : route.sessions ? this.#tokenCursor : null, this.#closeTimeout)
    // First, before onOpen can send anything: the id the client's POSTs name.
    stream.writeEvent(MessageType.SseSession, { session: stream.sessionId })
    pipeline.accept(stream as unknown as WebSocket, request)
  }

  /**
   * The cursor of a stream's connection: its session's current token, and each history room's position as
   * delivered to it (a room still catching up keeps the position of the last cursor, or is unknown), then the
   * positions the request brought that no join has taken yet, so that a second drop loses them neither.
   */
  #cursorOf (stream: SseStream, history: boolean): string | null {
    const conn = connectionOf(stream as unknown as WebSocket)
    /* c8 ignore next: a stream is written to only once the pipeline accepted it */
    if (conn === undefined) return null
    const positions = new Map<string, RoomPosition | null>()
    if (!history) return encodeCursor({ token: conn.session?.token, rooms: positions, truncated: false })
    for (const name of conn.rooms) {
      // A joined room exists here (rooms are freed only once their last member left); outside the plugin's
      // `history.rooms` it has no history to resume from.
      const room = this.#rooms.get(name) as Room
      if (!room.history) continue
      positions.set(name, conn.catchups?.has(name) === true ? stream.positions.get(name) ?? null : { seq: room.seq, epoch: room.epoch })
    }
    const resume = stream.resume
    if (resume !== null) for (const [name, position] of resume.positions) if (!positions.has(name)) positions.set(name, position)
    stream.positions = positions
    return encodeCursor({ token: conn.session?.token, rooms: positions, truncated: resume?.truncated === true })
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

/** A `Last-Event-ID`'s cursor, keeping only what the route can resume: room positions with history, a token with sessions. */
function resumeOf (lastEventId: unknown, route: ResumableRoute): StreamResume | null {
  const resume = decodeCursor(lastEventId)
  if (resume === null) return null
  if (!route.sessions) resume.token = undefined
  if (!route.history) {
    resume.positions.clear()
    resume.truncated = false
  }
  return resume
}

function keepRaw (_request: FastifyRequest, body: Buffer, done: (err: null, body: Buffer) => void): void {
  done(null, body)
}
