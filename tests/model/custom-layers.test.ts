/**
 * The project's own layers (src/model/layers/): their outputs against plain-JS references, the
 * config vocabulary (types, argument checks), and a run of a Transformer config whose exported
 * model.json tf.loadLayersModel reads back, after importing ringtrain, with the same predictions.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as ringtrain from '../../src/index.js';
import { silenceCpuBanner } from '../../src/backend/select-backend.js';
import { exportTfjs } from '../../src/checkpoint/export-tfjs.js';
import { readCheckpointFile } from '../../src/checkpoint/format.js';
import { parseRunConfig } from '../../src/config/load.js';
import { buildModel } from '../../src/model/build-model.js';
import { sequenceData } from '../../src/data/sources/sequences.js';
import { tfjsFileHandler } from '../../src/model/tfjs-files.js';
import { mulberry32 } from '../../src/util/random.js';
import { maxRelativeError } from '../helpers/compare.js';
import { configErrorOf } from '../helpers/config-error.js';
import { relativeDifference } from '../helpers/equivalence.js';

const { MultiHeadSelfAttention, TokenAndPositionEmbedding, TransformerEncoder } = ringtrain;

function randomArray(random: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => random() * 2 - 1);
}

/** y = x W + b for row-major x [rows, n] and W [n, m]. */
function affine(x: Float32Array, rows: number, w: Float32Array, b: Float32Array): Float32Array {
  const n = x.length / rows;
  const m = b.length;
  const y = new Float32Array(rows * m);
  for (let r = 0; r < rows; r++) for (let j = 0; j < m; j++) {
    let s = b[j]!;
    for (let i = 0; i < n; i++) s += x[r * n + i]! * w[i * m + j]!;
    y[r * m + j] = s;
  }
  return y;
}

/** Multi-head self-attention of one sequence x [t, d], written out with loops. */
function referenceAttention(x: Float32Array, t: number, heads: number, k: number, w: Float32Array[]): Float32Array {
  const [wq, bq, wk, wv, bv, wo, bo] = w as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
  const q = affine(x, t, wq, bq);
  const kk = affine(x, t, wk, new Float32Array(heads * k)); // keys have no bias
  const v = affine(x, t, wv, bv);
  const width = heads * k;
  const context = new Float32Array(t * width);
  for (let h = 0; h < heads; h++) for (let i = 0; i < t; i++) {
    const scores = Array.from({ length: t }, (_, j) => {
      let s = 0;
      for (let c = 0; c < k; c++) s += q[i * width + h * k + c]! * kk[j * width + h * k + c]!;
      return s / Math.sqrt(k);
    });
    const top = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - top));
    const total = e.reduce((a, b) => a + b, 0);
    for (let c = 0; c < k; c++) context[i * width + h * k + c] = e.reduce((sum, p, j) => sum + (p / total) * v[j * width + h * k + c]!, 0);
  }
  return affine(context, t, wo, bo);
}

function referenceLayerNorm(x: Float32Array, rows: number, gamma: Float32Array, beta: Float32Array, epsilon: number): Float32Array {
  const d = gamma.length;
  const y = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * d, (r + 1) * d);
    const mean = row.reduce((a, b) => a + b, 0) / d;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / d;
    for (let i = 0; i < d; i++) y[r * d + i] = ((row[i]! - mean) / Math.sqrt(variance + epsilon)) * gamma[i]! + beta[i]!;
  }
  return y;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  silenceCpuBanner();
});

