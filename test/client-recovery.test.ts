// End to end: the client's recovery against the real server's sessions, join
// `since` replay and request de-duplication (protocol 1.1, issue 12). Skipped
// until that server side is merged; the lead enables them then. The option
// names of the server side (`sessions`) are this file's guess: adjust on merge.
// The client side of each path is tested now in test/client-session.test.ts.
import t from 'tap'
import { client, startServer, stateOf } from './helpers/client.js'
import type { GapEvent } from '../lib/client/index.js'

const REASON = 'needs server sessions (issue 12)'
const SESSIONS = { sessions: true } as Record<string, unknown>

t.skip('a dropped socket resumes its session: same rooms, missed messages once, a resent request processed once', { skip: REASON }, async (t) => {
  const server = await startServer(t, { plugin: SESSIONS })
  const c = client(t, server.url, { session: true })
  const watcher = client(t, server.url)
  const said: string[] = []
  c.on('said', (data) => said.push(data.text))
  const gaps: GapEvent[] = []
  c.events.on('gap', (gap) => gaps.push(gap))
  await c.join('lobby')
  await watcher.join('lobby')
  await watcher.request('say', { room: 'lobby', text: 'one' })
  // The server drops the socket with a request in flight (its reply is lost with the socket).
  const inFlight = c.request('echo', { text: 'once' })
  await c.request('closeMe', { code: 1006 })
  await watcher.request('say', { room: 'lobby', text: 'missed' })
  c.send('say', { room: 'lobby', text: 'queued' })
  await stateOf(c, 'open')
  t.same(await inFlight, { text: 'once' })
  t.equal(server.seen.filter((s) => s === 'echo:once').length, 1, 'the resend was de-duplicated')
  t.equal(server.opens, 2)
  t.same(said.filter((text) => text === 'missed'), ['missed'])
  t.same(gaps, [])
  t.equal(server.seen.filter((s) => s === 'say:queued').length, 1)
})

t.skip('a re-join with since replays what was missed, without a gap', { skip: REASON }, async (t) => {
  const server = await startServer(t, { plugin: SESSIONS })
  const c = client(t, server.url)
  const watcher = client(t, server.url)
  const said: string[] = []
  c.on('said', (data) => said.push(data.text))
  const gaps: GapEvent[] = []
  c.events.on('gap', (gap) => gaps.push(gap))
  await c.join('lobby')
  await watcher.join('lobby')
  t.type(c.position('lobby')?.epoch, 'string', 'a 1.1 join ack carries the epoch')
  await c.request('closeMe', { code: 1006 })
  await watcher.request('say', { room: 'lobby', text: 'while away' })
  await stateOf(c, 'open')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(said, ['while away'])
  t.same(gaps, [])
})

t.skip('a rolling restart: reconnect advice then 1012; the client comes back after it and delivers the outbox once', { skip: REASON }, async (t) => {
  const server = await startServer(t, { plugin: SESSIONS })
  const c = client(t, server.url, { session: true })
  const closes: Array<{ code: number, reconnectIn: number | undefined }> = []
  c.events.on('close', (event) => closes.push(event))
  await c.join('lobby')
  const closing = server.app.close()
  c.send('say', { room: 'lobby', text: 'queued' })
  await closing
  await server.restart()
  await stateOf(c, 'open')
  t.match(closes, [{ code: 1012, reconnectIn: Number }])
  t.same(server.seen.filter((s) => s === 'say:queued'), ['say:queued'])
})
