/**
 * N replicas must equal one replica and plain single-thread TensorFlow.js training with the
 * same global batches: the same config trained with 1, 2 and 3 replicas for 20 steps ends
 * with the same weights (1e-5 relative), and so does `model.trainOnBatch` over those batches.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/config/load.js';
import type { RunConfig } from '../../src/config/schema.js';
import { createSharedDataset, DatasetReader, type SharedDataset } from '../../src/data/dataset.js';
import { epochPermutation, globalBatchRange, stepsPerEpoch } from '../../src/data/sampler.js';
import { buildModel } from '../../src/model/build-model.js';
import { ParamLayout } from '../../src/model/param-layout.js';
import { Trainer } from '../../src/train/trainer.js';
import { mulberry32 } from '../../src/util/random.js';
import { bitwiseEqual, mlpEquivalenceConfig, relativeDifference } from '../helpers/equivalence.js';

function generatedImages(samples: number, shape: number[], classes: number, seed: number): SharedDataset {
  const random = mulberry32(seed);
  const perSample = shape.reduce((a, b) => a * b, 1);
  const features = new Uint8Array(samples * perSample).map(() => Math.floor(random() * 256));
  const labels = Float32Array.from({ length: samples }, () => Math.floor(random() * classes));
  return createSharedDataset({ name: 'generated', featureShape: shape, labelShape: [], features, labels, featureScale: 1 / 255 });
}

async function trainWithReplicas(config: RunConfig, data: SharedDataset, workers: number, initialParams: Float32Array) {
  const trainer = await Trainer.create({ ...config, parallel: { ...config.parallel, workers } }, { data: { train: data }, initialParams });
  try {
    const [epoch] = await trainer.fit(1);
    return { params: trainer.params(), epoch: epoch! };
  } finally {
    await trainer.close();
  }
}

/** Plain TF.js: trainOnBatch over the same global batches, in this thread. */
async function trainPlain(config: RunConfig, data: SharedDataset, initialParams: Float32Array, backend: string): Promise<Float32Array> {
  await tf.setBackend(backend);
  const model = await buildModel(config.model, config.training.seed);
  const layout = ParamLayout.fromModel(model);
  model.setWeights(layout.entries.map((e) => tf.tensor(initialParams.slice(e.offset, e.offset + e.size), e.shape as number[])));
  model.compile({ optimizer: tf.train.adam(config.optimizer.learningRate ?? 0.001), loss: config.loss.name });
  const order = epochPermutation(data.size, config.training.seed, 0);
  const reader = new DatasetReader(data);
  for (let step = 0; step < stepsPerEpoch(data.size, config.training.batchSize); step++) {
    const [from, to] = globalBatchRange(data.size, config.training.batchSize, step);
    const x = new Float32Array((to - from) * reader.perSample);
    const y = new Float32Array(to - from);
    reader.gather(order, from, to, x, y);
    await model.trainOnBatch(tf.tensor(x, [to - from, ...data.featureShape]), tf.tensor(y, [to - from]));
  }
  const params = new Float32Array(layout.length);
  layout.readFrom(model, params);
  model.dispose();
  return params;
}

async function initialParamsOf(config: RunConfig): Promise<Float32Array> {
  await tf.setBackend('cpu');
  const model = await buildModel(config.model, config.training.seed);
  const layout = ParamLayout.fromModel(model);
  const params = new Float32Array(layout.length);
  layout.readFrom(model, params);
  model.dispose();
  return params;
}

const mlpConfig = parseRunConfig(mlpEquivalenceConfig);

const cnnConfig = parseRunConfig({
  name: 'cnn-equivalence',
  model: {
    inputShape: [8, 8, 1],
    layers: [
      { type: 'conv2d', filters: 4, kernelSize: 3, activation: 'relu' },
      { type: 'maxPooling2d', poolSize: 2 },
      { type: 'flatten' },
      { type: 'dense', units: 10, activation: 'softmax' },
    ],
  },
  data: { source: 'embedded-mnist' },
  loss: 'sparseCategoricalCrossentropy',
  optimizer: { name: 'adam', learningRate: 0.01 },
  training: { epochs: 1, batchSize: 10, seed: 9 },
  backend: 'cpu',
  output: { metricsLog: false },
});

