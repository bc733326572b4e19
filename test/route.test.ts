import t, { type Test } from 'tap'
import Fastify from 'fastify'
import Type from 'typebox'
import realtime, { defineRoute } from '../index.js'
import { connect } from '../lib/testing.js'

const chat = defineRoute({
  messages: {
    say: {
      schema: Type.Object({ text: Type.String({ maxLength: 20 }) }),
      handler: (conn, data) => { conn.emit('said', { text: data.text }) }
    },
    add: {
      schema: Type.Object({ a: Type.Number(), b: Type.Number() }),
      handler: async (_conn, data) => data.a + data.b
    }
  },
  emits: { said: Type.Object({ text: Type.String() }) }
})

async function build (t: Test) {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime)
  app.realtime('/chat', chat)
  await app.ready()
  return app
}

t.test('a declared message reaches its handler and emits', async (t) => {
  const app = await build(t)
  const client = await connect<typeof chat>(app, '/chat')
  client.send('say', { text: 'hello' })
  const msg = await client.next('said')
  t.same(msg, { type: 'said', data: { text: 'hello' } })
  t.equal(await client.request('add', { a: 2, b: 3 }), 5)
  await client.close()
})
