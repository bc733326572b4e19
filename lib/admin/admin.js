// The admin page's script: no framework, no build step. It listens to the plugin's live admin route and
// redraws the page from each snapshot; rates are the difference between two snapshots.
/* global document, location, WebSocket */
const POINTS = 60
const history = { in: [], out: [], err: [], conn: [] }
let previous = null
let id = 0
let clustered = false

const $ = (sel) => document.getElementById(sel)
const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + document.body.dataset.live
const socket = new WebSocket(url)

socket.addEventListener('open', () => { $('status').textContent = 'live'; $('status').className = 'live' })
socket.addEventListener('close', (event) => {
  $('status').className = ''
  $('status').textContent = `disconnected (${event.code})`
})
socket.addEventListener('message', (event) => {
  const msg = JSON.parse(event.data)
  if (msg.type === 'snapshot') render(msg.data)
  // The other instances close theirs on their own: their count is not known here.
  if (msg.type === 'ack') $('notice').textContent = `disconnected ${msg.data} socket(s)` + (clustered ? ' here; other instances asked' : '')
  if (msg.type === 'error') $('notice').textContent = `error: ${msg.error.code}`
})

function errorsOf (stats) { return stats.protocolErrors + stats.handlerErrors }

function render (snap) {
  const s = snap.stats
  if (previous !== null) {
    const seconds = Math.max((snap.at - previous.at) / 1000, 0.001)
    push('in', (s.messagesIn - previous.stats.messagesIn) / seconds)
    push('out', (s.messagesOut - previous.stats.messagesOut) / seconds)
    push('err', (errorsOf(s) - errorsOf(previous.stats)) / seconds)
    $('rateIn').textContent = fmt(history.in.at(-1))
    $('rateOut').textContent = fmt(history.out.at(-1))
  }
  push('conn', s.connections)
  previous = snap
  $('connections').textContent = s.connections
  $('rooms').textContent = s.rooms
  $('members').textContent = s.members
  $('errorsTotal').textContent = errorsOf(s)
  draw($('chartMessages'), [history.in, history.out])
  draw($('chartConnections'), [history.conn, history.err])
  counts($('closes'), snap.closes)
  counts($('errors'), snap.errors)
  cluster(snap.cluster, snap.at)
  rows($('roomList'), snap.rooms, (r) => [cell(r.name), cell(r.members, 'num'), cell(r.seq, 'num')])
  rows($('connectionList'), snap.connections, (c) => [
    cell(c.id.slice(0, 8)), cell(c.user ?? '–'), cell(c.route), cell(c.rooms.join(', ')),
    cell(c.bufferedBytes, 'num'), cell(Math.round(c.age / 1000) + ' s', 'num'), disconnectCell(c.user)
  ])
}

// Every live instance's latest counts (published every few seconds by each), when the adapter shares them.
function cluster (view, at) {
  clustered = view !== null && view !== undefined
  $('cluster').hidden = !clustered
  if (!clustered) return
  const t = view.totals
  $('clusterInstances').textContent = t.instances
  $('clusterConnections').textContent = t.connections
  $('clusterMembers').textContent = t.members
  $('clusterErrors').textContent = t.errors
  $('clusterRateIn').textContent = fmt(t.messagesInRate)
  $('clusterRateOut').textContent = fmt(t.messagesOutRate)
  $('clusterRooms').textContent = t.rooms
  $('clusterErrorRate').textContent = fmt(t.errorRate)
  $('clusterAt').textContent = view.at === 0 ? '(not read yet)' : `(read ${Math.max(0, Math.round((at - view.at) / 1000))} s ago)`
  rows($('instanceList'), view.instances, (i) => [
    cell(i.id), cell(i.connections, 'num'), cell(i.rooms, 'num'), cell(i.members, 'num'), cell(fmt(i.messagesInRate), 'num'),
    cell(fmt(i.messagesOutRate), 'num'), cell(i.errors, 'num'), cell(Math.max(0, Math.round((at - i.at) / 1000)) + ' s ago', 'num')
  ])
}

function push (series, value) {
  history[series].push(value)
  if (history[series].length > POINTS) history[series].shift()
}

function fmt (n) { return n >= 100 ? Math.round(n) : Math.round(n * 10) / 10 }

// Each series is scaled to the largest value in the chart: the shape matters, the tiles give the numbers.
function draw (svg, series) {
  const max = Math.max(1, ...series.flat())
  series.forEach((values, i) => {
    // Newest point at the right edge, so a fresh page fills in from the right.
    const offset = POINTS - values.length
    const points = values.map((v, x) => `${((offset + x) * 300) / (POINTS - 1)},${68 - (v / max) * 64}`).join(' ')
    svg.querySelectorAll('polyline')[i].setAttribute('points', points)
  })
}

function cell (text, className) {
  const td = document.createElement('td')
  td.textContent = String(text)
  if (className) td.className = className
  return td
}

function disconnect (userId) {
  socket.send(JSON.stringify({ type: 'disconnect', id: ++id, data: { userId } }))
}

// Any user id, connected here or on another instance (the listed connections are this instance's).
$('disconnectForm').addEventListener('submit', (event) => {
  event.preventDefault()
  disconnect($('disconnectUser').value)
})

function disconnectCell (user) {
  const td = document.createElement('td')
  if (user === null) return td
  const button = document.createElement('button')
  button.textContent = 'disconnect'
  button.dataset.user = user
  button.addEventListener('click', () => disconnect(user))
  td.append(button)
  return td
}

function rows (tbody, items, cells) {
  tbody.replaceChildren(...items.map((item) => {
    const tr = document.createElement('tr')
    tr.append(...cells(item))
    return tr
  }))
  if (items.length === 0) {
    const tr = document.createElement('tr')
    tr.append(cell('none', 'empty'))
    tbody.append(tr)
  }
}

function counts (tbody, map) {
  rows(tbody, Object.entries(map).sort((a, b) => b[1] - a[1]), ([key, n]) => [cell(key), cell(n, 'num')])
}
