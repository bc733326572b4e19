// The AsyncAPI 3.0 document generated from the routes, validated by the AsyncAPI project's own parser.
import t from 'tap'
import Fastify from 'fastify'
import jwt from '@fastify/jwt'
import Type from 'typebox'
import { Parser } from '@asyncapi/parser'
import realtime, { PROTOCOL_VERSION } from '../index.js'
import { buildApp } from '../example/server.js'
import { chat } from '../example/chat.js'
import { jsonSchema } from '../lib/asyncapi.js'

const parser = new Parser()

async function validate (t: Tap.Test, doc: unknown) {
  const { document, diagnostics } = await parser.parse(doc as Record<string, unknown>)
  // Severity 0 is an error; the only other diagnostics are style hints (e.g. "use 3.1").
  const errors = diagnostics.filter((d) => d.severity === 0)
  t.same(errors.map((d) => `${d.code} ${d.message} at ${d.path.join('.')}`), [], 'no validation errors')
  t.ok(document, 'the parser accepted the document')
  return document as NonNullable<typeof document>
}

t.test('the example app\'s document validates and lists every message of the example', async (t) => {
  const app = await buildApp()
  t.teardown(() => app.close())
  await app.ready()
  const doc = app.realtime.asyncapi() as any
  const parsed = await validate(t, doc)
  t.equal(doc.asyncapi, '3.0.0')
  const channel = parsed.channels().get('chat')
  t.ok(channel, 'one channel per route')
  t.equal(channel?.address(), '/chat')
  const names = channel!.messages().all().map((m) => m.name()).sort()
  const declared = [...Object.keys(chat.messages), ...Object.keys(chat.emits ?? {})]
  for (const name of declared) t.ok(names.includes(name), `lists ${name}`)
  // Reserved: an auth route, a presence route, and joinable (the page joins rooms through the client).
  t.ok(chat.joinable, 'the example lets clients ask to join rooms')
  t.same(names, [...declared, 'ack', 'error', 'ping', 'pong', 'reconnect', 'session', 'auth', 'presence:join', 'presence:leave',
    'room:join', 'room:leave'].sort())

  const receive = parsed.operations().get('chat.receive')
  t.equal(receive?.action(), 'receive')
  t.same(receive!.messages().all().map((m) => m.name()).sort(), ['auth', 'enter', 'leave', 'members', 'ping', 'room:join', 'room:leave', 'say'])
  const send = parsed.operations().get('chat.send')
  t.same(send!.messages().all().map((m) => m.name()).sort(), ['ack', 'error', 'pong', 'presence:join', 'presence:leave', 'reconnect', 'said', 'session'])
  // Handshake auth: the configured sources as security schemes on the receive operation.
  t.same(Object.keys(doc.components.securitySchemes).sort(), ['bearer', 'subprotocol'])
  t.match(doc.components.securitySchemes.bearer, { type: 'http', scheme: 'bearer' })
  t.equal(doc.channels.chat['x-fastify-realtime-auth'], 'handshake')
  // The TypeBox schema, as JSON Schema: no TypeBox keys left.
  const say = doc.channels.chat.messages['chat.in.say'].payload
  t.same(say.properties.type, { const: 'say' })
  t.same(say.properties.data, {
    type: 'object',
    required: ['room', 'text'],
    properties: {
      room: { type: 'string', minLength: 1, maxLength: 32, pattern: '^[a-z0-9-]+$' },
      text: { type: 'string', minLength: 1, maxLength: 500 }
    },
    additionalProperties: false
  })
  t.notMatch(JSON.stringify(doc), /~kind|~optional/)
  // The check can fail: a wrong action is an error.
  const broken = structuredClone(doc)
  broken.operations['chat.receive'].action = 'publish'
  const { diagnostics } = await parser.parse(broken)
  t.ok(diagnostics.some((d) => d.severity === 0), 'the parser refuses a broken document')
  t.match(doc['x-fastify-realtime'].closeCodes, { Unauthorized: 4401, SlowConsumer: 4008, ServiceRestart: 1012, TryAgainLater: 1013 })
})

