// One rank of a TCP process group for the tcp tests (started with child_process.fork; the job is
// argv[2] as JSON). Reports over IPC: {type: 'listening', port} (rank 0 with masterPort 0),
// {type: 'log', line}, {type: 'progress', ...} and finally {type: 'done', results} or
// {type: 'error', message, name, rss}. Inputs are generated from (seed, rank, length), so the
// test can compute the expected sums itself.
import { rendezvous } from '../../dist/collective/tcp/group.js';
import { encodeHeader, Op } from '../../dist/collective/tcp/frame.js';
import { mixSeed, mulberry32 } from '../../dist/util/random.js';

const job = JSON.parse(process.argv[2]);
const { rank, size } = job;

const send = (message) => new Promise((resolve) => process.send(message, () => resolve()));

function input(seed, r, length, shared) {
  const random = mulberry32(mixSeed(seed, r, length));
  const buf = shared ? new Float32Array(new SharedArrayBuffer(Math.max(4, length * 4)), 0, length) : new Float32Array(length);
  for (let i = 0; i < length; i++) buf[i] = (random() - 0.5) * 10 ** Math.floor(random() * 6 - 3);
  return buf;
}

const b64 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

const scenarios = {
  /** Every length, all-reduced `repeats` times from the same input. */
  async allReduce(group) {
    const results = [];
    let step = 0;
    for (const length of job.lengths) {
      const outputs = [];
      for (let r = 0; r < (job.repeats ?? 1); r++) {
        const buf = input(job.seed, rank, length, job.shared);
        await group.allReduce(buf, step++);
        outputs.push(b64(buf));
      }
      results.push({ length, outputs });
    }
    return results;
  },

  async collectives(group) {
    const out = {};
    out.exchange = await group.exchange({ rank, text: `from ${rank}`, list: [rank, rank * 2] }, 1);
    await group.barrier(2);
    out.barrierPassed = true;
    const floats = new Float32Array(1000).fill(rank === size - 1 ? 0 : -1);
    if (rank === size - 1) for (let i = 0; i < floats.length; i++) floats[i] = i / 7;
    await group.broadcast(floats, size - 1, 3);
    out.broadcastFloats = b64(floats);
    // Larger than a segment, root 0, as bytes.
    const bytes = new Uint8Array((1 << 20) * 2 + 13);
    if (rank === 0) for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) & 255;
    await group.broadcast(bytes, 0, 4);
    let sum = 0;
    for (let i = 0; i < bytes.length; i++) sum = (sum * 33 + bytes[i]) % 1000000007;
    out.broadcastBytesHash = sum;
    const length = 1003;
    const buf = input(job.seed, rank, length, false);
    out.range = await group.reduceScatter(buf, 5);
    out.reduceScattered = b64(buf.subarray(out.range[0], out.range[1]));
    await group.allGather(buf, 6);
    out.allGathered = b64(buf);
    out.hosts = group.hosts;
    out.infos = group.infos;
    return out;
  },

  /**
   * All-reduces until told to stop. At step `victimStep` the victim signals and never makes that
   * call (its heartbeats go on), so the others wait inside step `victimStep` until the test kills
   * or stops it: had the victim made the call, it could finish it before the signal and the
   * others would name the next step.
   */
  async loop(group) {
    const buf = new Float32Array(job.length);
    for (let step = 0; step < 100000; step++) {
      if (rank === job.victim && step === job.victimStep) {
        await send({ type: 'victim-ready' });
        await new Promise(() => setInterval(() => {}, 60_000));
      }
      const call = group.allReduce(buf, step);
      if (rank !== job.victim && step === job.victimStep) await send({ type: 'survivor-at-step', step });
      await call;
    }
    return {};
  },

  /** At step `atStep` rank `victim` misbehaves in one of several ways; the others all-reduce. */
  async hostile(group) {
    const buf = new Float32Array(job.length);
    for (let step = 0; step < job.atStep + 3; step++) {
      if (rank === job.victim && step === job.atStep) {
        if (job.how === 'huge-frame') {
          // A header claiming 4 GiB - 1 of all-reduce data, then silence.
          group.unsafeWriteForTests('next', encodeHeader(Op.ALL_REDUCE, step, 0xffffffff));
          await group.failed;
        } else if (job.how === 'wrong-step') {
          await group.allReduce(buf, step + 1);
        } else if (job.how === 'wrong-op') {
          await group.broadcast(buf, rank, step);
          await group.allReduce(buf, step);
        }
      } else {
        await group.allReduce(buf, step);
      }
    }
    return {};
  },

  /** Rank `victim` calls abort(reason) at step `atStep` instead of all-reducing. */
  async abort(group) {
    const buf = new Float32Array(job.length);
    for (let step = 0; step < job.atStep + 3; step++) {
      if (rank === job.victim && step === job.atStep) {
        group.abort(job.reason, step);
        await group.failed;
      }
      await group.allReduce(buf, step);
    }
    return {};
  },

  async bench(group) {
    const buf = new Float32Array(job.length);
    for (let i = 0; i < buf.length; i++) buf[i] = (i % 1000) * 1e-3;
    const times = [];
    for (let step = 0; step < job.repeats; step++) {
      await group.barrier(step * 2);
      const t0 = performance.now();
      await group.allReduce(buf, step * 2 + 1);
      times.push(performance.now() - t0);
    }
    return { times };
  },

  async idle() {
    return {};
  },
};

let group;
try {
  group = await rendezvous({
    rank,
    size,
    masterAddr: '127.0.0.1',
    masterPort: job.masterPort,
    token: job.token ?? 'test-token',
    fingerprint: job.fingerprint ?? { batchSize: 32 },
    info: { rank, pid: process.pid },
    timeoutMs: job.timeoutMs ?? 20_000,
    stepTimeoutMs: job.stepTimeoutMs ?? 20_000,
    log: (line) => void send({ type: 'log', line }),
    onListening: (port) => void send({ type: 'listening', port }),
  });
  const results = await scenarios[job.scenario](group);
  await group.close();
  await send({ type: 'done', results });
  process.exit(0);
} catch (error) {
  await send({ type: 'error', message: String(error?.message ?? error), name: error?.name, rss: process.memoryUsage().rss, at: Date.now() });
  await group?.close();
  process.exit(1);
}
