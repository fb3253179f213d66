/**
 * Class weights, per-sample weights and the model's own losses (weight regularizers), each
 * against a reference that does not go through ringtrain's loss code: tfjs-layers' model.fit
 * (classWeight, regularizers) or a plain TF.js loop written here (sample weights, which
 * tfjs-layers' fit does not implement). Each with 2 replicas, so N replicas equal one too.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/config/load.js';
import type { RunConfig } from '../../src/config/schema.js';
import { createSharedDataset, DatasetReader, type SharedDataset } from '../../src/data/dataset.js';
import { DataError } from '../../src/errors.js';
import { epochPermutation, globalBatchRange, stepsPerEpoch } from '../../src/data/sampler.js';
import { buildModel } from '../../src/model/build-model.js';
import { layerLossShare } from '../../src/model/layer-losses.js';
import { ParamLayout } from '../../src/model/param-layout.js';
import { Trainer } from '../../src/train/trainer.js';
import { mulberry32 } from '../../src/util/random.js';
import { relativeDifference } from '../helpers/equivalence.js';

const SAMPLES = 70;
const BATCH = 16; // 5 batches, the last of 6 samples
const LR = 0.5;

function generated(seed: number, labels: 'classes' | 'targets', weights?: number[]): SharedDataset {
  const random = mulberry32(seed);
  return createSharedDataset({
    name: 'generated',
    featureShape: [5],
    labelShape: labels === 'classes' ? [] : [1],
    features: Float32Array.from({ length: SAMPLES * 5 }, () => random() * 2 - 1),
    labels: Float32Array.from({ length: SAMPLES }, () => (labels === 'classes' ? Math.floor(random() * 3) : random() * 4 - 2)),
    ...(weights ? { weights } : {}),
  });
}

function config(layers: Record<string, unknown>[], loss: string, training: Record<string, unknown> = {}): RunConfig {
  return parseRunConfig({
    name: 'loss-weights',
    model: { inputShape: [5], layers },
    data: 'embedded-mnist',
    loss,
    optimizer: { name: 'sgd', learningRate: LR },
    training: { epochs: 1, batchSize: BATCH, seed: 6, ...training },
    parallel: { workers: 2 },
    backend: 'cpu',
    output: { metricsLog: false },
  });
}

async function trainRingtrain(cfg: RunConfig, data: SharedDataset) {
  const trainer = await Trainer.create(cfg, { data: { train: data } });
  try {
    const [epoch] = await trainer.fit();
    return { params: trainer.params(), loss: epoch!.loss, evaluation: await trainer.evaluate('train') };
  } finally {
    await trainer.close();
  }
}

/** The model of `cfg` in this thread, its weights, and the run's epoch data in the run's order. */
async function plainSetup(cfg: RunConfig, data: SharedDataset) {
  const model = await buildModel(cfg.model, cfg.training.seed);
  const layout = ParamLayout.fromModel(model);
  const initial = new Float32Array(layout.length);
  layout.readFrom(model, initial);
  const order = epochPermutation(data.size, cfg.training.seed, 0);
  const reader = new DatasetReader(data);
  const x = new Float32Array(data.size * 5);
  const y = new Float32Array(data.size * reader.perLabel);
  reader.gather(order, 0, data.size, x, y);
  const w = reader.gatherWeights(order, 0, data.size);
  const read = () => {
    const out = new Float32Array(layout.length);
    layout.readFrom(model, out);
    return out;
  };
  return { model, initial, x, y, w, read };
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => tf.disposeVariables());

