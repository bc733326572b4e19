import t, { type Test } from 'tap'
import Type from 'typebox'
import { realtimeApp } from './helpers/app.js'
import { type RouteDefinition } from '../index.js'
import { connect } from '../lib/testing.js'
import { within } from './helpers/wait.js'

const handled: string[] = []
const route = {
  // Route level: only "admin" may send "wipe"; may be async.
  authorize: async (conn, type) => type !== 'wipe' || conn.request.headers['x-role'] === 'admin',
  messages: {
    say: { schema: Type.String(), handler: (_conn, data) => { handled.push(data as string); return data } },
    wipe: { schema: Type.Null(), handler: () => { handled.push('wipe'); return 'wiped' } },
    // Message level, synchronous: only short words.
    shout: {
      schema: Type.String(),
      authorize: (_conn, data) => (data as string).length < 5,
      handler: (_conn, data) => { handled.push((data as string).toUpperCase()); return (data as string).toUpperCase() }
    }
  }
} satisfies RouteDefinition<any, any>

async function build (t: Test, definition: RouteDefinition<any, any> = route) {
  const app = await realtimeApp(t, { options: { auth: { forbiddenBudget: 2 } }, routes: { '/ws': definition } })
  handled.length = 0
  return app
}

t.test('a refused message gets a forbidden error and the socket stays open', async (t) => {
  const app = await build(t)
  const client = await connect<typeof route>(app, '/ws')
  await t.rejects(client.request('wipe', null), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'forbidden' } })
  await t.rejects(client.request('shout', 'too long'), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'forbidden' } })
  t.equal(await client.request('shout', 'hi'), 'HI')
  t.same(handled, ['HI'], 'refused handlers never ran')
  const admin = await connect<typeof route>(app, '/ws', { headers: { 'x-role': 'admin' } })
  t.equal(await admin.request('wipe', null), 'wiped')
  await client.close()
  await admin.close()
})

t.test('async checks keep messages in order', async (t) => {
  const app = await build(t)
  const client = await connect<typeof route>(app, '/ws')
  client.send('say', 'one')
  client.send('shout', 'two')
  client.send('say', 'three')
  t.equal(await client.request('say', 'four'), 'four')
  t.same(handled, ['one', 'TWO', 'three', 'four'])
  await client.close()
})

t.test('repeated violations close with 4403', async (t) => {
  const app = await build(t)
  const client = await connect<typeof route>(app, '/ws')
  for (let i = 0; i < 3; i++) client.send('wipe', null)
  t.same(await within(client.closed), { code: 4403, reason: 'Too many forbidden messages' })
  t.equal(client.received.filter((m) => m.type === 'error').length, 3)
})

t.test('only true allows; a throwing check is an internal error, not a violation', async (t) => {
  const app = await build(t, {
    authorize: (_conn, type) => {
      if (type === 'boom') throw new Error('bug')
      if (type === 'later') return Promise.reject(new Error('bug'))
      return (type === 'yes') as boolean
    },
    messages: {
      yes: { schema: Type.Null(), handler: () => 'y', authorize: async () => true },
      maybe: { schema: Type.Null(), handler: () => 'm', authorize: () => 1 as unknown as boolean },
      boom: { schema: Type.Null(), handler: () => 'b' },
      later: { schema: Type.Null(), handler: () => 'l' }
    }
  })
  const client = await connect(app, '/ws')
  t.equal(await client.request('yes', null), 'y')
  await t.rejects(client.request('maybe', null), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'forbidden' } }, 'a route check refusing short-circuits')
  await t.rejects(client.request('boom', null), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'internal' } })
  await t.rejects(client.request('later', null), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'internal' } })
  t.equal(await client.request('yes', null), 'y', 'still open')
  await client.close()
})

t.test('async route check, then an async message check, then a refusal after close is dropped', async (t) => {
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  let decided: () => void = () => {}
  // Resolves a macrotask after the slow check answered: the pipeline has acted on its verdict by then.
  const slowDecided = new Promise<void>((resolve) => { decided = resolve })
  const app = await build(t, {
    authorize: async () => true,
    messages: {
      a: { schema: Type.Null(), handler: () => 'a', authorize: async () => true },
      no: { schema: Type.Null(), handler: () => 'no', authorize: async () => false },
      b: { schema: Type.Null(), handler: () => 'b', authorize: () => true },
      slow: { schema: Type.Null(), handler: () => { handled.push('slow'); return 's' }, authorize: async () => { await gate; setImmediate(decided); return true } }
    }
  })
  const client = await connect(app, '/ws')
  t.equal(await client.request('a', null), 'a')
  t.equal(await client.request('b', null), 'b')
  await t.rejects(client.request('no', null), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'forbidden' } })
  client.sendRaw('{"type":"slow","data":null,"id":9}')
  await client.close()
  release()
  await within(slowDecided, 'the slow check to answer')
  t.same(handled, [], 'a message authorized after the socket closed is not handled')
})

t.test('authorize must be a function', async (t) => {
  const app = await build(t)
  t.throws(() => app.realtime('/x', { authorize: 'yes' as never, messages: {} }), { code: 'FRT_ERR_ROUTE_INVALID' })
  t.throws(() => app.realtime('/y', { messages: { m: { schema: Type.Null(), handler: () => null, authorize: true as never } } }),
    { code: 'FRT_ERR_ROUTE_INVALID' })
})

t.test('messages without a check pass on a route where only some have one', async (t) => {
  const app = await build(t, {
    messages: {
      open: { schema: Type.Null(), handler: () => 'open' },
      closed: { schema: Type.Null(), handler: () => 'closed', authorize: () => false }
    }
  })
  const client = await connect(app, '/ws')
  t.equal(await client.request('open', null), 'open')
  await t.rejects(client.request('closed', null), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'forbidden' } })
  await client.close()
})

t.test('an async route check that refuses skips the message check', async (t) => {
  const checked: string[] = []
  const app = await build(t, {
    authorize: async (_conn, type) => type !== 'off',
    messages: {
      on: { schema: Type.Null(), handler: () => 'on', authorize: () => { checked.push('on'); return true } },
      off: { schema: Type.Null(), handler: () => 'off', authorize: () => { checked.push('off'); return true } }
    }
  })
  const client = await connect(app, '/ws')
  t.equal(await client.request('on', null), 'on')
  await t.rejects(client.request('off', null), { code: 'FRT_ERR_TESTING_REQUEST', error: { code: 'forbidden' } })
  t.same(checked, ['on'], 'the message check ran only after the route check allowed')
  await client.close()
})
