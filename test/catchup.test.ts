// Replay then live, merged by seq: no gap, no duplicate. The pure cases first
// (every way five live messages can overlap a history read), then the same
// race for real: five messages published on Redis while the history is read.
import t from 'tap'
import { Redis } from 'ioredis'
import { Catchup } from '../lib/catchup.js'
import { RedisHistory } from '../lib/history/redis.js'
import { roomEventParts } from '../lib/protocol.js'
import { startRedisServer } from './helpers/redis-server.js'

const LIMITS = { maxCount: 1000, maxBytes: 1024 * 1024 }

const msg = (seq: number, life = 'a'): Buffer => Buffer.from(`{"seq":${seq},"life":"${life}"}`)
const seqsOf = (frames: Buffer[]): number[] => frames.map((f) => (JSON.parse(f.toString()) as { seq: number }).seq)
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

t.test('five live messages during the read, however many of them the read saw: each seq once, in order', async t => {
  // The member has 10; the room was at 15 when it came back; 16-20 were published while history was read.
  for (let seen = 0; seen <= 5; seen++) {
    const catchup = new Catchup(10, LIMITS)
    for (const seq of range(16, 20)) t.equal(catchup.hold(seq, msg(seq)), true)
    t.equal(catchup.held, 5)
    const read = range(11, 15 + seen).map((seq) => msg(seq))
    const step = catchup.merge(15 + seen, read)
    t.same(seqsOf(step.frames), range(11, 20), `the read saw ${seen} of the five`)
    t.equal(step.seq, 20)
    t.equal(step.status, 'complete')
    t.equal(catchup.held, 0)
  }
})

t.test('nothing missed, nothing held: an empty merge', async t => {
  const catchup = new Catchup(7, LIMITS)
  t.same(catchup.merge(7, []), { frames: [], seq: 7, status: 'complete' })
})

t.test('a held message past the read is a gap: read again from there and merge that', async t => {
  const catchup = new Catchup(10, LIMITS)
  for (const seq of [18, 19]) catchup.hold(seq, msg(seq))
  const first = catchup.merge(16, range(11, 16).map((s) => msg(s)))
  t.same(seqsOf(first.frames), range(11, 16))
  t.match(first, { seq: 16, status: 'gap' })
  t.equal(catchup.held, 2, 'the held messages wait for the second read')
  // The second read (from 16) returns 17 and, by now, 18: 18 is not sent twice.
  const second = catchup.merge(18, [msg(17), msg(18)])
  t.same(seqsOf(second.frames), [17, 18, 19])
  t.match(second, { seq: 19, status: 'complete' })
})

t.test('a held message from a new life of the room (lower seq, or a seq passed with other bytes) is a reset', async t => {
  const lower = new Catchup(10, LIMITS)
  lower.hold(2, msg(2, 'b'))
  lower.hold(3, msg(3, 'b'))
  const step = lower.merge(12, [msg(11), msg(12)])
  t.equal(step.status, 'reset')
  t.same(step.frames.map(String), [msg(11), msg(12), msg(2, 'b'), msg(3, 'b')].map(String), 'replay, then the new life as it came')

  const same = new Catchup(10, LIMITS)
  same.hold(12, msg(12))
  same.hold(12, msg(12, 'b'))
  const again = same.merge(12, [msg(11), msg(12)])
  t.equal(again.status, 'reset', 'seq 12 again, with other bytes: not a duplicate')
  t.same(again.frames.map(String), [msg(11), msg(12), msg(12, 'b')].map(String))
})

t.test('unnumbered live messages (volatile) pass through in their place', async t => {
  const catchup = new Catchup(0, LIMITS)
  catchup.hold(2, msg(2))
  catchup.hold(0, Buffer.from('{"cursor":1}'))
  catchup.hold(3, msg(3))
  const step = catchup.merge(2, [msg(1), msg(2)])
  t.same(step.frames.map(String), ['{"seq":1,"life":"a"}', '{"seq":2,"life":"a"}', '{"cursor":1}', '{"seq":3,"life":"a"}'], 'the replay, then the held as they came, less the duplicate')
  t.equal(step.status, 'complete')
})

t.test('holding is bounded in count and bytes: past a limit hold refuses and holds nothing', async t => {
  const byCount = new Catchup(0, { maxCount: 3, maxBytes: 1e6 })
  t.same([1, 2, 3, 4].map((s) => byCount.hold(s, msg(s))), [true, true, true, false])
  t.equal(byCount.held, 3)
  const size = msg(1).length
  const byBytes = new Catchup(0, { maxCount: 100, maxBytes: size * 2 })
  t.same([1, 2, 3].map((s) => byBytes.hold(s, msg(s))), [true, true, false])
  // A merge releases what it sent: room to hold again.
  byBytes.merge(2, [msg(1), msg(2)])
  t.equal(byBytes.hold(3, msg(3)), true)
})

t.test('five messages published on Redis while the history is read: merged, no duplicate, no gap', async t => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const client = new Redis(redis.url)
  const publisher = new Redis(redis.url)
  const subscriber = new Redis(redis.url)
  t.teardown(async () => { subscriber.disconnect(); await Promise.all([client.quit(), publisher.quit()]) })
  const header = 'H'
  const history = new RedisHistory({ client, publish: { header, sharded: false } })
  const others = new RedisHistory({ client: publisher, publish: { header, sharded: false } })
  const parts = (n: number): [string, string] => roomEventParts('said', 'race', { n })

  for (let round = 0; round < 12; round++) {
    // The member saw up to `since`; then 5 more were sent while it was away.
    const { seq: since, epoch } = await history.since('race', null, LIMITS)
    for (let i = 0; i < 5; i++) await others.append('race', ...parts(i))
    // It comes back: live messages are held from now on...
    const catchup = new Catchup(since, LIMITS)
    let live = 0
    let heldAll: () => void = () => {}
    const fiveHeld = new Promise<void>((resolve) => { heldAll = resolve })
    const onMessage = (_channel: string, message: Buffer): void => {
      const text = message.toString()
      const colon = text.indexOf(':')
      catchup.hold(Number(text.slice(header.length, colon)), message.subarray(colon + 1))
      if (++live === 5) heldAll()
    }
    subscriber.on('messageBuffer', onMessage)
    await subscriber.subscribe('frt:{race}')
    // ...and five more are published by another instance around the history read: `before` of them are
    // sent ahead of it, the rest after, none awaited, so the read sees some of them, all or none.
    const before = round % 6
    const early = Array.from({ length: before }, (_, i) => others.append('race', ...parts(10 + i)))
    const reading = history.since('race', { seq: since, epoch }, LIMITS)
    const late = Array.from({ length: 5 - before }, (_, i) => others.append('race', ...parts(20 + i)))
    const read = await reading
    await Promise.all([...early, ...late])
    await fiveHeld
    subscriber.off('messageBuffer', onMessage)
    await subscriber.unsubscribe('frt:{race}')
    t.equal(read.recovered, true)
    if (!read.recovered) return
    const step = catchup.merge(read.seq, read.frames)
    t.equal(step.status, 'complete')
    t.same(seqsOf(step.frames), range(since + 1, since + 10), `round ${round}: the read saw ${read.seq - since - 5} of the five; 10 messages each once`)
  }
})