describe('training.classWeight', () => {
  it("equals tfjs-layers' model.fit with classWeight within 1e-5 (weights and epoch loss), with 2 replicas", async () => {
    const classWeight = { '0': 1, '1': 4, '2': 0.25 };
    const layers = [{ type: 'dense', units: 3, activation: 'softmax' }];
    const cfg = config(layers, 'sparseCategoricalCrossentropy', { classWeight });
    const data = generated(1, 'classes');
    const ours = await trainRingtrain(cfg, data);

    const plain = await plainSetup(cfg, data);
    plain.model.compile({ optimizer: tf.train.sgd(LR), loss: 'sparseCategoricalCrossentropy' });
    const history = await plain.model.fit(tf.tensor2d(plain.x, [SAMPLES, 5]), tf.tensor1d(plain.y), { batchSize: BATCH, epochs: 1, shuffle: false, classWeight: { 0: 1, 1: 4, 2: 0.25 }, verbose: 0 });
    const reference = plain.read();
    expect(relativeDifference(ours.params, reference)).toBeLessThan(1e-5);
    expect(ours.loss).toBeCloseTo(history.history.loss![0] as number, 5);

    // The weights matter: unweighted training (the same fit without classWeight) ends elsewhere.
    plain.model.setWeights(ParamLayout.fromModel(plain.model).entries.map((e) => tf.tensor(plain.initial.slice(e.offset, e.offset + e.size), e.shape as number[])));
    await plain.model.fit(tf.tensor2d(plain.x, [SAMPLES, 5]), tf.tensor1d(plain.y), { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
    expect(relativeDifference(plain.read(), reference)).toBeGreaterThan(1e-3);
    plain.model.dispose();
  });

  it('refuses a weight that is not a number >= 0 or a key that is not a class index, naming the field', () => {
    const layers = [{ type: 'dense', units: 3 }];
    expect(() => config(layers, 'sparseCategoricalCrossentropy', { classWeight: { '0': -1 } })).toThrow('training.classWeight["0"]: expected a number >= 0, found -1');
    expect(() => config(layers, 'sparseCategoricalCrossentropy', { classWeight: { one: 1 } })).toThrow('training.classWeight');
  });
});

describe('per-sample weights (SharedDataset.weights)', () => {
  it('train as loss_i * w_i summed over the batch and divided by its size (Keras), against plain TF.js', async () => {
    const random = mulberry32(9);
    const weights = Array.from({ length: SAMPLES }, (_, i) => (i % 7 === 0 ? 0 : random() * 3));
    const data = generated(2, 'targets', weights);
    const cfg = config([{ type: 'dense', units: 4, activation: 'tanh' }, { type: 'dense', units: 1 }], 'meanSquaredError');
    const ours = await trainRingtrain(cfg, data);

    // The Keras semantic written out: mean over the batch of w_i * (p_i - y_i)^2, plain SGD.
    const plain = await plainSetup(cfg, data);
    const variables = plain.model.trainableWeights.map((v) => v.read() as tf.Variable);
    const trainPlain = (w: Float32Array) => {
      variables.forEach((v, i) => v.assign(tf.tensor(plain.initial.slice(...span(i)), v.shape)));
      for (let step = 0; step < stepsPerEpoch(SAMPLES, BATCH); step++) {
        const [from, to] = globalBatchRange(SAMPLES, BATCH, step);
        const xs = tf.tensor2d(plain.x.slice(from * 5, to * 5), [to - from, 5]);
        const ys = tf.tensor2d(plain.y.slice(from, to), [to - from, 1]);
        const ws = tf.tensor2d(w.slice(from, to), [to - from, 1]);
        const { grads } = tf.variableGrads(() => tf.div(tf.sum(tf.mul(ws, tf.square(tf.sub(plain.model.predict(xs) as tf.Tensor, ys)))), to - from) as tf.Scalar, variables);
        for (const v of variables) v.assign(tf.sub(v, tf.mul(LR, grads[v.name]!)));
      }
      return plain.read();
    };
    const span = (i: number): [number, number] => {
      const e = ParamLayout.fromModel(plain.model).entries[i]!;
      return [e.offset, e.offset + e.size];
    };
    // The weights matter: with every weight 1 the run ends elsewhere.
    const unweighted = trainPlain(new Float32Array(SAMPLES).fill(1));
    const reference = trainPlain(plain.w);
    expect(relativeDifference(unweighted, reference)).toBeGreaterThan(1e-3);
    expect(relativeDifference(ours.params, reference)).toBeLessThan(1e-5);

    // Evaluation weighs the samples too (as Keras's validation sample weights), not class weights.
    plain.model.setWeights(ParamLayout.fromModel(plain.model).entries.map((e) => tf.tensor(ours.params.slice(e.offset, e.offset + e.size), e.shape as number[])));
    const predicted = (plain.model.predict(tf.tensor2d(plain.x, [SAMPLES, 5])) as tf.Tensor).dataSync();
    let weighted = 0;
    for (let i = 0; i < SAMPLES; i++) weighted += plain.w[i]! * (predicted[i]! - plain.y[i]!) ** 2;
    expect(ours.evaluation.loss).toBeCloseTo(weighted / SAMPLES, 5);
    plain.model.dispose();
  });

  it('refuses weights of the wrong count or value, naming the dataset', () => {
    expect(() => generated(3, 'targets', [1, 2])).toThrow(DataError);
    expect(() => generated(3, 'targets', [1, 2])).toThrow(`generated: expected ${SAMPLES} sample weights for ${SAMPLES} samples, found 2`);
    const bad = Array.from({ length: SAMPLES }, (_, i) => (i === 4 ? Number.NaN : 1));
    expect(() => generated(3, 'targets', bad)).toThrow('generated: sample weight 4 must be a finite number >= 0, found NaN');
  });
});

describe("the model's own losses", () => {
  const regularized = [
    { type: 'dense', units: 6, activation: 'relu', kernelRegularizer: { l1: 0.02 }, biasRegularizer: 'l2' },
    { type: 'dense', units: 3, activation: 'softmax', kernelRegularizer: { l2: 0.05 } },
  ];

  it("kernelRegularizer l1 and l2 count in the loss and the gradient: equal to tfjs-layers' model.fit within 1e-5", async () => {
    const cfg = config(regularized, 'sparseCategoricalCrossentropy');
    const data = generated(4, 'classes');
    const ours = await trainRingtrain(cfg, data);

    const plain = await plainSetup(cfg, data);
    plain.model.compile({ optimizer: tf.train.sgd(LR), loss: 'sparseCategoricalCrossentropy' });
    const history = await plain.model.fit(tf.tensor2d(plain.x, [SAMPLES, 5]), tf.tensor1d(plain.y), { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
    const reference = plain.read();
    expect(relativeDifference(ours.params, reference)).toBeLessThan(1e-5);
    // The reported loss includes the penalty, as tfjs and Keras report it.
    expect(ours.loss).toBeCloseTo(history.history.loss![0] as number, 5);

    // Evaluation: the samples' mean loss plus the penalty, written out from the final weights.
    plain.model.setWeights(ParamLayout.fromModel(plain.model).entries.map((e) => tf.tensor(ours.params.slice(e.offset, e.offset + e.size), e.shape as number[])));
    const meanLoss = (plain.model.evaluate(tf.tensor2d(plain.x, [SAMPLES, 5]), tf.tensor1d(plain.y)) as tf.Scalar).dataSync()[0]!;
    const [k1, b1, k2] = plain.model.getWeights().map((t) => Array.from(t.dataSync()));
    const penalty = 0.02 * k1!.reduce((s, v) => s + Math.abs(v), 0) + 0.01 * b1!.reduce((s, v) => s + v * v, 0) + 0.05 * k2!.reduce((s, v) => s + v * v, 0);
    expect(penalty).toBeGreaterThan(0.01);
    expect(ours.evaluation.loss).toBeCloseTo(meanLoss + penalty, 5);

    // Without the regularizers (the same start) the fit ends elsewhere: the penalty's gradient matters.
    const free = await plainSetup(config([{ type: 'dense', units: 6, activation: 'relu' }, { type: 'dense', units: 3, activation: 'softmax' }], 'sparseCategoricalCrossentropy'), data);
    expect(Array.from(free.initial)).toEqual(Array.from(plain.initial));
    free.model.compile({ optimizer: tf.train.sgd(LR), loss: 'sparseCategoricalCrossentropy' });
    await free.model.fit(tf.tensor2d(free.x, [SAMPLES, 5]), tf.tensor1d(free.y), { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
    expect(relativeDifference(free.read(), reference)).toBeGreaterThan(1e-3);
    plain.model.dispose();
    free.model.dispose();
  });

  it('a loss a layer adds itself (addLoss) counts, once per sample share, in value and gradient', () => {
    class PenalizedDense extends tf.layers.Layer {
      static className = 'PenalizedDense';
      private kernel!: tf.LayerVariable;
      override build(inputShape: tf.Shape | tf.Shape[]): void {
        this.kernel = this.addWeight('kernel', [(inputShape as number[])[1]!, 2], 'float32', tf.initializers.ones());
        this.addLoss(() => tf.mul(0.5, tf.sum(tf.square(this.kernel.read()))) as tf.Scalar);
        this.built = true;
      }
      override computeOutputShape(inputShape: tf.Shape): tf.Shape {
        return [inputShape[0]!, 2];
      }
      override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
        return tf.matMul(Array.isArray(inputs) ? inputs[0]! : inputs, this.kernel.read());
      }
    }
    const model = tf.sequential({ layers: [new PenalizedDense({ inputShape: [3] })] });
    const kernel = model.trainableWeights[0]!.read() as tf.Variable;
    // As in a replica's step: the forward pass first (a Sequential builds its graph there), then the share.
    const { value, grads } = tf.variableGrads(() => {
      const out = model.apply(tf.zeros([7, 3]), { training: true }) as tf.Tensor;
      return tf.add(tf.sum(out), layerLossShare(model, 7)!) as tf.Scalar;
    }, [kernel]);
    // 7 samples' share of 0.5 * sum(k^2) over a 3x2 kernel of ones, and its gradient 7 * k.
    expect(value.dataSync()[0]).toBeCloseTo(7 * 0.5 * 6, 5);
    expect(Array.from(grads[kernel.name]!.dataSync())).toEqual([7, 7, 7, 7, 7, 7]);
    const plainDense = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
    plainDense.predict(tf.zeros([1, 2]));
    expect(layerLossShare(plainDense, 7)).toBeUndefined();
    model.dispose();
  });

  it('refuses activityRegularizer and a malformed regularizer, naming the layer and argument', () => {
    expect(() => config([{ type: 'dense', units: 3, activityRegularizer: { l2: 0.1 } }], 'meanSquaredError')).toThrow(/model\.layers\[0\].*activityRegularizer is not supported/);
    expect(() => config([{ type: 'dense', units: 3, kernelRegularizer: { l2: -1 } }], 'meanSquaredError')).toThrow('kernelRegularizer.l2: expected a number >= 0, found -1');
    expect(() => config([{ type: 'dense', units: 3, kernelRegularizer: 'l3' }], 'meanSquaredError')).toThrow('kernelRegularizer: expected an object such as {"l2": 0.01}');
  });
});
