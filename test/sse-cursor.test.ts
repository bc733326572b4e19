// The SSE resume cursor on its own (lib/sse-cursor.ts): its format, its bound
// (rooms past it are left out and the cursor says so), and what a hostile
// `Last-Event-ID` is read as (nothing at all).
import t from 'tap'
import { decodeCursor, encodeCursor, MAX_CURSOR, takeSince, UNKNOWN_EPOCH } from '../lib/sse-cursor.js'

const TOKEN = 'abcdefghijklmnopqrstuvwx'
const EPOCH = 'Zt3_-kq9ABCDEFGH'

t.test('encodes the token, each room position and unknown positions; reads them back', async (t) => {
  const cursor = encodeCursor({
    token: TOKEN,
    rooms: [['lobby', { seq: 12, epoch: EPOCH }], ['a.b:c@d/e', { seq: 0, epoch: EPOCH }], ['new', null]],
    truncated: false
  })
  t.equal(cursor, `1;t=${TOKEN};12.${EPOCH}.lobby;0.${EPOCH}.a.b:c@d/e;0..new`)
  const resume = decodeCursor(cursor)
  t.same(resume, {
    token: TOKEN,
    positions: new Map([['lobby', { seq: 12, epoch: EPOCH }], ['a.b:c@d/e', { seq: 0, epoch: EPOCH }], ['new', { seq: 0, epoch: UNKNOWN_EPOCH }]]),
    truncated: false
  })
  t.equal(encodeCursor({ token: undefined, rooms: [], truncated: false }), '1')
  t.same(decodeCursor('1'), { token: undefined, positions: new Map(), truncated: false })
  // An unknown position read back is written as unknown again (the next reconnect is not recovered either).
  t.equal(encodeCursor({ token: undefined, rooms: [['new', { seq: 0, epoch: UNKNOWN_EPOCH }]], truncated: true }), '1;0..new;+')
})

t.test('past MAX_CURSOR the rooms that do not fit are left out and the cursor ends with +', async (t) => {
  const rooms: Array<[string, { seq: number, epoch: string }]> = []
  for (let i = 0; i < 40; i++) rooms.push([`${'r'.repeat(120)}${i}`, { seq: 1_000_000 + i, epoch: EPOCH }])
  const cursor = encodeCursor({ token: TOKEN, rooms, truncated: false })
  t.ok(cursor.length <= MAX_CURSOR, `${cursor.length} characters`)
  t.ok(cursor.endsWith(';+'))
  const resume = decodeCursor(cursor) as NonNullable<ReturnType<typeof decodeCursor>>
  t.equal(resume.truncated, true)
  t.equal(resume.token, TOKEN)
  const kept = resume.positions.size
  t.ok(kept > 0 && kept < 40, `${kept} rooms kept`)
  // Listed: its position, once. Not listed: a since that is never recovered (maybe joined before).
  t.same(takeSince(resume, rooms[0][0]), rooms[0][1])
  t.same(takeSince(resume, rooms[39][0]), { seq: 0, epoch: UNKNOWN_EPOCH })
  t.same(takeSince(resume, rooms[0][0]), { seq: 0, epoch: UNKNOWN_EPOCH })
  const whole = decodeCursor(`1;5.${EPOCH}.lobby`) as NonNullable<ReturnType<typeof decodeCursor>>
  t.same(takeSince(whole, 'lobby'), { seq: 5, epoch: EPOCH })
  t.equal(takeSince(whole, 'lobby'), null, 'taken once')
  t.equal(takeSince(whole, 'other'), null, 'not listed, not truncated: a fresh join')
})

t.test('a hostile or foreign Last-Event-ID is ignored whole', async (t) => {
  const hostile: unknown[] = [
    undefined,
    ['1'],
    '',
    'x'.repeat(MAX_CURSOR + 1),
    `1;5.${EPOCH}.${'a'.repeat(MAX_CURSOR)}`,
    '41:lobby', // the 1.2 id of a room message
    '2;5.' + EPOCH + '.lobby', // a version this server does not know
    `1;5.${EPOCH}.bad room`,
    `1;5.${EPOCH}.a;b`,
    `1;5.${EPOCH}.${'r'.repeat(129)}`,
    '1;5.short.lobby',
    `1;-5.${EPOCH}.lobby`,
    `1;99999999999999999.${EPOCH}.lobby`, // 17 digits
    `1;9999999999999999.${EPOCH}.lobby`, // past 2^53
    `1;5.${EPOCH}.lobby;6.${EPOCH}.lobby`, // a room twice
    `1;5.${EPOCH}.lobby;t=${TOKEN}`, // the token not first
    `1;t=${TOKEN.slice(1)}`,
    `1;t=${TOKEN}!`,
    '1;+;5.' + EPOCH + '.lobby', // + not last
    '1;',
    '1;;'
  ]
  for (const value of hostile) t.equal(decodeCursor(value), null, JSON.stringify(value)?.slice(0, 60))
})
