import t, { type Test } from 'tap'
import createError from '@fastify/error'
import Type from 'typebox'
import { realtimeApp } from './helpers/app.js'
import { defineRoute, type RealtimeOptions } from '../index.js'
import { connect } from '../lib/testing.js'
import { until } from './helpers/wait.js'

const RoomFull = createError('room_full', 'The room is full', 409)

const route = defineRoute({
  messages: {
    say: {
      schema: Type.Object({ text: Type.String({ maxLength: 5 }) }, { additionalProperties: false }),
      handler: (conn, data) => { conn.emit('said', { text: data.text }) }
    },
    nothing: { schema: Type.Null(), handler: () => undefined },
    boom: { schema: Type.Null(), handler: () => { throw new Error('secret database detail') } },
    reject: { schema: Type.Null(), handler: async () => { throw new Error('async secret') } },
    full: { schema: Type.Null(), handler: () => { throw new RoomFull() } },
    odd: { schema: Type.Null(), handler: () => { throw Object.assign(new Error('x'), { statusCode: 400, code: 7 }) } },
    odder: { schema: Type.Null(), handler: () => { throw { statusCode: 409, message: 42 } } }, // eslint-disable-line no-throw-literal
    wrongRoot: { schema: Type.Null(), handler: (conn) => { conn.emit('said', 'not an object' as never) } },
    rude: { schema: Type.Null(), handler: () => { throw null } }, // eslint-disable-line no-throw-literal
    undeclared: { schema: Type.Null(), handler: (conn) => { (conn.emit as (t: string, d: unknown) => void)('nope', 1) } },
    wrong: { schema: Type.Null(), handler: (conn) => { conn.emit('said', { text: 1 } as never) } },
    slow: { schema: Type.Number(), handler: (_conn, ms) => new Promise((resolve) => setTimeout(() => resolve(ms), ms)) }
  },
  emits: { said: Type.Object({ text: Type.String() }) }
})

async function build (t: Test, options: RealtimeOptions = {}) {
  const lines: any[] = []
  const app = await realtimeApp(t, { options, routes: { '/r': route }, logs: lines })
  return { app, lines }
}

t.test('a schema violation is refused with the list of what failed', async (t) => {
  const { app } = await build(t)
  const client = await connect<typeof route>(app, '/r')
  const err = await client.request('say', { text: 'far too long', extra: 1 } as never).catch((e: any) => e)
  t.equal(err.code, 'FRT_ERR_TESTING_REQUEST')
  t.equal(err.error.code, 'invalid_data')
  t.same(err.error.details.map((d: any) => d.path).sort(), ['/extra', '', '/text'].sort())
  client.send('say', { text: 'ok' })
  t.same((await client.next('said')).data, { text: 'ok' }, 'the connection still works')
  t.match(app.realtime.stats(), { connections: 1, messagesIn: 2, messagesOut: 2, protocolErrors: 1, handlerErrors: 0 })
})

t.test('malformed frames get coded errors, with the id when there was one', async (t) => {
  const { app } = await build(t)
  const client = await connect(app, '/r')
  client.sendRaw('not json')
  t.match((await client.next('error')).error, { code: 'bad_json' })
  client.sendRaw('[1,2]')
  t.match((await client.next('error')).error, { code: 'bad_message' })
  client.sendRaw('{"type":"teleport","id":"a1"}')
  t.match(await client.next('error'), { id: 'a1', error: { code: 'unknown_type' } })
  client.sendRaw('{"type":"__proto__","id":2}')
  t.match(await client.next('error'), { id: 2, error: { code: 'unknown_type' } })
  client.sendRaw('{"type":"say","data":{"__proto__":{"polluted":1}}}')
  t.match((await client.next('error')).error, { code: 'bad_message' })
  t.equal(({} as any).polluted, undefined)
  t.equal(client.received.length, 5, 'exactly one reply each')
})

t.test('an error budget closes a connection that keeps sending garbage with 4400', async (t) => {
  const { app } = await build(t, { errorBudget: 3 })
  const client = await connect(app, '/r')
  for (let i = 0; i < 10; i++) client.sendRaw('garbage')
  const { code, reason } = await client.closed
  t.equal(code, 4400)
  t.equal(reason, 'Too many invalid messages')
  t.equal(client.received.filter((m) => m.type === 'error').length, 4, 'budget + the one that broke it')
  await until(() => app.realtime.stats().connections === 0, 'the server to drop the connection')
})

t.test('valid messages do not spend the budget', async (t) => {
  const { app } = await build(t, { errorBudget: 1 })
  const client = await connect<typeof route>(app, '/r')
  client.sendRaw('garbage')
  for (let i = 0; i < 5; i++) t.equal(await client.request('nothing', null), null)
  t.equal(client.socket.readyState, client.socket.OPEN)
})

