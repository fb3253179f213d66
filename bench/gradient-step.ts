/**
 * The work of a replica's gradient() alone, for the benchmarks that time or profile a step:
 * forward, loss sum, backward, every gradient downloaded; no shared memory, no collective.
 */
import * as tf from '@tensorflow/tfjs';
import { Objective, type LossSpec } from '../dist/model/objective.js';

export function gradientStep(model: tf.LayersModel, loss: LossSpec, x: Float32Array, y: Float32Array, batch: number, featureShape: readonly number[]): () => void {
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const objective = new Objective(loss, []);
  return () =>
    tf.tidy(() => {
      const xs = tf.tensor(x, [batch, ...featureShape]);
      const ys = tf.tensor(y, [batch]);
      const { value, grads } = tf.variableGrads(() => objective.lossSum(ys, model.apply(xs, { training: true }) as tf.Tensor), variables);
      value.dataSync();
      for (const v of variables) grads[v.name]!.dataSync();
    });
}
