// The backfill of a subscription's seq gap (lib/rooms.ts), and recovery when
// a store fails, driven through a scripted fan-out adapter: the test decides
// which numbered messages "arrive" from the other instances and what the
// history store holds, so every branch is reached on purpose. Real sockets.
import t from 'tap'
import Type from 'typebox'
import { listeningApp } from './helpers/app.js'
import { wireClient, type WireClient } from './helpers/wire.js'
import { until } from './helpers/wait.js'
import {
  MemoryHistory, MemorySessions, type FanoutAdapter, type FanoutCore, type FanoutReceive, type HistoryStore, type RealtimeOptions
} from '../index.js'

/** A cluster adapter played by the test: `history` is a MemoryHistory the test fills as "the stream". */
class ScriptedAdapter implements FanoutAdapter {
  readonly history: HistoryStore
  receive: FanoutReceive | null = null
  core: FanoutCore | null = null
  /** The backend is away: messages are numbered locally (done(0)), not kept. */
  down = false
  constructor (history: HistoryStore) {
    this.history = history
  }

  attach (core: FanoutCore): void { this.core = core }
  subscribe (_room: string, receive: FanoutReceive): void { this.receive = receive }
  unsubscribe (): void {}
  publish (): void {}
  sequence (room: string, head: string, tail: string, _volatile: boolean, done: (seq: number) => void): void {
    if (this.down) {
      done(0)
      return
    }
    Promise.resolve(this.history.append(room, head, tail)).then(({ seq }) => done(seq), () => done(0))
  }
}

const route = {
  joinable: true,
  history: true,
  messages: {},
  emits: { said: Type.Object({ n: Type.Integer() }) }
}

async function setup (t: Tap.Test, stream: HistoryStore, options: RealtimeOptions = {}) {
  const adapter = new ScriptedAdapter(stream)
  const { app, url } = await listeningApp(t, { options: { heartbeat: false, rateLimit: false, adapter, history: {}, ...options }, routes: { '/chat': route } })
  const c = await wireClient(url('/chat'))
  t.teardown(() => c.ws.terminate())
  return { app, adapter, c }
}

/** What another instance published: appended to the stream, the frame returned (to "arrive" or not). */
function published (stream: MemoryHistory, room: string, n: number): [Buffer, number] {
  const head = `{"type":"said","room":"${room}","seq":`
  const tail = `,"data":{"n":${n}}}`
  const { seq } = stream.append(room, head, tail)
  return [Buffer.from(head + seq + tail), seq]
}

/**
 * A history store whose reads (of a position, not the start) wait for the test: each is answered by calling the
 * function pushed on `answers`. `taken`: whether the read reflects the stream when it was asked, or when answered.
 */
function slowStore (stream: MemoryHistory, taken: 'asked' | 'answered'): { slow: HistoryStore, answers: Array<() => void> } {
  const answers: Array<() => void> = []
  const slow: HistoryStore = {
    append: (room, head, tail, options) => stream.append(room, head, tail, options),
    since: (room, since, bounds) => {
      const read = stream.since(room, since, bounds)
      if (since === null) return read
      return new Promise((resolve) => { answers.push(() => resolve(taken === 'asked' ? read : stream.since(room, since, bounds))) })
    }
  }
  return { slow, answers }
}

function ns (c: WireClient): number[] {
  return c.room('r', 'said').map((f) => f.data.n)
}

t.test('a gap on the subscription is filled from the stream, in order, before what came after it', async (t) => {
  const stream = new MemoryHistory({ sweepInterval: 0 })
  const { app, adapter, c } = await setup(t, stream)
  await c.request('room:join', { room: 'r' })
  const receive = adapter.receive as FanoutReceive
  for (let n = 1; n <= 2; n++) { const [frame, seq] = published(stream, 'r', n); receive('r', frame, false, seq) }
  // 3 and 4 never arrive; 5 and 6 do.
  published(stream, 'r', 3)
  published(stream, 'r', 4)
  for (let n = 5; n <= 6; n++) { const [frame, seq] = published(stream, 'r', n); receive('r', frame, false, seq) }
  await c.next((f) => f.data?.n === 6)
  t.same(ns(c), [1, 2, 3, 4, 5, 6])
  t.equal(app.realtime.stats().backfills, 1)
})

