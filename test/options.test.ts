import t from 'tap'
import Fastify from 'fastify'
import Type from 'typebox'
import { registeredApp } from './helpers/app.js'
import realtime from '../index.js'
import { defaults, resolveOptions } from '../lib/options.js'

t.test('defaults are secure and frozen', async (t) => {
  const options = resolveOptions()
  t.equal(options.maxPayload, 64 * 1024)
  t.equal(options.perMessageDeflate, false)
  t.ok(options.closeTimeout <= 5000)
  t.ok(Object.isFrozen(options))
  t.same(resolveOptions({ maxPayload: 10 }), { ...defaults, maxPayload: 10 })
})

t.test('a bad option fails the register with a coded error naming the field', async (t) => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ maxPayload: 0 }, 'maxPayload'],
    [{ maxPayload: '1mb' }, 'maxPayload'],
    [{ errorBudget: -1 }, 'errorBudget'],
    [{ validateEmits: 'yes' }, 'validateEmits'],
    [{ perMessageDeflate: 1 }, 'perMessageDeflate'],
    [{ maxPayloda: 1 }, 'maxPayloda']
  ]
  for (const [options, field] of cases) {
    const app = Fastify()
    const err = await app.register(realtime, options as never).ready().catch((e) => e)
    t.equal(err.code, 'FRT_ERR_OPTIONS_INVALID', field)
    t.match(err.message, new RegExp(`option ${field}:`), field)
    await app.close()
  }
})

t.test('Fastify\'s own register options are not mistaken for ours', async (t) => {
  const app = await registeredApp(t, { logLevel: 'warn', prefix: '/v1' } as never)
  await t.resolves(app.ready(), 'logLevel and prefix are left to Fastify')
})

t.test('a bad route definition fails at declaration with a coded error', async (t) => {
  const app = await registeredApp(t)
  const handler = () => {}
  const cases: Array<[unknown, string]> = [
    [null, 'FRT_ERR_ROUTE_INVALID'],
    [{}, 'FRT_ERR_ROUTE_INVALID'],
    [{ messages: { a: { schema: Type.Null() } } }, 'FRT_ERR_ROUTE_INVALID'],
    [{ messages: { a: { handler } } }, 'FRT_ERR_ROUTE_INVALID'],
    [{ messages: { a: { schema: { type: 'string', pattern: '(' }, handler } } }, 'FRT_ERR_ROUTE_INVALID'],
    [{ messages: { ack: { schema: Type.Null(), handler } } }, 'FRT_ERR_ROUTE_RESERVED_TYPE'],
    [{ messages: {}, emits: { error: Type.Null() } }, 'FRT_ERR_ROUTE_RESERVED_TYPE'],
    [{ messages: {}, emits: 'said' }, 'FRT_ERR_ROUTE_INVALID'],
    [{ messages: {}, emits: { said: 5 } }, 'FRT_ERR_ROUTE_INVALID'],
    [{ messages: {}, onOpen: 'yes' }, 'FRT_ERR_ROUTE_INVALID']
  ]
  for (const [definition, code] of cases) {
    t.throws(() => app.realtime('/bad', definition as never), { code }, JSON.stringify(definition))
  }
})

t.test('a non-object option set is refused as a whole', async (t) => {
  t.throws(() => resolveOptions(5 as never), { code: 'FRT_ERR_OPTIONS_INVALID', message: /option options:/ })
})

t.test('the default user id is sub, else id, as a string or number', async (t) => {
  const userId = defaults.auth.userId
  t.equal(userId({ sub: 'ada', id: 7 } as never), 'ada')
  t.equal(userId({ sub: 42 } as never), 42)
  t.equal(userId({ id: 7 } as never), 7)
  t.equal(userId({ id: 'x7' } as never), 'x7')
  t.equal(userId({ sub: { nested: true } } as never), undefined)
  t.equal(userId(null as never), undefined)
  t.equal(userId('a string token payload' as never), undefined)
})
