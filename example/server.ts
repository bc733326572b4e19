// The example chat: `npm start`, then open http://127.0.0.1:3000 in two tabs.
import Fastify, { type FastifyServerOptions } from 'fastify'
import { readFile } from 'node:fs/promises'
import { pathToFileURL } from 'node:url'
import realtime from '../index.js'
import { chat } from './chat.js'

const page = new URL('../../example/public/index.html', import.meta.url)

export async function buildApp (options: FastifyServerOptions = {}) {
  const app = Fastify(options)
  await app.register(realtime)
  app.realtime('/chat', chat)
  app.get('/', async (_request, reply) => {
    // Read per request: the page is small and this keeps edits live while hacking on it.
    reply.type('text/html; charset=utf-8')
    return readFile(pageFile())
  })
  return app
}

// Compiled to dist/example/, run from the repository: find the page either way.
function pageFile (): URL {
  return import.meta.url.includes('/dist/') ? page : new URL('./public/index.html', import.meta.url)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const app = await buildApp({ logger: true })
  const port = Number(process.env.PORT ?? 3000)
  const host = process.env.HOST ?? '127.0.0.1'
  await app.listen({ port, host })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
  }
}