t.test('a gap the stream cannot fill (a new epoch): what was held goes out as it came, the gap visible', async (t) => {
  const stream = new MemoryHistory({ sweepInterval: 0 })
  const { app, adapter, c } = await setup(t, stream)
  await c.request('room:join', { room: 'r' })
  const receive = adapter.receive as FanoutReceive
  const [first, one] = published(stream, 'r', 1)
  receive('r', first, false, one)
  // The stream is lost (another life): a message numbered 5 arrives from somewhere.
  stream.release('r')
  receive('r', Buffer.from('{"type":"said","room":"r","seq":5,"data":{"n":5}}'), false, 5)
  await c.next((f) => f.data?.n === 5)
  t.same(ns(c), [1, 5])
  t.equal(app.realtime.stats().backfillGaps, 1)
})

t.test('more held during a backfill than allowed: given up, delivered as it came', async (t) => {
  let answer: (() => void) | null = null
  const stream = new MemoryHistory({ sweepInterval: 0 })
  // A slow stream: the read waits until the test lets it go.
  const slow: HistoryStore = {
    append: (room, head, tail, options) => stream.append(room, head, tail, options),
    since: (room, since, bounds) => since === null
      ? stream.since(room, since, bounds)
      : new Promise((resolve) => { answer = () => resolve(stream.since(room, since, bounds)) })
  }
  const { app, adapter, c } = await setup(t, slow, { history: { hold: { maxCount: 2 } } })
  await c.request('room:join', { room: 'r' })
  const receive = adapter.receive as FanoutReceive
  const [first, one] = published(stream, 'r', 1)
  receive('r', first, false, one)
  published(stream, 'r', 2)
  for (let n = 3; n <= 6; n++) { const [frame, seq] = published(stream, 'r', n); receive('r', frame, false, seq) }
  await c.next((f) => f.data?.n === 6)
  t.same(ns(c), [1, 3, 4, 5, 6], 'the gap (2) shows')
  t.equal(app.realtime.stats().backfillGaps, 1)
  ;(answer as unknown as () => void)()
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(ns(c), [1, 3, 4, 5, 6], 'the late read changes nothing')
})

t.test('a history store that fails: the backfill gives up, joins are acked recovered: false, counted', async (t) => {
  const stream = new MemoryHistory({ sweepInterval: 0 })
  let fail = false
  const flaky: HistoryStore = {
    append: (room, head, tail) => stream.append(room, head, tail),
    since: (room, since, bounds) => fail ? Promise.reject(new Error('down')) : stream.since(room, since, bounds)
  }
  const { app, adapter, c } = await setup(t, flaky)
  await c.request('room:join', { room: 'r' })
  const receive = adapter.receive as FanoutReceive
  const [first, one] = published(stream, 'r', 1)
  receive('r', first, false, one)
  fail = true
  published(stream, 'r', 2)
  const [third, three] = published(stream, 'r', 3)
  receive('r', third, false, three)
  await c.next((f) => f.data?.n === 3)
  const ack = await c.request('room:join', { room: 'r', since: { seq: 0, epoch: 'AAAAAAAAAAAA' } })
  t.equal(ack.data.recovered, false)
  t.equal(app.realtime.stats().historyErrors, 2)
  const d = await wireClient(c.ws.url)
  t.teardown(() => d.ws.terminate())
  const other = await d.request('room:join', { room: 'other' })
  t.match(other.data, { room: 'other', seq: 0, epoch: /^[\w-]{8,22}$/ }, 'a new room whose position cannot be read still has one')
})

t.test('with a fan-out adapter that does not keep history, the store must answer append at once', async (t) => {
  const stream = new MemoryHistory({ sweepInterval: 0 })
  const asyncStore: HistoryStore = { append: async (...args) => stream.append(...args), since: (...args) => stream.since(...args) }
  const { app } = await listeningApp(t, { options: { heartbeat: false, history: { store: asyncStore } }, routes: { '/chat': route } })
  t.throws(() => app.realtime.to('r').emit('said', { n: 1 }), { code: 'FRT_ERR_HISTORY_INVALID' })
})

