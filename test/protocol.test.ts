import t from 'tap'
import {
  CloseCode, ErrorCode, MessageType, ProtocolError, closeReason, parse, roomEventParts, serializeAck, serializeError, serializeEvent,
  serializeRoomEvent
} from '../lib/protocol.js'

t.test('parse accepts an envelope and keeps only type, data and id', async (t) => {
  t.same(parse('{"type":"say","data":{"a":1},"id":"x","extra":true}'), { type: 'say', data: { a: 1 }, id: 'x' })
  t.same(parse('{"type":"say","id":3}'), { type: 'say', data: undefined, id: 3 })
})

t.test('parse refuses what is not a protocol message', async (t) => {
  const cases: Array<[string, string]> = [
    ['{', ErrorCode.BadJson],
    ['', ErrorCode.BadJson],
    ['42', ErrorCode.BadMessage],
    ['null', ErrorCode.BadMessage],
    ['[{"type":"say"}]', ErrorCode.BadMessage],
    ['"say"', ErrorCode.BadMessage],
    ['{"data":1}', ErrorCode.BadMessage],
    ['{"type":""}', ErrorCode.BadMessage],
    ['{"type":5}', ErrorCode.BadMessage],
    ['{"type":"say","id":{"a":1}}', ErrorCode.BadMessage],
    ['{"type":"say","id":1e999}', ErrorCode.BadMessage],
    [`{"type":"say","id":"${'x'.repeat(129)}"}`, ErrorCode.BadMessage],
    ['{"type":"say","data":{"__proto__":{"polluted":true}}}', ErrorCode.BadMessage],
    ['{"type":"say","data":{"\\u005f_proto__":{"polluted":true}}}', ErrorCode.BadMessage],
    ['{"__proto__":{"type":"x"},"type":"say"}', ErrorCode.BadMessage],
    ['{"type":"say","data":{"constructor":{"prototype":{"polluted":true}}}}', ErrorCode.BadMessage],
    ['{"type":"say","data":{"__proto__":1}}', ErrorCode.BadMessage],
    ['{"type":"say","data":[1,{"a":[{"__proto__":{}}]}]}', ErrorCode.BadMessage],
    [`{"type":"say","data":${'['.repeat(100)}{"__proto__":{}}${']'.repeat(100)}}`, ErrorCode.BadMessage]
  ]
  for (const [frame, code] of cases) {
    const result = parse(frame)
    t.ok(result instanceof ProtocolError, frame)
    t.equal((result as ProtocolError).code, code, frame)
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was touched')
})

t.test('a bad message keeps its id when it has a valid one', async (t) => {
  const result = parse('{"id":9}') as ProtocolError
  t.equal(result.id, 9)
})

t.test('serializers produce the documented shapes', async (t) => {
  t.same(JSON.parse(serializeEvent('said', { text: 'x' })), { type: 'said', data: { text: 'x' } })
  t.same(JSON.parse(serializeEvent('pong', undefined)), { type: 'pong' })
  t.same(JSON.parse(serializeAck(1, undefined)), { type: MessageType.Ack, id: 1, data: null })
  t.same(JSON.parse(serializeError({ code: 'x', message: 'y' }, 'a')), { type: 'error', id: 'a', error: { code: 'x', message: 'y' } })
  t.same(JSON.parse(serializeEvent('say"\\', 'a"b')), { type: 'say"\\', data: 'a"b' }, 'names are escaped')
  t.same(parse('{"type":"say","data":{"proto":1,"constructor":"x"}}'), { type: 'say', data: { proto: 1, constructor: 'x' }, id: undefined },
    'harmless keys that trip the pre-screen still pass')
  t.same(parse('{"type":"say","data":{"constructor":{"name":"x"},"list":[1,null,{"a":{}}]}}'),
    { type: 'say', data: { constructor: { name: 'x' }, list: [1, null, { a: {} }] }, id: undefined },
    'a constructor object without its own prototype passes')
  const deep = `${'['.repeat(10_000)}{"a":1}${']'.repeat(10_000)}`
  t.notOk(parse(`{"type":"say","data":${deep}}`) instanceof ProtocolError, 'nesting past the walk depth is scanned, not refused')
})

t.test('an ack is byte for byte the JSON of its envelope', async (t) => {
  const ids = [undefined, 0, -0, 7, -3.5, 1e21, Number.MAX_SAFE_INTEGER, Infinity, NaN, '', 'req-1', 'q"\\\u2028😀']
  const datas = [undefined, null, 0, 'x', { a: [1, { b: 'c' }] }, [1, 2], () => 1, Symbol('s'), { toJSON: () => 'j' }]
  for (const [i, id] of ids.entries()) {
    for (const [j, data] of datas.entries()) {
      const expected = JSON.stringify({ type: MessageType.Ack, id, data: data === undefined ? null : data })
      t.equal(serializeAck(id as string | number | undefined, data), expected, `id ${i}, data ${j}`)
    }
  }
})

t.test('a room message in two parts around its seq is the same message', async (t) => {
  for (const data of [{ text: 'x' }, null, undefined]) {
    const [head, tail] = roomEventParts('said', 'r', data)
    t.equal(head + 12 + tail, serializeRoomEvent('said', 'r', 12, data), String(data))
  }
})

t.test('close reasons are cut to 123 bytes without splitting characters', async (t) => {
  t.equal(closeReason('short'), 'short')
  t.equal(Buffer.byteLength(closeReason('x'.repeat(500))), 123)
  const emoji = closeReason('😀'.repeat(100))
  t.ok(Buffer.byteLength(emoji) <= 123)
  t.equal(emoji, '😀'.repeat(30), 'whole 4-byte characters only')
})

t.test('close codes are the documented numbers', async (t) => {
  t.match(CloseCode, {
    Normal: 1000,
    GoingAway: 1001,
    UnsupportedData: 1003,
    MessageTooBig: 1009,
    InternalError: 1011,
    BadRequest: 4400,
    Unauthorized: 4401,
    Forbidden: 4403,
    Timeout: 4408,
    TooManyRequests: 4429,
    ServerError: 4500
  })
})