t.test('every auth mode, joinable and path parameters; served at an opt-in route behind a hook', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(jwt, { secret: 'x'.repeat(32) })
  await app.register(realtime, {
    origins: ['https://app.example.com'],
    auth: { sources: ['cookie', 'header', 'protocol'] },
    asyncapi: {
      title: 'Game',
      version: '2.1.0',
      path: '/asyncapi.json',
      servers: { prod: { host: 'rt.example.com', protocol: 'wss' } },
      onRequest: async (request, reply) => { if (request.headers['x-key'] !== 'k') await reply.code(403).send({ denied: true }) }
    }
  })
  app.realtime('/game/:table', {
    auth: { mode: 'handshake', query: true },
    joinable: true,
    messages: { move: { schema: Type.Object({ to: Type.Integer({ minimum: 0 }) }), handler: () => null } },
    emits: { moved: Type.Object({ by: Type.String(), to: Type.Optional(Type.Integer()) }) }
  })
  app.realtime('/lobby', { auth: 'message', messages: {} })
  app.realtime('/lobby/', { messages: { hi: { schema: Type.Null(), handler: () => null } } })
  app.realtime('/', { messages: {} })
  app.realtime('/q', { auth: { query: true }, messages: {} })
  await app.register(async (scope) => { scope.realtime('/inner', { messages: {} }) }, { prefix: '/v2' })

  const refused = await app.inject({ url: '/asyncapi.json' })
  t.equal(refused.statusCode, 403)
  const res = await app.inject({ url: '/asyncapi.json', headers: { 'x-key': 'k' } })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /application\/json/)
  const doc = res.json()
  t.same(doc, JSON.parse(JSON.stringify(app.realtime.asyncapi())), 'the route serves app.realtime.asyncapi()')
  await validate(t, doc)
  t.match(doc.info, { title: 'Game', version: '2.1.0' })
  t.same(doc.servers, { prod: { host: 'rt.example.com', protocol: 'wss' } })
  t.same(Object.keys(doc.channels), ['game_table', 'lobby', 'lobby_2', 'root', 'q', 'v2_inner'], 'unique channel ids')
  t.equal(doc.channels.v2_inner.address, '/v2/inner', 'the address carries the plugin prefix')
  t.equal(doc.channels.q['x-fastify-realtime-auth'], 'handshake', 'options without a mode: handshake')
  t.match(doc.channels.game_table, { address: '/game/{table}', parameters: { table: {} } })
  const game = Object.values(doc.channels.game_table.messages).map((m: any) => m.name ?? m.$ref)
  t.ok(game.includes('#/components/messages/roomJoin') && game.includes('#/components/messages/roomLeave'))
  const lobby = Object.values(doc.channels.lobby_2.messages).map((m: any) => m.name ?? m.$ref)
  t.notOk(lobby.includes('#/components/messages/roomJoin'), 'room:join only on joinable routes')
  t.same(doc.operations['game_table.receive'].security.map((s: any) => s.$ref.split('/').pop()), ['cookie', 'bearer', 'subprotocol', 'query'])
  t.match(doc.components.securitySchemes.cookie, { in: 'cookie', name: 'token' })
  t.match(doc.components.securitySchemes.query, { in: 'query', name: 'access_token' })
  t.equal(doc.channels.lobby['x-fastify-realtime-auth'], 'message')
  t.same(doc.operations['lobby.receive'].security.map((s: any) => s.$ref.split('/').pop()), ['firstMessage'])
  t.equal(doc.channels.lobby_2['x-fastify-realtime-auth'], 'none')
  t.notOk('security' in doc.operations['lobby_2.receive'])
  // Emits carry the room fields (a room message) as optional.
  t.same(doc.channels.game_table.messages['game_table.out.moved'].payload.required, ['type', 'data'])
})

t.test('served without a hook when none is given; defaults for the info', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtime, { asyncapi: { path: '/docs/asyncapi.json' } })
  app.realtime('/x', { messages: {} })
  const doc = (await app.inject({ url: '/docs/asyncapi.json' })).json()
  t.match(doc.info, { title: 'fastify-realtime API', version: '1.0.0', description: `fastify-realtime protocol ${PROTOCOL_VERSION}` })
  t.notOk('servers' in doc)
  await validate(t, doc)
})

t.test('bad asyncapi options fail the register with the field named', async (t) => {
  for (const [asyncapi, field] of [
    [1, 'asyncapi'], [{ title: 1 }, 'asyncapi.title'], [{ path: 'x' }, 'asyncapi.path'],
    [{ onRequest: 'x' }, 'asyncapi.onRequest'], [{ servers: 'x' }, 'asyncapi.servers']
  ] as const) {
    const app = Fastify()
    await t.rejects(app.register(realtime, { asyncapi: asyncapi as never }).ready(), { code: 'FRT_ERR_OPTIONS_INVALID', message: new RegExp(field.replace('.', '\\.')) })
  }
})

t.test('jsonSchema strips TypeBox keys at every depth and keeps arrays', async (t) => {
  const schema = Type.Union([Type.Object({ a: Type.Optional(Type.Array(Type.String())) }), Type.Null()])
  t.same(jsonSchema(schema), { anyOf: [{ type: 'object', properties: { a: { type: 'array', items: { type: 'string' } } } }, { type: 'null' }] })
})
