/**
 * Regression: gradients of the xor model on wasm (with this project's kernels) equal the cpu
 * backend's at every batch size 1..4. Two kernel tricks broke exactly this: a data-sharing
 * Identity (zero gradients) and a transposed BatchMatMul (out-of-bounds reads at batch 2).
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { activateBackend } from '../../src/backend/select-backend.js';
import { buildModel } from '../../src/model/build-model.js';
import { Objective } from '../../src/model/objective.js';

const xor = { inputShape: [2], layers: [{ type: 'dense', units: 3, activation: 'sigmoid' }, { type: 'dense', units: 1, activation: 'sigmoid' }] };

async function gradients(backend: 'cpu' | 'wasm', batch: number): Promise<number[][]> {
  await activateBackend(backend);
  const model = await buildModel(xor, 42);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const objective = new Objective({ name: 'binaryCrossentropy', fromLogits: false }, []);
  const values = tf.tidy(() => {
    const xs = tf.tensor2d([[0, 0], [0, 1], [1, 0], [1, 1]].slice(0, batch));
    const ys = tf.tensor2d([[0], [1], [1], [0]].slice(0, batch));
    const { grads } = tf.variableGrads(() => objective.lossSum(ys, model.apply(xs, { training: true }) as tf.Tensor), variables);
    return variables.map((v) => Array.from(grads[v.name]!.dataSync()));
  });
  model.dispose();
  return values;
}

describe('wasm gradients', () => {
  for (const batch of [1, 2, 3, 4]) {
    it(`the xor model at batch ${batch}: every gradient equals the cpu backend's (1e-5)`, async () => {
      const cpu = await gradients('cpu', batch);
      const wasm = await gradients('wasm', batch);
      cpu.forEach((values, i) => values.forEach((v, j) => expect(Math.abs(wasm[i]![j]! - v)).toBeLessThan(1e-5)));
      expect(cpu.flat().some((v) => Math.abs(v) > 1e-3)).toBe(true);
    });
  }
});
