// Types for bench/harness/profile-summary.mjs, so the tap suite (TypeScript) can import it.
export interface CallFrame { functionName: string, url: string, lineNumber: number }
export interface CpuProfile {
  nodes: Array<{ id: number, callFrame: CallFrame }>
  startTime: number
  endTime?: number
  samples: number[]
  timeDeltas: number[]
}
export interface Share { name: string, samples: number, share: number, busyShare: number }
export interface FunctionShare extends Share { where: string, category: string }
export interface Summary { total: number, busy: number, usPerSample: number, categories: Share[], functions: FunctionShare[] }
export const CATEGORIES: string[]
export function categorize (frame: { functionName: string, url: string }, root: string): string
export function samplesBetween (profile: CpuProfile, fromUs?: number, toUs?: number): { counts: Map<number, number>, total: number, spanUs: number }
export function summarize (profile: CpuProfile, options: { root: string, fromUs?: number, toUs?: number, top?: number }): Summary
export function renderSummary (summary: Summary, options: { title: string, ops?: number, opName?: string }): string
