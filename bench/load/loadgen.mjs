// The load generator: one process, forked by bench/run.mjs with IPC, running one scenario against one or more
// servers. Phases: the harness sends {cmd:'run'}; we connect and warm up, then report {type:'warm'} and wait
// for {cmd:'go'} (the harness reads the servers' CPU counters in between); we run the measured phase, report
// {type:'result'} and close on {cmd:'close'}. Every phase is bounded in time and in messages.
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { Histogram } from './histogram.mjs'
import { connect, publish, request, requestAsync, sink } from './clients.mjs'

const now = () => performance.now()
const cpuTotal = (u) => u.user + u.system
const clients = []

if (!process.send) throw new TypeError('the load generator is started by bench/run.mjs with an IPC channel')
process.on('disconnect', () => process.exit(0))

let onGo = null
process.on('message', (msg) => {
  if (msg.cmd === 'run') {
    run(msg).catch((err) => {
      process.send({ type: 'error', message: err?.stack ?? String(err) })
      setTimeout(() => process.exit(1), 50)
    })
  } else if (msg.cmd === 'go') {
    onGo?.()
  } else if (msg.cmd === 'close') {
    // Reset rather than close: a client-side close leaves each local port in TIME_WAIT for a minute, and
    // 10,000 of those make the next contender's connects crawl through a nearly exhausted port range.
    for (const c of clients) c.conn.reset()
    setTimeout(() => process.exit(0), 50)
  }
})

/** Polls `done` every 5 ms for at most `ms`: the drain at the end of a phase, bounded. */
async function waitUntil (done, ms) {
  const end = now() + ms
  while (!done() && now() < end) await sleep(5)
}

function waitForGo () {
  return new Promise((resolve) => { onGo = resolve })
}

/** Source address for the i-th connection: one loopback address per `perAddress` connections. */
function sourceAddress (i, perAddress) {
  return `127.0.0.${1 + Math.floor(i / perAddress)}`
}

/** Opens n clients, `concurrency` handshakes at a time, each joining the room `roomOf(i)`. */
async function openClients ({ protocol, servers, n, roomOf, concurrency, perAddress, firstIndex = 0, deadline }) {
  const out = new Array(n)
  let next = 0
  let failures = 0
  async function worker () {
    while (next < n) {
      const i = next++
      if (now() > deadline) throw new Error(`connecting ${n} clients took longer than the phase allows (${i} open)`)
      const server = servers[i % servers.length]
      let client
      for (let attempt = 0; ; attempt++) {
        try {
          client = await connect(protocol, server, perAddress ? sourceAddress(firstIndex + i, perAddress) : undefined)
          break
        } catch (err) {
          failures++
          if (attempt >= 3) throw new Error(`client ${i} could not connect: ${err.message}`)
          await sleep(50 * (attempt + 1))
        }
      }
      client.index = i
      out[i] = client
      clients.push(client)
      const room = roomOf(i)
      if (room !== null) await requestAsync(client, 'join', '{"room":"' + room + '"}')
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker))
  return { list: out, failures }
}

function countOthers () {
  const others = { count: 0, sample: null }
  sink.other = (client, buf) => {
    others.count++
    others.sample ??= buf.toString().slice(0, 200)
  }
  return others
}

/**
 * Room fan-out: `members` clients in one room, member 0 publishes. Either as fast as a window of `window`
 * undelivered messages allows (the window counts deliveries to every member, so neither the server nor this
 * process can queue without bound), or at a fixed `rate` per second. Latency is receive time minus the
 * timestamp in the payload; at a fixed rate the timestamp is the scheduled send time, so a late sender
 * counts against latency instead of hiding it.
 */
