/**
 * Resume: from any step boundary, with the same replica count, a run ends bitwise identical
 * (weights and optimizer state) to the uninterrupted run; with another replica count it sees
 * the same global batches and ends within 1e-5.
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
import { Trainer } from '../../src/train/trainer.js';
import { mulberry32 } from '../../src/util/random.js';

const random = mulberry32(21);
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

function config(dir: string, workers: number, overrides: Partial<RunConfig['optimizer']> = {}, dropout = 0.25): RunConfig {
  return parseRunConfig({
    name: 'resume',
    model: {
      inputShape: [6, 6, 1],
      layers: [
        { type: 'conv2d', filters: 3, kernelSize: 3, activation: 'relu' },
        { type: 'flatten' },
        // Dropout masks are drawn per replica (as in DDP), so only runs with the same replica
        // count can match bitwise; the test across counts leaves it out (rate 0).
        { type: 'dropout', rate: dropout },
        { type: 'dense', units: 4, activation: 'softmax' },
      ],
    },
    data: 'embedded-mnist',
    loss: 'sparseCategoricalCrossentropy',
    metrics: ['accuracy'],
    optimizer: { name: 'adam', learningRate: 0.01, ...overrides },
    // 90 samples at batch 16: 6 steps per epoch, the last one uneven (10 samples).
    training: { epochs: 3, batchSize: 16, seed: 3, validationSplit: 0 },
    parallel: { workers },
    backend: 'cpu',
    output: { dir, metricsLog: false },
    checkpoint: { everySteps: 4, everyEpoch: true, everySeconds: 0, keepLast: 100 },
  });
}

async function run(cfg: RunConfig, resumeFile?: string) {
  const resume = resumeFile ? { file: resumeFile, state: await readCheckpointFile(resumeFile) } : undefined;
  const trainer = await Trainer.create(cfg, { data, checkpoints: true, resume });
  try {
    await trainer.fit();
    const state = trainer.captureState();
    return { params: state.params, optimizerState: state.optimizer.state.map((t) => t.values), written: [...trainer.checkpointsWritten], stats: trainer.checkpointStats, history: trainer.history };
  } finally {
    await trainer.close();
  }
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('checkpoint and resume', () => {
  it('resuming from every checkpoint with the same replica count ends bitwise identical', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-resume-'));
    const full = await run(config(dir, 2));
    // every 4 steps and at every epoch end over 18 steps; a periodic one may be replaced by a
    // newer state when the disk lags (checkpointing.ts), never an epoch-end one
    const positions = await Promise.all(full.written.map(async (f) => (await readCheckpointFile(f)).position));
    const all = ['0:4:4', '1:0:6', '1:2:8', '2:0:12', '2:4:16', '3:0:18'];
    expect(positions.map((p) => `${p.epoch}:${p.stepInEpoch}:${p.globalStep}`)).toEqual(all.filter((p, i) => p.includes(':0:') || positions.some((q) => q.globalStep === [4, 6, 8, 12, 16, 18][i])));
    expect(full.stats.written + full.stats.skipped).toBe(all.length);
    for (const file of full.written.slice(0, -1)) {
      const resumed = await run(config(mkdtempSync(join(tmpdir(), 'ringtrain-resume-')), 2), file);
      expect(bytes(resumed.params).equals(bytes(full.params))).toBe(true);
      resumed.optimizerState.forEach((values, i) => expect(bytes(values).equals(bytes(full.optimizerState[i]!))).toBe(true));
      // The epoch records carry on from the checkpoint's last one (the only one it keeps): same
      // losses as the uninterrupted run.
      const { epoch } = (await readCheckpointFile(file)).position;
      expect(resumed.history.map((e) => e.epoch)).toEqual(full.history.slice(Math.max(0, epoch - 1)).map((e) => e.epoch));
      expect(resumed.history.map((e) => e.loss)).toEqual(full.history.slice(Math.max(0, epoch - 1)).map((e) => e.loss));
    }
  });

  it('resuming with another replica count keeps the global batches: within 1e-5 of the uninterrupted run', async () => {
    const full = await run(config(mkdtempSync(join(tmpdir(), 'ringtrain-resume-')), 2, {}, 0));
    // (step 12, an epoch end, when step 8 was replaced by a newer state under disk lag)
    const middle = (full.written.find((f) => f.includes('-s000008')) ?? full.written.find((f) => f.includes('-s000012')))!;
    for (const workers of [1, 3]) {
      const resumed = await run(config(mkdtempSync(join(tmpdir(), 'ringtrain-resume-')), workers, {}, 0), middle);
      let diff = 0;
      let norm = 0;
      resumed.params.forEach((v, i) => {
        diff += (v - full.params[i]!) ** 2;
        norm += full.params[i]! ** 2;
      });
      expect(Math.sqrt(diff / norm)).toBeLessThan(1e-5);
    }
  });

  it('a checkpoint of another optimizer or model is refused, saying what differs; warm start takes the weights', async () => {
    const full = await run(config(mkdtempSync(join(tmpdir(), 'ringtrain-resume-')), 1));
    const file = full.written[0]!;
    const state = await readCheckpointFile(file);
    const other = config(mkdtempSync(join(tmpdir(), 'ringtrain-resume-')), 1, { learningRate: 0.02 });
    const refused = await Trainer.create(other, { data, resume: { file, state } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(UserError);
    expect((refused as UserError).message).toBe(`cannot resume from ${file}: optimizer.learningRate differs: the checkpoint has 0.01, the config 0.02`);
    expect((refused as UserError).hint).toBe('pass --warm-start to start a new run from its weights alone');

    const smaller = parseRunConfig({ ...JSON.parse(JSON.stringify(other)), model: { inputShape: [6, 6, 1], layers: [{ type: 'flatten' }, { type: 'dense', units: 4, activation: 'softmax' }] } });
    await expect(Trainer.create(smaller, { data, warmStart: { file, state } })).rejects.toThrow(
      `cannot warm-start from ${file}: the model differs: the checkpoint has conv2d_1/kernel[3,3,1,3] conv2d_1/bias[3] dense_4/kernel[48,4] dense_4/bias[4], the config's model dense_2/kernel[36,4] dense_2/bias[4]`,
    );

    const warm = await Trainer.create(other, { data, warmStart: { file, state } });
    try {
      expect(bytes(warm.params()).equals(bytes(state.params))).toBe(true);
      expect(warm.position).toEqual({ epoch: 0, stepInEpoch: 0 });
    } finally {
      await warm.close();
    }
  });
});
