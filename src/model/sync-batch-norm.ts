/**
 * Synchronised batch normalisation (parallel.syncBatchNorm), as PyTorch's SyncBatchNorm: in a
 * training pass every BatchNormalization layer of a replica's model normalises with the mean
 * and variance of the whole global batch, not of the replica's slice, so N replicas compute
 * what one replica computes on the whole batch (as for every other layer).
 *
 * The layers are patched on the replica's model instance only (the topology and the exported
 * model are tfjs's own BatchNormalization). A training call all-reduces, per channel, the sum
 * of its slice and the element count (round 1, giving the mean), then the sum of squared
 * deviations from that mean (round 2, giving the biased variance, as tf.moments computes it).
 * Its backward pass all-reduces the slice's gradients with respect to the mean and the variance
 * (round 3), because every sample's loss depends on every replica's inputs through them:
 *   dL/dx_i = (G_mean + 2 G_var (x_i - mean)) / N,  G = the world's sum of dL_r/d(mean, var).
 * The rest (normalising, gamma and beta, their gradients) is tfjs's own batchNorm. The moving
 * statistics move with the global statistics exactly as tfjs moves them in a training call.
 *
 * Every replica makes the same rounds in the same order (forward in layer order, backward in
 * reverse), also a replica with no samples in a batch: it runs a placeholder sample that adds
 * nothing to the sums (`placeholder`).
 */
import * as tf from '@tensorflow/tfjs';

/** Sums `buf` over every replica of the world in a fixed order; every replica gets the same sums. */
export type WorldSum = (buf: Float32Array) => void;

interface BatchNormLayer {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma?: tf.LayerVariable;
  beta?: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
}

/** The training calls of every BatchNormalization layer of a model, made to use the world's statistics. */
export class SyncBatchNorm {
  /** How many layers are synchronised. */
  readonly layers: number;
  /** While true, the passes' inputs are placeholders: they add nothing to the world's sums. */
  placeholder = false;

  constructor(model: tf.LayersModel, worldSum: WorldSum) {
    const layers = model.layers.filter((l) => l.getClassName() === 'BatchNormalization') as unknown as BatchNormLayer[];
    for (const layer of layers) {
      const inference = layer.call.bind(layer);
      layer.call = (inputs, kwargs) => (kwargs['training'] ? trainingCall(layer, Array.isArray(inputs) ? inputs[0]! : inputs, worldSum, this) : inference(inputs, kwargs));
    }
    this.layers = layers.length;
  }
}

function trainingCall(layer: BatchNormLayer, x: tf.Tensor, worldSum: WorldSum, sync: SyncBatchNorm): tf.Tensor {
  return tf.tidy(() => {
    const axis = layer.axis >= 0 ? layer.axis : layer.axis + x.rank;
    const reductionAxes = x.shape.map((_, i) => i).filter((i) => i !== axis);
    const broadcastShape = x.shape.map((d, i) => (i === axis ? d : 1));
    const moments = worldMoments(x, reductionAxes, broadcastShape, worldSum, sync.placeholder);
    const [mean, variance] = tf.unstack(moments) as [tf.Tensor1D, tf.Tensor1D];
    // On the last axis batchNorm broadcasts [C] itself (and its gradient of gamma wants [C]), as tfjs's own training call.
    const shaped = (t: tf.Tensor) => (axis === x.rank - 1 ? t : tf.reshape(t, broadcastShape));
    const normed = tf.batchNorm(x, shaped(mean), shaped(variance), layer.beta ? shaped(layer.beta.read()) : undefined, layer.gamma ? shaped(layer.gamma.read()) : undefined, layer.epsilon);
    // As tfjs's BatchNormalization moves them in a training call.
    const decay = 1 - layer.momentum;
    for (const [variable, value] of [[layer.movingMean, mean], [layer.movingVariance, variance]] as const) {
      const previous = variable.read();
      variable.write(tf.sub(previous, tf.mul(tf.sub(previous, value), decay)));
    }
    return normed;
  });
}

/** [2, C]: the world's per-channel mean and (biased) variance of x, with the gradient above. */
function worldMoments(x: tf.Tensor, axes: number[], broadcastShape: number[], worldSum: WorldSum, placeholder: boolean): tf.Tensor2D {
  const channels = broadcastShape.reduce((a, b) => a * b, 1);
  const op = tf.customGrad(((input: tf.Tensor, save: tf.GradSaveFunc) => {
    const empty = placeholder || input.size === 0;
    const sums = new Float32Array(channels + 1);
    if (!empty) sums.set(tf.tidy(() => tf.sum(input, axes)).dataSync());
    sums[channels] = empty ? 0 : input.size / channels;
    worldSum(sums);
    const count = sums[channels]!;
    const meanValues = Float32Array.from(sums.subarray(0, channels), (s) => s / count);
    const mean = tf.tensor(meanValues, broadcastShape);
    const deviations = empty ? new Float32Array(channels) : Float32Array.from(tf.tidy(() => tf.sum(tf.square(tf.sub(input, mean)), axes)).dataSync());
    worldSum(deviations);
    const moments = tf.tensor2d([...meanValues, ...deviations.map((s) => s / count)], [2, channels]);
    save([input, mean]);
    return {
      value: moments,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xSaved, meanSaved] = saved as [tf.Tensor, tf.Tensor];
        const grads = empty ? new Float32Array(2 * channels) : Float32Array.from(dy.dataSync());
        worldSum(grads);
        const gMean = tf.tensor(grads.subarray(0, channels), broadcastShape);
        const gVariance = tf.tensor(grads.subarray(channels), broadcastShape);
        return tf.div(tf.add(gMean, tf.mul(tf.mul(gVariance, 2), tf.sub(xSaved, meanSaved))), count);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return op(x) as tf.Tensor2D;
}
