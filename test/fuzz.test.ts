// A short, seeded fuzz run in `npm test` (issue 11); the long run is scripts/fuzz.mjs (RELIABILITY.md).
import t from 'tap'
import { runFuzz } from './helpers/fuzz.js'

const SEED = Number(process.env.FUZZ_SEED ?? 20261130)
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 4000)

t.test(`${FRAMES} hostile frames (seed ${SEED}): no crash, every connection answered or closed with a documented code`, async (t) => {
  const result = await runFuzz({ seed: SEED, frames: FRAMES })
  t.comment(JSON.stringify(result))
  t.same(result.failures, [], 'every session answered, refused with 401, or closed with a documented code')
  t.equal(result.unhandledRejections, 0, 'no unhandled rejection')
  t.same(result.leftover, { connections: 0, rooms: 0, members: 0 }, 'nothing left behind')
  t.ok(result.frames >= FRAMES)
  t.ok((result.verdicts.answered ?? 0) > 0 && (result.verdicts.closed ?? 0) > 0, 'both outcomes happen')
})
