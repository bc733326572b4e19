// The shared client's paths in Node, against the real server: Node's
// BroadcastChannel connects the "tabs" (clients in one process) and a small Web
// Locks stand-in grants the lock to one of them at a time, in request order, as
// browsers do. The Chromium test (client-shared.browser.test.ts) runs the real
// thing; this one reaches the edges: refusals, errors, aborts, leaving, the
// hand-over with and without resend, and the fallback without Web Locks.
import t, { type Test } from 'tap'
import { createSharedClient, type SharedClient, type SharedClientOptions } from '../lib/client/shared.js'
import { RealtimeError } from '../lib/client/errors.js'
import { chat, clientOptions, startServer } from './helpers/client.js'
import { until } from './helpers/wait.js'

/** One lock manager per process, like a browser's per origin. */
class Locks {
  readonly #queues = new Map<string, Array<() => void>>()
  readonly #held = new Set<string>()

  request (name: string, options: { signal: AbortSignal }, callback: () => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        this.#held.add(name)
        callback().then(() => {
          this.#held.delete(name)
          this.#queues.get(name)?.shift()?.()
          resolve()
        }, reject)
      }
      options.signal.addEventListener('abort', () => {
        const queue = this.#queues.get(name) ?? []
        const index = queue.indexOf(grant)
        if (index !== -1) {
          queue.splice(index, 1)
          reject(new Error('AbortError'))
        }
      }, { once: true })
      // Granted on a later tick, as in browsers: a tab's first calls come before it knows it leads.
      if (!this.#held.has(name)) {
        this.#held.add(name)
        Promise.resolve().then(grant, reject)
      } else this.#queues.set(name, [...(this.#queues.get(name) ?? []), grant])
    })
  }
}

function withLocks (t: Test): void {
  Object.defineProperty(globalThis, 'navigator', { value: { locks: new Locks() }, configurable: true, writable: true })
  t.teardown(() => { delete (globalThis as { navigator?: unknown }).navigator })
}

/** A page's `addEventListener` on the global (Node has none): returns a function that fires `pagehide`. */
function withPage (t: Test): () => void {
  const global = globalThis as unknown as { addEventListener?: unknown, removeEventListener?: unknown }
  const listeners = new Map<string, Set<() => void>>()
  global.addEventListener = (type: string, fn: () => void) => {
    listeners.set(type, (listeners.get(type) ?? new Set()).add(fn))
  }
  global.removeEventListener = (type: string, fn: () => void) => { listeners.get(type)?.delete(fn) }
  t.teardown(() => {
    delete global.addEventListener
    delete global.removeEventListener
  })
  return () => { for (const fn of listeners.get('pagehide') ?? []) fn() }
}

function tab (t: Test, url: string, options: SharedClientOptions = {}): SharedClient<typeof chat> {
  const c = createSharedClient<typeof chat>(url, { ...clientOptions(), name: t.fullname, ...options })
  t.teardown(() => c.close())
  return c
}

function states (c: SharedClient<any>): string[] {
  const seen: string[] = []
  c.events.on('state', (state) => { seen.push(state) })
  return seen
}

