/**
 * One forward and backward pass on a tiny batch (the first two training samples), on the
 * coordinator before any replica starts: a model that cannot train with its loss (a reshape of
 * the wrong size, an output the labels do not fit, no trainable weights, a weight the loss does
 * not depend on) fails here in a moment, with the layer named, rather than in every replica at
 * step 1 with a TensorFlow.js stack. The shapes are what checkDataForModel has already
 * compared; this finds what only running the layers shows.
 */
import * as tf from '@tensorflow/tfjs';
import { DatasetReader, type SharedDataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import { Objective, type LossSpec } from './objective.js';

/** Samples of the probe batch: two, so that a layer mixing samples (batch statistics) sees a batch. */
const PROBE_SAMPLES = 2;

const describeShape = (shape: readonly (number | null)[]) => `[${shape.map((d) => d ?? '?').join(', ')}]`;

/** The first line of a TensorFlow.js error message (some hold a long dump after it). */
function reason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0]!.trim();
}

/** "layer 2 (reshape_2, a Reshape) of model.layers" or "layer dense_Dense1 (a Dense)". */
function nameLayer(layer: tf.layers.Layer, index: number | undefined, fromConfig: boolean): string {
  const cls = layer.getClassName();
  return fromConfig && index !== undefined ? `model.layers[${index}] (${layer.name}, a ${cls} layer)` : `layer ${layer.name} (a ${cls} layer)`;
}

/**
 * Throws a UserError naming the layer (or weight) when the model cannot compute its loss and
 * gradients on the first samples of `train`. `fromConfig`: the model was built from the
 * config's `layers` list, so layer i is model.layers[i] of the config.
 */
export function checkModelTrains(model: tf.LayersModel, loss: LossSpec, train: SharedDataset, fromConfig: boolean): void {
  if (model.trainableWeights.length === 0) {
    const layers = model.layers.map((l) => l.name).join(', ');
    throw new UserError(`model: expected at least one trainable weight, found none (layers: ${layers}); there is nothing to train`);
  }
  const n = Math.min(PROBE_SAMPLES, train.size);
  if (n === 0) return; // an empty training set is reported by the caller
  const reader = new DatasetReader(train);
  const x = new Float32Array(n * reader.perSample);
  const y = new Float32Array(n * reader.perLabel);
  reader.gatherRange(0, n, x, y);
  const objective = new Objective(loss, []);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const batch = `a batch of ${n} training sample${n === 1 ? '' : 's'}`;

  tf.tidy(() => {
    const xs = tf.tensor(x, [n, ...train.featureShape]);
    const ys = tf.tensor(y, [n, ...train.labelShape]);
    // Forward: a Sequential model layer by layer, so the layer that fails is the one named.
    let output: tf.Tensor;
    if (model instanceof tf.Sequential) {
      let t: tf.Tensor = xs;
      model.layers.forEach((layer, i) => {
        try {
          t = layer.apply(t, { training: true }) as tf.Tensor;
        } catch (error) {
          throw new UserError(`${nameLayer(layer, i, fromConfig)}: fails on ${batch} of input shape ${describeShape(t.shape)}: ${reason(error)}`, { cause: error });
        }
        const expected = layer.outputShape as (number | null)[];
        if (Array.isArray(expected) && !Array.isArray(expected[0]) && (expected.length !== t.shape.length || expected.some((d, k) => d !== null && d !== t.shape[k]))) {
          throw new UserError(
            `${nameLayer(layer, i, fromConfig)}: expected output shape ${describeShape(expected)}, found ${describeShape(t.shape)} on ${batch}`,
          );
        }
      });
      output = t!;
    } else {
      try {
        output = model.apply(xs, { training: true }) as tf.Tensor;
      } catch (error) {
        throw new UserError(`model: the forward pass fails on ${batch}: ${reason(error)}`, { cause: error });
      }
    }
    const last = model.layers[model.layers.length - 1]!;
    const lastName = nameLayer(last, model.layers.length - 1, fromConfig);
    try {
      const value = objective.lossSum(ys, output);
      value.dataSync();
    } catch (error) {
      throw new UserError(
        `loss ${loss.name}: the output of ${lastName}, of shape ${describeShape(output.shape)}, does not fit labels of shape ${describeShape(ys.shape)}: ${reason(error)}`,
        { cause: error },
      );
    }
    // Backward: every trainable weight must get a gradient from the loss.
    let grads: Record<string, tf.Tensor>;
    try {
      grads = tf.variableGrads(() => objective.lossSum(ys, model.apply(xs, { training: true }) as tf.Tensor), variables).grads;
    } catch (error) {
      throw new UserError(`model: the loss has no gradient for every trainable weight on ${batch}: ${reason(error)}`, { cause: error });
    }
    model.trainableWeights.forEach((weight, i) => {
      const grad = grads[variables[i]!.name];
      if (grad === undefined || grad.shape.join(',') !== weight.shape.join(',')) {
        throw new UserError(`model: weight ${weight.originalName} gets no gradient of shape ${describeShape(weight.shape)} from the loss ${loss.name}`);
      }
    });
  });
}
