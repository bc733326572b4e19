// Type-checks every ```ts block of README.md against this package's sources,
// so the documented snippets keep compiling as the API changes. Each block is
// its own module, importing 'fastify-realtime' as users do. A block marked
// ```ts continued runs after the nearest full block above it (its set-up), and is
// checked with that block prepended; ```ts fragment marks a partial example, skipped.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const dir = join(root, '.readme-check')
const readme = readFileSync(join(root, 'README.md'), 'utf8')
const blocks = []
let setup = ''
for (const [, info, code] of readme.matchAll(/^```ts([^\n]*)\n([\s\S]*?)^```$/gm)) {
  if (info.includes('fragment')) continue
  const continued = info.includes('continued')
  if (!continued) setup = code
  blocks.push({ name: `snippet-${String(blocks.length + 1).padStart(2, '0')}.ts`, code: continued ? setup + code : code })
}

rmSync(dir, { recursive: true, force: true })
mkdirSync(dir)
for (const { name, code } of blocks) writeFileSync(join(dir, name), code)
writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
  extends: '../tsconfig.json',
  compilerOptions: {
    noEmit: true,
    rootDir: '..',
    paths: {
      'fastify-realtime': ['../index.ts'],
      'fastify-realtime/testing': ['../lib/testing.ts'],
      'fastify-realtime/client': ['../lib/client/index.ts']
    },
    // Snippets show one thing each; unused names there are not mistakes.
    noUnusedLocals: false
  },
  include: ['*.ts']
}))
try {
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', dir], { stdio: 'inherit' })
  console.log(`README: ${blocks.length} TypeScript snippets compile`)
} catch {
  console.error('README: a TypeScript snippet does not compile (files kept in .readme-check/)')
  process.exitCode = 1
} finally {
  if (process.exitCode !== 1) rmSync(dir, { recursive: true, force: true })
}
