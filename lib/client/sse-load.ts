// How the client gets its SSE fallback: a dynamic import, so that an app's bundler splits the fallback into a
// chunk of its own that only a page whose WebSocket cannot open downloads. The self-contained browser file
// (scripts/build-client.mjs) swaps this module for sse-inline.ts: one file, no chunk to serve.
import type { SseSocket } from './sse.js'

export const loadSse = async (): Promise<typeof SseSocket> => (await import('./sse.js')).SseSocket