async function fanout (p) {
  const phaseDeadline = now() + p.setupMs
  const room = 'r'
  const { list, failures } = await openClients({
    protocol: p.protocol,
    servers: p.servers,
    n: p.members,
    roomOf: () => room,
    concurrency: 50,
    perAddress: 0,
    deadline: phaseDeadline
  })
  const sender = list[0]
  const members = p.members
  const hist = new Histogram()
  const others = countOthers()
  let recording = false
  let stopping = true
  let sent = 0
  let delivered = 0
  let credited = 0 // delivered + written off as lost
  let lost = 0
  let lastDelivery = now()

  const windowOpen = () => !stopping && (sent - p.window) * members < credited && sent < p.maxMessages
  const pump = () => {
    while (windowOpen()) {
      sent++
      publish(sender, room, now())
    }
  }
  sink.delivery = (client, t) => {
    delivered++
    credited++
    lastDelivery = now()
    if (recording) hist.record(lastDelivery - t)
    if (p.rate === 0) pump()
  }
  // A delivery that never comes (a contender dropping frames) must not stall the window for ever.
  const watchdog = setInterval(() => {
    const missing = sent * members - credited
    if (missing > 0 && now() - lastDelivery > 1000) {
      lost += missing
      credited += missing
      lastDelivery = now()
      pump()
    }
  }, 250)

  let timer = null
  function startRate () {
    const interval = 1000 / p.rate
    let due = now()
    const tick = () => {
      if (stopping) return
      const t = now()
      while (due <= t && sent < p.maxMessages) {
        sent++
        publish(sender, room, due)
        due += interval
      }
      timer = setTimeout(tick, Math.max(0, due - now()))
    }
    tick()
  }

  async function drive (ms) {
    stopping = false
    const started = now()
    if (p.rate === 0) pump()
    else startRate()
    await sleep(ms)
    stopping = true
    clearTimeout(timer)
    const elapsed = now() - started
    const deliveredAtStop = delivered
    await waitUntil(() => credited >= sent * members, 3000)
    return { elapsed, deliveredAtStop }
  }

  await drive(p.warmMs)
  process.send({ type: 'warm', clients: list.length, connectFailures: failures })
  await waitForGo()
  sent = 0
  delivered = 0
  credited = 0
  lost = 0
  recording = true
  const cpu = process.cpuUsage()
  const { elapsed, deliveredAtStop } = await drive(p.measureMs)
  const generatorCpuUs = cpuTotal(process.cpuUsage(cpu))
  recording = false
  clearInterval(watchdog)
  process.send({
    type: 'result',
    sent,
    delivered,
    expected: sent * members,
    lost,
    deliveredPerSec: deliveredAtStop / (elapsed / 1000),
    messagesPerSec: sent / (elapsed / 1000),
    elapsedMs: elapsed,
    latency: hist.summary(),
    generatorCpuUs,
    others
  })
}

/** Request/ack round trips: `clients` clients, each with one "echo" request in flight at a time. */
async function requestAck (p) {
  const { list, failures } = await openClients({
    protocol: p.protocol,
    servers: p.servers,
    n: p.clients,
    roomOf: () => null,
    concurrency: 50,
    perAddress: 0,
    deadline: now() + p.setupMs
  })
  const hist = new Histogram()
  const others = countOthers()
  let recording = false
  let stopping = true
  let acks = 0
  let inFlight = 0

  const fire = (client) => {
    inFlight++
    const t = now()
    request(client, 'echo', '{"t":' + t + '}', () => {
      inFlight--
      acks++
      if (recording) hist.record(now() - t)
      if (!stopping && acks < p.maxMessages) fire(client)
    })
  }
  async function drive (ms) {
    stopping = false
    const started = now()
    for (const c of list) fire(c)
    await sleep(ms)
    stopping = true
    const elapsed = now() - started
    const acksAtStop = acks
    await waitUntil(() => inFlight === 0, 3000)
    return { elapsed, acksAtStop }
  }

  await drive(p.warmMs)
  process.send({ type: 'warm', clients: list.length, connectFailures: failures })
  await waitForGo()
  acks = 0
  recording = true
  const cpu = process.cpuUsage()
  const { elapsed, acksAtStop } = await drive(p.measureMs)
  const generatorCpuUs = cpuTotal(process.cpuUsage(cpu))
  process.send({
    type: 'result',
    roundTrips: acks,
    lost: inFlight,
    roundTripsPerSec: acksAtStop / (elapsed / 1000),
    elapsedMs: elapsed,
    latency: hist.summary(),
    generatorCpuUs,
    others
  })
}

/**
 * Idle connections: open the first half of `connections` clients, each joining one of `rooms` rooms, report
 * "warm" (the harness reads the server's memory), open the second half and report. The harness divides the
 * memory added by the second half by its size: the marginal cost of a connection, free of the server's
 * fixed start-up memory and of whatever the first collection happened to give back to the system.
 */
async function idle (p) {
  const half = Math.floor(p.connections / 2)
  const open = (from, n, deadline) => openClients({
    protocol: p.protocol,
    servers: p.servers,
    n,
    roomOf: (i) => 'r' + ((from + i) % p.rooms),
    concurrency: 200,
    perAddress: p.perAddress,
    firstIndex: from,
    deadline
  })
  const deadline = now() + p.setupMs
  const first = await open(0, half, deadline)
  const others = countOthers()
  process.send({ type: 'warm', clients: first.list.length, connectFailures: first.failures })
  await waitForGo()
  const started = now()
  const second = await open(half, p.connections - half, deadline)
  const connectMs = now() - started
  const all = [...first.list, ...second.list]
  process.send({
    type: 'result',
    connections: all.filter((c) => !c.closed).length,
    measuredConnections: second.list.filter((c) => !c.closed).length,
    connectFailures: first.failures + second.failures,
    connectMs,
    others
  })
}

const scenarios = { fanout, requestAck, idle }

async function run ({ scenario, params }) {
  const fn = scenarios[scenario]
  if (fn === undefined) throw new TypeError(`unknown scenario ${scenario}`)
  await fn(params)
}
