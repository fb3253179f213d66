/**
 * Non-trainable weights (BatchNormalization's moving mean and variance) live in the shared
 * state: one replica moves them exactly as TensorFlow.js's own model.fit does, several
 * replicas average their moves, and checkpoints, export and predict all carry them.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { exportTfjs } from '../../src/checkpoint/export-tfjs.js';
import { readCheckpointFile } from '../../src/checkpoint/format.js';
import { parseRunConfig } from '../../src/config/load.js';
import type { RunConfig } from '../../src/config/schema.js';
import { createSharedDataset, type SharedDataset } from '../../src/data/dataset.js';
import { buildModel } from '../../src/model/build-model.js';
import { ParamLayout } from '../../src/model/param-layout.js';
import { tfjsFileHandler } from '../../src/model/tfjs-files.js';
import { Trainer } from '../../src/train/trainer.js';
import { mulberry32 } from '../../src/util/random.js';

const SAMPLES = 48;
const random = mulberry32(11);
// Features far from zero mean and unit variance, so the moving statistics have somewhere to go.
const features = Float32Array.from({ length: SAMPLES * 6 }, (_, i) => 3 + (i % 6) + 2 * (random() * 2 - 1));
const labels = Float32Array.from({ length: SAMPLES }, (_, i) => i % 3);
const dataset = (): SharedDataset => createSharedDataset({ name: 'g', featureShape: [6], labelShape: [], features, labels });

function bnConfig(extra: { workers?: number; dir?: string } = {}): RunConfig {
  return parseRunConfig({
    name: 'batch-norm',
    model: {
      inputShape: [6],
      layers: [
        { type: 'dense', units: 8, activation: 'relu' },
        { type: 'batchNormalization', momentum: 0.8 },
        { type: 'dense', units: 3, activation: 'softmax' },
      ],
    },
    data: 'embedded-mnist',
    loss: 'sparseCategoricalCrossentropy',
    optimizer: { name: 'sgd', learningRate: 0.1 },
    training: { epochs: 2, batchSize: 12, shuffle: false, seed: 3 },
    backend: 'cpu',
    parallel: { workers: extra.workers ?? 1 },
    output: { dir: extra.dir ?? mkdtempSync(join(tmpdir(), 'ringtrain-bn-')), metricsLog: false },
  });
}

async function train(config: RunConfig, checkpoints = false) {
  const trainer = await Trainer.create(config, { data: { train: dataset() }, checkpoints });
  try {
    await trainer.fit();
    const state = trainer.captureState();
    return { state, predictions: await trainer.predict(features), checkpoint: trainer.checkpointsWritten.at(-1) };
  } finally {
    await trainer.close();
  }
}

const maxDifference = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
};

afterAll(() => tf.disposeVariables());

describe('BatchNormalization moving statistics', () => {
  it('one replica moves them as TensorFlow.js model.fit does (same batches, within 1e-5)', async () => {
    const config = bnConfig();
    const { state } = await train(config);

    await tf.setBackend('cpu');
    const model = await buildModel(config.model, config.training.seed);
    model.compile({ optimizer: tf.train.sgd(0.1), loss: 'sparseCategoricalCrossentropy' });
    await model.fit(tf.tensor(features, [SAMPLES, 6]), tf.tensor(labels, [SAMPLES]), { epochs: 2, batchSize: 12, shuffle: false, verbose: 0 });
    const layout = ParamLayout.fromModel(model);
    const expected = new Float32Array(layout.nonTrainableLength);
    layout.readNonTrainableFrom(model, expected);
    const params = new Float32Array(layout.length);
    layout.readFrom(model, params);
    model.dispose();

    expect(state.nonTrainableLayout!.map((e) => e.name)).toEqual(['batch_normalization/moving_mean', 'batch_normalization/moving_variance'].map((n) => expect.stringContaining(n.split('/')[1]!)));
    expect(state.nonTrainable!.length).toBe(16);
    expect(maxDifference(state.nonTrainable!, expected)).toBeLessThan(1e-5);
    expect(maxDifference(state.params, params)).toBeLessThan(1e-5);
    // They did move from their start (mean 0, variance 1).
    expect(Math.max(...Array.from(state.nonTrainable!.subarray(0, 8), Math.abs))).toBeGreaterThan(0.1);
  });

  it('a checkpoint carries them: the exported model predicts as Trainer.predict does (within 1e-5), with 2 replicas', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-bn-export-'));
    const { state, predictions, checkpoint } = await train(bnConfig({ workers: 2, dir }), true);
    const saved = await readCheckpointFile(checkpoint!);
    expect(Buffer.from(saved.nonTrainable!.buffer).equals(Buffer.from(state.nonTrainable!.buffer))).toBe(true);
    const modelJson = await exportTfjs(saved, join(dir, 'export'));

    await tf.setBackend('cpu');
    const model = await tf.loadLayersModel(tfjsFileHandler(modelJson));
    const exported = (model.predict(tf.tensor(features, [SAMPLES, 6])) as tf.Tensor).dataSync();
    model.dispose();
    expect(maxDifference(exported, predictions)).toBeLessThan(1e-5);
  });
});
