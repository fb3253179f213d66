/** callAll's error after an abort the coordinator raised (origin -1): no replica's row is read or named. */
import { describe, expect, it } from 'vitest';
import { TrainingAbortedError } from '../../src/errors.js';
import { callAll } from '../../src/train/fan-out.js';
import type { ReplicaGroup } from '../../src/train/replica-group.js';

function fakeGroup(replicas: number) {
  const stats = new Float64Array(replicas * 16);
  const control = {
    abortOrigin: undefined as number | undefined,
    abort(origin: number) {
      this.abortOrigin ??= origin;
    },
  };
  const views = {
    statsRow(rank: number) {
      if (rank < 0) throw new RangeError(`statsRow(${rank}): no such replica`);
      return stats.subarray(rank * 16, rank * 16 + 16);
    },
  };
  const never = new Promise<void>(() => undefined);
  return { replicas: Array.from({ length: replicas }, () => ({ api: {}, task: never })), control, views, end: async () => undefined } as unknown as ReplicaGroup;
}

describe('callAll after a coordinator abort', () => {
  it('raises the replicas\' error without reading a stats row for origin -1 or naming "replica -1"', async () => {
    const group = fakeGroup(2);
    const failed = callAll(
      group,
      'epoch 1',
      async () => {
        group.control.abort(-1);
        throw new Error('aborted by the coordinator');
      },
      60_000,
    );
    const error = await failed.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TrainingAbortedError);
    expect((error as TrainingAbortedError).message).toBe('epoch 1 failed: stopped by the coordinator: aborted by the coordinator');
    expect((error as TrainingAbortedError).replica).toBeUndefined();
  });
});
