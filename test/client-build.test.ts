// The browser bundle: one self-contained ES module with no server code, under
// the size budget; the client's sources import nothing of the server's.
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { gzipSync } from 'node:zlib'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname

t.test('the bundle is self-contained, has no server code, and is under 6 KB min+gzip (5 KB before the SSE fallback)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'frt-client-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // .mjs: outside this package a .js file would be read as CommonJS.
  const outfile = join(dir, 'client.mjs')
  const printed = execFileSync(process.execPath, [join(root, 'scripts/build-client.mjs'), outfile], { encoding: 'utf8' })
  t.match(printed, /min\+gzip/)
  t.match(printed, /client core, as a bundler splits it.*min\+gzip/, 'the up-front size without the lazy SSE fallback')
  const code = readFileSync(outfile, 'utf8')
  t.notMatch(code, /\bimport\s*[^(]/, 'no static import left')
  t.notMatch(code, /\bimport\(/, 'no dynamic import')
  t.notMatch(code, /\brequire\(/, 'no require')
  for (const server of ['fastify', 'node:', '"ws"', 'secure-json-parse', 'typebox', '@fastify']) {
    t.notOk(code.includes(server), `no ${server}`)
  }
  const size = gzipSync(code, { level: 9 }).length
  t.ok(size < 6 * 1024, `${size} B min+gzip`)
  // It runs as is: load it as a module and open nothing (no WebSocket given means a clear error).
  const client = await import(outfile)
  t.equal(typeof client.createClient, 'function')
  t.throws(() => client.createClient('ws://127.0.0.1:9/', { fallback: false }), /No WebSocket implementation/)
})

t.test('the size check fails past its budget; by default it builds dist/browser/client.js', async (t) => {
  const over = spawnSync(process.execPath, [join(root, 'scripts/build-client.mjs')], {
    encoding: 'utf8', env: { ...process.env, CLIENT_SIZE_BUDGET: '100' }
  })
  t.equal(over.status, 1)
  t.match(over.stderr, /over the size budget/)
  t.ok(existsSync(join(root, 'dist/browser/client.js')))
})

t.test('lib/client imports only lib/wire.ts from the rest of lib/, and nothing at run time from packages', async (t) => {
  const wire = readFileSync(join(root, 'lib/wire.ts'), 'utf8')
  t.notMatch(wire, /^\s*(import|export .* from)/m, 'lib/wire.ts imports nothing')
  for (const file of readdirSync(join(root, 'lib/client'))) {
    const source = readFileSync(join(root, 'lib/client', file), 'utf8')
    for (const [, typeOnly, from] of source.matchAll(/^(?:import|export)\s+(type\s+)?[^'"]*from\s+'([^']+)'/gm)) {
      if (typeOnly !== undefined) continue
      t.ok(from.startsWith('./') || from === '../wire.js', `${file}: ${from}`)
    }
  }
})
