import t, { type Test } from 'tap'
import { EventEmitter, once } from 'node:events'
import Fastify from 'fastify'
import WebSocket from 'ws'
import { Clock } from '@tapjs/clock'
import { listeningApp, openSocket, registeredApp } from './helpers/app.js'
import realtime, { type RealtimeOptions } from '../index.js'
import { Heartbeat } from '../lib/heartbeat.js'
import { defaults } from '../lib/options.js'
import { until, within } from './helpers/wait.js'
import type { Hub } from '../lib/hub.js'

// A bound on every wait: generous, so a slow machine never fails a test; the
// awaited event normally comes within a few sweeps.
const BOUND = 10_000

async function listen (t: Test, options: RealtimeOptions) {
  const { app, url } = await listeningApp(t, { options, routes: { '/room': { joinable: true, messages: {} } } })
  return { app, url: url('/room') }
}

const open = openSocket

async function join (ws: WebSocket, room: string): Promise<void> {
  ws.send(JSON.stringify({ type: 'room:join', data: { room }, id: room }))
  for (;;) {
    const [raw] = await once(ws, 'message') as [Buffer]
    const msg = JSON.parse(raw.toString())
    if (msg.id === room) return
  }
}

t.test('a peer that stops answering pings is terminated and leaves its rooms', async (t) => {
  const { app, url } = await listen(t, { heartbeat: { interval: 50, timeout: 150 } })
  const dead = await open(url, { autoPong: false })
  const alive = await open(url)
  // Counted from the open: with 50 ms intervals a ping can come while the joins are being acked.
  let deadPings = 0
  let alivePings = 0
  dead.on('ping', () => { deadPings++ })
  alive.on('ping', () => { alivePings++ })
  await join(dead, 'lobby')
  await join(dead, 'solo')
  await join(alive, 'lobby')
  t.match(app.realtime.stats(), { rooms: 2, members: 3 })

  const [code] = await within(once(dead, 'close'), 'termination', BOUND) as [number]
  t.equal(code, 1006, 'terminated, no close handshake')
  t.ok(deadPings >= 1, 'the dead peer was pinged first')
  await until(() => app.realtime.stats().connections === 1, 'the terminated peer to be gone', BOUND)
  t.match(app.realtime.stats(), { heartbeatTerminations: 1, rooms: 1, members: 1 }, 'removed from every room; "solo" freed')
  t.same((await app.realtime.presence('lobby')).count, 1)

  // The live peer keeps answering through several more sweeps.
  for (let i = 0; i < 3; i++) await within(once(alive, 'ping'), 'ping', BOUND)
  t.ok(alivePings >= 3, 'the live peer was pinged and answered throughout')
  t.equal(alive.readyState, WebSocket.OPEN)
  t.equal(app.realtime.stats().heartbeatTerminations, 1)
  alive.close()
  await once(alive, 'close')
})

// On the fake clock, three default intervals pass in no time: the default
// heartbeat pings within them, `heartbeat: false` never does.
for (const [name, options, pinged] of [
  ['the default heartbeat pings an idle peer within three intervals', {}, true],
  ['heartbeat: false sends no pings and terminates nobody', { heartbeat: false }, false]
] as const) {
  t.test(name, async (t) => {
    const clock = new Clock()
    t.teardown(clock.enter())
    const app = await registeredApp(t, options)
    app.realtime('/room', { messages: {} })
    await app.ready()
    const quiet = await app.injectWS('/room', { autoPong: false })
    let pings = 0
    quiet.on('ping', () => { pings++ })
    const { interval } = defaults.heartbeat as { interval: number }
    for (let elapsed = 0; elapsed < 3 * interval; elapsed += interval / 10) {
      clock.advance(interval / 10)
      // A round trip on the same stream: whatever the server wrote before its pong has arrived.
      if (quiet.readyState !== WebSocket.OPEN) break
      quiet.ping()
      await Promise.race([once(quiet, 'pong'), once(quiet, 'close')])
    }
    if (pinged) {
      t.ok(pings >= 1, 'pinged')
      t.equal(app.realtime.stats().heartbeatTerminations, 1, 'and, never answering, terminated')
    } else {
      t.equal(pings, 0)
      t.equal(quiet.readyState, WebSocket.OPEN)
      t.equal(app.realtime.stats().heartbeatTerminations, 0)
    }
    quiet.terminate()
  })
}

