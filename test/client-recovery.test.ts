// End to end: the client's recovery against the real server's sessions, join
// `since` replay and request de-duplication (protocol 1.1, issue 12). The
// client side of each path is tested alone in test/client-session.test.ts.
import t, { type Test } from 'tap'
import { client, nextEvent, startServer, stateOf } from './helpers/client.js'
import { until } from './helpers/wait.js'
import type { GapEvent } from '../lib/client/index.js'

const SESSIONS = { history: {}, sessions: {}, drain: { spread: 200, batch: 10 } }

/** A server with history and sessions; a client `c` (with a session or not) and a watcher, both in 'lobby'. */
async function inLobby (t: Test, options: { session?: boolean }) {
  const server = await startServer(t, { plugin: SESSIONS })
  const c = client(t, server.url, options)
  const watcher = client(t, server.url)
  // What c heard, and the gaps it reported.
  const said: string[] = []
  c.on('said', (data) => said.push(data.text))
  const gaps: GapEvent[] = []
  c.events.on('gap', (gap) => gaps.push(gap))
  await c.join('lobby')
  await watcher.join('lobby')
  return { server, c, watcher, said, gaps }
}

t.test('a dropped socket resumes its session: same rooms, missed messages once, a resent request processed once', async (t) => {
  const { server, c, watcher, said, gaps } = await inLobby(t, { session: true })
  await watcher.request('say', { room: 'lobby', text: 'one' })
  // The server drops the socket with a request in flight (its reply is lost with the socket).
  const inFlight = c.request('echo', { text: 'once' })
  await c.request('closeMe', { code: 1006 })
  await watcher.request('say', { room: 'lobby', text: 'missed' })
  // Queued while away (a send on the dying socket itself could be lost with it: at most once).
  if (c.state === 'open') await stateOf(c, 'reconnecting')
  c.send('say', { room: 'lobby', text: 'queued' })
  await stateOf(c, 'open')
  t.same(await inFlight, { text: 'once' })
  // The queued message is written once the session is back; the server reads it a moment later.
  await until(() => server.seen.includes('say:queued'), 'the queued message')
  t.equal(server.seen.filter((s) => s === 'echo:once').length, 1, 'the resend was de-duplicated')
  t.equal(server.opens, 3, 'c, the watcher, and c once more (resumed)')
  t.same(said.filter((text) => text === 'missed'), ['missed'])
  t.same(gaps, [])
  t.equal(server.seen.filter((s) => s === 'say:queued').length, 1)
})

t.test('a re-join with since replays what was missed, without a gap', async (t) => {
  const { c, watcher, said, gaps } = await inLobby(t, {})
  t.type(c.position('lobby')?.epoch, 'string', 'a 1.1 join ack carries the epoch')
  await c.request('closeMe', { code: 1006 })
  await watcher.request('say', { room: 'lobby', text: 'while away' })
  await stateOf(c, 'open')
  // A message after the replay: anything replayed twice would have come before it.
  await watcher.request('say', { room: 'lobby', text: 'after' })
  await until(() => said.includes('after'), 'the message after the replay')
  t.same(said, ['while away', 'after'])
  t.same(gaps, [])
})

t.test('a rolling restart: reconnect advice then 1012; the client comes back after it and delivers the outbox once', async (t) => {
  const server = await startServer(t, { plugin: SESSIONS })
  const c = client(t, server.url, { session: true })
  const closes: Array<{ code: number, reconnectIn: number | undefined }> = []
  c.events.on('close', (event) => closes.push(event))
  await c.join('lobby')
  const closed = nextEvent(c, 'close')
  const closing = server.app.close()
  c.send('say', { room: 'lobby', text: 'queued' })
  await closing
  // The server may finish its close before this client has read the close frame.
  await closed
  await server.restart()
  await stateOf(c, 'open')
  t.match(closes, [{ code: 1012, reconnectIn: Number }])
  t.same(server.seen.filter((s) => s === 'say:queued'), ['say:queued'])
})
