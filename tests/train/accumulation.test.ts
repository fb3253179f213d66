/**
 * Gradient accumulation (training.accumulateSteps): k batches of b make one update equal to one
 * batch of k*b (the model has no batch-dependent layer), with any replica count; the bar and
 * epochs count batches, the optimizer counts updates; checkpoints land on update boundaries and
 * a run resumed from any of them ends bitwise identical to the uninterrupted run.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpointFile } from '../../src/checkpoint/format.js';
import { parseRunConfig } from '../../src/config/load.js';
import type { RunConfig } from '../../src/config/schema.js';
import { createSharedDataset } from '../../src/data/dataset.js';
import { UserError } from '../../src/errors.js';
import { alignSegmentEnd, endsUpdate, optimizerStep } from '../../src/train/accumulation.js';
import { Trainer } from '../../src/train/trainer.js';
import { mulberry32 } from '../../src/util/random.js';
import { bitwiseEqual, relativeDifference } from '../helpers/equivalence.js';

const random = mulberry32(17);
// 90 samples: at batch 8, 12 batches per epoch (the last of 2 samples); at batch 32, 3 batches (the last of 26).
const data = {
  train: createSharedDataset({
    name: 'generated',
    featureShape: [6, 6, 1],
    labelShape: [],
    features: new Uint8Array(90 * 36).map(() => Math.floor(random() * 256)),
    labels: Float32Array.from({ length: 90 }, () => Math.floor(random() * 4)),
    featureScale: 1 / 255,
  }),
};

function config(training: Record<string, unknown>, workers: number, dir?: string, checkpoint: Record<string, unknown> = {}): RunConfig {
  return parseRunConfig({
    name: 'accumulation',
    model: {
      inputShape: [6, 6, 1],
      layers: [
        { type: 'conv2d', filters: 3, kernelSize: 3, activation: 'relu' },
        { type: 'flatten' },
        { type: 'dense', units: 4, activation: 'softmax' },
      ],
    },
    data: 'embedded-mnist',
    loss: 'sparseCategoricalCrossentropy',
    metrics: ['accuracy'],
    optimizer: { name: 'adam', learningRate: 0.01 },
    training: { epochs: 2, seed: 4, ...training },
    parallel: { workers },
    backend: 'cpu',
    output: { dir: dir ?? mkdtempSync(join(tmpdir(), 'ringtrain-acc-')), metricsLog: false },
    checkpoint: { keepLast: 100, ...checkpoint },
  });
}

async function train(cfg: RunConfig, options: { checkpoints?: boolean; resumeFile?: string } = {}) {
  const resume = options.resumeFile ? { file: options.resumeFile, state: await readCheckpointFile(options.resumeFile) } : undefined;
  const trainer = await Trainer.create(cfg, { data, checkpoints: options.checkpoints, resume });
  try {
    const history = await trainer.fit();
    const state = trainer.captureState();
    return { params: state.params, optimizerState: state.optimizer.state.map((t) => t.values), history: trainer.history, epochsRun: history, written: [...trainer.checkpointsWritten], steps: trainer.stepsPerEpoch };
  } finally {
    await trainer.close();
  }
}

describe('accumulation arithmetic', () => {
  it('groups an epoch from its first batch, the last group shorter; the optimizer counts updates', () => {
    // 12 batches, k = 5: updates end after batches 4, 9 and 11.
    expect([...Array(12).keys()].filter((s) => endsUpdate(s, 12, 5))).toEqual([4, 9, 11]);
    expect(optimizerStep(0, 0, 11, 12, 5)).toBe(3);
    expect(optimizerStep(0, 2, 4, 12, 5)).toBe(7); // epoch 3's first update: 2 epochs of 3 updates before it
    expect(optimizerStep(29, 2, 5, 12, 1)).toBe(30); // k = 1: the run's batches so far, plus one
    // Segments are cut back to update boundaries, but always hold at least one update.
    expect(alignSegmentEnd(0, 7, 12, 5)).toBe(5);
    expect(alignSegmentEnd(5, 7, 12, 5)).toBe(10);
    expect(alignSegmentEnd(10, 12, 12, 5)).toBe(12);
    expect(alignSegmentEnd(3, 9, 12, 1)).toBe(9);
  });
});

describe('training.accumulateSteps', () => {
  it('k = 4 at batch 8 equals batch 32 within 1e-5, with 2 replicas against 1; epochs count batches', async () => {
    const big = await train(config({ batchSize: 32, epochs: 1 }, 1));
    {
      const accumulated = await train(config({ batchSize: 8, accumulateSteps: 4, epochs: 1 }, 2));
      expect(accumulated.steps).toBe(12);
      expect(relativeDifference(accumulated.params, big.params)).toBeLessThan(1e-5);
      // The same samples at the same parameters: the same epoch losses and accuracies.
      accumulated.history.forEach((e, i) => {
        expect(e.loss).toBeCloseTo(big.history[i]!.loss, 5);
        expect(e.metrics.accuracy).toBeCloseTo(big.history[i]!.metrics.accuracy!, 6);
        expect(e.samples).toBe(90);
        expect(e.steps).toBe(12);
      });
    }
  });

  it('checkpoints land on update boundaries; resuming from one ends bitwise identical', async () => {
    const cfg = (dir: string) => config({ batchSize: 8, accumulateSteps: 5 }, 2, dir, { everySteps: 5, dir: join(dir, 'checkpoints') });
    const full = await train(cfg(mkdtempSync(join(tmpdir(), 'ringtrain-acc-'))), { checkpoints: true });
    const positions = await Promise.all(full.written.map(async (f) => (await readCheckpointFile(f)).position));
    // Updates end after batches 5, 10 and 12 of an epoch: every checkpoint is at one of them.
    for (const p of positions) expect([0, 5, 10]).toContain(p.stepInEpoch);
    expect(positions.some((p) => p.stepInEpoch === 5)).toBe(true);
    // From the first update boundary inside the first epoch: the rest crosses an epoch's end.
    const chosen = [full.written[positions.findIndex((p) => p.stepInEpoch === 5)]!];
    for (const file of chosen) {
      const resumed = await train(cfg(mkdtempSync(join(tmpdir(), 'ringtrain-acc-'))), { checkpoints: true, resumeFile: file });
      expect(bitwiseEqual(resumed.params, full.params)).toBe(true);
      resumed.optimizerState.forEach((values, i) => expect(bitwiseEqual(values, full.optimizerState[i]!)).toBe(true));
      expect(resumed.history.map((e) => e.loss)).toEqual(full.history.map((e) => e.loss));
    }
    // Another accumulation would renumber the optimizer's updates: refused, naming the field.
    const other = config({ batchSize: 8, accumulateSteps: 3 }, 1);
    const error = await train(other, { resumeFile: chosen[0] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain('training.accumulateSteps differs: the checkpoint has 5, the config 3');
  });

  it('refuses a bad accumulateSteps naming the field', () => {
    expect(() => config({ batchSize: 8, accumulateSteps: 0 }, 1)).toThrow('training.accumulateSteps: expected an integer from 1 to 65,536, found 0');
    expect(() => config({ batchSize: 8, accumulateSteps: 2.5 }, 1)).toThrow('training.accumulateSteps');
  });
});
