/**
 * Layer matrix: for each common Keras layer type, one training step (trainOnBatch, SGD with
 * learning rate 1, so the weight change is the whole gradient) of a small model built the same
 * way on wasm (with this project's kernels) and on cpu, from the same initial weights and batch,
 * ends with the same weights, non-trainable ones (batch-norm statistics) included:
 * max|wasm - cpu| / max(1, max|cpu|) <= 1e-4 per weight, and the same loss.
 *
 * Left out because TensorFlow.js cannot train them on any backend (cpu included): conv1d with
 * padding "causal" (not implemented in tfjs-layers), convolutions with dilationRate > 1 (no
 * gradient), conv3dTranspose (no gradient of Conv3DBackpropInputV2), thresholdedReLU (no gradient
 * of Greater), centerCrop (no gradient of CropAndResize), resizing (fails on a batch in 4.22).
 * gaussianNoise, gaussianDropout and alphaDropout draw unseeded noise; categoryEncoding and
 * randomWidth have no gradient.
 *
 * Dropout runs at rate 0.5 with a fixed layer seed: TF.js draws the mask with its own seeded JS
 * generator, so both backends drop the same units.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { activateBackend } from '../../src/backend/select-backend.js';
import { MultiHeadSelfAttention, TokenAndPositionEmbedding, TransformerEncoder } from '../../src/model/layers/index.js';
import { mulberry32 } from '../../src/util/random.js';
import { maxRelativeError } from '../helpers/compare.js';

const TOLERANCE = 1e-4;
const BATCH = 4;

interface LayerCase {
  name: string;
  inputShape: number[];
  /** The layers between the input and the final dense layer, stacked. */
  layers?: () => tf.layers.Layer[];
  /** Or a graph from the input (merge layers take several inputs). */
  graph?: (input: tf.SymbolicTensor) => tf.SymbolicTensor;
  /** Integer inputs in [0, vocabulary) instead of floats (embedding). */
  vocabulary?: number;
}

const L = tf.layers;

