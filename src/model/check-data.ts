/**
 * Checks of the data against the model and the loss, made before the first step so a bad run
 * fails in seconds: sample shapes, label shapes, and label values the loss cannot take.
 */
import type * as tf from '@tensorflow/tfjs';
import { product, type SharedDataset } from '../data/dataset.js';
import { UserError } from '../errors.js';
import type { LossSpec } from './objective.js';

const describeShape = (shape: readonly (number | null)[]) => `[${shape.map((d) => d ?? '?').join(', ')}]`;

export function checkDataForModel(model: tf.LayersModel, loss: LossSpec, datasets: readonly SharedDataset[]): void {
  const inputShape = model.inputs[0]!.shape.slice(1);
  const outputShape = model.outputs[0]!.shape.slice(1).map((d) => d ?? 1);
  for (const ds of datasets) {
    const found = ds.featureShape;
    if (inputShape.length !== found.length || inputShape.some((d, i) => d !== null && d !== found[i])) {
      throw new UserError(`model input shape ${describeShape(inputShape)} does not match the data's sample shape ${describeShape(found)} (${ds.name})`);
    }
    checkLabels(ds, loss, outputShape);
  }
}

function checkLabels(ds: SharedDataset, loss: LossSpec, outputShape: number[]): void {
  const labels = new Float32Array(ds.labels, ds.start * product(ds.labelShape) * 4, ds.size * product(ds.labelShape));
  const classes = outputShape[outputShape.length - 1]!;
  if (loss.name === 'sparseCategoricalCrossentropy') {
    if (product(ds.labelShape) !== 1) {
      throw new UserError(`${ds.name}: sparseCategoricalCrossentropy needs one class id per sample, but labels have shape ${describeShape(ds.labelShape)}`);
    }
    const bad = labels.findIndex((v) => !Number.isInteger(v) || v < 0 || v >= classes);
    if (bad >= 0) {
      throw new UserError(
        `${ds.name}: label ${labels[bad]} of sample ${bad} is out of range for sparseCategoricalCrossentropy with ${classes} classes (expected an integer from 0 to ${classes - 1})`,
      );
    }
    return;
  }
  if (product(ds.labelShape) !== product(outputShape)) {
    throw new UserError(`${ds.name}: labels of shape ${describeShape(ds.labelShape)} do not match the model's output shape ${describeShape(outputShape)} for ${loss.name}`);
  }
  if (loss.name === 'binaryCrossentropy' || loss.name === 'categoricalCrossentropy') {
    const bad = labels.findIndex((v) => !(v >= 0 && v <= 1));
    if (bad >= 0) {
      throw new UserError(`${ds.name}: label value ${labels[bad]} at index ${bad} is out of range for ${loss.name} (expected values from 0 to 1)`);
    }
  }
}
