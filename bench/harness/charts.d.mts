// Types for bench/harness/charts.mjs, so the tap suite (TypeScript) can import it.
export interface Bar { label: string, value: number }
export interface Panel { title: string, unit: string, bars: Bar[] }
export function escapeXml (text: unknown): string
export function formatValue (value: number): string
export function barChart (title: string, panels: Panel[]): string
export function renderCharts (run: { scenarios?: Record<string, Array<Record<string, any>>> }): Array<[file: string, svg: string]>
export function writeCharts (run: { scenarios?: Record<string, Array<Record<string, any>>> }, dir: string, copyTo: string): string[]
