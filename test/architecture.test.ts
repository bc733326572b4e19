// The import rule of ARCHITECTURE.md: no file under lib/ imports (even as a
// type) a file that imports it back, and the steps never import the files
// above them (the connection, the hub, the route table, the pipeline).
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const IMPORT = /^\s*(?:import|export)\b[^'"]*?\bfrom\s+'(\.{1,2}\/[^']+)'/gm

function libFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return libFiles(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

/** lib-relative file -> the lib-relative files it imports. */
function importGraph (files: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of files) {
    const deps: string[] = []
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const target = relative(root, resolve(dirname(file), spec.replace(/\.js$/, '.ts')))
      if (target.startsWith('lib/')) deps.push(target)
    }
    graph.set(relative(root, file), deps)
  }
  return graph
}

function cycles (graph: Map<string, string[]>): string[] {
  const found: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (node: string): void => {
    state.set(node, 'open')
    stack.push(node)
    for (const dep of graph.get(node) ?? []) {
      if (state.get(dep) === 'open') found.push([...stack.slice(stack.indexOf(dep)), dep].join(' -> '))
      else if (!state.has(dep)) visit(dep)
    }
    stack.pop()
    state.set(node, 'done')
  }
  for (const node of graph.keys()) if (!state.has(node)) visit(node)
  return found
}

const graph = importGraph(libFiles(join(root, 'lib')))

t.test('the cycle finder sees a cycle (so that an empty answer means something)', async (t) => {
  t.same(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]])), ['a -> b -> c -> a'])
  t.same(cycles(new Map([['a', ['b']], ['b', []]])), [])
  t.ok((graph.get('lib/pipeline.ts') ?? []).includes('lib/connection.ts'), 'the graph reads type and value imports')
})

t.test('no file under lib/ imports a file that imports it back', async (t) => {
  t.same(cycles(graph), [])
})

t.test('the steps and the ground floor never import the connection, the hub, the route table or the pipeline', async (t) => {
  const above = new Set(['lib/connection.ts', 'lib/hub.ts', 'lib/route.ts', 'lib/pipeline.ts'])
  const lower = ['lib/frames.ts', 'lib/backpressure.ts', 'lib/sequencer.ts', 'lib/limits.ts', 'lib/rooms.ts',
    'lib/auth.ts', 'lib/authorize.ts', 'lib/verdict.ts', 'lib/protocol.ts', 'lib/errors.ts', 'lib/options.ts',
    'lib/traceparent.ts', 'lib/recorder.ts', 'lib/tracing.ts', 'lib/catchup.ts', 'lib/session.ts', 'lib/recovery.ts']
  for (const file of lower) {
    t.same((graph.get(file) ?? []).filter((dep) => above.has(dep)), [], file)
  }
})

t.test('the connection and the hub never import the route table or the pipeline', async (t) => {
  for (const file of ['lib/connection.ts', 'lib/hub.ts']) {
    t.same((graph.get(file) ?? []).filter((dep) => dep === 'lib/route.ts' || dep === 'lib/pipeline.ts'), [], file)
  }
})