t.test('a session store that fails: a fresh session instead of a resume, failures counted', async (t) => {
  const store = new MemorySessions({ sweepInterval: 0 })
  t.teardown(() => store.close())
  let fail = false
  const flaky = {
    save: (...args: Parameters<MemorySessions['save']>) => fail ? Promise.reject(new Error('down')) : store.save(...args),
    append: (...args: Parameters<MemorySessions['append']>) => fail ? Promise.reject(new Error('down')) : store.append(...args),
    take: (...args: Parameters<MemorySessions['take']>) => fail ? Promise.reject(new Error('down')) : store.take(...args)
  }
  const { app, url } = await listeningApp(t, {
    options: { heartbeat: false, subprotocols: ['p'], sessions: { store: flaky, window: 60 } },
    routes: { '/s': { sessions: true, messages: { hi: { schema: Type.Null(), handler: () => 'hi' } } } }
  })
  const c = await wireClient(url('/s'), { protocols: ['p'] })
  const { data: session } = await c.next((f) => f.type === 'session')
  fail = true
  await c.request('hi', null)
  c.ws.terminate()
  const d = await wireClient(url('/s'), { protocols: ['p', 'resume.' + session.token] })
  t.teardown(() => d.ws.terminate())
  const next = await d.next((f) => f.type === 'session')
  t.equal(next.data.recovered, false)
  await until(() => app.realtime.stats().sessionErrors >= 3, 'failures counted')
  t.equal(app.realtime.stats().sessionsResumed, 0)
})

/**
 * c is in room r and got 1; 2 and 3 are in the stream already, and the subscription brings them (`late`) only
 * after d's join with `since` 1 has replayed them: d's catch-up has a floor at 3.
 */
async function replayAhead (t: Tap.Test) {
  const stream = new MemoryHistory({ sweepInterval: 0 })
  const { adapter, c } = await setup(t, stream)
  const { data: { epoch } } = await c.request('room:join', { room: 'r' })
  const receive = adapter.receive as FanoutReceive
  const [first, one] = published(stream, 'r', 1)
  receive('r', first, false, one)
  await c.next((f) => f.data?.n === 1)
  const late = [published(stream, 'r', 2), published(stream, 'r', 3)]
  const d = await wireClient(c.ws.url)
  t.teardown(() => d.ws.terminate())
  const ack = await d.request('room:join', { room: 'r', since: { seq: 1, epoch } })
  t.match(ack.data, { room: 'r', seq: 3, recovered: true })
  return { stream, receive, c, d, late }
}

t.test('a replay read ahead of the subscription: the live copies it already replayed are dropped for that member, then live as usual', async (t) => {
  const { stream, receive, c, d, late } = await replayAhead(t)
  for (const [frame, seq] of late) receive('r', frame, false, seq)
  const [fourth, four] = published(stream, 'r', 4)
  receive('r', fourth, false, four)
  await d.next((f) => f.data?.n === 4)
  await c.next((f) => f.data?.n === 4)
  t.same(ns(d), [2, 3, 4], 'replayed 2 and 3 once (their live copies dropped), then live')
  t.same(d.frames.map((f) => f.type === 'said' ? f.data.n : f.type), [2, 3, 'ack', 4], 'replay, ack, live')
  t.same(ns(c), [1, 2, 3, 4], 'the other member is not held back')
})

t.test('resubscribed after a drop: a quiet room\'s missed messages are read from the stream at once, not at its next message', async (t) => {
  const stream = new MemoryHistory({ sweepInterval: 0 })
  const { app, adapter, c } = await setup(t, stream, { history: { rooms: /^r/ } })
  await c.request('room:join', { room: 'r' })
  await c.request('room:join', { room: 'plain' })
  const receive = adapter.receive as FanoutReceive
  const [first, one] = published(stream, 'r', 1)
  receive('r', first, false, one)
  await c.next((f) => f.data?.n === 1)
  // Published while the subscription was down: never received. Then the room is quiet.
  published(stream, 'r', 2)
  published(stream, 'r', 3)
  const core = adapter.core as FanoutCore
  core.resubscribed?.(['r', 'plain', 'not-here'])
  await c.next((f) => f.data?.n === 3)
  t.same(ns(c), [1, 2, 3], 'with no message after them')
  t.equal(app.realtime.stats().backfills, 1)
  // Missed again; one more arrives while the read is under way: held and merged after it, once.
  published(stream, 'r', 4)
  core.resubscribed?.(['r'])
  const [fifth, five] = published(stream, 'r', 5)
  receive('r', fifth, false, five)
  await c.next((f) => f.data?.n === 5)
  t.same(ns(c), [1, 2, 3, 4, 5])
  t.equal(app.realtime.stats().backfills, 2)
  // Nothing missed: nothing is counted, nothing delivered twice.
  core.resubscribed?.(['r'])
  const [sixth, six] = published(stream, 'r', 6)
  receive('r', sixth, false, six)
  await c.next((f) => f.data?.n === 6)
  t.same(ns(c), [1, 2, 3, 4, 5, 6])
  t.same([app.realtime.stats().backfills, app.realtime.stats().backfillGaps], [2, 0])
})