t.test('the sweep timer starts on ready, is unref\'d, and is gone after app.close()', async (t) => {
  const clock = new Clock()
  t.teardown(clock.enter())
  // An unusual period tells the sweep timer apart from any other part's timers.
  const ours = () => [...clock.timers.values()].flat().filter((timer) => timer.w - clock.now() === 4321)
  const app = Fastify()
  await app.register(realtime, { heartbeat: { interval: 4321, timeout: 5000 } })
  t.equal(ours().length, 0, 'nothing runs before ready')
  await app.ready()
  t.equal(ours().length, 1, 'one timer for the whole app, every min(interval, timeout)')
  t.equal(ours()[0].reffed, false, 'it does not keep the process alive')
  await app.close()
  t.equal(ours().length, 0, 'app.close() cleared it')
})

// The sweep logic on its own, on fake connections: deterministic, no timer.
function fakeHub () {
  const checked: unknown[] = []
  const hub = {
    connections: new Set<ReturnType<typeof fakeConn>>(),
    counters: { heartbeatTerminations: 0 },
    backpressure: { check: (conn: unknown) => { checked.push(conn) } }
  }
  return { hub, checked, heartbeat: (interval: number, timeout: number) => new Heartbeat(hub as unknown as Hub, { interval, timeout }) }
}

function fakeConn () {
  const socket = Object.assign(new EventEmitter(), {
    pings: 0,
    terminated: false,
    ping () { socket.pings++ },
    terminate () { socket.terminated = true }
  })
  return { socket, closed: false, slowSince: 0, log: { info () {} } }
}

t.test('sweeps: ping when due, terminate after the timeout, keep those that pong', async (t) => {
  const { hub, checked, heartbeat } = fakeHub()
  const hb = heartbeat(30_000, 10_000)
  t.same([hb.period, hb.intervalSweeps, hb.timeoutSweeps], [10_000, 3, 1])
  const alive = fakeConn()
  const dead = fakeConn()
  const closing = fakeConn()
  closing.closed = true
  for (const conn of [alive, dead, closing]) hub.connections.add(conn)

  hb.sweep() // 1: first sight, the clock starts
  t.same([alive.socket.pings, dead.socket.pings], [0, 0])
  hb.sweep() // 2
  hb.sweep() // 3
  t.same([alive.socket.pings, dead.socket.pings], [0, 0], 'not before one interval')
  hb.sweep() // 4: ping
  t.same([alive.socket.pings, dead.socket.pings], [1, 1])
  alive.socket.emit('pong')
  hb.sweep() // 5: the dead one missed its pong for one timeout
  t.ok(dead.socket.terminated)
  t.notOk(alive.socket.terminated)
  t.equal(hub.counters.heartbeatTerminations, 1)
  hub.connections.delete(dead)
  hb.sweep() // 6
  t.equal(alive.socket.pings, 1)
  hb.sweep() // 7: next interval
  t.equal(alive.socket.pings, 2)
  t.equal(closing.socket.pings, 0, 'a closing socket is left to its close handshake')
  t.same(checked, [])
  alive.socket.emit('pong')
  alive.slowSince = 1
  hb.sweep()
  t.same(checked, [alive], 'a slow consumer is rechecked by the sweep even when nothing is sent to it')
})

t.test('a timeout longer than the interval waits for the pong before pinging again', async (t) => {
  const { hub, heartbeat } = fakeHub()
  const hb = heartbeat(10, 25)
  t.same([hb.period, hb.intervalSweeps, hb.timeoutSweeps], [10, 1, 3])
  const conn = fakeConn()
  hub.connections.add(conn)
  hb.sweep() // first sight
  hb.sweep() // ping
  hb.sweep()
  hb.sweep()
  t.equal(conn.socket.pings, 1, 'one outstanding ping at a time')
  t.notOk(conn.socket.terminated, 'two sweeps after the ping is not yet 25 ms')
  hb.sweep()
  t.ok(conn.socket.terminated, 'three sweeps (30 ms >= 25 ms) is')
})

t.test('start and stop are idempotent', async (t) => {
  const clock = new Clock()
  t.teardown(clock.enter())
  const { hub, heartbeat } = fakeHub()
  const hb = heartbeat(100, 100)
  const conn = fakeConn()
  hub.connections.add(conn)
  hb.start()
  hb.start()
  clock.advance(100)
  clock.advance(100)
  t.equal(conn.socket.pings, 1, 'one timer: first sight at 100, ping at 200')
  hb.stop()
  hb.stop()
  for (let i = 0; i < 10; i++) clock.advance(100)
  t.equal(conn.socket.pings, 1, 'stopped')
})
