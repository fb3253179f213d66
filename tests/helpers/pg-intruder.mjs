// A stranger at rank 0's rendezvous port, for tests/collective/process-group/hostile.test.ts.
// Usage: node pg-intruder.mjs '<json job>'. Job: { port, mode, token?, junkBytes? }, mode one of
//   garbage      an HTTP request (no handshake at all)
//   wrong-token  the connecting side of the handshake, as rank 1, with a token that is not the run's
//   huge-data    a frame header claiming 0xFFFFFFF0 bytes of ring data, then junkBytes of junk
//   huge-hello   the same with a hello header
//   auth-huge-hello  the handshake as rank 1 with the run's token (an authenticated peer), then
//                the hello header claiming 0xFFFFFFF0 bytes and junkBytes of junk
// Connects (retrying while rank 0 is not listening yet), misbehaves, and waits up to 5 s for rank 0
// to close the connection. Prints one JSON line: { mode, closedByPeer, ms, written, error? }.
import { connect } from 'node:net';
import { authenticateAs, DATA_OP, header, HELLO_OP } from './pg-wire.mjs';

const job = JSON.parse(process.argv[2]);

async function connectWithRetry(port, deadline) {
  for (;;) {
    try {
      return await new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port });
        socket.once('connect', () => resolve(socket));
        socket.once('error', reject);
      });
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

const socket = await connectWithRetry(job.port, Date.now() + 10_000);
const started = Date.now();
let written = 0;
let error;
socket.on('error', (e) => (error ??= e.code ?? e.message));
const closed = new Promise((resolve) => {
  const timer = setTimeout(() => resolve(false), 5_000);
  socket.once('close', () => (clearTimeout(timer), resolve(true)));
});

if (job.mode === 'garbage') {
  const request = `GET / HTTP/1.1\r\nHost: 127.0.0.1:${job.port}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nX-Padding: ${'x'.repeat(64)}\r\n\r\n`;
  socket.write(request);
  written = request.length;
} else if (job.mode === 'wrong-token') {
  try {
    await authenticateAs(socket, job.token ?? 'not-the-token', 1);
    error = 'rank 0 accepted a wrong token';
  } catch (e) {
    error = e.message;
  }
} else if (job.mode === 'huge-data' || job.mode === 'huge-hello' || job.mode === 'auth-huge-hello') {
  if (job.mode === 'auth-huge-hello') await authenticateAs(socket, job.token, 1);
  const bytes = header(job.mode === 'huge-data' ? DATA_OP : HELLO_OP, job.mode === 'auth-huge-hello' ? -1 : 0, 0xfffffff0);
  socket.write(bytes);
  written = bytes.length;
  // Then pour junk as fast as rank 0 takes it: were the frame trusted, rank 0 would keep it.
  const junk = Buffer.alloc(1 << 20, 0x41);
  while (written < (job.junkBytes ?? 0) && !socket.destroyed) {
    const more = socket.write(junk);
    written += junk.length;
    if (!more) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
  }
} else {
  throw new Error(`unknown mode ${job.mode}`);
}

// Read (and drop) whatever comes, so that rank 0's end of the stream is seen.
socket.on('data', () => undefined);
socket.resume();
const closedByPeer = await closed;
process.stdout.write(`${JSON.stringify({ mode: job.mode, closedByPeer, ms: Date.now() - started, written, error })}\n`, () => process.exit(0));
