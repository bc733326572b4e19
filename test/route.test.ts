import t, { type Test } from 'tap'
import Type from 'typebox'
import { realtimeApp } from './helpers/app.js'
import { defineRoute } from '../index.js'
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

const build = (t: Test) => realtimeApp(t, { routes: { '/chat': chat } })

t.test('a declared message reaches its handler and emits', async (t) => {
  const app = await build(t)
  const client = await connect<typeof chat>(app, '/chat')
  client.send('say', { text: 'hello' })
  const msg = await client.next('said')
  t.same(msg, { type: 'said', data: { text: 'hello' } })
  t.equal(await client.request('add', { a: 2, b: 3 }), 5)
  await client.close()
})
