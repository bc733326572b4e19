// The SSE transport on its own, over a recording response: event encoding (once
// per frame, no ids, raw line breaks), terminate, and what a closed stream ignores.
import t from 'tap'
import { EventEmitter } from 'node:events'
import { Frame } from '../lib/frames.js'
import { MAX_WAITING, SseStream } from '../lib/sse-stream.js'
import { Auth } from '../lib/auth.js'
import { resolveOptions } from '../lib/options.js'
import { serializeRoomEvent } from '../lib/protocol.js'

function fakeResponse () {
  const res = Object.assign(new EventEmitter(), {
    written: [] as string[],
    ended: false,
    destroyed: 0,
    writableLength: 0,
    write (chunk: string | Buffer) { res.written.push(chunk.toString()); return true },
    end () { res.ended = true },
    destroy () { res.destroyed++; queueMicrotask(() => res.emit('close')) }
  })
  return res
}

t.test('events: a room message is the same bytes for every stream (no id), raw line breaks stay inside one event, frames encode once', async (t) => {
  const res = fakeResponse()
  const stream = new SseStream(res as never, new Map(), {}, undefined, null, null, 1000)
  const frame = new Frame(serializeRoomEvent('said', 'a/b:c', 7, { text: 'hi' }))
  stream.writeFrame(frame)
  const encoded = frame.sse
  stream.writeFrame(frame)
  t.equal(frame.sse, encoded, 'the event is made once for every stream')
  t.equal(res.written[0], 'data: {"type":"said","room":"a/b:c","seq":7,"data":{"text":"hi"}}\n\n')
  stream.writeFrame(new Frame('{"a":\n"b\r\nc"}'))
  t.equal(res.written[2], 'data: {"a":\ndata: "b\ndata: c"}\n\n')
  t.equal(stream.bufferedAmount, 0)
  // A write to a reset HTTP/2 stream errs; its 'close' tells the rest, the error itself must not throw.
  t.doesNotThrow(() => res.emit('error', new Error('reset')))
})

t.test('terminate destroys the response once; a closed stream ignores close, terminate and ping', async (t) => {
  const res = fakeResponse()
  const sessions = new Map()
  const stream = new SseStream(res as never, sessions, {}, undefined, null, null, 1000)
  t.equal(sessions.get(stream.sessionId), stream)
  const closed = new Promise<[number, Buffer]>((resolve) => stream.on('close', (code: number, reason: Buffer) => resolve([code, reason])))
  stream.terminate()
  const [code, reason] = await closed
  t.equal(code, 1006)
  t.equal(reason.toString(), '')
  t.equal(res.destroyed, 1)
  t.equal(sessions.size, 0)
  stream.terminate()
  stream.close(1000, 'late')
  stream.ping()
  t.equal(res.destroyed, 1)
  t.same(res.written, [])
  t.equal(res.ended, false)
})

t.test('a stream being closed answers no ping', async (t) => {
  const res = fakeResponse()
  const stream = new SseStream(res as never, new Map(), {}, undefined, null, null, 1000)
  let pongs = 0
  stream.on('pong', () => pongs++)
  stream.ping()
  stream.close(1000, 'bye')
  stream.ping()
  t.equal(pongs, 1)
  t.same(res.written, [':\n\n', 'data: {"type":"sse:close","data":{"code":1000,"reason":"bye"}}\n\n'])
  res.emit('close')
})

t.test('replies: a POST waits for its own id; other replies go down the stream; at most MAX_WAITING wait', async (t) => {
  const res = fakeResponse()
  const stream = new SseStream(res as never, new Map(), {}, undefined, null, null, 1000)
  // Nothing listens for 'message' here: every request waits.
  const first = stream.deliver(Buffer.from('{"type":"x","id":1}')) as Promise<string | null>
  stream.writeFrame(new Frame('{"type":"ack","id":99,"data":null}'))
  t.equal(res.written.length, 1, 'an ack nobody waits for goes down the stream')
  stream.writeFrame(new Frame('{"type":"ack","id":1,"data":"one"}'))
  t.equal(await first, '{"type":"ack","id":1,"data":"one"}')
  stream.deliver(Buffer.from('{"type":"x","id":2}'))
  stream.writeFrame(new Frame('{"type":"error","error":{"code":"bad_json","message":"x"}}'))
  t.equal(res.written.length, 2, 'an id-less error outside a POST goes down the stream')
  for (let i = 1; i < MAX_WAITING; i++) stream.deliver(Buffer.from(`{"type":"x","id":"w${i}"}`))
  t.throws(() => stream.deliver(Buffer.from('{"type":"x","id":"one more"}')), { code: 'FRT_ERR_SSE_BUSY' })
  t.throws(() => stream.deliver(Buffer.from('{"type":"x","id":2}')), { code: 'FRT_ERR_SSE_DUPLICATE' })
  t.equal(stream.deliver(Buffer.from('{"type":"x"}')), null, 'without an id nothing waits')
})

t.test('terminate over HTTP/2 destroys the stream under the response', async (t) => {
  const res = fakeResponse() as any
  let destroyed = 0
  res.destroy = undefined
  res.stream = { writableLength: 5, destroy: () => { destroyed++; queueMicrotask(() => res.emit('close')) } }
  const stream = new SseStream(res as never, new Map(), {}, undefined, null, null, 1000)
  t.equal(stream.bufferedAmount, 5, 'what the HTTP/2 stream holds')
  stream.terminate()
  await new Promise((resolve) => stream.on('close', resolve))
  t.equal(destroyed, 1)
})

t.test('tickets: past the bound the oldest go first', async (t) => {
  const auth = new Auth(resolveOptions({}).auth, () => {})
  const request = { user: { sub: 'ann' } } as never
  const first = auth.issueTicket(request).ticket
  for (let i = 0; i < 65_536; i++) auth.issueTicket(request)
  t.equal(auth.redeemTicket({} as never, first), false, 'the oldest was dropped')
  auth.close()
})

t.test('cursors: written once per tick when changed, never after the stream closed', async (t) => {
  const res = fakeResponse()
  const cursors = ['1;1.AAAAAAAAAAAA.a', '1;1.AAAAAAAAAAAA.a', null, '1;2.AAAAAAAAAAAA.a']
  let asked = 0
  const stream = new SseStream(res as never, new Map(), {}, undefined, null, () => cursors[asked++] ?? null, 1000)
  const frame = new Frame('{"type":"x"}')
  const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }
  stream.writeFrame(frame)
  stream.writeFrame(frame)
  stream.moved()
  await tick()
  t.same(res.written, ['data: {"type":"x"}\n\n', 'data: {"type":"x"}\n\n', 'id: 1;1.AAAAAAAAAAAA.a\n\n'], 'once for the tick')
  stream.moved()
  await tick()
  stream.moved()
  await tick()
  t.equal(res.written.length, 3, 'unchanged, then none: nothing written')
  t.equal(asked, 3)
  stream.moved()
  stream.close(1000, '')
  await tick()
  t.equal(asked, 3, 'a closing stream writes no cursor')
  t.notOk(res.written.some((w) => w.startsWith('id: 1;2')))
  t.equal(stream.takeSince('a'), null, 'no cursor came with the request')
  t.equal(stream.resumeToken, undefined)
})