t.test('tabs share one socket: acks by tab, rooms by tab, errors and refusals routed back', async (t) => {
  withLocks(t)
  const server = await startServer(t)
  const one = tab(t, server.url)
  // Made before either tab knows a leader (one has not been granted the lock yet): kept, then sent.
  const early = one.request('echo', { text: 'early' })
  const earlyJoin = one.join('early')
  const two = tab(t, server.url)
  const earlyTwo = two.request('echo', { text: 'early2' })
  await Promise.all([one.ready(), two.ready()])
  await one.ready() // already open
  t.same(await Promise.all([early, earlyJoin, earlyTwo]), [{ text: 'early' }, undefined, { text: 'early2' }])
  t.equal(one.leader, true)
  t.equal(two.leader, false)
  t.equal(server.app.realtime.stats().connections, 1)

  const gotOne: string[] = []
  const gotTwo: string[] = []
  one.on('said', (data, meta) => { gotOne.push(`${meta.room}:${data.text}`) })
  two.on('said', (data, meta) => { gotTwo.push(`${meta.room}:${data.text}`) })
  const echoed: string[] = []
  two.on('echoed', (data) => { echoed.push(data.text) })
  await one.join('a')
  await two.join('b')
  await two.join('b') // once more: the same room, no second join
  t.same(await Promise.all([one.request('echo', { text: 'x' }), two.request('echo', { text: 'y' })]), [{ text: 'x' }, { text: 'y' }])
  await until(() => echoed.length === 2, 'both echoes, relayed to every tab (no room)')
  t.equal(await two.request('say', { room: 'a', text: 'to a' }), true)
  t.equal(await one.request('say', { room: 'b', text: 'to b' }), true)
  await until(() => gotOne.length === 1 && gotTwo.length === 1, 'one message each')
  t.same([gotOne, gotTwo], [['a:to a'], ['b:to b']])

  const refused = await two.request('refuse', null).catch((e: RealtimeError) => e)
  t.match(refused, { name: 'RealtimeError', code: 'NO_WAY', message: 'No way' })
  const invalid = await two.request('echo', { text: 'far too long a text' }).catch((e: RealtimeError) => e)
  t.match(invalid, { code: 'invalid_data', details: Array })
  const badRoom = await two.join('').catch((e: RealtimeError) => e)
  t.match(badRoom, { code: 'invalid_room' })

  // Two leaves room b: the leader leaves it, and a message there reaches nobody.
  await two.leave('b')
  t.equal(await one.request('say', { room: 'a', text: 'still a' }), true)
  await until(() => gotOne.length === 2, 'one still hears a')

  // An aborted request rejects at once; its late reply is ignored.
  const controller = new AbortController()
  const hanging = two.request('hang', null, { signal: controller.signal })
  controller.abort()
  t.match(await hanging.catch((e: RealtimeError) => e), { code: 'aborted' })

  t.equal(two.send('echo', { text: 'sent' }), true)
  await until(() => echoed.includes('sent'), 'a send through the leader')
  t.equal(two.send('echo', { text: 'v' }, { volatile: true }), true, 'volatile while open is sent')

  two.close()
  two.close() // twice is fine
  t.equal(two.state, 'closed')
  t.equal(two.send('echo', { text: 'no' }), false)
  t.match(await two.request('echo', { text: 'no' }).catch((e: RealtimeError) => e), { code: 'closed' })
  await t.rejects(two.ready(), { code: 'closed' })
})

t.test('the leader\'s loss: another tab takes over, re-joins, resends what asked for it and fails the rest', async (t) => {
  withLocks(t)
  const server = await startServer(t)
  const one = tab(t, server.url)
  await one.ready()
  const two = tab(t, server.url)
  const seen = states(two)
  await two.ready()
  await two.join('b')
  const got: string[] = []
  two.on('said', (data) => { got.push(data.text) })
  const gaps: unknown[] = []
  two.events.on('gap', (gap) => { gaps.push(gap) })
  const errors: RealtimeError[] = []
  two.events.on('error', (err) => { errors.push(err) })

  // In flight at the leader when its tab goes: one asked to be resent, one did not.
  const lost = two.request('hang', null)
  const resent = two.request('echo', { text: 'again' }, { resend: true })
  one.close()
  t.match(await lost.catch((e: RealtimeError) => e), { code: 'connection_lost' })
  await two.ready()
  t.equal(two.leader, true)
  t.same(await resent, { text: 'again' })
  t.same(seen.slice(0, 3), ['open', 'reconnecting', 'open'])
  await until(() => server.app.realtime.stats().connections === 1, 'one socket again')
  t.equal(await two.request('say', { room: 'b', text: 'after' }), true)
  await until(() => got.includes('after'), 'room b re-joined by the new leader')

  // Events of the leader's client reach the tabs: an id-less error to all, a gap only to the tabs in its room.
  const three = tab(t, server.url)
  await three.ready()
  const threeGaps: unknown[] = []
  three.events.on('gap', (gap) => { threeGaps.push(gap) })
  const threeErrors: RealtimeError[] = []
  three.events.on('error', (err) => { threeErrors.push(err) })
  const position = await two.request('say', { room: 'b', text: 'numbered' })
  t.equal(position, true)
  await until(() => got.includes('numbered'), 'the numbered message')
  await two.request('closeMe', {
    code: 1001,
    frames: ['{"type":"error","error":{"code":"odd","message":"no id"}}', '{"type":"said","room":"b","seq":99,"data":{"text":"jump"}}']
  })
  const odd = (list: RealtimeError[]): number => list.filter((e) => e.code === 'odd').length
  await until(() => odd(errors) === 1 && odd(threeErrors) === 1 && gaps.length >= 1, 'the error in both tabs, the gap in two')
    .catch((err: Error) => { throw new Error(`${err.message}: ${JSON.stringify({ errors, threeErrors, gaps })}`) })
  t.match(threeErrors.find((e) => e.code === 'odd'), { message: 'no id' })
  t.match(gaps[0], { room: 'b', reason: 'jump', seq: 99 })
  t.equal(threeGaps.length, 0, 'tab three is not in room b')
  await two.ready()
})

