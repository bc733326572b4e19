// Real redis-server processes for the tests: one per call, on a free loopback
// port (never 6379, so a system redis that apt started is never touched), in
// its own temp dir, with persistence off.
//
//   const redis = await startRedisServer()
//   t.teardown(() => redis.stop())
//
// No redis may outlive the test file that started it, even when that file
// crashes: the servers run under `setpriv --pdeathsig SIGKILL`, so the kernel
// kills them when this process dies in any way (SIGKILL, a tap timeout), and a
// process 'exit' hook kills whatever is still running on a normal exit.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'

const HOST = '127.0.0.1'
const SYSTEM_PORT = 6379
const READY_TIMEOUT = 10_000
const EXIT_TIMEOUT = 10_000
const CLUSTER_TIMEOUT = 20_000
const START_ATTEMPTS = 5
const LOG_TAIL = 4000

export interface RedisServer {
  readonly host: string
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** The running server's pid, undefined while it is down. */
  readonly pid: number | undefined
  /** Kill the server (SIGKILL), wait for it to exit and remove its dir. Safe to call twice. */
  stop (): Promise<void>
  /**
   * Send `signal` (default SIGKILL) and wait until the server has exited.
   * SIGSTOP and SIGCONT (freeze and thaw it, to play a hung Redis) resolve at once.
   */
  kill (signal?: NodeJS.Signals): Promise<void>
  /** Start the server again on the same port (killing it first if it runs) and wait until it answers. */
  restart (): Promise<void>
}

export interface RedisCluster {
  /** The masters, each holding a third of the slots: what `new Cluster(nodes)` wants. */
  readonly nodes: Array<{ host: string, port: number }>
  /** The servers behind `nodes`, to kill or restart one of them. */
  readonly servers: RedisServer[]
  /** Stop every node. */
  stop (): Promise<void>
}

const live = new Set<ChildProcess>()
const dirs = new Set<string>()

process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL')
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

let pdeathsig: boolean | undefined
function hasSetpriv (): boolean {
  pdeathsig ??= spawnSync('setpriv', ['--help'], { stdio: 'pipe' }).stdout?.includes('--pdeathsig') === true
  return pdeathsig
}

/** A port nobody listens on right now; redis may still lose a race for it, so callers retry. */
async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, HOST, resolve)
  })
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port === SYSTEM_PORT ? freePort() : port
}

