// Child processes of the harness: contender servers, the load generator, micro-benchmarks and redis-server.
// Every child is tracked here and killed when the harness exits for any reason, and every wait on a child
// has a deadline, so a hung contender costs a bounded amount of time and never leaves an orphan behind.
import { fork, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'

const children = new Set()

function track (child) {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

export function killAll () {
  for (const child of children) child.kill('SIGKILL')
  children.clear()
}

/** Runs a tool's `main`, then kills every child it left and exits: 0 when it resolved, 1 (the error printed) when not. */
export function runMain (main) {
  main().then(() => {
    killAll()
    process.exit(0)
  }, (err) => {
    console.error(err)
    killAll()
    process.exit(1)
  })
}

process.once('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killAll()
    process.exit(130)
  })
}

/** Resolves with the first IPC message of `type` (or rejects on "error", exit or after `ms`). */
export function expectMessage (child, type, ms, match = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(reject, new Error(`no "${type}" from ${child.label} within ${ms} ms`)), ms)
    function onMessage (msg) {
      if (msg.type === type && match(msg)) done(resolve, msg)
      else if (msg.type === 'error') done(reject, new Error(`${child.label} failed: ${msg.message}`))
      else if (msg.type === 'skip' && type !== 'skip') done(resolve, msg)
    }
    function onExit (code, signal) {
      const tail = child.stderrTail?.trim()
      done(reject, new Error(`${child.label} exited (${signal ?? code}) before "${type}"${tail ? ': ' + tail : ''}`))
    }
    function done (fn, value) {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      fn(value)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

/** Forks a node script with IPC; stderr is passed through and its tail kept for error messages. */
export function forkScript (file, args, { label, execArgv = [] } = {}) {
  const child = track(fork(file, args, { execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }))
  child.label = label ?? file
  child.stderrTail = ''
  child.stderr.on('data', (chunk) => {
    child.stderrTail = (child.stderrTail + chunk).slice(-2000)
    if (process.env.BENCH_VERBOSE) process.stderr.write(chunk)
  })
  return child
}

/** Asks the child to close, then kills it if it has not exited within `ms`. */
export async function stop (child, ms = 3000) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  if (child.send) child.send({ cmd: 'close' }, () => {})
  else child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), ms)
  await exited
  clearTimeout(timer)
}

let markId = 0
/** Reads a server's CPU and memory counters; with `gc`, after collecting garbage. */
export async function mark (child, { gc = false } = {}) {
  const id = ++markId
  const reply = expectMessage(child, 'mark', 15_000, (m) => m.id === id)
  child.send({ cmd: 'mark', id, gc })
  return reply
}

export async function freePort () {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  await once(server, 'close')
  return port
}

/** Starts a throwaway redis-server on a free loopback port (never 6379), persistence off. */
export async function startRedis () {
  const port = await freePort()
  const child = track(spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'
  ], { stdio: ['ignore', 'ignore', 'pipe'] }))
  child.label = 'redis-server'
  let stderr = ''
  child.stderr.on('data', (c) => { stderr += c })
  await Promise.race([
    once(child, 'spawn'),
    once(child, 'error').then(([err]) => { throw err })
  ])
  const { Redis } = await import('ioredis')
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: null })
  const deadline = Date.now() + 5000
  for (;;) {
    try {
      await probe.connect()
      await probe.ping()
      break
    } catch (err) {
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL')
        throw new Error(`redis-server did not start: ${err.message} ${stderr}`)
      }
      probe.disconnect()
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  probe.disconnect()
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    async stop () { await stop(child, 2000) }
  }
}

/** CPU time (user + system, in microseconds) a process has used, from /proc; for redis-server. */
export async function procCpuMicros (pid) {
  const { readFile } = await import('node:fs/promises')
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are fields 14 and 15 of the whole line, in clock ticks (USER_HZ, 100 on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

/** Busy CPU time of the whole machine so far, in microseconds, from the first line of /proc/stat. */
export async function machineBusyMicros () {
  const { readFile } = await import('node:fs/promises')
  const line = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0]
  // cpu user nice system idle iowait irq softirq steal ...: everything but idle and iowait is busy.
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number)
  return (user + nice + system + irq + softirq + steal) * 10_000
}

/** Connections per loopback source address, keeping well inside the ephemeral port range. */
export function sourcesPerAddress () {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    return Math.max(1000, Math.floor((hi - lo) * 0.7))
  } catch {
    return 20_000
  }
}