t.test('resubscribed: rooms numbered here while the backend was away, or empty, read nothing missed and count no gap', async (t) => {
  const stream = new MemoryHistory({ sweepInterval: 0 })
  const { app, adapter, c } = await setup(t, stream)
  await c.request('room:join', { room: 'r' })
  await c.request('room:join', { room: 'empty' })
  app.realtime.to('r').emit('said', { n: 1 })
  await c.next((f) => f.data?.n === 1)
  adapter.down = true
  app.realtime.to('r').emit('said', { n: 2 })
  await c.next((f) => f.data?.n === 2)
  t.equal(stream.since('r', null, { maxCount: 10, maxBytes: 1e6 }).seq, 1, 'the stream is behind this instance')
  const reads: string[] = []
  const since = stream.since.bind(stream)
  stream.since = (room, position, bounds) => { reads.push(room); return since(room, position, bounds) }
  ;(adapter.core as FanoutCore).resubscribed?.(['r', 'empty'])
  await new Promise((resolve) => setImmediate(resolve))
  t.same(reads, ['r', 'empty'], 'a room read empty when made here (a known seq 0) is read too: it may have missed its first messages')
  adapter.down = false
  app.realtime.to('r').emit('said', { n: 3 })
  await c.next((f) => f.data?.n === 3)
  t.same(ns(c), [1, 2, 3])
  t.same([app.realtime.stats().backfills, app.realtime.stats().backfillGaps], [0, 0])
})

t.test('resubscribed on a plugin without history: nothing to read', async (t) => {
  const adapter = new ScriptedAdapter(new MemoryHistory({ sweepInterval: 0 }))
  const { app, url } = await listeningApp(t, { options: { heartbeat: false, adapter }, routes: { '/chat': { joinable: true, messages: {} } } })
  const c = await wireClient(url('/chat'))
  t.teardown(() => c.ws.terminate())
  await c.request('room:join', { room: 'r' })
  ;(adapter.core as FanoutCore).resubscribed?.(['r'])
  t.same([app.realtime.stats().backfills, app.realtime.stats().backfillGaps], [0, 0])
})

t.test('a second hole behind the first, opened while the first was read: read again from there, all in order once', async (t) => {
  const stream = new MemoryHistory({ sweepInterval: 0 })
  // Each read is taken when asked and answered when the test says.
  const { slow, answers } = slowStore(stream, 'asked')
  const { app, adapter, c } = await setup(t, slow)
  await c.request('room:join', { room: 'r' })
  const receive = adapter.receive as FanoutReceive
  const [first, one] = published(stream, 'r', 1)
  receive('r', first, false, one)
  await c.next((f) => f.data?.n === 1)
  published(stream, 'r', 2)
  const [third, three] = published(stream, 'r', 3)
  receive('r', third, false, three)
  // While 2..3 is read: 4 never arrives, 5 does.
  published(stream, 'r', 4)
  const [fifth, five] = published(stream, 'r', 5)
  receive('r', fifth, false, five)
  t.equal(answers.length, 1)
  answers[0]()
  await until(() => answers.length === 2, 'read again from 3')
  t.same(ns(c), [1, 2, 3], 'the first range went out; 5 waits behind the second hole')
  answers[1]()
  await c.next((f) => f.data?.n === 5)
  t.same(ns(c), [1, 2, 3, 4, 5])
  t.same([app.realtime.stats().backfills, app.realtime.stats().backfillGaps], [1, 0])
})

t.test('an unnumbered message (volatile, latest) during the floor goes through and leaves the floor in place', async (t) => {
  const { stream, receive, c, d, late } = await replayAhead(t)
  // Before the live copies of 2 and 3: it must not end the floor, or they would reach d a second time.
  receive('r', Buffer.from(JSON.stringify({ type: 'said', room: 'r', data: { n: 99 } })), true)
  for (const [frame, seq] of late) receive('r', frame, false, seq)
  const [fourth, four] = published(stream, 'r', 4)
  receive('r', fourth, false, four)
  await d.next((f) => f.data?.n === 4)
  await c.next((f) => f.data?.n === 4)
  t.same(d.frames.map((f) => f.type === 'said' ? f.data.n : f.type), [2, 3, 'ack', 99, 4], 'no second copy of 2 or 3')
  t.same(ns(c), [1, 99, 2, 3, 4])
})

