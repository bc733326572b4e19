// Why lib/conflation.ts flushes on a tick that reads bufferedAmount rather than on the socket's 'drain':
// a stream holding less than its highWaterMark (16 KiB) never emits 'drain' (no write returned false), so with
// a softLimit under 16 KiB held frames would wait for ever; and 'drain' comes only once the buffer is empty.
// Run: `node bench/micro/drain-signal.mjs` (a paused loopback client; a few hundred ms).
import net from 'node:net'
import { once } from 'node:events'
for (const size of [8 * 1024, 64 * 1024]) {
  const server = net.createServer()
  server.listen(0, '127.0.0.1'); await once(server, 'listening')
  const client = net.connect(server.address().port, '127.0.0.1')
  const [sock] = await once(server, 'connection')
  client.pause()
  // Fill the kernel's buffers with 1 KiB writes until the stream starts holding bytes itself.
  while (sock.writableLength === 0) { sock.write(Buffer.alloc(1024)); await new Promise((resolve) => setImmediate(resolve)) }
  while (sock.writableLength < size) sock.write(Buffer.alloc(1024))
  const held = sock.writableLength
  const need = sock.writableNeedDrain
  let drainAt = 0
  sock.on('drain', () => { drainAt = performance.now() })
  const t0 = performance.now()
  client.resume()
  while (sock.writableLength > 0) await new Promise((resolve) => setImmediate(resolve))
  const emptyAt = performance.now()
  await new Promise((resolve) => setTimeout(resolve, 100))
  console.log(`stream holding ${held} B: writableNeedDrain ${need}; 'drain' ${drainAt ? `fired ${(drainAt - t0).toFixed(2)} ms after resume` : 'never fired'}; buffer empty ${(emptyAt - t0).toFixed(2)} ms after resume`)
  client.destroy(); sock.destroy(); server.close()
}
