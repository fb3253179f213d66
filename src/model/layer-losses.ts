/**
 * The model's own losses: weight regularizers (kernelRegularizer, biasRegularizer, ...) and any
 * loss a layer adds with addLoss, as tfjs-layers adds them to the loss in model.fit (once per
 * batch, on top of the mean of the samples' losses).
 *
 * Replicas sum their samples' losses and the coordinator divides by the global sample count, so
 * a replica adds its share, `local` times the model's losses: over all replicas (and over the
 * batches of an accumulated update) the total is the model's losses once, and its gradient too.
 */
import * as tf from '@tensorflow/tfjs';

/** The model's losses times `samples`, or undefined when it has none; call inside a tape or tidy. */
export function layerLossShare(model: tf.LayersModel, samples: number): tf.Scalar | undefined {
  const losses = model.calculateLosses();
  if (losses.length === 0) return undefined;
  const total = losses.length === 1 ? losses[0]! : tf.addN(losses);
  return tf.mul(total, samples) as tf.Scalar;
}
