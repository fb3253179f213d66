/**
 * Losses and metrics as sums over the samples of a batch. Replicas sum, the coordinator
 * divides by the global count, so N replicas equal one replica for any N. The per-sample
 * formulas are those of tfjs-layers (and Keras), so results match `model.fit`.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.js';

export type LossName = 'meanSquaredError' | 'binaryCrossentropy' | 'categoricalCrossentropy' | 'sparseCategoricalCrossentropy';
export type MetricName =
  | 'accuracy'
  | 'binaryAccuracy'
  | 'categoricalAccuracy'
  | 'sparseCategoricalAccuracy'
  | 'meanSquaredError'
  | 'meanAbsoluteError';

export interface LossSpec {
  name: LossName;
  fromLogits: boolean;
}

type PerSample = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor;

/** Keras' fuzz factor, the backend epsilon of float32 TF.js. */
const EPSILON = 1e-7;

export class Objective {
  readonly metricNames: readonly string[];
  private readonly perSampleLoss: PerSample;
  private readonly perSampleMetrics: readonly PerSample[];

  constructor(readonly loss: LossSpec, metrics: readonly MetricName[]) {
    this.perSampleLoss = lossFunction(loss);
    this.metricNames = [...metrics];
    this.perSampleMetrics = metrics.map((m) => metricFunction(m, loss));
  }

  lossSum(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Scalar {
    return tf.sum(this.perSampleLoss(yTrue, yPred));
  }

  /** One sum per metric, as a [metrics] tensor (empty when there are none). */
  metricSums(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor1D {
    if (this.perSampleMetrics.length === 0) return tf.tensor1d([]);
    return tf.stack(this.perSampleMetrics.map((f) => tf.sum(f(yTrue, yPred)))) as tf.Tensor1D;
  }
}

function lossFunction({ name, fromLogits }: LossSpec): PerSample {
  switch (name) {
    case 'meanSquaredError':
      return (t, p) => tf.mean(tf.square(tf.sub(p, t)), -1);
    case 'binaryCrossentropy':
      return (t, p) => {
        const logits = fromLogits ? p : probabilitiesToLogits(p);
        return tf.mean(sigmoidCrossEntropyWithLogits(t, logits), -1);
      };
    case 'categoricalCrossentropy':
      return (t, p) => categoricalCrossentropy(t, p, fromLogits);
    case 'sparseCategoricalCrossentropy':
      return (t, p) => {
        const classes = p.shape[p.shape.length - 1]!;
        const oneHot = tf.oneHot(tf.cast(tf.floor(tf.reshape(t, [-1])), 'int32'), classes);
        // tfjs-layers clips probabilities before the categorical loss; logits must not be clipped.
        return categoricalCrossentropy(oneHot, fromLogits ? p : tf.clipByValue(p, EPSILON, 1 - EPSILON), fromLogits);
      };
  }
}

function categoricalCrossentropy(target: tf.Tensor, output: tf.Tensor, fromLogits: boolean): tf.Tensor {
  const axis = output.shape.length - 1;
  if (fromLogits) return tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(output, axis)), axis));
  const normalised = tf.div(output, tf.sum(output, axis, true));
  return tf.neg(tf.sum(tf.mul(target, tf.log(tf.clipByValue(normalised, EPSILON, 1 - EPSILON))), axis));
}

function probabilitiesToLogits(p: tf.Tensor): tf.Tensor {
  const clipped = tf.clipByValue(p, EPSILON, 1 - EPSILON);
  return tf.log(tf.div(clipped, tf.sub(1, clipped)));
}

function sigmoidCrossEntropyWithLogits(labels: tf.Tensor, logits: tf.Tensor): tf.Tensor {
  // max(x, 0) - x z + log(1 + exp(-|x|)): stable for both signs of x.
  return tf.add(tf.sub(tf.relu(logits), tf.mul(logits, labels)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
}

function metricFunction(name: MetricName, loss: LossSpec): PerSample {
  const resolved = name === 'accuracy' ? accuracyFor(loss.name) : name;
  switch (resolved) {
    case 'binaryAccuracy': {
      const threshold = loss.fromLogits ? 0 : 0.5;
      return (t, p) => tf.mean(tf.cast(tf.equal(t, tf.cast(tf.greater(p, threshold), 'float32')), 'float32'), -1);
    }
    case 'categoricalAccuracy':
      return (t, p) => tf.cast(tf.equal(tf.argMax(t, -1), tf.argMax(p, -1)), 'float32');
    case 'sparseCategoricalAccuracy':
      return (t, p) => tf.cast(tf.equal(tf.cast(tf.reshape(t, [-1]), 'int32'), tf.argMax(p, -1)), 'float32');
    case 'meanSquaredError':
      return (t, p) => tf.mean(tf.square(tf.sub(p, t)), -1);
    case 'meanAbsoluteError':
      return (t, p) => tf.mean(tf.abs(tf.sub(p, t)), -1);
    default:
      throw new Error(`unhandled metric ${resolved}`);
  }
}

/** Keras resolves "accuracy" by the loss. */
function accuracyFor(loss: LossName): MetricName {
  switch (loss) {
    case 'binaryCrossentropy':
      return 'binaryAccuracy';
    case 'categoricalCrossentropy':
      return 'categoricalAccuracy';
    case 'sparseCategoricalCrossentropy':
      return 'sparseCategoricalAccuracy';
    case 'meanSquaredError':
      throw new ConfigError('metrics', 'accuracy has no meaning for the loss meanSquaredError; use meanSquaredError or meanAbsoluteError');
  }
}
