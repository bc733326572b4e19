// sse-load.ts for the self-contained browser file: the fallback inlined, without the lazy-module wrapper a
// bundler adds around a dynamic import it cannot split (about 260 B min+gzip).
import { SseSocket } from './sse.js'

export const loadSse = async (): Promise<typeof SseSocket> => SseSocket
