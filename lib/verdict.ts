// A step's answer: a value now, or a promise of it later. Steps (limits,
// authorization, rooms, auth) return verdicts; only lib/pipeline.ts acts on them.

export type Verdict<T> = T | PromiseLike<T>

export function isThenable<T = unknown> (value: unknown): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | null)?.then === 'function'
}
