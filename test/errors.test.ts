import t from 'tap'
import { readFileSync } from 'node:fs'
import * as errors from '../lib/errors.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

t.test('every error code equals its export name, is FRT_ERR_* and is documented', async (t) => {
  for (const [key, ErrorClass] of Object.entries(errors)) {
    const err = new (ErrorClass as new (...args: unknown[]) => Error & { code: string })('a', 'b', 'c')
    t.equal(err.code, key)
    t.match(key, /^FRT_ERR_[A-Z]+_[A-Z_]+$/)
    t.ok(err instanceof Error)
    t.ok(readme.includes(`\`${key}\``), `${key} is listed in the README`)
  }
})
