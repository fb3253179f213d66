/** A non-finite gradient stops the run naming the step (default), or that step is skipped. */
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/config/load.js';
import { createSharedDataset } from '../../src/data/dataset.js';
import { TrainingAbortedError } from '../../src/errors.js';
import { Trainer } from '../../src/train/trainer.js';

const data = {
  train: createSharedDataset({
    name: 'generated',
    featureShape: [3],
    labelShape: [1],
    features: Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i)),
    labels: Float32Array.from({ length: 64 }, (_, i) => Math.cos(i)),
  }),
};

const config = (nonFinite: 'stop' | 'skip') =>
  parseRunConfig({
    name: 'nan',
    model: { inputShape: [3], layers: [{ type: 'dense', units: 1 }] },
    data: 'linear',
    loss: 'mse',
    optimizer: 'adam',
    training: { epochs: 2, batchSize: 8, nonFinite },
    parallel: { workers: 2 },
    backend: 'cpu',
    output: { metricsLog: false },
  });

describe('non-finite loss or gradient', () => {
  it('stops the run with an error naming the epoch and step (default policy)', async () => {
    const trainer = await Trainer.create(config('stop'), { data, faults: { rank: 0, nanAtStep: 5 } });
    const error = await trainer.fit().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TrainingAbortedError);
    expect((error as Error).message).toBe('epoch 1 failed: replica 0: non-finite gradient at epoch 1, step 6 (global step 6)');
  });

  it('with nonFinite "skip", skips that step everywhere, counts it, and keeps the weights finite', async () => {
    const trainer = await Trainer.create(config('skip'), { data, faults: { rank: 0, nanAtStep: 5 } });
    try {
      const epochs = await trainer.fit();
      expect(epochs.map((e) => e.skippedSteps)).toEqual([1, 1]); // step 5 of each epoch
      expect(epochs[0]!.samples).toBe(56);
      expect(trainer.params().every(Number.isFinite)).toBe(true);
      expect(Number.isFinite(epochs[1]!.loss)).toBe(true);
    } finally {
      await trainer.close();
    }
  });
});
