// The Redis backends a store's shared suite runs on: one redis-server and one
// 3-node Redis Cluster per test file, stopped at its end. Used by the store
// suites (test/history.test.ts, test/sessions.test.ts) so each runs its suite
// on both the same way.
//
//   const backends = await redisBackends(t, 'h')
//   backends.each(t, 'RedisHistory', (t, client) => historySuite(t, { ... new RedisHistory({ client, prefix: backends.prefix() }) }))
import type { Test } from 'tap'
import { Cluster, Redis } from 'ioredis'
import { startRedisCluster, startRedisServer, type RedisCluster, type RedisServer } from './redis-server.js'

export type BackendName = 'redis' | 'redis cluster'

export interface RedisBackends {
  readonly redis: RedisServer
  readonly cluster: RedisCluster
  /** A key prefix not used before in this file: each test's keys are its own. */
  prefix (): string
  /** The Redis Cluster slot of a key, as a node of the cluster computes it. */
  slot (key: string): Promise<number>
  /**
   * `<what> on a redis-server` and `<what> on a Redis Cluster`: `suite` declares its tests with a client of
   * each (quit at the end of the subtest).
   */
  each (t: Test, what: string, suite: (t: Test, client: Redis | Cluster, name: BackendName) => void): void
}

/** Starts both backends for this file; `letter` starts every prefix (`h1:`, `h2:`, ...). */
export async function redisBackends (t: Test, letter: string): Promise<RedisBackends> {
  const redis = await startRedisServer()
  t.teardown(() => redis.stop())
  const cluster = await startRedisCluster()
  t.teardown(() => cluster.stop())
  let prefixes = 0
  return {
    redis,
    cluster,
    prefix: () => `${letter}${++prefixes}:`,
    async slot (key) {
      const node = new Redis(cluster.nodes[0].port, cluster.nodes[0].host)
      try {
        return await node.call('CLUSTER', 'KEYSLOT', key) as number
      } finally {
        node.disconnect()
      }
    },
    each (t, what, suite) {
      const targets: Array<[string, BackendName, () => Redis | Cluster]> = [
        ['on a redis-server', 'redis', () => new Redis(redis.url)],
        ['on a Redis Cluster', 'redis cluster', () => new Cluster(cluster.nodes)]
      ]
      for (const [where, name, make] of targets) {
        t.test(`${what} ${where}`, async t => {
          const client = make()
          t.teardown(() => client.quit())
          suite(t, client, name)
        })
      }
    }
  }
}
