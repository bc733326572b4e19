// A slow consumer over HTTP/2 (Fastify's `http2: true`), with node:http2 as the
// client: a stream whose reader stops reading is held by the peer's flow-control
// window, its backlog grows in the server's HTTP/2 stream, and it is cut with
// 4008 as over HTTP/1.1, then destroyed after closeTimeout. Nothing is left
// behind: the connection, its room membership and its session id are gone, and
// the HTTP/2 session it shared keeps serving other streams.
import t from 'tap'
import http2 from 'node:http2'
import { Type } from 'typebox'
import { listeningApp } from './helpers/app.js'
import { openStream } from './helpers/sse.js'
import { until } from './helpers/wait.js'

const closes: number[] = []
const route = {
  sse: true,
  onClose: (_conn: unknown, code: number) => { closes.push(code) },
  joinable: true,
  messages: { echo: { schema: Type.Object({}), handler: () => 'here' } },
  emits: { said: Type.Object({ text: Type.String() }) }
}

t.test('over HTTP/2 a stream that does not drain is cut with 4008, and nothing leaks', async (t) => {
  const { app, port } = await listeningApp(t, {
    fastify: { http2: true },
    routes: { '/chat': route },
    options: {
      heartbeat: false,
      rateLimit: false,
      closeTimeout: 50,
      slowConsumer: { softLimit: 256 * 1024, softTimeout: 60_000, hardLimit: 1024 * 1024 }
    }
  })
  const session = http2.connect(`http://127.0.0.1:${port}`)
  // destroy, not close: a paused client stream ends only once its reader reads on (node:http2 client side).
  t.teardown(() => session.destroy())
  const url = `http://127.0.0.1:${port}/chat`
  const stalled = await openStream(url, {}, session)
  const healthy = await openStream(url, {}, session)
  t.equal((await stalled.post({ type: 'room:join', id: 1, data: { room: 'firehose' } })).status, 200)
  stalled.pause()
  const big = 'x'.repeat(16 * 1024)
  let sent = 0
  // Written until the backlog passes the hard limit (the peer's window fills first); the cut ends the loop.
  for (; sent < 100_000 && app.realtime.stats().slowConsumerCloses === 0; sent++) {
    app.realtime.to('firehose').emit('said', { text: big })
    if (sent % 16 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(app.realtime.stats().slowConsumerCloses, 1)
  t.ok(sent * big.length > 1024 * 1024, `cut after ${sent} messages of 16 KiB`)
  // Its close event waits behind the backlog the client never reads: the HTTP/2 stream is destroyed instead.
  await until(() => app.realtime.stats().connections === 1, 'the stalled stream to be destroyed')
  t.equal(app.realtime.stats().members, 0, 'it left its room')
  t.same(closes, [4008], 'closed as a slow consumer')
  t.equal((await stalled.post({ type: 'echo', id: 2, data: {} })).status, 404, 'its session id is gone')
  // The HTTP/2 connection it shared is unharmed: the other stream still answers.
  t.same((await healthy.post({ type: 'echo', id: 3, data: {} })).body, { type: 'ack', id: 3, data: 'here' })
  t.notOk(session.destroyed)
  healthy.close()
  await until(() => app.realtime.stats().connections === 0, 'the healthy stream to close')
})
