// One rank of a TCP process group for tests/collective/process-group (a real child process).
// Usage: node pg-allreduce.mjs '<json job>'. Job: { rank, size, port, scenario, seed, lengths,
// repeats, timeoutMs, stepTimeoutMs, token?, fingerprint?, atStep?, bad?, length?, rounds? };
// scenario 'collectives', 'hostile' (see below) or 'rounds'.
//
// Output on stdout, one JSON object a line: {"event":"log","line"} for every line the group logs,
// {"event":"ready","rss"} once rendezvous returned, {"event":"result",...} at the end. On failure
// the error's message is the only line on stderr (as the CLI prints it), stdout gets
// {"event":"error","name","message","rss","peakRss","rssReady"} (bytes), and the exit code is 1.
//
// Inputs: rank r's buffer of `length` floats for `seed` is inputOf(seed, r, length) below; the
// test generates the same numbers to compute the expected sums.
import { createHash } from 'node:crypto';
import { rendezvous } from '../../dist/collective/tcp/group.js';
import { chunkRange } from '../../dist/collective/ring.js';
import { mulberry32 } from '../../dist/util/random.js';
import { DATA_OP, header, writeToNext } from './pg-wire.mjs';

const job = JSON.parse(process.argv[2]);
const { rank, size } = job;

const print = (value) => new Promise((resolve) => process.stdout.write(`${JSON.stringify(value)}\n`, () => resolve()));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const bytesOf = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const sha256 = (a) => createHash('sha256').update(bytesOf(a)).digest('hex');

/** Signed values over 24 binades, so the order of the float32 additions shows in the bits. */
function inputOf(seed, r, length) {
  const random = mulberry32((seed * 7919 + r * 104729 + length) >>> 0);
  const x = new Float32Array(length);
  for (let i = 0; i < length; i++) x[i] = (random() - 0.5) * 2 ** Math.floor(random() * 24 - 12);
  return x;
}

/** What `root` broadcasts: a pattern the test can recompute. */
function broadcastPattern(root, length) {
  const x = new Float32Array(length);
  for (let i = 0; i < length; i++) x[i] = Math.sin(i * 0.001 + root) * (i % 97);
  return x;
}

const scenarios = {
  /** all-reduce of every length (repeated), exchange, a barrier, broadcasts from 0 and size - 1. */
  async collectives(group) {
    let step = 0;
    const allReduce = [];
    for (const length of job.lengths) {
      const hashes = [];
      let first;
      for (let r = 0; r < job.repeats; r++) {
        const buf = inputOf(job.seed, rank, length);
        await group.allReduce(buf, step++);
        hashes.push(sha256(buf));
        first ??= bytesOf(buf).toString('base64');
      }
      allReduce.push({ length, base64: first, hashes });
    }
    const exchanged = await group.exchange({ rank, text: `from rank ${rank}`, nested: [rank, rank * rank] }, step++);
    // The last rank arrives late: nobody may leave the barrier before it entered.
    if (rank === size - 1) await sleep(job.barrierDelayMs ?? 300);
    const barrierEntered = Date.now();
    await group.barrier(step++);
    const barrierLeft = Date.now();
    const broadcasts = [];
    for (const root of [0, size - 1]) {
      for (const length of job.broadcastLengths) {
        const buf = rank === root ? broadcastPattern(root, length) : new Float32Array(length).fill(-1);
        await group.broadcast(buf, root, step++);
        broadcasts.push({ root, length, hash: sha256(buf) });
      }
    }
    return { allReduce, exchanged, barrierEntered, barrierLeft, broadcasts, hosts: group.hosts };
  },

  /**
   * Every rank all-reduces `length` floats at steps 0, 1, ...; rank `bad` behaves at step
   * `atStep`: 'huge' writes a data header claiming 0xFFFFFFF0 bytes to rank + 1 and nothing
   * more; 'wrong-step' writes a well-formed first segment for step atStep + 1 instead.
   */
  async hostile(group) {
    const { length, atStep, bad, how } = job;
    for (let step = 0; step < atStep + 3; step++) {
      const buf = inputOf(job.seed, rank, length);
      if (rank === bad && step === atStep) {
        if (how === 'huge') {
          writeToNext(group, header(DATA_OP, step, 0xfffffff0));
        } else {
          const [from, to] = chunkRange(length, size, (rank + size - 1) % size);
          const segment = bytesOf(buf.subarray(from, Math.min(to, from + 262144)));
          writeToNext(group, Buffer.concat([header(DATA_OP, step + 1, segment.length), segment]));
        }
        print({ event: 'misbehaved', step });
        // The misbehaving rank reads nothing more; the group fails it (or the test kills it).
        await Promise.race([group.failed, sleep(job.stepTimeoutMs * 3)]);
        throw new Error('the group did not fail after the bad frame');
      }
      await group.allReduce(buf, step);
      print({ event: 'step', step, hash: sha256(buf) });
    }
    return {};
  },
};

const options = {
  rank,
  size,
  masterAddr: job.masterAddr ?? '127.0.0.1',
  masterPort: job.port,
  token: job.token ?? 'pg-test-token',
  fingerprint: job.fingerprint ?? { model: 'pg-test', batchSize: 32 },
  info: { rank, pid: process.pid },
  timeoutMs: job.timeoutMs ?? 20_000,
  stepTimeoutMs: job.stepTimeoutMs ?? 20_000,
  log: (line) => void print({ event: 'log', line }),
};

let group;
let rssReady = 0;
try {
  if (job.scenario === 'rounds') {
    // `rounds` groups one after the other on the same master port: rendezvous, one all-reduce
    // of `length` floats (inputs seeded by seed + round), close.
    const hashes = [];
    for (let round = 0; round < job.rounds; round++) {
      group = await rendezvous(options);
      const buf = inputOf(job.seed + round, rank, job.length);
      await group.allReduce(buf, 0);
      hashes.push(sha256(buf));
      await group.close();
    }
    await print({ event: 'result', rank, hashes });
    process.exit(0);
  }
  group = await rendezvous(options);
  rssReady = process.memoryUsage().rss;
  print({ event: 'ready', rss: rssReady });
  const result = await scenarios[job.scenario](group);
  await group.close();
  await print({ event: 'result', rank, ...result });
  process.exit(0);
} catch (error) {
  const message = String(error?.message ?? error);
  await print({ event: 'error', name: error?.name, message, rss: process.memoryUsage().rss, peakRss: process.resourceUsage().maxRSS * 1024, rssReady });
  await new Promise((resolve) => process.stderr.write(`${message}\n`, () => resolve()));
  process.exit(1);
}
