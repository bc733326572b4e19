import t, { type Test } from 'tap'
import Type from 'typebox'
import type { FastifyInstance } from 'fastify'
import type { RouteDefinition } from '../index.js'
import { connect } from '../lib/testing.js'
import { SECRET, buildApp } from './helpers/auth.js'
import { until, within } from './helpers/wait.js'

const opened: string[] = []
const echo = { schema: Type.String(), handler: (_conn: unknown, data: unknown) => data }
const firstMessage = {
  auth: 'message',
  messages: { echo },
  onOpen: (conn) => { opened.push((conn.user as { sub: string }).sub) }
} satisfies RouteDefinition<any, any>
const handshake = { auth: 'handshake', messages: { echo } } satisfies RouteDefinition<any, any>

/**
 * An app whose @fastify/jwt secret provider can be held: once `hold()` is
 * called, the next verification waits until `release()`, so a test can close
 * the socket while its token is still being verified.
 */
async function heldApp (t: Test) {
  let gate: Promise<void> | null = null
  let release = (): void => {}
  let waiting = 0
  const app = await buildApp(t, {}, {}, {
    secret: async () => {
      if (gate !== null) {
        waiting++
        await gate
      }
      return SECRET
    }
  })
  app.realtime('/first', firstMessage)
  app.realtime('/ws', handshake)
  await app.ready()
  opened.length = 0
  return {
    app,
    // With a secret provider, signing takes a callback.
    sign: (sub: string) => new Promise<string>((resolve, reject) => {
      app.jwt.sign({ sub }, { expiresIn: 600 }, (err: Error | null, token?: string) => {
        if (err === null) resolve(token as string); else reject(err)
      })
    }),
    hold: () => { gate = new Promise((resolve) => { release = resolve }) },
    release: () => { release() },
    waiting: () => waiting
  }
}

async function gone (app: FastifyInstance): Promise<void> {
  await until(() => app.realtime.stats().connections === 0, 'the server side to close')
}

t.test('an auth frame verified after its socket closed neither opens nor indexes the connection', async (t) => {
  const { app, sign, hold, release, waiting } = await heldApp(t)
  const token = await sign('ann')
  hold()
  const client = await connect(app, '/first')
  client.sendRaw(JSON.stringify({ type: 'auth', id: 1, data: { token } }))
  await until(() => waiting() === 1, 'the verification to start')
  await client.close()
  await gone(app)
  release()
  // The verification settles on the next turns; give it a few.
  await within(new Promise((resolve) => setTimeout(resolve, 20)))
  t.same(opened, [], 'onOpen never ran')
  t.equal(app.realtime.disconnectUser('ann'), 0, 'the closed connection was not indexed')
})

t.test('a refresh verified after its socket closed is dropped', async (t) => {
  const { app, sign, hold, release, waiting } = await heldApp(t)
  const token = await sign('ann')
  const client = await connect<typeof handshake>(app, '/ws', { headers: { authorization: `Bearer ${token}` } })
  t.equal(await client.request('echo', 'live'), 'live')
  const newer = await sign('ann')
  hold()
  client.sendRaw(JSON.stringify({ type: 'auth', id: 'r', data: { token: newer } }))
  await until(() => waiting() === 1, 'the refresh to start')
  await client.close()
  await gone(app)
  release()
  await within(new Promise((resolve) => setTimeout(resolve, 20)))
  t.equal(app.realtime.disconnectUser('ann'), 0, 'the user left the index with the socket, and was not put back')
})

t.test('a user with no id is authenticated but not indexed', async (t) => {
  const app = await buildApp(t)
  app.realtime('/ws', handshake)
  await app.ready()
  // Neither `sub` nor `id`: the default auth.userId finds no id.
  const token = app.jwt.sign({ name: 'nobody' } as never)
  const client = await connect<typeof handshake>(app, '/ws', { headers: { authorization: `Bearer ${token}` } })
  t.equal(await client.request('echo', 'ok'), 'ok')
  t.equal(app.realtime.disconnectUser('undefined'), 0, 'not indexed under "undefined"')
  await client.close()
})
