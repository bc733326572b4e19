// (issue 15) What the `fastify-realtime:deliver` event and the trace context cost a room broadcast: Rooms#emit to a
// room of 100 members whose sockets do nothing (so what is timed is the core's work per broadcast: serialize once,
// frame once, the member loop), with nobody subscribed (the default: one `hasSubscribers` read and one counter),
// with a subscriber, and from inside a traced handler's synchronous part. `--dist <dir>` measures another build
// (e.g. the commit before the change, built in a scratch directory) for the before/after of the default path.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import dc from 'node:diagnostics_channel'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { measure, report, sink } from './measure.mjs'

const { dist } = parseArgs({
  options: { dist: { type: 'string', default: fileURLToPath(new URL('../../dist', import.meta.url)) } },
  strict: false
}).values
const ROOMS = join(dist, 'lib/rooms.js')
const MEMBERS = 100

if (!existsSync(ROOMS)) {
  report([{ name: 'room emit', skip: `not built (${ROOMS} missing; run npm run build)` }])
} else {
  const { Rooms } = await import(pathToFileURL(ROOMS).href)
  const { resolveOptions } = await import(pathToFileURL(join(dist, 'lib/options.js')).href)
  const { Backpressure } = await import(pathToFileURL(join(dist, 'lib/backpressure.js')).href)
  const traceContext = existsSync(join(dist, 'lib/trace-context.js'))
    ? await import(pathToFileURL(join(dist, 'lib/trace-context.js')).href)
    : null
  const options = resolveOptions({ heartbeat: false })
  const counters = { volatileDrops: 0, slowConsumerCloses: 0, backfills: 0, backfillGaps: 0, historyErrors: 0 }
  const log = { warn () {}, error () {}, info () {}, debug () {}, child () { return log } }
  const rooms = new Rooms(options, log, new Backpressure(options.slowConsumer, counters), counters)
  for (let i = 0; i < MEMBERS; i++) {
    const joined = new Set()
    await rooms.join({
      id: 'c' + i,
      user: undefined,
      joined,
      rooms: joined,
      announcesPresence: false,
      catchups: null,
      session: null,
      closed: false,
      slowSince: 0,
      socket: { bufferedAmount: 0 },
      sendFrame () { sink.value++ },
      close () {}
    }, 'lobby')
  }
  const data = { text: 'hello' }
  const emit = () => { rooms.emit('lobby', 'said', data, null, false) }
  const results = [measure(`emit to ${MEMBERS} members, nobody subscribed`, emit, { batch: 2000 })]
  if (traceContext !== null) {
    const carrier = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }
    results.push(measure(`emit to ${MEMBERS} members from a traced handler, nobody subscribed`, () => {
      const outer = traceContext.enter(carrier)
      emit()
      traceContext.leave(outer)
    }, { batch: 2000 }))
    const listener = (ctx) => { sink.value += ctx.recipients }
    dc.subscribe(traceContext.DELIVER_CHANNEL, listener)
    results.push(measure(`emit to ${MEMBERS} members, a deliver subscriber`, emit, { batch: 2000 }))
    dc.unsubscribe(traceContext.DELIVER_CHANNEL, listener)
    results.push(measure(`emit to ${MEMBERS} members, nobody subscribed (again, after unsubscribing)`, emit, { batch: 2000 }))
  }
  report(results)
}
