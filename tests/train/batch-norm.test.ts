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
import { loadCheckpoint } from '../../src/checkpoint/locate.js';
import { predictWithCheckpoint } from '../../src/train/checkpoint-model.js';

const SAMPLES = 48;
const random = mulberry32(11);
// Features far from zero mean and unit variance, so the moving statistics have somewhere to go.
const features = Float32Array.from({ length: SAMPLES * 6 }, (_, i) => 3 + (i % 6) + 2 * (random() * 2 - 1));
const labels = Float32Array.from({ length: SAMPLES }, (_, i) => i % 3);
const dataset = (): SharedDataset => createSharedDataset({ name: 'g', featureShape: [6], labelShape: [], features, labels });

const BN_LAYERS = [
  { type: 'dense', units: 8, activation: 'relu' },
  { type: 'batchNormalization', momentum: 0.8 },
  { type: 'dense', units: 3, activation: 'softmax' },
];

function bnConfig(extra: { workers?: number; dir?: string; batchSize?: number; layers?: object[]; checkpoint?: object; syncBatchNorm?: boolean } = {}): RunConfig {
  return parseRunConfig({
    name: 'batch-norm',
    model: { inputShape: [6], layers: extra.layers ?? BN_LAYERS },
    data: 'embedded-mnist',
    loss: 'sparseCategoricalCrossentropy',
    optimizer: { name: 'sgd', learningRate: 0.1 },
    training: { epochs: 2, batchSize: extra.batchSize ?? 12, shuffle: false, seed: 3 },
    backend: 'cpu',
    parallel: { workers: extra.workers ?? 1, syncBatchNorm: extra.syncBatchNorm ?? false },
    output: { dir: extra.dir ?? mkdtempSync(join(tmpdir(), 'ringtrain-bn-')), metricsLog: false },
    ...(extra.checkpoint ? { checkpoint: extra.checkpoint } : {}),
  });
}

async function train(config: RunConfig, checkpoints = false, resumeFile?: string) {
  const resume = resumeFile ? { file: resumeFile, state: await readCheckpointFile(resumeFile) } : undefined;
  const trainer = await Trainer.create(config, { data: { train: dataset() }, checkpoints, resume });
  try {
    await trainer.fit();
    const state = trainer.captureState();
    return { state, predictions: await trainer.predict(features), checkpoint: trainer.checkpointsWritten.at(-1), written: [...trainer.checkpointsWritten] };
  } finally {
    await trainer.close();
  }
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

const maxDifference = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
};

/** Plain TensorFlow.js in this thread: model.fit over the same batches (no shuffling), from the same seeded weights. */
async function fitReference(config: RunConfig): Promise<{ params: Float32Array; nonTrainable: Float32Array }> {
  await tf.setBackend('cpu');
  const model = await buildModel(config.model, config.training.seed);
  model.compile({ optimizer: tf.train.sgd(0.1), loss: 'sparseCategoricalCrossentropy' });
  const { epochs, batchSize } = config.training;
  await model.fit(tf.tensor(features, [SAMPLES, 6]), tf.tensor(labels, [SAMPLES]), { epochs, batchSize, shuffle: false, verbose: 0 });
  const layout = ParamLayout.fromModel(model);
  const nonTrainable = new Float32Array(layout.nonTrainableLength);
  layout.readNonTrainableFrom(model, nonTrainable);
  const params = new Float32Array(layout.length);
  layout.readFrom(model, params);
  model.dispose();
  return { params, nonTrainable };
}

afterAll(() => tf.disposeVariables());