const cases: LayerCase[] = [
  { name: 'dense', inputShape: [6], layers: () => [L.dense({ units: 5, activation: 'relu' })] },
  { name: 'conv1d', inputShape: [9, 3], layers: () => [L.conv1d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'tanh' }), L.flatten()] },
  { name: 'conv2d', inputShape: [8, 7, 2], layers: () => [L.conv2d({ filters: 5, kernelSize: 3, activation: 'relu' }), L.conv2d({ filters: 3, kernelSize: [2, 3], strides: 2, padding: 'same' }), L.flatten()] },
  { name: 'depthwiseConv2d', inputShape: [7, 7, 3], layers: () => [L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same' }), L.flatten()] },
  { name: 'separableConv2d', inputShape: [8, 8, 3], layers: () => [L.separableConv2d({ filters: 4, kernelSize: 3, strides: 2 }), L.flatten()] },
  // A linear convolution in front, so pooling windows hold negative values and ties are rare.
  { name: 'maxPooling2d', inputShape: [8, 8, 2], layers: () => [L.conv2d({ filters: 3, kernelSize: 1 }), L.maxPooling2d({ poolSize: 2 }), L.maxPooling2d({ poolSize: 3, strides: 1, padding: 'same' }), L.flatten()] },
  { name: 'averagePooling2d', inputShape: [8, 8, 2], layers: () => [L.conv2d({ filters: 3, kernelSize: 1 }), L.averagePooling2d({ poolSize: 2 }), L.flatten()] },
  { name: 'globalAveragePooling2d', inputShape: [6, 6, 2], layers: () => [L.conv2d({ filters: 4, kernelSize: 3 }), L.globalAveragePooling2d({})] },
  { name: 'globalMaxPooling2d', inputShape: [6, 6, 2], layers: () => [L.conv2d({ filters: 4, kernelSize: 3 }), L.globalMaxPooling2d({})] },
  { name: 'batchNormalization', inputShape: [6], layers: () => [L.dense({ units: 5 }), L.batchNormalization({ momentum: 0.5 })] },
  { name: 'layerNormalization', inputShape: [6], layers: () => [L.dense({ units: 5 }), L.layerNormalization()] },
  { name: 'dropout (rate 0.5, seed 7)', inputShape: [6], layers: () => [L.dense({ units: 8 }), L.dropout({ rate: 0.5, seed: 7 })] },
  { name: 'embedding', inputShape: [5], vocabulary: 11, layers: () => [L.embedding({ inputDim: 11, outputDim: 4 }), L.flatten()] },
  { name: 'simpleRNN', inputShape: [5, 3], layers: () => [L.simpleRNN({ units: 4 })] },
  { name: 'lstm', inputShape: [5, 3], layers: () => [L.lstm({ units: 4, returnSequences: true }), L.flatten()] },
  { name: 'gru', inputShape: [5, 3], layers: () => [L.gru({ units: 4 })] },
  { name: 'conv2dTranspose', inputShape: [4, 5, 3], layers: () => [L.conv2dTranspose({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }), L.conv2dTranspose({ filters: 2, kernelSize: [2, 3] }), L.flatten()] },
  { name: 'conv3d', inputShape: [4, 5, 4, 2], layers: () => [L.conv3d({ filters: 3, kernelSize: 2, strides: [1, 2, 1] }), L.flatten()] },
  { name: 'pooling 1d', inputShape: [8, 3], layers: () => [L.conv1d({ filters: 3, kernelSize: 1 }), L.maxPooling1d({ poolSize: 2 }), L.averagePooling1d({ poolSize: 2, strides: 1, padding: 'same' }), L.flatten()] },
  { name: 'globalAveragePooling1d', inputShape: [6, 3], layers: () => [L.conv1d({ filters: 4, kernelSize: 2 }), L.globalAveragePooling1d()] },
  { name: 'globalMaxPooling1d', inputShape: [6, 3], layers: () => [L.conv1d({ filters: 4, kernelSize: 2 }), L.globalMaxPooling1d()] },
  { name: 'pooling 3d', inputShape: [4, 4, 4, 2], layers: () => [L.conv3d({ filters: 2, kernelSize: 1 }), L.maxPooling3d({ poolSize: 2 }), L.averagePooling3d({ poolSize: [1, 2, 2] }), L.flatten()] },
  { name: 'layerNormalization (sequence)', inputShape: [4, 6], layers: () => [L.dense({ units: 5 }), L.layerNormalization({ axis: -1 }), L.flatten()] },
  { name: 'embedding (sequence, maskZero) → lstm', inputShape: [6], vocabulary: 9, layers: () => [L.embedding({ inputDim: 9, outputDim: 4, maskZero: true }), L.lstm({ units: 3 })] },
  { name: 'simpleRNN (sequences, goBackwards)', inputShape: [5, 3], layers: () => [L.simpleRNN({ units: 4, returnSequences: true, goBackwards: true, activation: 'relu' }), L.flatten()] },
  { name: 'gru (resetAfter false)', inputShape: [5, 3], layers: () => [L.gru({ units: 4, returnSequences: true, resetAfter: false } as never), L.flatten()] },
  { name: 'stacked lstm', inputShape: [5, 3], layers: () => [L.lstm({ units: 4, returnSequences: true }), L.lstm({ units: 3 })] },
  { name: 'bidirectional lstm (concat)', inputShape: [5, 3], layers: () => [L.bidirectional({ layer: L.lstm({ units: 3 }) as tf.RNN })] },
  { name: 'bidirectional gru (sum, sequences)', inputShape: [5, 3], layers: () => [L.bidirectional({ layer: L.gru({ units: 3, returnSequences: true }) as tf.RNN, mergeMode: 'sum' }), L.flatten()] },
  { name: 'timeDistributed dense', inputShape: [4, 3], layers: () => [L.timeDistributed({ layer: L.dense({ units: 2, activation: 'sigmoid' }) }), L.flatten()] },
  { name: 'convLstm2d', inputShape: [3, 5, 5, 2], layers: () => [L.convLstm2d({ filters: 2, kernelSize: 3, padding: 'same' }), L.flatten()] },
  { name: 'prelu', inputShape: [6], layers: () => [L.dense({ units: 5 }), L.prelu({ alphaInitializer: 'ones' })] },
  { name: 'activation layers', inputShape: [6], layers: () => [L.dense({ units: 5 }), L.leakyReLU({ alpha: 0.2 }), L.dense({ units: 5 }), L.elu(), L.dense({ units: 5 }), L.reLU({ maxValue: 0.3 }), L.dense({ units: 5 }), L.softmax()] },
  ...['elu', 'hardSigmoid', 'relu6', 'selu', 'sigmoid', 'softplus', 'softsign', 'tanh', 'swish', 'mish', 'gelu', 'gelu_new'].map((activation) => ({
    name: `activation ${activation}`,
    inputShape: [6],
    layers: () => [L.dense({ units: 5 }), L.activation({ activation: activation as never })],
  })),
  { name: 'shape layers', inputShape: [4, 4, 2], layers: () => [L.upSampling2d({ size: [2, 1] }), L.zeroPadding2d({ padding: 1 }), L.cropping2D({ cropping: [[2, 1], [0, 1]] }), L.conv2d({ filters: 2, kernelSize: 2 }), L.permute({ dims: [2, 1, 3] }), L.reshape({ targetShape: [12, 4] }), L.flatten(), L.repeatVector({ n: 2 }), L.flatten()] },
  { name: 'upSampling2d (bilinear)', inputShape: [3, 3, 2], layers: () => [L.conv2d({ filters: 2, kernelSize: 1 }), L.upSampling2d({ size: [2, 2], interpolation: 'bilinear' }), L.flatten()] },
  { name: 'rescaling', inputShape: [5, 5, 2], layers: () => [L.conv2d({ filters: 2, kernelSize: 1 }), L.rescaling({ scale: 0.5, offset: 0.1 }), L.flatten()] },
  { name: 'spatialDropout1d (rate 0.5, seed 3)', inputShape: [5, 3], layers: () => [L.conv1d({ filters: 4, kernelSize: 1 }), L.spatialDropout1d({ rate: 0.5, seed: 3 }), L.flatten()] },
  { name: 'masking', inputShape: [5, 3], layers: () => [L.masking({ maskValue: 0 }), L.simpleRNN({ units: 3 })] },
  ...(['add', 'multiply', 'average', 'maximum', 'minimum', 'concatenate'] as const).map((merge) => ({
    name: `merge ${merge}`,
    inputShape: [6],
    graph: (input: tf.SymbolicTensor) => L[merge]().apply([L.dense({ units: 4 }).apply(input), L.dense({ units: 4, activation: 'tanh' }).apply(input)] as tf.SymbolicTensor[]) as tf.SymbolicTensor,
  })),
  { name: 'dot (normalized)', inputShape: [6], graph: (input) => L.dot({ axes: 1, normalize: true }).apply([L.dense({ units: 4 }).apply(input), L.dense({ units: 4 }).apply(input)] as tf.SymbolicTensor[]) as tf.SymbolicTensor },
  // The project's own layers (src/model/layers/).
  { name: 'tokenAndPositionEmbedding', inputShape: [5], vocabulary: 7, layers: () => [new TokenAndPositionEmbedding({ vocabularySize: 7, sequenceLength: 5, embeddingDim: 4 }), L.flatten()] },
  { name: 'multiHeadSelfAttention', inputShape: [5, 6], layers: () => [new MultiHeadSelfAttention({ numHeads: 2, keyDim: 3 }), L.flatten()] },
  { name: 'transformerEncoder', inputShape: [6], vocabulary: 9, layers: () => [new TokenAndPositionEmbedding({ vocabularySize: 9, sequenceLength: 6, embeddingDim: 8 }), new TransformerEncoder({ numHeads: 2, feedForwardDim: 12 }), L.globalAveragePooling1d()] },
  {
    name: 'mnist-cnn (small)',
    inputShape: [14, 14, 1],
    layers: () => [
      L.conv2d({ filters: 8, kernelSize: 3, activation: 'relu' }), L.maxPooling2d({ poolSize: 2 }),
      L.conv2d({ filters: 16, kernelSize: 3, activation: 'relu' }), L.flatten(), L.dense({ units: 8, activation: 'relu' }),
    ],
  },
];

interface StepResult {
  loss: number;
  weights: Array<{ name: string; values: Float32Array }>;
}

/** Builds the model on `backend`, sets seeded weights, runs one step, reads everything back, frees it. */
async function oneStep(backend: 'cpu' | 'wasm', c: LayerCase, seed: number): Promise<StepResult> {
  await tf.setBackend(backend);
  const input = tf.input({ shape: c.inputShape });
  const body = c.graph ? c.graph(input) : c.layers!().reduce((x, layer) => layer.apply(x) as tf.SymbolicTensor, input);
  const model = tf.model({ inputs: input, outputs: L.dense({ units: 3 }).apply(body) as tf.SymbolicTensor });
  const random = mulberry32(seed);
  const initial = model.weights.map((w) => {
    const size = w.shape.reduce((a, b) => a * b, 1);
    // Variances must stay positive; everything else is uniform in [-0.5, 0.5).
    const positive = /variance|gamma/.test(w.originalName);
    return tf.tensor(Float32Array.from({ length: size }, () => (positive ? 0.5 + random() : random() - 0.5)), w.shape);
  });
  model.setWeights(initial);
  tf.dispose(initial);
  const xSize = BATCH * c.inputShape.reduce((a, b) => a * b, 1);
  const x = c.vocabulary
    ? tf.tensor(Float32Array.from({ length: xSize }, () => Math.floor(random() * c.vocabulary!)), [BATCH, ...c.inputShape])
    : tf.tensor(Float32Array.from({ length: xSize }, () => random() * 2 - 1), [BATCH, ...c.inputShape]);
  const y = tf.tensor(Float32Array.from({ length: BATCH * 3 }, () => random() * 2 - 1), [BATCH, 3]);
  model.compile({ optimizer: tf.train.sgd(1), loss: 'meanSquaredError' });
  const loss = (await model.trainOnBatch(x, y)) as number;
  // Layer names carry a global counter (conv2d_Conv2D13/kernel): keep the kind and the weight.
  const weights = model.weights.map((w) => ({ name: w.originalName.replace(/\d+(?=\/)/g, ''), values: Float32Array.from(w.read().dataSync()) }));
  tf.dispose([x, y]);
  model.dispose();
  return { loss, weights };
}

beforeAll(async () => {
  await activateBackend('cpu');
  await activateBackend('wasm');
});

describe('one training step per layer type: wasm equals cpu', () => {
  for (const [index, c] of cases.entries()) {
    it(c.name, async () => {
      const expected = await oneStep('cpu', c, 1000 + index);
      const actual = await oneStep('wasm', c, 1000 + index);
      expect(Math.abs(actual.loss - expected.loss) / Math.max(1, Math.abs(expected.loss))).toBeLessThanOrEqual(TOLERANCE);
      expect(actual.weights.map((w) => w.name)).toEqual(expected.weights.map((w) => w.name));
      for (const [i, w] of expected.weights.entries()) {
        expect(maxRelativeError(actual.weights[i]!.values, w.values), `${c.name}: ${w.name}`).toBeLessThanOrEqual(TOLERANCE);
      }
    });
  }
});
