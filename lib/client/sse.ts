// The client's fallback transport: a WebSocket look-alike (WebSocketLike) over
// the server's SSE binding (PROTOCOL.md, "SSE + POST"). The stream is read with
// fetch, so the token goes in an Authorization header and never in the URL (a
// session's resume token in `Last-Event-ID`, as the stream's cursor would carry it);
// messages are POSTed one at a time, in order, to the stream's session, and a
// reply in a POST's response is handed on as if it came down the stream.
import { CloseCode, MessageType, ProtocolPrefix } from '../wire.js'
import type { WebSocketLike } from './types.js'

export class SseSocket implements WebSocketLike {
  readyState = 0
  onopen: ((event: any) => void) | null = null
  onmessage: ((event: any) => void) | null = null
  onclose: ((event: any) => void) | null = null
  onerror: ((event: any) => void) | null = null
  readonly #url: string
  readonly #headers: Record<string, string> = {}
  /** The stream request's own headers: a session's resume token, as a cursor (PROTOCOL.md, "Resuming a stream"). */
  readonly #stream: Record<string, string> = { accept: 'text/event-stream' }
  readonly #abort = new AbortController()
  readonly #queue: string[] = []
  #posting = false
  #code: number = CloseCode.Abnormal
  #reason = ''

  constructor (url: string, protocols: string[] = []) {
    this.#url = url.replace(/^ws/, 'http')
    // Of the subprotocol entries only a token and a resume token mean something here: they become headers.
    for (const entry of protocols) {
      if (entry.startsWith(ProtocolPrefix.Bearer)) this.#headers.authorization = 'Bearer ' + entry.slice(ProtocolPrefix.Bearer.length)
      else if (entry.startsWith(ProtocolPrefix.Resume)) this.#stream['last-event-id'] = '1;t=' + entry.slice(ProtocolPrefix.Resume.length)
    }
    this.#read().catch(() => this.#end())
  }

  send (data: string): void {
    this.#queue.push(data)
    if (!this.#posting) this.#post().catch(() => this.close(CloseCode.Abnormal, 'POST failed'))
  }

  close (code: number = CloseCode.Normal, reason = ''): void {
    if (this.readyState === 3) return
    this.#code = code
    this.#reason = reason
    this.#abort.abort()
    this.#end()
  }

  async #read (): Promise<void> {
    const res = await fetch(this.#url, { headers: { ...this.#headers, ...this.#stream }, signal: this.#abort.signal })
    if (!res.ok || res.body === null) {
      // A refused token is told apart, so that the client asks its provider for a fresh one.
      if (res.status === 401) this.#code = CloseCode.Unauthorized
      throw new Error(String(res.status))
    }
    const reader = res.body.getReader()
    const decoder = new TextDecoder()
    let buffer = ''
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      buffer += decoder.decode(value, { stream: true })
      let end: number
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const data = buffer.slice(0, end).split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n')
        buffer = buffer.slice(end + 2)
        if (data !== '') this.#event(data)
      }
    }
    this.#end()
  }

  #event (data: string): void {
    const msg = JSON.parse(data) as { type: string, data: { session: string, code: number, reason: string } }
    if (msg.type === MessageType.SseSession) {
      this.#headers['realtime-session'] = msg.data.session
      this.readyState = 1
      this.onopen?.({})
    } else if (msg.type === MessageType.SseClose) {
      this.#code = msg.data.code
      this.#reason = msg.data.reason
    } else {
      this.onmessage?.({ data })
    }
  }

  async #post (): Promise<void> {
    this.#posting = true
    let body: string | undefined
    while (this.readyState === 1 && (body = this.#queue.shift()) !== undefined) {
      const res = await fetch(this.#url, {
        method: 'POST', headers: { ...this.#headers, 'content-type': 'application/json' }, body, signal: this.#abort.signal
      })
      const text = await res.text()
      // 401: the token (the client asks for a fresh one); anything else: the session is gone (404, 410), refused, or failed.
      if (res.status >= 400) return this.close(res.status === 401 ? CloseCode.Unauthorized : CloseCode.Abnormal, text)
      if (text !== '') this.onmessage?.({ data: text })
    }
    this.#posting = false
  }

  #end (): void {
    if (this.readyState === 3) return
    this.readyState = 3
    const event = { code: this.#code, reason: this.#reason }
    // As a WebSocket's: after the current task.
    setTimeout(() => this.onclose?.(event), 0)
  }
}