describe('custom layers compute what their formulas say', () => {
  const random = mulberry32(77);
  const [t, d, heads, k] = [4, 6, 2, 3];

  it('multiHeadSelfAttention equals a loop implementation', () => {
    const layer = new MultiHeadSelfAttention({ numHeads: heads, keyDim: k });
    const x = randomArray(random, t * d);
    const out = layer.apply(tf.tensor(x, [1, t, d])) as tf.Tensor;
    const weights = layer.getWeights().map((w) => randomArray(random, w.size));
    layer.setWeights(weights.map((w, i) => tf.tensor(w, layer.getWeights()[i]!.shape)));
    const actual = (layer.apply(tf.tensor(x, [1, t, d])) as tf.Tensor).dataSync();
    expect(out.shape).toEqual([1, t, d]);
    expect(maxRelativeError(actual, referenceAttention(x, t, heads, k, weights))).toBeLessThan(1e-5);
  });

  it('transformerEncoder equals LayerNorm(h + FFN(h)) with h = LayerNorm(x + attention(x)), batched', () => {
    const layer = new TransformerEncoder({ numHeads: heads, feedForwardDim: 5, epsilon: 1e-3 });
    const batch = 2;
    const x = randomArray(random, batch * t * d);
    layer.apply(tf.tensor(x, [batch, t, d]));
    const weights = layer.getWeights().map((w) => randomArray(random, w.size));
    layer.setWeights(weights.map((w, i) => tf.tensor(w, layer.getWeights()[i]!.shape)));
    const actual = (layer.apply(tf.tensor(x, [batch, t, d])) as tf.Tensor).dataSync();
    const [g1, b1, w1, c1, w2, c2, g2, b2] = weights.slice(7);
    const expected = new Float32Array(x.length);
    for (let b = 0; b < batch; b++) {
      const xb = x.subarray(b * t * d, (b + 1) * t * d);
      const attention = referenceAttention(xb, t, heads, k, weights.slice(0, 7));
      const h = referenceLayerNorm(xb.map((v, i) => v + attention[i]!), t, g1!, b1!, 1e-3);
      const ffn = affine(affine(h, t, w1!, c1!).map((v) => Math.max(0, v)), t, w2!, c2!);
      expected.set(referenceLayerNorm(h.map((v, i) => v + ffn[i]!), t, g2!, b2!, 1e-3), b * t * d);
    }
    expect(maxRelativeError(actual, expected)).toBeLessThan(1e-5);
  });

  it('tokenAndPositionEmbedding adds the token row and the position row', () => {
    const layer = new TokenAndPositionEmbedding({ vocabularySize: 5, sequenceLength: 3, embeddingDim: 2 });
    layer.apply(tf.zeros([1, 3]));
    const [tokens, positions] = layer.getWeights().map((w) => w.dataSync());
    const ids = [4, 0, 4];
    const actual = (layer.apply(tf.tensor([ids])) as tf.Tensor).dataSync();
    const expected = ids.flatMap((id, p) => [0, 1].map((c) => tokens![id * 2 + c]! + positions![p * 2 + c]!));
    expect(maxRelativeError(actual, expected)).toBeLessThan(1e-6);
  });
});

const TRANSFORMER_LAYERS = [
  { type: 'tokenAndPositionEmbedding', vocabularySize: 20, sequenceLength: 11, embeddingDim: 8 },
  { type: 'transformerEncoder', numHeads: 2, feedForwardDim: 16 },
  { type: 'multiHeadSelfAttention', numHeads: 2, keyDim: 4 },
  { type: 'globalAveragePooling1d' },
  { type: 'dense', units: 10, activation: 'softmax' },
];

function transformerConfig(layers: unknown[], extra: Record<string, unknown> = {}) {
  return {
    name: 'transformer-test',
    model: { inputShape: [11], layers },
    data: { source: 'recall', samples: 64 },
    loss: 'sparseCategoricalCrossentropy',
    metrics: ['accuracy'],
    optimizer: { name: 'adam', learningRate: 0.01 },
    training: { epochs: 1, batchSize: 16 },
    ...extra,
  };
}

describe('config', () => {
  it('names the custom layers and checks their arguments', () => {
    expect(parseRunConfig(transformerConfig(TRANSFORMER_LAYERS)).model).toMatchObject({ layers: TRANSFORMER_LAYERS });
    const misspelt = configErrorOf(() => parseRunConfig(transformerConfig([TRANSFORMER_LAYERS[0], { type: 'transformerEncoder', numHead: 2, feedForwardDim: 16 }])));
    expect(misspelt.message).toContain('model.layers[1].numHead');
    expect(misspelt.message).toContain('did you mean "numHeads"?');
    const zero = configErrorOf(() => parseRunConfig(transformerConfig([TRANSFORMER_LAYERS[0], { type: 'multiHeadSelfAttention', numHeads: 0, keyDim: 4 }])));
    expect(zero.message).toContain('model.layers[1].numHeads');
    expect(zero.message).toContain('an integer from 1 to');
    const length = configErrorOf(() => parseRunConfig(transformerConfig([{ ...TRANSFORMER_LAYERS[0], sequenceLength: 12 }, TRANSFORMER_LAYERS[4]])));
    expect(length.message).toContain('model.layers[0]');
    expect(length.message).toContain('tokenAndPositionEmbedding expects inputs [batch, 12] (sequenceLength), got [any, 11]');
  });
});

