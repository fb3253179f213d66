/** A non-finite gradient stops the run naming the step (default), or that step is skipped. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/config/load.js';
import { createSharedDataset } from '../../src/data/dataset.js';
import { DivergedError, EXIT_DIVERGED, TrainingAbortedError } from '../../src/errors.js';
import { Trainer } from '../../src/train/trainer.js';
import { killAll, startRingtrain } from '../helpers/processes.js';

afterEach(killAll);

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
  it('stops the run with a DivergedError naming the epoch, step and "none" for the last good checkpoint (default policy)', async () => {
    const trainer = await Trainer.create(config('stop'), { data, faults: { rank: 0, nanAtStep: 5 } });
    const error = await trainer.fit().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DivergedError);
    expect(error).toBeInstanceOf(TrainingAbortedError);
    expect((error as Error).message).toBe('training diverged: non-finite gradient at epoch 1, step 6; last good checkpoint: none');
    expect(error).toMatchObject({ epoch: 1, stepInEpoch: 6, checkpoint: undefined, replica: 0, globalStep: 5 });
    expect(trainer.recoveries).toBe(0);
  });

  it('with checkpoints on, names the checkpoint of the last consistent state it leaves', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-diverged-'));
    try {
      const cfg = { ...config('stop'), checkpoint: { ...config('stop').checkpoint, dir, everySteps: 0, everyEpoch: true } };
      // The state at the start of the failed segment (global step 0) is written as the last good checkpoint.
      const trainer = await Trainer.create(cfg, { data, checkpoints: true, faults: { rank: 1, nanAtStep: 2, persistent: true } });
      const error = (await trainer.fit().then(
        () => undefined,
        (e: unknown) => e,
      )) as DivergedError;
      expect(error).toBeInstanceOf(DivergedError);
      expect(error.message).toBe(`training diverged: non-finite gradient at epoch 1, step 3; last good checkpoint: ${join(dir, 'ckpt-e0000-s000000.rtckpt')}`);
      expect(error.checkpoint).toBe(join(dir, 'ckpt-e0000-s000000.rtckpt'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the CLI prints the one line and exits with its own code (3)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ringtrain-diverged-cli-'));
    try {
      const run = startRingtrain(['train', 'configs/linear.json', '--epochs', '2', '--batch-size', '10', '--workers', '1', '--out', out, '--json'], {
        RINGTRAIN_INJECT_FAULT: '{"rank":0,"nanAtStep":4}',
      });
      expect(await run.exited(60_000), run.stderr()).toBe(EXIT_DIVERGED);
      const lines = run.stderr().trim().split('\n');
      expect(lines).toEqual([
        // Said as training begins: where the run writes.
        `run folder ${out}: metrics log ${join(out, 'metrics.jsonl')}, checkpoints ${join(out, 'checkpoints')}, TensorBoard events ${join(out, 'tensorboard')}`,
        `ringtrain: training diverged: non-finite gradient at epoch 1, step 5; last good checkpoint: ${join(out, 'checkpoints', 'ckpt-e0000-s000000.rtckpt')}`,
      ]);
      expect(run.stderr()).not.toContain('    at ');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
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
