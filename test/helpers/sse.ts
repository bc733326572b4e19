// A minimal EventSource for the SSE transport's tests, over node:http (HTTP/1.1)
// or node:http2: it parses `text/event-stream` (id, data, comments), hands out
// the events in order, and posts messages to the stream's session. Reading can
// be stopped (`pause`) to play a client that does not drain.
import http from 'node:http'
import http2 from 'node:http2'
import { once } from 'node:events'
import { within } from './wait.js'

export interface SseEvent {
  /** The event's `id:`, if it had one. */
  id: string | undefined
  /** Its data, parsed as JSON; undefined for a comment. */
  data: any
  /** True for a comment line (a keep-alive). */
  comment: boolean
}

export interface StreamClient {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** The session id of the stream's first event. */
  session: string
  /** Every event so far, comments included. */
  events: SseEvent[]
  /** The next data event (after those already taken) that `match` accepts; skipped ones stay in `events`. */
  next: (match?: (data: any) => boolean, what?: string) => Promise<any>
  /** Resolves when the response ended (its last event is usually `sse:close`). */
  ended: Promise<void>
  /** POSTs a message (an object, or raw text) to the stream's session. */
  post: (message: unknown, headers?: Record<string, string>) => Promise<{ status: number, body: any }>
  pause: () => void
  close: () => void
}

/** Opens a stream on `url` (http://host:port/path); rejects on a non-200 answer with its status. */
export async function openStream (url: string, headers: Record<string, string> = {}, h2?: http2.ClientHttp2Session):
Promise<StreamClient> {
  const events: SseEvent[] = []
  let taken = 0
  let wake: (() => void) | null = null
  let buffer = ''
  let pause: () => void
  let close: () => void
  let status: number
  let responseHeaders: Record<string, string | string[] | undefined>
  let ended: Promise<void>
  const onText = (text: string): void => {
    buffer += text
    let end: number
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      let id: string | undefined
      const data: string[] = []
      let comment = false
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) comment = true
        else if (line.startsWith('id: ')) id = line.slice(4)
        else if (line.startsWith('data: ')) data.push(line.slice(6))
      }
      events.push({ id, data: data.length > 0 ? JSON.parse(data.join('\n')) : undefined, comment: comment && data.length === 0 })
    }
    wake?.()
  }
  const target = new URL(url)
  const requestHeaders = { accept: 'text/event-stream', ...headers }
  if (h2 === undefined) {
    const req = http.get(target, { headers: requestHeaders })
    const [res] = await once(req, 'response') as [http.IncomingMessage]
    status = res.statusCode as number
    responseHeaders = res.headers
    res.setEncoding('utf8')
    res.on('data', onText)
    ended = new Promise((resolve) => { res.on('close', resolve); res.on('end', resolve) })
    pause = () => { res.pause() }
    close = () => { req.destroy() }
  } else {
    const stream = h2.request({ ':path': target.pathname + target.search, ...requestHeaders })
    const [response] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
    status = Number(response[':status'])
    responseHeaders = response
    stream.setEncoding('utf8')
    stream.on('data', onText)
    ended = new Promise((resolve) => stream.on('close', resolve))
    pause = () => { stream.pause() }
    close = () => { stream.close() }
  }
  const next = async (match: (data: any) => boolean = () => true, what = 'event'): Promise<any> => {
    return within((async () => {
      for (;;) {
        for (let i = taken; i < events.length; i++) {
          const event = events[i]
          if (event.data !== undefined && match(event.data)) {
            taken = i + 1
            return event.data
          }
        }
        await new Promise<void>((resolve) => { wake = resolve })
      }
    })(), what)
  }
  const client: StreamClient = {
    status,
    headers: responseHeaders,
    session: '',
    events,
    next,
    ended,
    pause: () => pause(),
    close: () => close(),
    post: (message, extra = {}) => post(url, typeof message === 'string' ? message : JSON.stringify(message),
      { 'realtime-session': client.session, ...extra }, h2)
  }
  if (status !== 200) {
    close()
    throw Object.assign(new Error(`stream refused with ${status}`), { status })
  }
  const first = await next()
  client.session = first.data.session
  return client
}

/** POSTs `body` to `url`; the reply's body parsed as JSON when it has one. */
export async function post (url: string, body: string, headers: Record<string, string> = {}, h2?: http2.ClientHttp2Session):
Promise<{ status: number, body: any }> {
  const allHeaders = { 'content-type': 'application/json', ...headers }
  let status: number
  let text: string
  if (h2 === undefined) {
    const res = await fetch(url, { method: 'POST', headers: allHeaders, body })
    status = res.status
    text = await res.text()
  } else {
    const target = new URL(url)
    const stream = h2.request({ ':method': 'POST', ':path': target.pathname, ...allHeaders })
    stream.end(body)
    const [response] = await once(stream, 'response') as [http2.IncomingHttpHeaders]
    status = Number(response[':status'])
    stream.setEncoding('utf8')
    text = ''
    for await (const chunk of stream) text += chunk
  }
  return { status, body: text === '' ? undefined : JSON.parse(text) }
}