describe('wrapper layers in a config', () => {
  const config = (layers: unknown[]) => ({ name: 'wrappers', model: { inputShape: [16], layers }, data: { source: 'majority', samples: 64 }, loss: 'sparseCategoricalCrossentropy', optimizer: 'adam', training: { epochs: 1, batchSize: 8 } });
  const embedding = { type: 'embedding', inputDim: 10, outputDim: 4 };

  it('bidirectional and timeDistributed take a layer spec, built under names derived from theirs', async () => {
    const parsed = parseRunConfig(config([embedding, { type: 'bidirectional', layer: { type: 'lstm', units: 3, returnSequences: true }, mergeMode: 'sum' }, { type: 'timeDistributed', layer: { type: 'dense', units: 2 } }, { type: 'flatten' }]));
    const model = await buildModel(parsed.model as Parameters<typeof buildModel>[0], 1);
    expect(model.trainableWeights.map((w) => `${w.name} ${w.shape.join('x')}`)).toEqual([
      'embedding_1/embeddings 10x4',
      'bidirectional_2/forward_bidirectional_2_lstm/kernel 4x12',
      'bidirectional_2/forward_bidirectional_2_lstm/recurrent_kernel 3x12',
      'bidirectional_2/forward_bidirectional_2_lstm/bias 12',
      'bidirectional_2/backward_bidirectional_2_lstm/kernel 4x12',
      'bidirectional_2/backward_bidirectional_2_lstm/recurrent_kernel 3x12',
      'bidirectional_2/backward_bidirectional_2_lstm/bias 12',
      'time_distributed_3/kernel 3x2',
      'time_distributed_3/bias 2',
    ]);
    model.dispose();
  });

  it('refuses a wrapper without a layer spec, with an unknown inner type or a bad mergeMode', () => {
    const message = (layer: Record<string, unknown>) => configErrorOf(() => parseRunConfig(config([embedding, layer]))).message;
    expect(message({ type: 'bidirectional', layer: 5 })).toContain('model.layers[1].layer: expected a layer object such as {"type": "lstm", "units": 8}, found 5');
    expect(message({ type: 'bidirectional', layer: { type: 'lstmm', units: 3 } })).toContain('model.layers[1]: cannot build bidirectional layer: its layer has an unknown layer type "lstmm"');
    expect(message({ type: 'bidirectional', layer: { type: 'lstm', units: 3 }, mergeMode: 'x' })).toContain('model.layers[1].mergeMode: expected one of "sum", "mul", "concat", "ave", found "x"');
  });

  it('refuses what TensorFlow.js builds but cannot train: causal padding, dilated convolutions', () => {
    const message = (layer: Record<string, unknown>) => configErrorOf(() => parseRunConfig(config([embedding, layer]))).message;
    expect(message({ type: 'conv1d', filters: 2, kernelSize: 3, padding: 'causal' })).toContain('model.layers[1].padding: expected one of "valid", "same" (tfjs-layers does not implement "causal"), found "causal"');
    expect(message({ type: 'conv1d', filters: 2, kernelSize: 3, dilationRate: 2 })).toContain('model.layers[1].dilationRate: expected 1 (TensorFlow.js has no gradient for dilated convolutions, so they cannot train), found 2');
  });
});

describe('a Transformer config trains, exports and loads back', () => {
  it('2 replicas end with the weights of 1; tf.loadLayersModel reads the exported model.json (after importing ringtrain) and predicts as the trainer does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-transformer-'));
    const config = parseRunConfig(transformerConfig(TRANSFORMER_LAYERS, { output: { dir, metricsLog: false } }));
    const data = await ringtrain.loadData(config.data, { seed: config.seed });
    const features = sequenceData('recall', 8, 99, 1).features;
    const run = async (workers: number) => {
      const trainer = await ringtrain.Trainer.create({ ...config, parallel: { ...config.parallel, workers } }, { data, checkpoints: workers === 2 });
      try {
        await trainer.fit();
        return { params: trainer.params(), predicted: await trainer.predict(features), file: trainer.checkpointsWritten.at(-1) };
      } finally {
        await trainer.close();
      }
    };
    const one = await run(1);
    const two = await run(2);
    expect(relativeDifference(two.params, one.params)).toBeLessThan(1e-5);

    const modelJson = await exportTfjs(await readCheckpointFile(two.file!), join(dir, 'export'));
    await tf.setBackend('cpu');
    const model = await tf.loadLayersModel(tfjsFileHandler(modelJson));
    expect(model.layers.map((l) => l.getClassName())).toEqual(['TokenAndPositionEmbedding', 'TransformerEncoder', 'MultiHeadSelfAttention', 'GlobalAveragePooling1D', 'Dense']);
    const predicted = (model.predict(tf.tensor(features, [8, 11])) as tf.Tensor).dataSync();
    expect(maxRelativeError(predicted, two.predicted)).toBeLessThan(1e-5);
    model.dispose();
  });
});
