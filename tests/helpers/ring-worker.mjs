// Worker for the collective tests: runs one rank of a collective on shared buffers.
import { workerData, parentPort } from 'node:worker_threads';
import { ControlBlock } from '../../dist/collective/control-block.js';
import { ShmRingTransport } from '../../dist/collective/shm-transport.js';
import { ringReduceScatter, ringAllReduce, directReduceScatter } from '../../dist/collective/ring.js';

const { rank, size, op, control, ring, slots, length, timeoutMs, throwAtRank } = workerData;
const block = new ControlBlock(control, timeoutMs);
try {
  if (rank === throwAtRank) throw new Error(`injected failure in rank ${rank}`);
  const views = slots.map((s) => new Float32Array(s, 0, length));
  const transport = new ShmRingTransport(rank, size, block, ring);
  if (op === 'reduce-scatter') ringReduceScatter(transport, views[rank]);
  else if (op === 'all-reduce') ringAllReduce(transport, views[rank]);
  else if (op === 'direct') {
    block.barrier(size);
    directReduceScatter(views, rank);
    block.barrier(size);
  } else if (op === 'wait-forever') block.barrier(size + 1);
  parentPort.postMessage({ ok: true });
} catch (error) {
  block.abort(rank);
  parentPort.postMessage({ ok: false, message: String(error?.message ?? error) });
}