function exited (child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

function waitExit (child: ChildProcess): Promise<void> {
  if (exited(child)) return Promise.resolve()
  // A child that was unref'd must hold the loop open while someone waits for it.
  child.ref()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server ${child.pid} did not exit within ${EXIT_TIMEOUT} ms`)), EXIT_TIMEOUT)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/**
 * The pid of whatever answers on `port`, or undefined. Checking the pid, not
 * just a PONG, means a redis from a parallel test file that won the race for the
 * port is never mistaken for ours.
 */
function answeringPid (port: number): Promise<number | undefined> {
  return new Promise(resolve => {
    let text = ''
    const socket = connect(port, HOST)
    const done = (pid: number | undefined): void => {
      socket.destroy()
      resolve(pid)
    }
    socket.setTimeout(1000, () => done(undefined))
    socket.on('error', () => done(undefined))
    socket.on('close', () => done(undefined))
    socket.on('connect', () => socket.write('INFO server\r\n'))
    socket.on('data', chunk => {
      text += chunk.toString()
      const match = /process_id:(\d+)\r\n/.exec(text)
      if (match !== null) done(Number(match[1]))
    })
  })
}

interface NodeSpec {
  port: number
  /** Cluster bus port, only for cluster nodes; own free port, since port + 10000 may not exist. */
  busPort?: number
}

class Server implements RedisServer {
  readonly host = HOST
  #spec: NodeSpec
  #dir: string
  #child: ChildProcess | undefined
  #log = ''
  #stopped = false

  constructor (spec: NodeSpec) {
    this.#spec = spec
    this.#dir = mkdtempSync(join(tmpdir(), 'frt-redis-'))
    dirs.add(this.#dir)
  }

  get port (): number { return this.#spec.port }
  get busPort (): number | undefined { return this.#spec.busPort }
  get url (): string { return `redis://${HOST}:${this.#spec.port}` }
  get pid (): number | undefined {
    return this.#child === undefined || exited(this.#child) ? undefined : this.#child.pid
  }

  /** Spawn and wait until it answers; rejects with the server's log if it exits first. */
  async start (): Promise<void> {
    const { port, busPort } = this.#spec
    if (port === SYSTEM_PORT || busPort === SYSTEM_PORT) throw new Error('the tests never use port 6379')
    mkdirSync(this.#dir, { recursive: true })
    dirs.add(this.#dir)
    this.#stopped = false
    const args = [
      '--port', String(port), '--bind', HOST, '--dir', this.#dir,
      '--save', '', '--appendonly', 'no', '--daemonize', 'no',
      '--logfile', '', '--loglevel', 'warning', '--enable-debug-command', 'local'
    ]
    if (busPort !== undefined) {
      args.push('--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
        '--cluster-port', String(busPort), '--cluster-node-timeout', '2000')
    }
    const child = hasSetpriv()
      ? spawn('setpriv', ['--pdeathsig', 'SIGKILL', 'redis-server', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#child = child
    this.#log = ''
    live.add(child)
    // The log must be drained or redis blocks on a full pipe; keep its tail for errors.
    const keep = (chunk: Buffer): void => { this.#log = (this.#log + chunk.toString()).slice(-LOG_TAIL) }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    child.once('exit', () => live.delete(child))
    let spawnError: Error | undefined
    child.once('error', err => { spawnError = err })

    const deadline = Date.now() + READY_TIMEOUT
    while (true) {
      if (spawnError !== undefined) throw new Error(`cannot run redis-server (is it installed? see scripts/ensure-redis.sh): ${spawnError.message}`)
      if (exited(child)) throw new Error(`redis-server on port ${port} exited (${child.exitCode ?? child.signalCode}):\n${this.#log}`)
      if (await answeringPid(port) === child.pid) break
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new Error(`redis-server on port ${port} did not answer within ${READY_TIMEOUT} ms:\n${this.#log}`)
      }
      await sleep(20)
    }
    // Ready: a test that forgets stop() must not hang; the exit hook still kills it.
    child.unref()
    for (const stream of [child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.()
  }

  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child
    if (child === undefined || exited(child)) return
    child.kill(signal)
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') return
    await waitExit(child)
  }

  async restart (): Promise<void> {
    await this.kill('SIGKILL')
    await this.start()
  }

  async stop (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    await this.kill('SIGKILL')
    rmSync(this.#dir, { recursive: true, force: true })
    dirs.delete(this.#dir)
  }
}

async function startNode (cluster: boolean): Promise<Server> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const busPort = cluster ? await freePort() : undefined
    const server = new Server({ port, busPort })
    try {
      await server.start()
      return server
    } catch (err) {
      await server.stop()
      // Most likely another process took the port between freePort() and the bind.
      if (attempt === START_ATTEMPTS) throw err
    }
  }
}

/** Start a standalone redis-server on a free loopback port and wait until it answers. */
export async function startRedisServer (): Promise<RedisServer> {
  return startNode(false)
}

async function admin<T> (port: number, fn: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  try {
    await client.connect()
    return await fn(client)
  } finally {
    client.disconnect()
  }
}

/**
 * Start a Redis Cluster of three masters (no replicas), the slots split as
 * `redis-cli --cluster create` would, and wait until every node reports
 * cluster_state:ok and knows the other two.
 */
export async function startRedisCluster (): Promise<RedisCluster> {
  const servers: Server[] = []
  const stop = async (): Promise<void> => { await Promise.all(servers.map(server => server.stop())) }
  try {
    for (let i = 0; i < 3; i++) servers.push(await startNode(true))
    const ranges = [[0, 5460], [5461, 10922], [10923, 16383]]
    for (const [i, server] of servers.entries()) {
      await admin(server.port, async client => {
        // Distinct epochs up front, as redis-cli does, so no epoch collision has to be resolved.
        await client.call('CLUSTER', 'SET-CONFIG-EPOCH', String(i + 1))
        await client.call('CLUSTER', 'ADDSLOTSRANGE', String(ranges[i][0]), String(ranges[i][1]))
      })
    }
    await admin(servers[0].port, async client => {
      for (const server of servers.slice(1)) {
        await client.call('CLUSTER', 'MEET', HOST, String(server.port), String(server.busPort))
      }
    })
    const deadline = Date.now() + CLUSTER_TIMEOUT
    for (const server of servers) {
      while (true) {
        const info = await admin(server.port, client => client.call('CLUSTER', 'INFO')) as string
        if (info.includes('cluster_state:ok') && info.includes('cluster_known_nodes:3')) break
        if (Date.now() > deadline) throw new Error(`cluster node ${server.port} not ready within ${CLUSTER_TIMEOUT} ms:\n${info}`)
        await sleep(50)
      }
    }
  } catch (err) {
    await stop()
    throw err
  }
  return {
    nodes: servers.map(({ host, port }) => ({ host, port })),
    servers,
    stop
  }
}