t.test('a binary frame closes with 1003', async (t) => {
  const { app } = await build(t)
  const client = await connect(app, '/r')
  client.sendRaw(Buffer.from('{"type":"say","data":{"text":"x"}}'))
  t.equal((await client.closed).code, 1003)
})

t.test('a frame over maxPayload closes with 1009', async (t) => {
  const { app } = await build(t, { maxPayload: 1024 })
  const client = await connect(app, '/r')
  client.sendRaw(JSON.stringify({ type: 'say', data: { text: 'x'.repeat(2000) } }))
  t.equal((await client.closed).code, 1009)
})

t.test('a failing handler gets a generic error; the full error goes to the log', async (t) => {
  const { app, lines } = await build(t)
  const client = await connect<typeof route>(app, '/r')
  for (const type of ['boom', 'reject', 'rude', 'undeclared'] as const) {
    const err = await client.request(type, null).catch((e: any) => e)
    t.same(err.error, { code: 'internal', message: 'Internal server error' }, type)
  }
  t.notOk(JSON.stringify(client.received).includes('secret'), 'no detail reaches the client')
  const logged = lines.filter((l) => l.msg === 'real-time handler failed')
  t.equal(logged.length, 4)
  t.equal(logged[0].err.message, 'secret database detail')
  t.equal(logged[0].level, 50)
  t.ok(logged[0].connId, 'the log line carries the connection id')
  t.match(logged[3].err, { code: 'FRT_ERR_EMIT_UNKNOWN_TYPE' })
  t.equal(app.realtime.stats().handlerErrors, 4)
  t.equal(await client.request('nothing', null), null, 'the connection survives')
})

t.test('validateEmits refuses an outgoing payload its schema does not match', async (t) => {
  const { app, lines } = await build(t, { validateEmits: true })
  const client = await connect<typeof route>(app, '/r')
  const err = await client.request('wrong', null).catch((e: any) => e)
  t.equal(err.error.code, 'internal')
  t.match(lines.find((l) => l.msg === 'real-time handler failed').err, { code: 'FRT_ERR_EMIT_INVALID', message: /\/text/ })
  await client.request('wrongRoot', null).catch(() => {})
  t.match(lines.filter((l) => l.msg === 'real-time handler failed')[1].err, { message: /: \/ must be object/ }, 'a root mismatch names /')
  client.send('say', { text: 'fine' })
  await client.next('said')
})

t.test('a handler refusing with a 4xx error shows its code and message', async (t) => {
  const { app, lines } = await build(t)
  const client = await connect<typeof route>(app, '/r')
  const err = await client.request('full', null).catch((e: any) => e)
  t.same(err.error, { code: 'ROOM_FULL', message: 'The room is full' })
  const odd = await client.request('odd', null).catch((e: any) => e)
  t.same(odd.error, { code: 'refused', message: 'x' }, 'a non-string code is not echoed')
  const odder = await client.request('odder', null).catch((e: any) => e)
  t.same(odder.error, { code: 'refused', message: 'Refused' }, 'nor a non-string message')
  t.equal(lines.filter((l) => l.msg === 'real-time handler refused a message')[0].level, 30)
})

t.test('a message without id that fails still gets an error reply', async (t) => {
  const { app } = await build(t)
  const client = await connect<typeof route>(app, '/r')
  client.send('boom', null)
  const reply = await client.next('error')
  t.equal(reply.id, undefined)
  t.equal(reply.error?.code, 'internal')
})

t.test('ping gets pong', async (t) => {
  const { app } = await build(t)
  const client = await connect(app, '/r')
  client.sendRaw('{"type":"ping"}')
  t.same(await client.next('pong'), { type: 'pong' })
})

t.test('requests are matched by id even when answered out of order', async (t) => {
  const { app } = await build(t)
  const client = await connect<typeof route>(app, '/r')
  const [a, b] = await Promise.all([client.request('slow', 60), client.request('slow', 1)])
  t.same([a, b], [60, 1])
  t.same(client.received.map((m) => m.id), [2, 1], 'the quick one came back first')
})

t.test('a reply to a closed socket is dropped without error', async (t) => {
  const { app } = await build(t)
  const client = await connect<typeof route>(app, '/r')
  client.socket.send(JSON.stringify({ type: 'slow', data: 30, id: 1 }))
  await client.close()
  await new Promise((resolve) => setTimeout(resolve, 60))
  t.equal(app.realtime.stats().messagesOut, 0)
})
