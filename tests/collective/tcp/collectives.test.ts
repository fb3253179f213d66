/**
 * exchange, barrier, broadcast, reduce-scatter and all-gather over TCP: between real processes
 * (a world of 3) and, for the finer points (barrier waits, desynchronised control calls,
 * orderly close, size 1), between groups inside this process.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { chunkRange } from '../../../src/collective/ring.js';
import { SEGMENT_FLOATS } from '../../../src/collective/tcp/frame.js';
import { rendezvous } from '../../../src/collective/tcp/group.js';
import { expectedSum, firstBitwiseDifference, floatsOf, formInProcess, freePort, fulfilled, inputOf, killAll, optionsOf, startWorld } from './harness.js';

afterEach(killAll);

const SEED = 99;

describe('TCP collectives between processes', () => {
  it('exchange, barrier, broadcast (floats and bytes, any root), reduce-scatter and all-gather in a world of 3', async () => {
    const size = 3;
    const ranks = await startWorld(size, { scenario: 'collectives', seed: SEED });
    const outcomes = await Promise.all(ranks.map((r) => r.outcome(30_000)));
    for (const outcome of outcomes) expect(outcome.type, String(outcome.message)).toBe('done');

    const rootFloats = Float32Array.from({ length: 1000 }, (_, i) => i / 7);
    let bytesHash = 0;
    for (let i = 0; i < (1 << 20) * 2 + 13; i++) bytesHash = (bytesHash * 33 + ((i * 31 + 7) & 255)) % 1000000007;
    const inputs = Array.from({ length: size }, (_, rank) => inputOf(SEED, rank, 1003));
    const sum = expectedSum(inputs, 1003);

    for (const [rank, outcome] of outcomes.entries()) {
      const out = outcome.results as Record<string, unknown>;
      expect(out.exchange).toEqual([0, 1, 2].map((r) => ({ rank: r, text: `from ${r}`, list: [r, r * 2] })));
      expect(out.barrierPassed).toBe(true);
      expect(firstBitwiseDifference(floatsOf(out.broadcastFloats as string), rootFloats)).toBe(-1);
      expect(out.broadcastBytesHash).toBe(bytesHash);
      const [from, to] = chunkRange(1003, size, rank);
      expect(out.range).toEqual([from, to]);
      expect(firstBitwiseDifference(floatsOf(out.reduceScattered as string), sum.subarray(from, to))).toBe(-1);
      expect(firstBitwiseDifference(floatsOf(out.allGathered as string), sum)).toBe(-1);
      expect(out.hosts).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1']);
      expect((out.infos as { rank: number }[]).map((i) => i.rank)).toEqual([0, 1, 2]);
    }
  });
});

describe('TCP collectives in one process', () => {
  it('a barrier returns on no rank before the last one arrives', async () => {
    const groups = fulfilled(await formInProcess(3));
    try {
      const arrived: number[] = [];
      const started = Date.now();
      const done = groups.map(async (group, rank) => {
        if (rank === 2) await new Promise((resolve) => setTimeout(resolve, 300));
        arrived.push(rank);
        await group.barrier(7);
        return Date.now() - started;
      });
      const times = await Promise.all(done);
      for (const t of times) expect(t).toBeGreaterThanOrEqual(290);
      expect(arrived).toEqual([0, 1, 2]);
    } finally {
      await Promise.all(groups.map((g) => g.close()));
    }
  });

  it('ring data that arrives before its reader is kept whole: reads reuse one buffer, and what waits is copied out of it', async () => {
    // Several 1 MiB segments reach rank 1 before it calls allReduce: they queue on the
    // connection they were read from, whose reads all land in the same buffer (reused-reads.ts).
    const groups = fulfilled(await formInProcess(2));
    try {
      const length = 3 * SEGMENT_FLOATS + 4099;
      const inputs = [0, 1].map((rank) => inputOf(SEED, rank, length));
      const bufs = inputs.map((x) => x.slice());
      await Promise.all(
        groups.map(async (group, rank) => {
          if (rank === 1) await new Promise((resolve) => setTimeout(resolve, 300));
          await group.allReduce(bufs[rank]!, 3);
        }),
      );
      const expected = expectedSum(inputs, length);
      for (const buf of bufs) expect(firstBitwiseDifference(buf, expected)).toBe(-1);
    } finally {
      await Promise.all(groups.map((g) => g.close()));
    }
  });

  it('an exchange on one rank against a barrier on another is a desynchronisation error, not a hang', async () => {
    const groups = fulfilled(await formInProcess(2, () => ({ stepTimeoutMs: 30_000 })));
    try {
      const results = await Promise.allSettled([groups[0]!.exchange({ a: 1 }, 5), groups[1]!.barrier(5)]);
      const messages = results.map((r) => (r.status === 'rejected' ? String((r.reason as Error).message) : 'resolved'));
      expect(messages[0]).toBe('desynchronised: expected exchange for step 5 from rank 1, got barrier for step 5');
      expect(messages[1]).toBe('rank 0 (host 127.0.0.1) failed at step 5: desynchronised: expected exchange for step 5 from rank 1, got barrier for step 5');
      await expect(groups[1]!.failed).rejects.toThrow(/desynchronised/);
    } finally {
      await Promise.all(groups.map((g) => g.close()));
    }
  });

  it('close() is orderly: a peer that closed between calls is no failure, but a later call needing it fails naming it', async () => {
    const groups = fulfilled(await formInProcess(2));
    let failed = false;
    groups[0]!.failed.catch(() => (failed = true));
    const buf = new Float32Array([1, 2, 3]);
    await Promise.all(groups.map((g) => g.allReduce(buf.slice(), 0)));
    await groups[1]!.close();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(failed).toBe(false);
    await expect(groups[0]!.allReduce(buf, 1)).rejects.toThrow('rank 1 (host 127.0.0.1) failed at step 1: has closed the group');
    await groups[0]!.close();
    await expect(groups[1]!.barrier(2)).rejects.toThrow('the process group is closed');
  });

  it('size 1: rendezvous returns at once without listening, every operation is a no-op', async () => {
    // A port in use: a size-1 group must not even try to listen on it.
    const port = await freePort();
    const group = await rendezvous(optionsOf(0, 1, port, { info: { only: true } }));
    const buf = new Float32Array([1.5, -2, 3]);
    await group.allReduce(buf, 0);
    expect(Array.from(buf)).toEqual([1.5, -2, 3]);
    expect(await group.reduceScatter(buf, 1)).toEqual([0, 3]);
    await group.allGather(buf, 2);
    await group.broadcast(buf, 0, 3);
    await group.barrier(4);
    expect(await group.exchange({ x: 1 }, 5)).toEqual([{ x: 1 }]);
    expect(group.hosts).toEqual(['127.0.0.1']);
    expect(group.infos).toEqual([{ only: true }]);
    expect(Array.from(buf)).toEqual([1.5, -2, 3]);
    await group.close();
  });
});