afterAll(() => tf.disposeVariables());

describe('data-parallel training equals single-thread training', () => {
  it('mnist-mlp shape on wasm: 1, 2 and 3 replicas and plain TF.js agree within 1e-5 after 20 steps', async () => {
    const data = generatedImages(630, [28, 28, 1], 10, 1);
    const initial = await initialParamsOf(mlpConfig);
    const runs = [];
    for (const workers of [1, 2, 3]) runs.push(await trainWithReplicas(mlpConfig, data, workers, initial));
    const plain = await trainPlain(mlpConfig, data, initial, 'wasm');
    for (const run of runs) {
      expect(run.epoch.steps).toBe(20);
      expect(run.epoch.samples).toBe(630);
      expect(relativeDifference(run.params, runs[0]!.params)).toBeLessThan(1e-5);
      expect(relativeDifference(run.params, plain)).toBeLessThan(1e-5);
    }
    // The weights did move: equality is not the trivial kind.
    expect(relativeDifference(plain, initial)).toBeGreaterThan(1e-2);
    // Losses are sums over all samples, so the epoch loss is the same for every N.
    expect(Math.abs(runs[1]!.epoch.loss - runs[0]!.epoch.loss)).toBeLessThan(1e-5 * runs[0]!.epoch.loss);
  });

  it('a tiny CNN on the cpu backend: 1, 2 and 3 replicas and plain TF.js agree within 1e-5 after 20 steps', async () => {
    const data = generatedImages(195, [8, 8, 1], 10, 2);
    const initial = await initialParamsOf(cnnConfig);
    const runs = [];
    for (const workers of [1, 2, 3]) runs.push(await trainWithReplicas(cnnConfig, data, workers, initial));
    const plain = await trainPlain(cnnConfig, data, initial, 'cpu');
    for (const run of runs) {
      expect(run.epoch.steps).toBe(20);
      expect(relativeDifference(run.params, runs[0]!.params)).toBeLessThan(1e-5);
      expect(relativeDifference(run.params, plain)).toBeLessThan(1e-5);
    }
    expect(relativeDifference(plain, initial)).toBeGreaterThan(1e-2);
  });

  it('the same N and seed repeat bitwise; the direct reduce-scatter gives the ring\'s bits', async () => {
    const data = generatedImages(100, [28, 28, 1], 10, 3);
    const initial = await initialParamsOf(mlpConfig);
    const config = { ...mlpConfig, training: { ...mlpConfig.training, batchSize: 16 } };
    const first = await trainWithReplicas(config, data, 2, initial);
    const second = await trainWithReplicas(config, data, 2, initial);
    expect(bitwiseEqual(second.params, first.params)).toBe(true);
    const trainer = await Trainer.create({ ...config, parallel: { ...config.parallel, workers: 2 } }, { data: { train: data }, initialParams: initial, reduceScatter: 'direct' });
    await trainer.fit(1);
    const direct = trainer.params();
    await trainer.close();
    expect(bitwiseEqual(direct, first.params)).toBe(true);
  });

  it('dropout masks are seeded from the step: a run with dropout repeats bitwise', async () => {
    const data = generatedImages(64, [28, 28, 1], 10, 4);
    const withDropout = parseRunConfig({
      ...JSON.parse(JSON.stringify(mlpConfig)),
      model: {
        inputShape: [28, 28, 1],
        layers: [{ type: 'flatten' }, { type: 'dense', units: 32, activation: 'relu' }, { type: 'dropout', rate: 0.5 }, { type: 'dense', units: 10, activation: 'softmax' }],
      },
    });
    const initial = await initialParamsOf(withDropout);
    const first = await trainWithReplicas(withDropout, data, 2, initial);
    const second = await trainWithReplicas(withDropout, data, 2, initial);
    expect(bitwiseEqual(second.params, first.params)).toBe(true);
    expect(relativeDifference(first.params, initial)).toBeGreaterThan(1e-3);
  });
});
