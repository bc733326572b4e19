// (f) What validating an incoming message costs next to parsing it: JSON.parse of a whole frame against a
// compiled TypeBox Check of its data, for the fan-out "pub" message used by every scenario.
import { Compile } from 'typebox/compile'
import { schemas } from '../servers/schemas.mjs'
import { measure, report, sink } from './measure.mjs'

const body = 'x'.repeat(64)
// Distinct frames, so neither JSON.parse nor the checker sees the very same string every call.
const frames = Array.from({ length: 1024 }, (_, i) =>
  JSON.stringify({ type: 'pub', data: { room: 'r', t: 1e6 + i + 0.123, body } }))
const datas = frames.map((f) => JSON.parse(f).data)
const invalid = datas.map((d) => ({ ...d, t: String(d.t) }))
const pub = Compile(schemas.pub)
const echo = Compile(schemas.echo)
const echoDatas = datas.map((d) => ({ t: d.t }))

report([
  measure('JSON.parse of a pub frame (~120 B)', (i) => { sink.value += JSON.parse(frames[i & 1023]).data.t }),
  measure('TypeBox Check, pub data (valid)', (i) => { sink.value += pub.Check(datas[i & 1023]) ? 1 : 0 },
    { note: 'compiled once with typebox/compile' }),
  measure('TypeBox Check, pub data (invalid t)', (i) => { sink.value += pub.Check(invalid[i & 1023]) ? 1 : 0 }),
  measure('TypeBox Check, echo data (valid)', (i) => { sink.value += echo.Check(echoDatas[i & 1023]) ? 1 : 0 }),
  measure('JSON.stringify of a msg envelope', (i) => {
    sink.value += JSON.stringify({ type: 'msg', room: 'r', seq: i, data: { t: datas[i & 1023].t, body } }).length
  }, { note: 'once per broadcast, not per member' })
])
