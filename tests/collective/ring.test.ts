import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ControlBlock } from '../../src/collective/control-block.js';
import { allocateShmRing } from '../../src/collective/shm-transport.js';
import { chunkRange, maxChunkLength } from '../../src/collective/ring.js';
import { mulberry32 } from '../../src/util/random.js';

const workerUrl = new URL('../helpers/ring-worker.mjs', import.meta.url);

interface RunResult {
  results: { ok: boolean; message?: string }[];
  slots: Float32Array[];
  elapsedMs: number;
}

async function runCollective(
  op: string,
  size: number,
  length: number,
  options: { timeoutMs?: number; throwAtRank?: number; capacity?: number } = {},
): Promise<RunResult & { inputs: Float32Array[] }> {
  const random = mulberry32(size * 1000 + length);
  const slots: SharedArrayBuffer[] = [];
  const inputs: Float32Array[] = [];
  for (let r = 0; r < size; r++) {
    const sab = new SharedArrayBuffer(Math.max(1, length) * 4);
    const view = new Float32Array(sab, 0, length);
    for (let i = 0; i < length; i++) view[i] = (random() - 0.5) * 10 ** Math.floor(random() * 6 - 3);
    inputs.push(view.slice());
    slots.push(sab);
  }
  const control = ControlBlock.allocate(size);
  const ring = allocateShmRing(size, options.capacity ?? maxChunkLength(length, size));
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: size }, (_, rank) =>
      new Promise<{ ok: boolean; message?: string }>((resolve, reject) => {
        const worker = new Worker(workerUrl, {
          workerData: { rank, size, op, control, ring, slots, length, timeoutMs: options.timeoutMs ?? 20_000, throwAtRank: options.throwAtRank ?? -1 },
        });
        worker.once('message', (m) => {
          resolve(m);
          void worker.terminate();
        });
        worker.once('error', reject);
      }),
    ),
  );
  return { results, inputs, slots: slots.map((s) => new Float32Array(s, 0, length)), elapsedMs: Date.now() - started };
}

/** The ring's fixed order for chunk c: ((x[c+1] + x[c+2]) + ...) + x[c], in float32. */
function sequentialChunkSum(inputs: Float32Array[], chunk: number, i: number): number {
  const n = inputs.length;
  let acc = inputs[(chunk + 1) % n]![i]!;
  for (let k = 2; k <= n; k++) acc = Math.fround(acc + inputs[(chunk + k) % n]![i]!);
  return acc;
}

const sizes = [0, 1, 3, 7, 17, 100, 1000, 4099];

describe('ring reduce-scatter and all-reduce over shared memory', () => {
  for (let n = 1; n <= 8; n++) {
    it(`reduce-scatter with ${n} workers is exact against the sequential sum in ring order`, async () => {
      for (const length of sizes) {
        const { results, inputs, slots } = await runCollective('reduce-scatter', n, length);
        expect(results.every((r) => r.ok)).toBe(true);
        for (let r = 0; r < n; r++) {
          const [from, to] = chunkRange(length, n, r);
          for (let i = from; i < to; i++) expect(slots[r]![i]).toBe(sequentialChunkSum(inputs, r, i));
        }
      }
    });
  }

  for (const n of [1, 2, 3, 5, 8]) {
    it(`all-reduce with ${n} workers leaves every rank with the same exact sums`, async () => {
      for (const length of [0, 1, 5, 33, 1000]) {
        const { results, inputs, slots } = await runCollective('all-reduce', n, length);
        expect(results.every((r) => r.ok)).toBe(true);
        for (let i = 0; i < length; i++) {
          let chunk = 0;
          while (chunkRange(length, n, chunk)[1] <= i) chunk++;
          const expected = sequentialChunkSum(inputs, chunk, i);
          for (let r = 0; r < n; r++) expect(slots[r]![i]).toBe(expected);
        }
      }
    });
  }

  it('the direct shared-memory reduce-scatter is bitwise equal to the ring', async () => {
    for (const n of [2, 3, 4]) {
      const ring = await runCollective('reduce-scatter', n, 1000);
      const direct = await runCollective('direct', n, 1000);
      for (let r = 0; r < n; r++) {
        const [from, to] = chunkRange(1000, n, r);
        expect(Array.from(direct.slots[r]!.subarray(from, to))).toEqual(Array.from(ring.slots[r]!.subarray(from, to)));
      }
    }
  });

  it('a message larger than the mailbox is refused with its size', async () => {
    const { results } = await runCollective('reduce-scatter', 3, 1000, { capacity: 7 });
    expect(results.map((r) => r.message)).toContain('message of 336 floats exceeds the mailbox capacity of 7');
  });

  it('chunks are aligned to 16 floats and cover the buffer', () => {
    for (const [length, n] of [[1000, 3], [5, 8], [0, 4], [4099, 7]] as const) {
      let covered = 0;
      for (let r = 0; r < n; r++) {
        const [from, to] = chunkRange(length, n, r);
        expect(from).toBe(covered);
        if (to < length) expect(to % 16).toBe(0);
        covered = to;
      }
      expect(covered).toBe(length);
    }
  });

  it('a rank that throws releases every other rank with an abort, not a hang', async () => {
    const { results, elapsedMs } = await runCollective('reduce-scatter', 4, 1000, { throwAtRank: 2, timeoutMs: 30_000 });
    expect(results[2]).toEqual({ ok: false, message: 'injected failure in rank 2' });
    const others = results.filter((_, r) => r !== 2);
    // Ranks either finished before they needed rank 2 or were released by its abort.
    for (const r of others) if (!r.ok) expect(r.message).toBe('aborted by replica 2');
    expect(others.some((r) => !r.ok)).toBe(true);
    expect(elapsedMs).toBeLessThan(30_000);
  });

  it('a wait that nobody ends fails at its deadline with a message saying what it waited for', async () => {
    const { results } = await runCollective('wait-forever', 2, 16, { timeoutMs: 300 });
    for (const r of results) {
      expect(r.ok).toBe(false);
      expect(r.message).toMatch(/^(timed out after 300 ms waiting for the other replicas at the barrier|aborted by replica [01])$/);
    }
    expect(results.some((r) => r.message!.startsWith('timed out after 300 ms'))).toBe(true);
  });
});
