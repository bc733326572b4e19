// The SSE transport on its own, over a recording response: event encoding (once
// per frame, room ids, raw line breaks), terminate, and what a closed stream ignores.
import t from 'tap'
import { EventEmitter } from 'node:events'
import { Frame } from '../lib/frames.js'
import { SseStream } from '../lib/sse-stream.js'
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

t.test('events: a room message carries its position, raw line breaks stay inside one event, frames encode once', async (t) => {
  const res = fakeResponse()
  const stream = new SseStream(res as never, new Map(), {}, undefined, undefined, 1000)
  const frame = new Frame(serializeRoomEvent('said', 'a/b:c', 7, { text: 'hi' }))
  stream.writeFrame(frame)
  const encoded = frame.sse
  stream.writeFrame(frame)
  t.equal(frame.sse, encoded, 'the event is made once for every stream')
  t.equal(res.written[0], 'id: 7:a/b:c\ndata: {"type":"said","room":"a/b:c","seq":7,"data":{"text":"hi"}}\n\n')
  stream.writeFrame(new Frame('{"a":\n"b\r\nc"}'))
  t.equal(res.written[2], 'data: {"a":\ndata: "b\ndata: c"}\n\n')
  t.equal(stream.bufferedAmount, 0)
  // A write to a reset HTTP/2 stream errs; its 'close' tells the rest, the error itself must not throw.
  t.doesNotThrow(() => res.emit('error', new Error('reset')))
})

t.test('terminate destroys the response once; a closed stream ignores close, terminate and ping', async (t) => {
  const res = fakeResponse()
  const sessions = new Map()
  const stream = new SseStream(res as never, sessions, {}, undefined, undefined, 1000)
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
  const stream = new SseStream(res as never, new Map(), {}, undefined, undefined, 1000)
  let pongs = 0
  stream.on('pong', () => pongs++)
  stream.ping()
  stream.close(1000, 'bye')
  stream.ping()
  t.equal(pongs, 1)
  t.same(res.written, [':\n\n', 'data: {"type":"sse:close","data":{"code":1000,"reason":"bye"}}\n\n'])
  res.emit('close')
})