async function ownDuringBackfill (t: Tap.Test, history: RealtimeOptions['history']) {
  const stream = new MemoryHistory({ sweepInterval: 0 })
  // Read when answered: the stream then holds this instance's own messages, appended meanwhile.
  const { slow, answers } = slowStore(stream, 'answered')
  const adapter = new ScriptedAdapter(slow)
  const { app, url } = await listeningApp(t, {
    options: { heartbeat: false, rateLimit: false, adapter, history },
    routes: {
      '/chat': {
        ...route,
        messages: {
          say: {
            schema: Type.Object({ n: Type.Integer() }),
            handler: (conn: any, data: { n: number }) => { conn.to('r').except(conn).emit('said', { n: data.n }) }
          }
        }
      }
    }
  })
  const c = await wireClient(url('/chat'))
  const sender = await wireClient(url('/chat'))
  t.teardown(() => { c.ws.terminate(); sender.ws.terminate() })
  await c.request('room:join', { room: 'r' })
  await sender.request('room:join', { room: 'r' })
  const receive = adapter.receive as FanoutReceive
  const [first, one] = published(stream, 'r', 1)
  receive('r', first, false, one)
  await c.next((f) => f.data?.n === 1)
  // 2 never arrives; 3 does: the gap is read (slowly).
  published(stream, 'r', 2)
  const [third, three] = published(stream, 'r', 3)
  receive('r', third, false, three)
  t.equal(answers.length, 1)
  // Meanwhile this instance's own message, numbered 4 by the stream, sent with .except(sender).
  await sender.request('say', { n: 40 })
  return { app, c, sender, answers }
}

t.test('this instance\'s own messages sent while a gap is read wait behind the missed ones, and still skip whom their emit left out', async (t) => {
  const { app, c, sender, answers } = await ownDuringBackfill(t, {})
  app.realtime.to('r').emit('said', { n: 50 })
  // Both were numbered by the stream (in a microtask of their emit): a turn of the event loop later, no frame yet.
  await new Promise((resolve) => setImmediate(resolve))
  t.same(ns(c), [1], 'nothing overtakes the read')
  answers[0]()
  await c.next((f) => f.data?.n === 50)
  t.same(ns(c), [1, 2, 3, 40, 50], 'the missed message first, then the held ones, in seq order')
  await sender.next((f) => f.data?.n === 50)
  t.same(ns(sender), [1, 2, 3, 50], 'the sender\'s own message skips it, though it came from the read')
  t.same([app.realtime.stats().backfills, app.realtime.stats().backfillGaps], [1, 0])
})

t.test('an own message past the backfill\'s hold bound gives the backfill up: the gap visible, the emit\'s except kept', async (t) => {
  const { app, c, sender, answers } = await ownDuringBackfill(t, { hold: { maxCount: 1 } })
  await c.next((f) => f.data?.n === 40)
  t.same(ns(c), [1, 3, 40], 'what was held, then the own message; 2 is the visible gap')
  t.same(ns(sender), [1, 3], 'not to the sender')
  t.equal(app.realtime.stats().backfillGaps, 1)
  answers[0]()
  await new Promise((resolve) => setImmediate(resolve))
  t.same(ns(c), [1, 3, 40], 'the late read changes nothing')
})

t.test('a room whose history was empty when it was made here: the first messages missed are backfilled from the start', async (t) => {
  const stream = new MemoryHistory({ sweepInterval: 0 })
  const { app, adapter, c } = await setup(t, stream)
  await c.request('room:join', { room: 'r' })
  const receive = adapter.receive as FanoutReceive
  // 1 and 2 never arrive; 3 does.
  published(stream, 'r', 1)
  published(stream, 'r', 2)
  const [third, three] = published(stream, 'r', 3)
  receive('r', third, false, three)
  await c.next((f) => f.data?.n === 3)
  t.same(ns(c), [1, 2, 3])
  t.same([app.realtime.stats().backfills, app.realtime.stats().backfillGaps], [1, 0])
})
