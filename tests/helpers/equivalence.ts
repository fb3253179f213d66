/**
 * What the equivalence suites share: "the same weights up to float rounding" as one number,
 * bitwise equality, and the two models they train (plain JSON, so a child process can take them).
 */
export function relativeDifference(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < b.length; i++) {
    diff += (a[i]! - b[i]!) ** 2;
    norm += b[i]! ** 2;
  }
  return Math.sqrt(diff / norm);
}

export const bitwiseEqual = (a: Float32Array, b: Float32Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** The mnist-mlp shape; 630 samples at batch 32 make 20 steps, the last one uneven (22 samples). */
export const mlpEquivalenceConfig = {
  name: 'mlp-equivalence',
  model: {
    inputShape: [28, 28, 1],
    layers: [{ type: 'flatten' }, { type: 'dense', units: 128, activation: 'relu' }, { type: 'dense', units: 10, activation: 'softmax' }],
  },
  data: { source: 'embedded-mnist' },
  loss: 'sparseCategoricalCrossentropy',
  metrics: ['accuracy'],
  optimizer: 'adam',
  training: { epochs: 1, batchSize: 32, seed: 5 },
  backend: 'wasm',
  output: { metricsLog: false },
};
