// The RedisAdapter's paths that a real redis-server reaches only by the timing
// of a fault (a publish failing, a subscription answered after the room was
// left, a connection lost with publishes in flight), driven on purpose here
// through a stub client shaped like ioredis whose every answer the test gives.
import { EventEmitter } from 'node:events'
import t from 'tap'
import { Clock } from '@tapjs/clock'
import { RedisAdapter, type RedisAdapterOptions } from '../index.js'
import type { FanoutCore } from '../types/adapter.js'

interface Call {
  name: string
  args: unknown[]
  resolve (value: unknown): void
  reject (err: Error): void
}

/** A promise the test settles. */
function pending (calls: Call[], name: string, args: unknown[]): Promise<any> {
  return new Promise((resolve, reject) => { calls.push({ name, args, resolve, reject }) })
}

/** ioredis in subscriber mode: (un)subscribe commands wait for the test unless `auto` answers them. */
class StubSubscriber extends EventEmitter {
  status = 'connecting'
  readonly calls: Call[] = []
  /** Every command sent, answered or not: `name channel…`. */
  readonly sent: string[] = []
  auto: ((name: string, channels: string[]) => Promise<unknown>) | null = async (name, channels) => channels.length
  #command (name: string, channels: string[]): Promise<unknown> {
    this.sent.push([name, ...channels].join(' '))
    return this.auto === null ? pending(this.calls, name, channels) : this.auto(name, channels)
  }

  subscribe (...channels: string[]) { return this.#command('subscribe', channels) }
  unsubscribe (...channels: string[]) { return this.#command('unsubscribe', channels) }
  ssubscribe (...channels: string[]) { return this.#command('ssubscribe', channels) }
  sunsubscribe (...channels: string[]) { return this.#command('sunsubscribe', channels) }
  ready () {
    this.status = 'ready'
    this.emit('ready')
  }

  lose () {
    this.status = 'reconnecting'
    this.emit('close')
  }

  disconnect () { this.status = 'end' }
}

/** The app's client: each script call waits for the test. */
class StubClient {
  status = 'ready'
  readonly isCluster: boolean
  readonly subscriber = new StubSubscriber()
  readonly calls: Call[] = []
  constructor (isCluster = false) {
    this.isCluster = isCluster
  }

  defineCommand (name: string) {
    // And the Buffer variant ioredis defines alongside (RedisHistory reads frames with it).
    Object.assign(this, {
      [name]: (...args: unknown[]) => pending(this.calls, name, args),
      [name + 'Buffer']: (...args: unknown[]) => pending(this.calls, name + 'Buffer', args)
    })
  }

  duplicate () { return this.subscriber }

  /** The calls of one script not answered yet, oldest first. */
  take (script: string): Call[] {
    const taken = this.calls.filter((call) => call.name === script)
    for (const call of taken) this.calls.splice(this.calls.indexOf(call), 1)
    return taken
  }
}

const PUBLISH = 'frtPublishV1'
const WRITE = 'frtPresenceWriteV1'
const REFRESH = 'frtPresenceRefreshV1'
const core: FanoutCore = { log: { warn () {}, info () {} } as never, disconnectUser: () => 0 }
// The real one, kept before any test's fake clock replaces the global.
const immediate = setImmediate
const tick = () => new Promise((resolve) => immediate(resolve))

async function attached (client: StubClient, options: Omit<RedisAdapterOptions, 'client'> = {}): Promise<RedisAdapter> {
  // Deadlines far away: every answer comes from the test, none from a timer.
  const adapter = new RedisAdapter({ client, presence: false, publishTimeout: 60_000, ...options })
  const attaching = adapter.attach(core)
  client.subscriber.ready()
  await attaching
  return adapter
}

/** Our own copy of a published message, as it comes back through the subscription. */
const copy = (adapter: RedisAdapter, seq: number) => Buffer.from(`frt10${adapter.id}${seq}:{}`)

t.test('a failed publish is counted, numbered locally, and its seq skipped by the next publish of the room', async (t) => {
  const client = new StubClient()
  const adapter = await attached(client)
  t.teardown(() => adapter.close())
  const seqs: number[] = []
  adapter.sequence('r', 'h', 't', false, (seq) => { seqs.push(seq) })
  adapter.publish('r', Buffer.from('{}'), false)
  const [sequenced, plain] = client.take(PUBLISH)
  sequenced.reject(new Error('READONLY'))
  plain.reject(new Error('READONLY'))
  await tick()
  t.same(seqs, [0], 'the core numbers it locally')
  t.equal(adapter.stats().adapterErrors, 2)
  adapter.sequence('r', 'h', 't', false, (seq) => { seqs.push(seq) })
  const [next] = client.take(PUBLISH)
  t.equal(next.args[7], 1, 'the failed sequenced message is skipped; the plain one has no seq to skip')
  next.resolve(9)
  await tick()
  t.same(seqs, [0, 9])
})

t.test('past maxInFlight, or while the client is away, nothing is sent and the message is numbered locally', async (t) => {
  const client = new StubClient()
  const adapter = await attached(client, { maxInFlight: 1 })
  t.teardown(() => adapter.close())
  const seqs: number[] = []
  adapter.sequence('r', 'h', 't', false, (seq) => { seqs.push(seq) })
  adapter.sequence('r', 'h', 't', false, (seq) => { seqs.push(seq) })
  t.same(seqs, [0], 'the second one at once')
  client.take(PUBLISH)[0].resolve(1)
  await tick()
  client.status = 'reconnecting'
  adapter.sequence('r', 'h', 't', false, (seq) => { seqs.push(seq) })
  adapter.publish('r', Buffer.from('{}'), false)
  t.same(seqs, [0, 1, 0])
  t.equal(adapter.stats().adapterDropped, 3)
  client.status = 'ready'
  adapter.sequence('r', 'h', 't', false, () => {})
  t.equal(client.take(PUBLISH)[0].args[7], 2, 'the two numbered locally are skipped')
})

t.test('publishes waiting for their copy settle on their answers when the subscription goes', async (t) => {
  for (const how of ['unsubscribe', 'connection lost'] as const) {
    const client = new StubClient()
    const adapter = await attached(client)
    t.teardown(() => adapter.close())
    await adapter.subscribe('r', () => {})
    const seqs: Array<[string, number]> = []
    for (const name of ['answered', 'failed', 'unanswered']) adapter.sequence('r', 'h', 't', false, (seq) => { seqs.push([name, seq]) })
    const [answered, failed, unanswered] = client.take(PUBLISH)
    answered.resolve(5)
    failed.reject(new Error('OOM'))
    await tick()
    t.same(seqs, [['failed', 0]], `${how}: an answered publish waits for its copy, a failed one does not`)
    if (how === 'unsubscribe') await adapter.unsubscribe('r')
    else client.subscriber.lose()
    t.same(seqs, [['failed', 0], ['answered', 5]], `${how}: the answered one settles at once`)
    unanswered.resolve(7)
    await tick()
    t.same(seqs, [['failed', 0], ['answered', 5], ['unanswered', 7]], `${how}: the other on its answer, no copy awaited`)
  }
})

t.test('copies that come back out of step settle what they can', async (t) => {
  const client = new StubClient()
  const adapter = await attached(client)
  t.teardown(() => adapter.close())
  await adapter.subscribe('r', () => {})
  const seqs: number[] = []
  for (let i = 0; i < 4; i++) adapter.sequence('r', 'h', 't', false, (seq) => { seqs.push(seq) })
  const calls = client.take(PUBLISH)
  calls[0].reject(new Error('failed'))
  calls[1].resolve(3)
  await tick()
  t.same(seqs, [0])
  client.subscriber.emit('messageBuffer', Buffer.from('frt:{r}'), copy(adapter, 2))
  t.same(seqs, [0], 'a copy of a publish no longer waited for')
  // Copy 4 passes the failed publish and the one answered 3 (its copy lost), and is the third's.
  client.subscriber.emit('messageBuffer', Buffer.from('frt:{r}'), copy(adapter, 4))
  t.same(seqs, [0, 3, 4])
  calls[3].resolve(5)
  await tick()
  client.subscriber.emit('messageBuffer', Buffer.from('frt:{r}'), copy(adapter, 5))
  t.same(seqs, [0, 3, 4, 5])
  client.subscriber.emit('messageBuffer', Buffer.from('frt:{r}'), copy(adapter, 6))
  t.same(seqs, [0, 3, 4, 5], 'a copy with no publish waiting is ignored')
})

t.test('subscribing and unsubscribing while the subscriber is away or closed', async (t) => {
  const client = new StubClient()
  const early = new RedisAdapter({ client, presence: false })
  await early.subscribe('before-attach', () => {})
  t.same(client.subscriber.sent, [], 'nothing to subscribe with before attach: the first ready does it')
  const adapter = await attached(new StubClient())
  const subscriber = adapter.subscriber as StubSubscriber
  await adapter.subscribe('kept', () => {})
  subscriber.status = 'reconnecting'
  await adapter.subscribe('away', () => {})
  await adapter.unsubscribe('away')
  await adapter.unsubscribe('never-joined')
  t.same(subscriber.sent, ['subscribe frt:control', 'subscribe frt:{kept}'], 'no command while the subscriber reconnects')
  subscriber.status = 'ready'
  await adapter.close()
  await adapter.unsubscribe('kept')
  await adapter.subscribe('after-close', () => {})
  t.same(subscriber.sent, ['subscribe frt:control', 'subscribe frt:{kept}'], 'nor once closed')
})

t.test('a room left while its subscription was being confirmed is not confirmed', async (t) => {
  const client = new StubClient()
  const adapter = await attached(client)
  t.teardown(() => adapter.close())
  client.subscriber.auto = null
  const subscribing = adapter.subscribe('r', () => {})
  const leaving = adapter.unsubscribe('r')
  const [subscribe, unsubscribe] = client.subscriber.calls
  subscribe.resolve(1)
  unsubscribe.resolve(0)
  await Promise.all([subscribing, leaving])
  const seqs: number[] = []
  adapter.sequence('r', 'h', 't', false, (seq) => { seqs.push(seq) })
  client.take(PUBLISH)[0].resolve(3)
  await tick()
  t.same(seqs, [3], 'settled on the answer: no copy will come back')
})

t.test('a resubscription that fails or outlives a room confirms nothing', async (t) => {
  for (const sharded of [false, true]) {
    const client = new StubClient()
    const adapter = await attached(client, { sharded })
    t.teardown(() => adapter.close())
    await adapter.subscribe('kept', () => {})
    await adapter.subscribe('left', () => {})
    const name = sharded ? 'ssubscribe' : 'subscribe'
    // Reconnected; the resubscription fails: no publish waits for a copy.
    client.subscriber.lose()
    client.subscriber.auto = async () => { throw new Error('NOPERM') }
    client.subscriber.ready()
    await tick()
    const seqs: number[] = []
    adapter.sequence('kept', 'h', 't', false, (seq) => { seqs.push(seq) })
    client.take(PUBLISH)[0].resolve(4)
    await tick()
    t.same(seqs, [4], `${name}: settled on the answer`)
    // Reconnected again; 'left' is left before the resubscription answers.
    client.subscriber.lose()
    client.subscriber.auto = null
    client.subscriber.ready()
    const leaving = adapter.unsubscribe('left')
    for (const call of client.subscriber.calls.splice(0)) call.resolve(1)
    await leaving
    await tick()
    adapter.sequence('kept', 'h', 't', false, (seq) => { seqs.push(seq) })
    adapter.sequence('left', 'h', 't', false, (seq) => { seqs.push(seq) })
    const [kept, left] = client.take(PUBLISH)
    kept.resolve(5)
    left.resolve(1)
    await tick()
    t.same(seqs, [4, 1], `${name}: 'kept' waits for its copy, 'left' does not`)
    client.subscriber.emit(sharded ? 'smessageBuffer' : 'messageBuffer', Buffer.from('frt:{kept}'), copy(adapter, 5))
    t.same(seqs, [4, 1, 5])
  }
})

t.test('a cluster subscribes through the shard connections ioredis manages', async (t) => {
  const client = new StubClient(true)
  const adapter = new RedisAdapter({ client, presence: false })
  t.teardown(() => adapter.close())
  t.equal(adapter.options.sharded, true)
  const attaching = adapter.attach(core)
  client.subscriber.emit('ready')
  await attaching
  t.same(client.subscriber.sent, ['ssubscribe frt:control'], 'no resubscription of its own on ready')
  client.subscriber.auto = null
  const subscribing = adapter.subscribe('r', () => {})
  const [call] = client.subscriber.calls
  t.same([call.name, call.args], ['ssubscribe', ['frt:{r}']], 'even while its status is not ready')
  call.resolve(1)
  await subscribing
})

t.test('publishes not settled by their deadline settle with what is known, on one timer', async (t) => {
  const clock = new Clock()
  t.teardown(clock.enter())
  const client = new StubClient()
  const adapter = await attached(client, { publishTimeout: 100 })
  t.teardown(() => adapter.close())
  await adapter.subscribe('r', () => {})
  const seqs: Array<[string, number]> = []
  const sequence = (room: string, name: string) => adapter.sequence(room, 'h', 't', false, (seq) => { seqs.push([name, seq]) })
  sequence('r', 'copy lost')
  sequence('other', 'answered')
  const [lost, answered] = client.take(PUBLISH)
  lost.resolve(4)
  answered.resolve(1)
  await tick()
  clock.advance(50)
  sequence('r', 'unanswered')
  t.same(seqs, [['answered', 1]])
  clock.advance(50)
  t.same(seqs, [['answered', 1], ['copy lost', 4]], 'answered but its copy never came: its seq')
  t.equal(adapter.stats().adapterErrors, 1)
  clock.advance(49)
  t.equal(seqs.length, 2, 'the later deadline is kept')
  clock.advance(1)
  t.same(seqs.at(-1), ['unanswered', 0], 'never answered: numbered locally')
  t.equal(adapter.stats().adapterErrors, 2)
  const subscriber = adapter.subscriber as StubSubscriber
  subscriber.auto = null
  const subscribing = adapter.subscribe('slow', () => {})
  clock.advance(100)
  await subscribing
  t.equal(adapter.stats().adapterErrors, 3, 'a subscription not answered in time is counted and not awaited longer')
})

t.test('the presence refresh extends live entries and rewrites the lost or failed ones', async (t) => {
  const clock = new Clock()
  t.teardown(clock.enter())
  const client = new StubClient()
  const adapter = await attached(client, { presence: true, presenceTtl: 30 })
  const pairs = (call: Call) => call.args.slice(4)
  // Written while the client is away: marked for the refresh to write.
  client.status = 'connecting'
  adapter.addMember('r', { connId: 'c1', userId: 'ada' })
  adapter.addMember('gone', { connId: 'c2', userId: null })
  adapter.removeMember('gone', { connId: 'c2', userId: null })
  clock.advance(10)
  t.same(client.calls, [], 'nothing is sent while the client is away, the refresh included')
  client.status = 'ready'
  adapter.addMember('r', { connId: 'c3', userId: 'cyd' })
  client.take(WRITE)[0].reject(new Error('WRONGTYPE'))
  await tick()
  t.equal(adapter.stats().adapterErrors, 1)
  clock.advance(10)
  await tick()
  const rewrites = client.take(WRITE)
  t.same(rewrites.map(pairs), [['replace', 'c1', '"ada"', 'c3', '"cyd"'], ['replace']], 'a room with no member left is written empty')
  clock.advance(10)
  t.same(client.calls, [], 'one refresh at a time')
  for (const call of rewrites) call.resolve(1)
  await tick()
  clock.advance(10)
  client.take(REFRESH)[0].resolve(1)
  await tick()
  t.same(client.calls, [], 'alive: extended, not rewritten')
  clock.advance(10)
  client.take(REFRESH)[0].resolve(0)
  await tick()
  const [lost] = client.take(WRITE)
  t.same(pairs(lost), ['replace', 'c1', '"ada"', 'c3', '"cyd"'], 'gone from Redis: written again')
  lost.reject(new Error('OOM'))
  await tick()
  t.equal(adapter.stats().adapterErrors, 2)
  clock.advance(10)
  await tick()
  const [again] = client.take(WRITE)
  t.same(pairs(again), ['replace', 'c1', '"ada"', 'c3', '"cyd"'], 'a failed rewrite is tried again')
  again.resolve(1)
  const closing = adapter.close()
  const [removed] = client.take(WRITE)
  t.same(pairs(removed), ['replace'], 'closing removes this instance\'s entries')
  removed.resolve(1)
  await closing
})

t.test('a session resumed while Redis is unusable is not announced, and a usable one is', async (t) => {
  const client = new StubClient()
  const adapter = await attached(client)
  t.teardown(() => adapter.close())
  client.status = 'reconnecting'
  adapter.sessionResumed('c1')
  t.same(client.take(PUBLISH), [], 'nothing published while the client is not ready')
  client.status = 'ready'
  adapter.sessionResumed('c2')
  const [call] = client.take(PUBLISH)
  t.match(JSON.stringify(call.args), /sessionResumed/)
  call.resolve(1)
  await tick()
})

const APPEND = 'frtHistoryAppendV1'

t.test('a history append whose answer failed is tried once more under the same id, only while the client is usable', async (t) => {
  const client = new StubClient()
  const adapter = await attached(client, { history: {} })
  t.teardown(() => adapter.close())
  const seqs: number[] = []
  adapter.sequence('r', 'h', 't', false, (seq) => { seqs.push(seq) }, true)
  const [first] = client.take(APPEND)
  t.same(client.take(PUBLISH), [], 'a history room is published by the append script, not the plain one')
  // The answer is lost (e.g. a connection reset after Redis ran the script) while the client stays usable.
  first.reject(new Error('ECONNRESET'))
  await tick()
  const [retry] = client.take(APPEND)
  t.ok(retry, 'tried again')
  t.equal(retry.args[2], first.args[2], 'under the same dedupe key, so Redis stores and publishes it once')
  t.match(retry.args[2], /^frt:\{r\}:d:.+:1$/)
  retry.resolve([7, 'epoch-one', 1])
  await tick()
  t.same(seqs, [7], 'the first append\'s seq, once')
  t.equal(adapter.stats().adapterPublishFailures, 0)

  // The client is no longer usable when the failure comes back: no retry, numbered locally, its seq skipped next.
  adapter.sequence('r', 'h', 't', false, (seq) => { seqs.push(seq) }, true)
  const [lost] = client.take(APPEND)
  t.not(lost.args[2], first.args[2], 'a new message, a new id')
  client.status = 'reconnecting'
  lost.reject(new Error('Connection is closed.'))
  await tick()
  t.same(client.take(APPEND), [], 'not tried again')
  t.same(seqs, [7, 0])
  t.equal(adapter.stats().adapterPublishFailures, 1)
  client.status = 'ready'
  adapter.sequence('r', 'h', 't', false, (seq) => { seqs.push(seq) }, true)
  const [next] = client.take(APPEND)
  t.equal(next.args[9], 1, 'the locally numbered one is skipped')
  next.resolve([9, 'epoch-one', 0])
  await tick()
  t.same(seqs, [7, 0, 9])
})

t.test('sequence() asked for history on an adapter without history publishes with the plain seq script', async (t) => {
  const client = new StubClient()
  const adapter = await attached(client)
  t.teardown(() => adapter.close())
  const seqs: number[] = []
  adapter.sequence('r', 'h', 't', false, (seq) => { seqs.push(seq) }, true)
  t.same(client.take(APPEND), [])
  const [call] = client.take(PUBLISH)
  t.same(call.args.slice(0, 3), ['frt:{r}:seq', 'frt:{r}', call.args[2]])
  call.resolve(3)
  await tick()
  t.same(seqs, [3])
})

t.test('the core is told which rooms were subscribed again after a reconnect (not on the first connect, nor on a failed one)', async (t) => {
  const client = new StubClient()
  const told: string[][] = []
  const adapter = new RedisAdapter({ client, presence: false, publishTimeout: 60_000 })
  t.teardown(() => adapter.close())
  const attaching = adapter.attach({ ...core, resubscribed: (rooms) => { told.push([...rooms]) } })
  client.subscriber.ready()
  await attaching
  await adapter.subscribe('a', () => {})
  await adapter.subscribe('b', () => {})
  await tick()
  t.same(told, [], 'the first connect subscribes; nothing was missed')
  client.subscriber.lose()
  client.subscriber.auto = async () => { throw new Error('NOPERM') }
  client.subscriber.ready()
  await tick()
  t.same(told, [], 'not while the subscriptions failed')
  client.subscriber.lose()
  client.subscriber.auto = null
  client.subscriber.ready()
  const leaving = adapter.unsubscribe('b')
  for (const call of client.subscriber.calls.splice(0)) call.resolve(1)
  await leaving
  await tick()
  t.same(told, [['a']], 'once subscribed again, the rooms still here')
})
