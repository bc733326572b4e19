// The benchmark's figures as SVG charts, drawn from the harness's results (bench/results/latest.json) with no
// dependency: one chart per question a reader asks (how much, at what CPU, how fast, how big), one panel per
// scenario (each on its own scale, since their units differ), one bar per contender. `npm run bench` writes
// them to bench/results/ and copies them to docs/bench/, which BENCHMARKS.md shows;
// `node bench/harness/charts.mjs [latest.json]` redraws them from a saved run.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const WIDTH = 760
const LABEL_WIDTH = 260
const BAR_HEIGHT = 18
const GAP = 6
const PANEL_HEAD = 28
const PADDING = 16
const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1']

/** Text made safe for SVG markup. */
export function escapeXml (text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** A number as the chart prints it: three significant digits, thousands separated. */
export function formatValue (value) {
  if (value >= 100) return Math.round(value).toLocaleString('en-US')
  return Number(value.toPrecision(3)).toString()
}

/**
 * One SVG of stacked panels of horizontal bars. `panels`: [{ title, unit, bars: [{ label, value }] }]; a bar
 * whose value is not a finite number (a contender that was skipped) is drawn as "n/a" with no bar.
 */
export function barChart (title, panels) {
  const plot = WIDTH - LABEL_WIDTH - PADDING * 2 - 90
  let y = PADDING + 20
  const body = []
  for (const panel of panels) {
    body.push(`<text x="${PADDING}" y="${y + 16}" class="panel">${escapeXml(panel.title)} (${escapeXml(panel.unit)})</text>`)
    y += PANEL_HEAD
    const max = Math.max(0, ...panel.bars.map((b) => Number.isFinite(b.value) ? b.value : 0))
    panel.bars.forEach((bar, i) => {
      const top = y + i * (BAR_HEIGHT + GAP)
      const text = top + BAR_HEIGHT - 5
      body.push(`<text x="${PADDING + LABEL_WIDTH - 8}" y="${text}" text-anchor="end">${escapeXml(bar.label)}</text>`)
      if (Number.isFinite(bar.value)) {
        const w = max > 0 ? Math.max(1, bar.value / max * plot) : 1
        body.push(`<rect x="${PADDING + LABEL_WIDTH}" y="${top}" width="${w.toFixed(1)}" height="${BAR_HEIGHT}" fill="${COLORS[i % COLORS.length]}"/>`)
        body.push(`<text x="${(PADDING + LABEL_WIDTH + w + 6).toFixed(1)}" y="${text}">${formatValue(bar.value)}</text>`)
      } else {
        body.push(`<text x="${PADDING + LABEL_WIDTH + 6}" y="${text}" class="na">n/a</text>`)
      }
    })
    y += panel.bars.length * (BAR_HEIGHT + GAP) + GAP
  }
  const height = y + PADDING
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img">\n` +
    `<title>${escapeXml(title)}</title>\n` +
    '<style>text{font:12px sans-serif;fill:#222}.title{font-size:15px;font-weight:bold}.panel{font-weight:bold}.na{fill:#888}</style>\n' +
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>\n` +
    `<text x="${PADDING}" y="${PADDING + 6}" class="title">${escapeXml(title)}</text>\n` +
    body.join('\n') + '\n</svg>\n'
}

const SCENARIOS = {
  fanout: 'room fan-out',
  fixedRate: 'fan-out at a fixed rate',
  requestAck: 'request/ack',
  redis: 'fan-out over Redis',
  idle: 'idle connections'
}

/** The bars of one scenario's figure, a contender each; null when the scenario did not run. */
function panel (scenarios, key, unit, value, suffix = '') {
  const results = scenarios[key]
  if (!Array.isArray(results) || results.length === 0) return null
  return {
    title: SCENARIOS[key] + suffix,
    unit,
    bars: results.map((r) => ({ label: r.label, value: r.skip ? NaN : value(r) }))
  }
}

const present = (panels) => panels.filter((p) => p !== null)

/** The four charts of a run, as [file name, SVG text]; a chart whose scenarios all did not run is left out. */
export function renderCharts (run) {
  const s = run.scenarios ?? {}
  const latency = (key) => ['p50', 'p90', 'p99'].map((p) => panel(s, key, 'ms', (r) => r.latency[p], `, ${p}`))
  const charts = [
    ['throughput.svg', 'Throughput per contender (higher is better)', present([
      panel(s, 'fanout', 'deliveries/s', (r) => r.deliveredPerSec),
      panel(s, 'redis', 'deliveries/s', (r) => r.deliveredPerSec),
      panel(s, 'requestAck', 'round trips/s', (r) => r.roundTripsPerSec)
    ])],
    ['cpu.svg', 'Server CPU per delivery or round trip (lower is better)', present([
      panel(s, 'fanout', 'µs / delivery', (r) => r.cpuPerDeliveryUs),
      panel(s, 'fixedRate', 'µs / delivery', (r) => r.cpuPerDeliveryUs),
      panel(s, 'redis', 'µs / delivery', (r) => r.cpuPerDeliveryUs),
      panel(s, 'requestAck', 'µs / round trip', (r) => r.cpuPerRoundTripUs)
    ])],
    ['latency.svg', 'Latency percentiles (lower is better)', present([...latency('fixedRate'), ...latency('requestAck')])],
    ['memory.svg', 'Memory per idle connection (lower is better)', present([
      panel(s, 'idle', 'JS heap KB / connection', (r) => r.heapPerConnKb),
      panel(s, 'idle', 'RSS KB / connection', (r) => r.rssPerConnKb)
    ])]
  ]
  return charts.filter(([, , panels]) => panels.length > 0).map(([file, title, panels]) => [file, barChart(title, panels)])
}

/** Writes the charts into `dir` and copies each into `copyTo`; returns the files written to `dir`. */
export function writeCharts (run, dir, copyTo) {
  mkdirSync(dir, { recursive: true })
  mkdirSync(copyTo, { recursive: true })
  const files = []
  for (const [file, svg] of renderCharts(run)) {
    writeFileSync(join(dir, file), svg)
    copyFileSync(join(dir, file), join(copyTo, file))
    files.push(join(dir, file))
  }
  return files
}

/* c8 ignore start: the command line, run by hand (the functions above are what the tests cover) */
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const results = fileURLToPath(new URL('../results/', import.meta.url))
  const source = process.argv[2] ?? join(results, 'latest.json')
  const files = writeCharts(JSON.parse(readFileSync(source, 'utf8')), results, fileURLToPath(new URL('../../docs/bench/', import.meta.url)))
  console.log(files.join('\n'))
}
/* c8 ignore stop */
