// The example server as a real child process (what `npm start` runs), so a test
// can restart it; and a gate in front of it, so a test decides when each browser
// page gets through again.
//
//   const server = await startExample({ port })       // node example/server.ts, PORT=port
//   await server.stop()                               // SIGTERM: app.close(), clients get 1001
//   const gate = await openGate(port)                 // a loopback port forwarding to `port`
//   gate.hold(); ...; gate.release()                  // held connections wait, then go through
//
// A page behind a held gate sees its connections wait instead of being refused, so the browser logs
// no ERR_CONNECTION_REFUSED while the server is down (the page's console stays clean), and the test
// chooses which page reconnects first.
import { spawn, type ChildProcess } from 'node:child_process'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { once } from 'node:events'

const root = new URL('../..', import.meta.url).pathname
const HOST = '127.0.0.1'
const READY_TIMEOUT = 30_000

export interface ExampleProcess {
  readonly port: number
  stop (): Promise<void>
}

/** A free loopback port (listen on 0, close). */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, HOST)
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

/**
 * Starts example/server.ts in a child Node with this process's loader (tap's TypeScript import) and waits
 * for its "Server listening" log line. `env` is added to this process's environment.
 */
export async function startExample (port: number, env: Record<string, string> = {}): Promise<ExampleProcess> {
  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, 'example/server.ts'], {
    cwd: root,
    env: { ...process.env, ...env, PORT: String(port), HOST },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)
  let log = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`example did not listen within ${READY_TIMEOUT} ms:\n${log}`)), READY_TIMEOUT)
    const onData = (chunk: Buffer): void => {
      log += chunk.toString()
      if (log.includes('Server listening')) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (chunk: Buffer) => { log += chunk.toString() })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`example exited (${code}) before listening:\n${log}`))
    })
  })
  return {
    port,
    async stop () {
      process.removeListener('exit', killOnExit)
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }
  }
}

export interface Gate {
  /** The gate's own URL base, `http://127.0.0.1:<port>`. */
  readonly url: string
  /** New connections wait (accepted, not forwarded) until `release`. */
  hold (): void
  /** Forwards every waiting connection, and new ones from now on. */
  release (): void
  close (): Promise<void>
}

/** A TCP forwarder on a free loopback port to `target`; a connection whose target is gone is closed. */
export async function openGate (target: number): Promise<Gate> {
  let held = false
  const waiting: Socket[] = []
  const open = new Set<Socket>()
  const forward = (socket: Socket): void => {
    const upstream = connect(target, HOST)
    open.add(upstream)
    socket.pipe(upstream).pipe(socket)
    const end = (): void => {
      socket.destroy()
      upstream.destroy()
      open.delete(socket)
      open.delete(upstream)
    }
    socket.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
  }
  const server: Server = createServer((socket) => {
    open.add(socket)
    socket.on('error', () => socket.destroy())
    if (held) waiting.push(socket)
    else forward(socket)
  })
  server.listen(0, HOST)
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${HOST}:${port}`,
    hold () { held = true },
    release () {
      held = false
      for (const socket of waiting.splice(0)) {
        if (!socket.destroyed) forward(socket)
      }
    },
    async close () {
      for (const socket of open) socket.destroy()
      server.close()
      await once(server, 'close')
    }
  }
}
