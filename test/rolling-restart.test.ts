// A rolling restart (issue 12, "Done when"): two instances on one redis-server,
// 200 clients (100 on each, the lib/client client with sessions), 50 msg/s to
// one room; instance A is closed with `drain`: new upgrades get 503, its
// clients get `reconnect` + 1012 in batches, resume on B (a test-side router
// plays the load balancer), and every client ends with every message, in
// order, once; the reconnects are spread over the advised window.
import t from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import Type from 'typebox'
import WebSocket from 'ws'
import { Redis } from 'ioredis'
import realtime, { RedisAdapter, RedisSessions } from '../index.js'
import { createClient, type ClientOptions, type RealtimeClient } from '../lib/client/index.js'
import { startRedisServer } from './helpers/redis-server.js'
import { until } from './helpers/wait.js'

const CLIENTS = 200
const SPREAD = 2000

async function node (t: Tap.Test, url: string): Promise<{ app: FastifyInstance, port: number }> {
  const client = new Redis(url)
  client.on('error', () => {})
  await once(client, 'ready')
  const app = Fastify()
  await app.register(realtime, {
    heartbeat: false,
    rateLimit: false,
    shutdownGrace: 3000,
    // ws clients want a subprotocol selected when they offer one (here `resume.<token>`): offer an app protocol too.
    subprotocols: ['feed.v1'],
    adapter: new RedisAdapter({ client, history: {} }),
    history: {},
    sessions: { store: new RedisSessions({ client }), window: 10_000 },
    drain: { spread: SPREAD, batch: 20 }
  })
  app.realtime('/feed', { joinable: true, history: true, sessions: true, messages: {}, emits: { tick: Type.Object({ n: Type.Integer() }) } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => {
    await app.close()
    client.disconnect()
  })
  return { app, port: (app.server.address() as AddressInfo).port }
}

t.test('rolling restart of one of two instances under 50 msg/s with 200 clients: all end on the other, nothing lost, spread out', async (t) => {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const a = await node(t, redis.url)
  const b = await node(t, redis.url)
  let draining = false
  const ports = new Map<number, number>()
  // The load balancer: half the clients on A until A drains, then everyone on B.
  let made = 0
  class Routed extends WebSocket {
    constructor (_url: string, protocols?: string[]) {
      const index = made++
      const port = draining || index % 2 === 1 ? b.port : a.port
      super(`ws://127.0.0.1:${port}/feed`, protocols)
      ports.set(index, port)
    }
  }
  const got: number[][] = []
  const plannedAt: number[] = []
  let resumed = 0
  let drainStart = 0
  const clients: Array<RealtimeClient<any>> = []
  for (let i = 0; i < CLIENTS; i++) {
    const seen: number[] = []
    got.push(seen)
    const c = createClient<any>('ws://router/feed', {
      WebSocket: Routed as unknown as ClientOptions['WebSocket'],
      session: true,
      protocols: ['feed.v1'],
      ping: false,
      reconnect: { base: 20, cap: 100 },
      timeout: 5000
    })
    c.on('tick', (data: { n: number }) => seen.push(data.n))
    c.events.on('open', ({ recovered }) => { if (recovered) resumed++ })
    // When the client plans to reconnect: the server's advice plus its own jitter.
    c.events.on('close', ({ code, reconnectIn }) => { if (code === 1012) plannedAt.push(Date.now() - drainStart + (reconnectIn as number)) })
    clients.push(c)
  }
  t.teardown(() => { for (const c of clients) c.close() })
  await Promise.all(clients.map((c) => c.join('feed')))
  t.equal(a.app.realtime.stats().connections, CLIENTS / 2)
  let n = 0
  const timer = setInterval(() => b.app.realtime.to('feed').emit('tick', { n: n++ }), 20)
  t.teardown(() => clearInterval(timer))
  await until(() => got.every((seen) => seen.length >= 5), 'every client receives')

  draining = true
  drainStart = Date.now()
  const closing = a.app.close()
  await closing
  await until(() => b.app.realtime.stats().connections === CLIENTS && clients.every((c) => c.state === 'open'), 'everyone on B', 20_000)
  t.equal(resumed, CLIENTS / 2, 'every client of A resumed its session on B')
  const last = n + 10
  await until(() => n >= last, 'more messages after the restart')
  clearInterval(timer)
  const end = n - 1
  await until(() => got.every((seen) => seen.at(-1) === end), 'every client has the last message', 10_000)
  let broken = 0
  for (const seen of got) {
    const first = seen[0]
    if (seen.length !== end - first + 1 || seen.some((value, i) => value !== first + i)) {
      if (broken++ === 0) t.comment(`first broken: ${seen.filter((v, i) => i === 0 || v !== seen[i - 1] + 1).map((v) => `${v}(after ${seen[seen.indexOf(v) - 1]})`).join(' ')}`)
    }
  }
  t.equal(broken, 0, 'every client has every message since it joined, in order, once')
  // Spread: the reconnects over the advised window, in 5 buckets, none above twice the mean.
  const buckets = [0, 0, 0, 0, 0]
  for (const at of plannedAt) buckets[Math.min(4, Math.floor(at / (SPREAD / 5)))]++
  const mean = plannedAt.length / 5
  t.equal(plannedAt.length, CLIENTS / 2)
  t.ok(buckets.every((count) => count <= 2 * mean), `spread over ${SPREAD} ms: ${buckets.join(' / ')}`)
})
