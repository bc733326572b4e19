// The client's token provider and in-band refresh, against a real server.
import t from 'tap'
import { WebSocket } from 'ws'
import { client, nextEvent, startServer, stateOf } from './helpers/client.js'
import type { ClientOptions, RealtimeError } from '../lib/client/index.js'

/** `ws`'s class, counting the sockets made. */
function countingWebSocket (): { WebSocket: ClientOptions['WebSocket'], made: () => number } {
  let made = 0
  class Counting extends WebSocket {
    constructor (url: string, protocols?: string[]) {
      made++
      super(url, protocols)
    }
  }
  return { WebSocket: Counting as unknown as ClientOptions['WebSocket'], made: () => made }
}

for (const mode of ['handshake', 'message'] as const) {
  t.test(`${mode} auth: a slow token provider is called once per attempt`, async (t) => {
    const server = await startServer(t, { auth: mode })
    const sockets = countingWebSocket()
    let calls = 0
    const c = client(t, server.url, {
      WebSocket: sockets.WebSocket,
      auth: mode === 'handshake' ? 'protocol' : 'message',
      token: async () => {
        calls++
        await new Promise((resolve) => setTimeout(resolve, 100))
        return server.sign('ada', 3600)
      }
    })
    await c.ready()
    t.equal(calls, 1)
    t.equal(sockets.made(), 1)
    await c.request('closeMe', { code: 1006 })
    await stateOf(c, 'reconnecting')
    await stateOf(c, 'open')
    t.equal(calls, 2)
    t.equal(sockets.made(), 2)
    t.same(await c.request('echo', { text: 'ok' }), { text: 'ok' })
  })
}

t.test('a failing token provider is reported and retried with backoff', async (t) => {
  const server = await startServer(t, { auth: 'handshake' })
  const sockets = countingWebSocket()
  let calls = 0
  const c = client(t, server.url, {
    WebSocket: sockets.WebSocket,
    token: () => {
      if (++calls === 1) throw new Error('auth service down')
      return Promise.resolve(server.sign('ada', 3600))
    }
  })
  const error = await nextEvent<RealtimeError>(c, 'error')
  t.match(error, { code: 'token_provider', message: 'auth service down' })
  await c.ready()
  t.equal(calls, 2)
  t.equal(sockets.made(), 1, 'no socket for the attempt without a token')
})

for (const mode of ['handshake', 'message'] as const) {
  t.test(`${mode} auth: an in-band refresh keeps the socket open past the first token's exp`, async (t) => {
    const server = await startServer(t, { auth: mode })
    let calls = 0
    const c = client(t, server.url, {
      auth: mode === 'handshake' ? 'protocol' : 'message',
      refreshBefore: 1000,
      token: () => {
        calls++
        // The first token expires in 2 s; without a refresh the server closes with 4401 then.
        return server.sign('ada', calls === 1 ? 2 : 3600)
      }
    })
    const closes: unknown[] = []
    c.events.on('close', (event) => closes.push(event))
    await c.ready()
    const firstExp = Date.now() + 2000
    while (Date.now() < firstExp + 500) await new Promise((resolve) => setTimeout(resolve, 100))
    t.same(closes, [], 'never closed')
    t.equal(c.state, 'open')
    t.equal(calls, 2, 'one refresh')
    t.equal(server.opens, 1)
    t.same(await c.request('echo', { text: 'late' }), { text: 'late' })
  })
}

t.test('without refresh the server closes at exp with 4401 and the client comes back with a fresh token', async (t) => {
  const server = await startServer(t, { auth: 'handshake' })
  let calls = 0
  const c = client(t, server.url, { refreshBefore: false, token: () => server.sign('ada', ++calls === 1 ? 2 : 3600) })
  await c.ready()
  t.match(await nextEvent(c, 'close', 8000), { code: 4401, reconnectIn: Number })
  await stateOf(c, 'open')
  t.equal(calls, 2)
})
