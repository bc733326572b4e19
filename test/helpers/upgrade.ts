// A bare upgrade request over a real socket, for tests that need to see the
// HTTP answer itself (status, Retry-After, the selected subprotocol) or to
// come from a given local address. A 101 leaves the socket open for the caller.
import http from 'node:http'
import type { Duplex } from 'node:stream'
import { randomBytes } from 'node:crypto'

export interface UpgradeResult {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
  /** The upgraded socket (status 101); destroy it to close the connection. */
  socket?: Duplex
}

export function upgrade (port: number, path: string, options: { headers?: Record<string, string>, localAddress?: string } = {}):
Promise<UpgradeResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      path,
      localAddress: options.localAddress,
      // A refused upgrade's socket is destroyed by the server: never reuse one.
      agent: false,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        ...options.headers
      }
    })
    req.on('upgrade', (res, socket) => {
      resolve({ status: res.statusCode as number, headers: res.headers, body: '', socket })
    })
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode as number, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** Collects the JSON lines of a Fastify logger: `Fastify({ logger: { stream: logs } })`. */
export function logCollector (): { lines: string[], write: (line: string) => void } {
  const lines: string[] = []
  return { lines, write: (line: string) => { lines.push(line) } }
}

/** The HTTP status a refused `connect()` reports, or 101 when it was accepted (and is then closed). */
export async function statusOf (attempt: Promise<{ close: () => Promise<unknown> }>): Promise<number | undefined> {
  try {
    await (await attempt).close()
    return 101
  } catch (err) {
    return (err as { statusCode?: number }).statusCode
  }
}
