// What README.md and PROTOCOL.md promise, checked against what the server does (issue 11, defect 10).
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import Type from 'typebox'
import { readFileSync } from 'node:fs'
import realtime, { MessageType, type RouteDefinition } from '../index.js'
import { connect } from '../lib/testing.js'

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const PROTOCOL = readFileSync(new URL('../PROTOCOL.md', import.meta.url), 'utf8')

const route = {
  messages: {
    nothing: { schema: Type.Null(), handler: (_conn, data) => ({ got: data }) },
    echo: { schema: Type.Unknown(), handler: (_conn, data) => data }
  }
} satisfies RouteDefinition<any, any>

async function build (t: Test, options = {}) {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, options)
  app.realtime('/ws', route)
  await app.ready()
  return app
}

t.test('the README says how many rate_limited refusals come before 4429, and that is what is sent', async (t) => {
  const said = /gets (\d+) such\s+refusals/.exec(README)
  t.ok(said, 'the README states a number')
  const app = await build(t, { rateLimit: { rate: 0.001, burst: 1 } })
  const client = await connect(app, '/ws')
  // Far more than the budget, in one go: the budget refills at one per second, so no refill happens.
  for (let i = 0; i < 40; i++) client.sendRaw('{"type":"ping"}')
  const closed = await client.closed
  t.equal(closed.code, 4429)
  const refusals = client.received.filter((m) => m.type === 'error' && (m as { error: { code: string } }).error.code === 'rate_limited').length
  t.equal(refusals, Number(said?.[1]))
})

t.test('a ping with an id is answered with that id, as every request is', async (t) => {
  const app = await build(t)
  const client = await connect(app, '/ws')
  client.sendRaw('{"type":"ping","id":"p1"}')
  t.same(await client.next('pong'), { type: 'pong', id: 'p1' })
  client.sendRaw('{"type":"ping"}')
  t.same(await client.next('pong'), { type: 'pong' })
  await client.close()
})

t.test('every protocol-reserved type is listed as reserved in PROTOCOL.md', async (t) => {
  const section = PROTOCOL.slice(PROTOCOL.indexOf('## Message names'), PROTOCOL.indexOf('## Close codes'))
  for (const type of Object.values(MessageType)) t.match(section, `\`${type}\``, type)
})

t.test('numeric ids outside the safe-integer range are refused, not silently altered', async (t) => {
  t.match(PROTOCOL, /safe integer/, 'PROTOCOL.md says so')
  const app = await build(t)
  const client = await connect(app, '/ws')
  client.sendRaw('{"type":"echo","data":1,"id":9007199254740993}')
  const refused = await client.next('error')
  t.match(refused, { error: { code: 'bad_message', message: /safe integer/ } })
  t.notOk('id' in refused)
  client.sendRaw('{"type":"echo","data":2,"id":9007199254740991}')
  t.match(await client.next('ack'), { id: 9007199254740991, data: 2 })
  client.sendRaw('{"type":"echo","data":3,"id":-1.5}')
  t.match(await client.next('ack'), { id: -1.5, data: 3 })
  await client.close()
})

t.test('a missing data is null: a Type.Null() message needs no "data"', async (t) => {
  t.match(PROTOCOL, /missing `data` is `null`/, 'PROTOCOL.md says so')
  const app = await build(t)
  const client = await connect(app, '/ws')
  client.sendRaw('{"type":"nothing","id":1}')
  t.same(await client.next('ack'), { type: 'ack', id: 1, data: { got: null } })
  await client.close()
})
