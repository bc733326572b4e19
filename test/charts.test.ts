// The benchmark's SVG chart writer (bench/harness/charts.mjs): the shape of what it draws, not how it looks.
import t from 'tap'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { barChart, escapeXml, formatValue, renderCharts, writeCharts } from '../bench/harness/charts.mjs'

const latency = (p50: number) => ({ p50, p90: p50 * 2, p99: p50 * 3 })
const run = {
  scenarios: {
    fanout: [
      { key: 'ws', label: 'raw ws', deliveredPerSec: 30_000, cpuPerDeliveryUs: 6, latency: latency(30) },
      { key: 'rt', label: 'fastify-realtime', deliveredPerSec: 50_000, cpuPerDeliveryUs: 3, latency: latency(15) },
      { key: 'io', label: 'socket.io', skip: 'not installed' }
    ],
    fixedRate: [{ key: 'ws', label: 'raw ws', cpuPerDeliveryUs: 5, latency: latency(6) }],
    requestAck: [{ key: 'ws', label: 'raw ws', roundTripsPerSec: 12_000, cpuPerRoundTripUs: 18, latency: latency(1.5) }],
    redis: [],
    idle: [{ key: 'ws', label: 'raw <ws> & "co"', heapPerConnKb: 3.06, rssPerConnKb: 3.8 }]
  }
}

const count = (svg: string, re: RegExp) => (svg.match(re) ?? []).length

t.test('one chart per figure, a panel per scenario that ran, a bar per contender that ran', async (t) => {
  const charts = new Map(renderCharts(run))
  t.same([...charts.keys()], ['throughput.svg', 'cpu.svg', 'latency.svg', 'memory.svg'])
  const throughput = charts.get('throughput.svg') as string
  t.equal(count(throughput, /class="panel"/g), 2, 'fan-out and request/ack; the empty redis scenario has no panel')
  t.equal(count(throughput, /<rect x=/g), 3, 'two fan-out bars and one round-trip bar')
  t.equal(count(throughput, /class="na">n\/a</g), 1, 'the skipped contender is shown, without a bar')
  t.equal(count(charts.get('latency.svg') as string, /class="panel"/g), 6, 'p50, p90, p99 for two scenarios')
  t.equal(count(charts.get('cpu.svg') as string, /class="panel"/g), 3)
  const memory = charts.get('memory.svg') as string
  t.match(memory, /raw &#60;ws&#62; &#38; &#34;co&#34;/, 'labels are escaped')
  for (const svg of charts.values()) {
    t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="760" height="\d+" viewBox="0 0 760 \d+" role="img">/)
    t.match(svg, /<\/svg>\n$/)
    t.equal(count(svg, /<text/g), count(svg, /<\/text>/g), 'every text element is closed')
  }
  t.same(renderCharts({ scenarios: { redis: [] } }), [], 'nothing ran: no charts')
  t.same(renderCharts({}), [])
})

t.test('bars are scaled to the largest in their panel', async (t) => {
  const svg = barChart('x', [{ title: 'a', unit: 'u', bars: [{ label: 'big', value: 10 }, { label: 'half', value: 5 }, { label: 'zero', value: 0 }] }])
  const widths = [...svg.matchAll(/<rect x="\d+" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]))
  t.equal(widths.length, 3)
  t.equal(widths[1], widths[0] / 2)
  t.equal(widths[2], 1, 'a zero is a sliver, still visible')
  const zeros = barChart('x', [{ title: 'a', unit: 'u', bars: [{ label: 'zero', value: 0 }] }])
  t.match(zeros, /width="1.0"/, 'a panel of zeros does not divide by zero')
})

t.test('numbers and text as printed', async (t) => {
  t.equal(formatValue(12_345.6), '12,346')
  t.equal(formatValue(3.40966), '3.41')
  t.equal(formatValue(0.0123456), '0.0123')
  t.equal(escapeXml('<a href="x">&\'</a>'), '&#60;a href=&#34;x&#34;&#62;&#38;&#39;&#60;/a&#62;')
})

t.test('writeCharts writes each chart and its copy', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'frt-charts-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const files = writeCharts(run, join(dir, 'results'), join(dir, 'docs'))
  t.equal(files.length, 4)
  t.same(readdirSync(join(dir, 'docs')).sort(), ['cpu.svg', 'latency.svg', 'memory.svg', 'throughput.svg'])
  for (const file of files) t.equal(readFileSync(file, 'utf8'), readFileSync(join(dir, 'docs', file.split('/').pop() as string), 'utf8'))
})
