/** Regression: gradients of small dense nets on wasm (with this project's kernels) equal cpu's. */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { activateBackend } from '../../src/backend/select-backend.js';

async function gradients(backend: 'cpu' | 'wasm'): Promise<number[][]> {
  await activateBackend(backend);
  return tf.tidy(() => {
    const x = tf.tensor2d([[0, 0], [0, 1], [1, 0], [1, 1]]);
    const y = tf.tensor2d([[0], [1], [1], [0]]);
    const w1 = tf.variable(tf.tensor2d([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]), true, `w1${backend}`);
    const b1 = tf.variable(tf.tensor1d([0.1, -0.2, 0.3]), true, `b1${backend}`);
    const w2 = tf.variable(tf.tensor2d([[0.5], [-0.5], [0.25]]), true, `w2${backend}`);
    const b2 = tf.variable(tf.tensor1d([0.1]), true, `b2${backend}`);
    const { grads } = tf.variableGrads(() => {
      const hidden = tf.sigmoid(tf.add(tf.matMul(x, w1), b1));
      return tf.sum(tf.square(tf.sub(tf.sigmoid(tf.add(tf.matMul(hidden, w2), b2)), y)));
    }, [w1, b1, w2, b2]);
    const values = [w1, b1, w2, b2].map((v) => Array.from(grads[v.name]!.dataSync()));
    [w1, b1, w2, b2].forEach((v) => v.dispose());
    return values;
  });
}

describe('wasm gradients', () => {
  it('a two-layer sigmoid net with a [n, 1] output: every gradient equals the cpu backend\'s (1e-5)', async () => {
    const cpu = await gradients('cpu');
    const wasm = await gradients('wasm');
    cpu.forEach((values, i) => values.forEach((v, j) => expect(Math.abs(wasm[i]![j]! - v)).toBeLessThan(1e-5)));
    expect(cpu[0]!.some((v) => Math.abs(v) > 1e-3)).toBe(true);
  });
});
