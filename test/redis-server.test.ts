// The real-redis helper itself: every Redis test leans on it, so it is tested
// on its own: a server answers, comes back on the same port, a cluster serves
// keys on every master, and nothing is left listening afterwards.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import t from 'tap'
import { Cluster, Redis } from 'ioredis'
import { startRedisCluster, startRedisServer } from './helpers/redis-server.js'
import { until } from './helpers/wait.js'

function portIsFree (port: number): Promise<boolean> {
  const server = createServer()
  return new Promise(resolve => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

// A killed server may linger as a zombie when PID 1 of a container does not
// reap orphans; a zombie holds no port and runs no code, so it counts as gone.
function isRunning (pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/** Run a test process that starts a server and prints its pid and port, then ends as `ending` says. */
async function serverOfDeadProcess (ending: string): Promise<{ pid: number, port: number }> {
  // Only the TypeScript loader: the child imports the helper's .ts source.
  const loader = process.execArgv.filter(arg => arg.startsWith('--import=') && arg.includes('typescript'))
  const child = spawn(process.execPath, [...loader, '--input-type=module', '-e', `
    import { startRedisServer } from './test/helpers/redis-server.js'
    const redis = await startRedisServer()
    console.log(redis.pid, redis.port)
    ${ending}
  `], { stdio: ['ignore', 'pipe', 'inherit'] })
  const [line] = await once(child.stdout, 'data') as [Buffer]
  const [pid, port] = line.toString().trim().split(' ').map(Number)
  if (child.exitCode === null) child.kill('SIGKILL')
  await once(child, 'exit')
  return { pid, port }
}

t.test('a standalone server answers, restarts on the same port and frees it on stop', async t => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  t.not(redis.port, 6379)
  t.equal(redis.host, '127.0.0.1')
  t.equal(redis.url, `redis://127.0.0.1:${redis.port}`)
  t.equal(await portIsFree(redis.port), false, 'the server holds its port')

  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  t.equal(await client.ping(), 'PONG')
  t.same(await client.config('GET', 'save'), ['save', ''], 'persistence is off')
  await client.set('k', 'v')

  const firstPid = redis.pid as number
  await redis.restart()
  t.not(redis.pid, firstPid, 'a new process')
  t.equal(isRunning(firstPid), false, 'the old process is gone')
  // ioredis reconnects by itself to the same address, which is the point of keeping the port.
  t.equal(await client.ping(), 'PONG', 'the same client reaches the restarted server')
  t.equal(await client.get('k'), null, 'nothing survived: no persistence')

  await redis.kill('SIGKILL')
  t.equal(redis.pid, undefined, 'down after kill')
  await redis.restart()
  t.equal(await client.ping(), 'PONG', 'restart after a kill')

  const pid = redis.pid as number
  client.disconnect()
  await redis.stop()
  await redis.stop()
  t.equal(isRunning(pid), false, 'stop waited for the exit')
  t.equal(await portIsFree(redis.port), true, 'the port is free again')
})

t.test('SIGSTOP freezes the server and SIGCONT thaws it', async t => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const client = new Redis({ port: redis.port, host: redis.host, commandTimeout: 200 })
  t.teardown(() => client.disconnect())
  t.equal(await client.ping(), 'PONG')
  await redis.kill('SIGSTOP')
  await t.rejects(client.ping(), /timed out/i, 'a frozen server does not answer')
  await redis.kill('SIGCONT')
  t.equal(await client.ping(), 'PONG')
})

t.test('two servers get two ports', async t => {
  const [a, b] = await Promise.all([startRedisServer(), startRedisServer()])
  t.teardown(() => Promise.all([a.stop(), b.stop()]))
  t.not(a.port, b.port)
})

t.test('a three-master cluster reaches cluster_state:ok and serves keys on every slot range', async t => {
  const cluster = await startRedisCluster()
  t.teardown(() => cluster.stop())
  t.equal(cluster.nodes.length, 3)
  for (const node of cluster.nodes) t.not(node.port, 6379)

  const client = new Cluster(cluster.nodes)
  t.teardown(() => client.disconnect())
  const info = await client.cluster('INFO')
  t.match(info, /cluster_state:ok/)
  t.match(info, /cluster_known_nodes:3/)
  t.match(info, /cluster_slots_assigned:16384/)

  // These three keys hash to slots owned by three different masters.
  const keys = ['a', 'b', 'c']
  const slots = await Promise.all(keys.map(key => client.cluster('KEYSLOT', key)))
  t.same(slots, [15495, 3300, 7365])
  for (const key of keys) await client.set(key, `value-${key}`)
  for (const key of keys) t.equal(await client.get(key), `value-${key}`)

  const masters = await client.cluster('SHARDS') as unknown[]
  t.equal(masters.length, 3, 'three shards')

  const ports = cluster.nodes.map(node => node.port)
  client.disconnect()
  await cluster.stop()
  for (const port of ports) t.equal(await portIsFree(port), true, `port ${port} is free again`)
})

t.test('no redis outlives the process that started it', async t => {
  for (const [name, ending] of [
    ['killed with SIGKILL', 'setInterval(() => {}, 1000)'],
    ['ended without stop()', ''],
    ['crashed on an exception', 'throw new Error("boom")']
  ]) {
    const { pid, port } = await serverOfDeadProcess(ending)
    t.ok(pid > 0 && port > 0, `${name}: a server was started`)
    await until(() => !isRunning(pid), `redis ${pid} is gone`, 5000, 50)
    await until(() => portIsFree(port), `port ${port} is free`, 5000, 50)
    t.equal(isRunning(pid), false, `${name}: the server died with it`)
    t.equal(await portIsFree(port), true, `${name}: and freed its port`)
  }
})