t.test('without Web Locks every tab keeps its own connection', async (t) => {
  const server = await startServer(t)
  const one = tab(t, server.url, { name: undefined }) // the URL names the channel
  const two = tab(t, server.url)
  await Promise.all([one.ready(), two.ready()])
  t.equal(one.leader, true)
  t.equal(two.leader, true)
  t.equal(server.app.realtime.stats().connections, 2)
  await one.join('a')
  t.equal(await one.request('say', { room: 'a', text: 'alone' }), true)
  const hanging = one.request('hang', null)
  one.close()
  t.match(await hanging.catch((e: RealtimeError) => e), { code: 'closed' }, 'in flight at close: rejected')
  await t.rejects(one.ready(), { code: 'closed' })
})

t.test('pagehide closes the tab\'s client: the next tab leads', async (t) => {
  withLocks(t)
  const hide = withPage(t)
  const server = await startServer(t)
  const one = tab(t, server.url, { network: false })
  await one.ready()
  const two = tab(t, server.url, { network: false })
  await two.ready()
  hide() // both tabs of this process hear it: both close
  t.equal(one.state, 'closed')
  t.equal(two.state, 'closed')
  await until(() => server.app.realtime.stats().connections === 0, 'the socket closed')
})

t.test('a tab closed while it waits for the lock gives up its place in the queue', async (t) => {
  withLocks(t)
  const server = await startServer(t)
  const one = tab(t, server.url)
  await one.ready()
  const two = tab(t, server.url)
  const ready = two.ready()
  two.close()
  await t.rejects(ready, { code: 'closed' })
  const three = tab(t, server.url)
  // Made before the leader answered this tab: kept, then sent.
  const early = three.request('echo', { text: 'first' })
  await three.ready()
  t.same(await early, { text: 'first' })
  one.close()
  await until(() => three.leader, 'the third tab, not the closed second, takes over')
  await three.ready()
  t.equal(two.leader, false)
})

t.test('a tab that starts while the leader reconnects waits for open; a throwing listener breaks nothing', async (t) => {
  withLocks(t)
  const server = await startServer(t)
  const one = tab(t, server.url)
  await one.ready()
  await one.join('a')
  await server.app.close()
  await until(() => one.state === 'reconnecting', 'the leader reconnecting')
  const two = tab(t, server.url)
  const seen = states(two)
  const ready = two.ready()
  await until(() => seen.length === 1, 'the leader\'s state')
  t.same(seen, ['reconnecting'])
  await server.restart()
  await ready
  t.same(seen, ['reconnecting', 'open'])

  // A listener that throws: rethrown from a microtask (caught here), and the next listener still runs.
  const caught: unknown[] = []
  const original = globalThis.queueMicrotask
  globalThis.queueMicrotask = (fn) => original(() => { try { fn() } catch (err) { caught.push(err) } })
  t.teardown(() => { globalThis.queueMicrotask = original })
  const got: string[] = []
  two.on('echoed', () => { throw new Error('listener bug') })
  two.on('echoed', (data) => { got.push(data.text) })
  await two.request('echo', { text: 'ok' })
  await until(() => got.length === 1 && caught.length === 1, 'both listeners ran')
  t.match(caught[0], { message: 'listener bug' })
})