describe('BatchNormalization moving statistics', () => {
  it('one replica moves them as TensorFlow.js model.fit does (same batches, the last uneven, within 1e-5)', async () => {
    const { state } = await train(bnConfig({ batchSize: 23 }));
    const expected = await fitReference(bnConfig({ batchSize: 23 }));
    expect(state.nonTrainableLayout!.map((e) => e.name.split('/').at(-1))).toEqual(['moving_mean', 'moving_variance']);
    expect(state.nonTrainable!.length).toBe(16);
    expect(maxDifference(state.nonTrainable!, expected.nonTrainable)).toBeLessThan(1e-5);
    expect(maxDifference(state.params, expected.params)).toBeLessThan(1e-5);
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
    // `ringtrain predict` (a Trainer started from the checkpoint) uses them too.
    const { outputs } = await predictWithCheckpoint(await loadCheckpoint(checkpoint!), features, { workers: 1 });
    expect(maxDifference(outputs, predictions)).toBeLessThan(1e-5);
  });

  it('with 3 replicas and uneven slices, each step moves them by the sample-weighted average of the slices\' moves; a frozen layer stays bitwise', async () => {
    // The dense layer before the normalisation is frozen: the statistics depend on the data alone.
    const layers = [{ ...BN_LAYERS[0], trainable: false }, ...BN_LAYERS.slice(1)];
    const config = bnConfig({ workers: 3, batchSize: 10, layers });
    const { state } = await train(config);

    // Reference, in this thread with TensorFlow.js alone: every global batch of 48 samples at
    // 10 (the last of 8) cut into 3 slices (4,3,3 ... 3,3,2); each slice's training pass starts
    // from the same statistics, and the new ones are the slices' results weighted by their size.
    await tf.setBackend('cpu');
    const model = await buildModel(config.model, config.training.seed);
    const layout = ParamLayout.fromModel(model);
    const initial = new Float32Array(layout.nonTrainableLength);
    layout.readNonTrainableFrom(model, initial);
    const [mean, variance] = model.nonTrainableWeights.filter((w) => /moving_(mean|variance)/.test(w.originalName));
    let current = { mean: mean!.read().dataSync().slice(), variance: variance!.read().dataSync().slice() };
    for (let epoch = 0; epoch < 2; epoch++) {
      for (let from = 0; from < SAMPLES; from += 10) {
        const count = Math.min(10, SAMPLES - from);
        const next = { mean: new Float64Array(8), variance: new Float64Array(8) };
        const sizes = [0, 1, 2].map((r) => Math.floor(count / 3) + (r < count % 3 ? 1 : 0));
        let start = from;
        for (const size of sizes) {
          mean!.write(tf.tensor(current.mean));
          variance!.write(tf.tensor(current.variance));
          tf.tidy(() => model.apply(tf.tensor(features.slice(start * 6, (start + size) * 6), [size, 6]), { training: true }));
          mean!.read().dataSync().forEach((v, i) => (next.mean[i]! += (v * size) / count));
          variance!.read().dataSync().forEach((v, i) => (next.variance[i]! += (v * size) / count));
          start += size;
        }
        current = { mean: Float32Array.from(next.mean), variance: Float32Array.from(next.variance) };
      }
    }
    model.dispose();

    const names = state.nonTrainableLayout!.map((e) => e.name.split('/').at(-1));
    expect(names).toEqual(['kernel', 'bias', 'moving_mean', 'moving_variance']);
    const [kernel, bias, movingMean, movingVariance] = state.nonTrainableLayout!.map((e) => state.nonTrainable!.subarray(e.offset, e.offset + e.size));
    expect(bytes(kernel!)).toEqual(bytes(initial.subarray(0, 48)));
    expect(bytes(bias!)).toEqual(bytes(initial.subarray(48, 56)));
    expect(maxDifference(movingMean!, current.mean)).toBeLessThan(1e-5);
    expect(maxDifference(movingVariance!, current.variance)).toBeLessThan(1e-5);
    expect(maxDifference(movingMean!, initial.subarray(56, 64))).toBeGreaterThan(0.1);
  });

  it('a resumed run continues them bitwise; a checkpoint without them is refused (resume and export) for a model that has them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-bn-resume-'));
    const config = bnConfig({ workers: 2, dir, checkpoint: { everySteps: 3, keepLast: 100 } });
    const full = await train(config, true);
    // 4 steps per epoch: the first checkpoint is at step 3, in the middle of epoch 1.
    const middle = full.written[0]!;
    const saved = await readCheckpointFile(middle);
    expect(saved.position.globalStep).toBeGreaterThan(0);
    expect(saved.position.globalStep).toBeLessThan(full.state.position.globalStep);
    const resumed = await train(bnConfig({ workers: 2, dir: mkdtempSync(join(tmpdir(), 'ringtrain-bn-resumed-')) }), false, middle);
    expect(bytes(resumed.state.nonTrainable!)).toEqual(bytes(full.state.nonTrainable!));
    expect(bytes(resumed.state.params)).toEqual(bytes(full.state.params));

    // As written before ringtrain kept them: no non-trainable weights.
    const { nonTrainable: _values, nonTrainableLayout: _layout, ...old } = saved;
    const trainerOptions = { data: { train: dataset() }, resume: { file: 'old.rtckpt', state: old } };
    await expect(exportTfjs(old, join(dir, 'old-export'), 'old.rtckpt')).rejects.toThrow(
      /old\.rtckpt: invalid contents: nonTrainableLayout: expected the non-trainable weights of modelTopology \[8\] \[8\], found none \(written by a ringtrain that did not save them\)/,
    );
    await expect(Trainer.create(config, trainerOptions)).rejects.toThrow(
      /cannot resume from old\.rtckpt: the checkpoint has no non-trainable weights \(it was written by a ringtrain that did not save them\), the config's model has .*moving_mean\[8\]/,
    );
  });

  it('parallel.syncBatchNorm: 1, 2 and 3 replicas agree within 1e-5 (weights, moving statistics, loss) and equal model.fit on the whole batches', async () => {
    // 48 samples at 23: batches of 23, 23 and 2; with 3 replicas the last leaves one replica
    // without samples (it still takes part in the sums), one with a single sample (variance 0 alone).
    const runs = [];
    for (const workers of [1, 2, 3]) {
      const trainer = await Trainer.create(bnConfig({ workers, batchSize: 23, syncBatchNorm: true }), { data: { train: dataset() } });
      try {
        const epochs = await trainer.fit();
        runs.push({ state: trainer.captureState(), loss: epochs.at(-1)!.loss, predictions: await trainer.predict(features) });
      } finally {
        await trainer.close();
      }
    }
    const expected = await fitReference(bnConfig({ batchSize: 23 }));
    for (const run of runs) {
      expect(maxDifference(run.state.params, runs[0]!.state.params)).toBeLessThan(1e-5);
      expect(maxDifference(run.state.nonTrainable!, runs[0]!.state.nonTrainable!)).toBeLessThan(1e-5);
      expect(Math.abs(run.loss - runs[0]!.loss)).toBeLessThan(1e-5);
      expect(maxDifference(run.predictions, runs[0]!.predictions)).toBeLessThan(1e-5);
      expect(maxDifference(run.state.params, expected.params)).toBeLessThan(1e-5);
      expect(maxDifference(run.state.nonTrainable!, expected.nonTrainable)).toBeLessThan(1e-5);
    }
  });
});
