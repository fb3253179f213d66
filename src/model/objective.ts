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

/** A metric's value for one sample, from that sample's labels and outputs. */
type SampleMetric = (labels: Float32Array, outputs: Float32Array) => number;

export class Objective {
  readonly metricNames: readonly string[];
  private readonly perSampleLoss: PerSample;
  private readonly sampleMetrics: readonly SampleMetric[];

  constructor(readonly loss: LossSpec, metrics: readonly MetricName[]) {
    this.perSampleLoss = lossFunction(loss);
    this.metricNames = [...metrics];
    this.sampleMetrics = metrics.map((m) => metricFunction(m, loss));
  }

  /** Sum over the batch of each sample's loss, times its weight when `weights` (one per sample) is given. */
  lossSum(yTrue: tf.Tensor, yPred: tf.Tensor, weights?: Float32Array): tf.Scalar {
    const perSample = this.perSampleLoss(yTrue, yPred);
    if (!weights) return tf.sum(perSample);
    // One weight per sample, broadcast over any further axes of the loss (a sequence's positions).
    const shape = [weights.length, ...perSample.shape.slice(1).map(() => 1)];
    return tf.sum(tf.mul(perSample, tf.tensor(weights, shape)));
  }

  /**
   * One sum over the batch per metric. Computed in JavaScript from the downloaded outputs: a
   * dozen small TF.js ops per step cost more than the arithmetic on a few hundred values.
   */
  metricSums(labels: Float32Array, outputs: Float32Array, batch: number): number[] {
    if (this.sampleMetrics.length === 0 || batch === 0) return this.sampleMetrics.map(() => 0);
    const perLabel = labels.length / batch;
    const perOutput = outputs.length / batch;
    return this.sampleMetrics.map((metric) => {
      let sum = 0;
      for (let i = 0; i < batch; i++) {
        sum += metric(labels.subarray(i * perLabel, (i + 1) * perLabel), outputs.subarray(i * perOutput, (i + 1) * perOutput));
      }
      return sum;
    });
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

function argMax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

function meanOver(t: Float32Array, p: Float32Array, f: (d: number) => number): number {
  let sum = 0;
  for (let i = 0; i < p.length; i++) sum += f(p[i]! - t[i]!);
  return sum / p.length;
}

/** Per-sample metrics as Keras defines them (mean over the last axis where it has one). */
function metricFunction(name: MetricName, loss: LossSpec): SampleMetric {
  const resolved = name === 'accuracy' ? accuracyFor(loss.name) : name;
  switch (resolved) {
    case 'binaryAccuracy': {
      const threshold = loss.fromLogits ? 0 : 0.5;
      return (t, p) => {
        let hits = 0;
        for (let i = 0; i < p.length; i++) if ((p[i]! > threshold ? 1 : 0) === t[i]) hits++;
        return hits / p.length;
      };
    }
    case 'categoricalAccuracy':
      return (t, p) => (argMax(t) === argMax(p) ? 1 : 0);
    case 'sparseCategoricalAccuracy':
      return (t, p) => (t[0] === argMax(p) ? 1 : 0);
    case 'meanSquaredError':
      return (t, p) => meanOver(t, p, (d) => d * d);
    case 'meanAbsoluteError':
      return (t, p) => meanOver(t, p, Math.abs);
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
