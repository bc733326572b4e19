// The buckets' coarse clock (lib/clock.ts): how far it may lag and that it stops when nothing reads it.
// Time is the subject, so the fake clock drives it; the module is imported while the fake clock is in
// place so that its first read starts its timer on the fake clock.
import t from 'tap'
import { Clock } from '@tapjs/clock'

t.test('the coarse clock lags by at most its resolution, and its timer stops when it is not read', async (t) => {
  const clock = new Clock()
  t.teardown(clock.enter())
  const { coarseNow, RESOLUTION_MS } = await import('../lib/clock.js')
  const start = performance.now()
  t.equal(coarseNow(), start, 'the first read is the real clock')
  clock.advance(RESOLUTION_MS - 1)
  t.equal(coarseNow(), start, 'within the resolution it holds its value')
  clock.advance(1)
  t.equal(coarseNow(), start + RESOLUTION_MS, 'updated every resolution while read')
  clock.advance(RESOLUTION_MS)
  t.equal(coarseNow(), start + 2 * RESOLUTION_MS)
  // Not read for a whole interval: the timer stops, and the next read takes the real clock again.
  clock.advance(RESOLUTION_MS)
  clock.advance(RESOLUTION_MS)
  clock.advance(1000 + 3)
  const later = performance.now()
  t.equal(later, start + 4 * RESOLUTION_MS + 1003)
  t.equal(coarseNow(), later, 'after a quiet interval, the first read is the real clock')
  clock.advance(RESOLUTION_MS)
  t.equal(coarseNow(), later + RESOLUTION_MS, 'and the timer runs again')
})
