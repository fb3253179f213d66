/**
 * The flat parameter layout: every trainable weight of the model at a fixed offset of one
 * Float32Array, in the model's weight order. Parameters, gradients and optimizer state all
 * use this layout, so a chunk [from, to) means the same floats in each of them.
 *
 * The non-trainable weights (BatchNormalization's moving mean and variance, the weights of a
 * frozen layer) have a layout of their own, offsets from 0 in their own vector, in the order of
 * `model.nonTrainableWeights`. In shared memory that vector follows the parameters (see
 * shared-state.ts); the optimizer never sees it.
 */
import type * as tf from '@tensorflow/tfjs';

export interface ParamEntry {
  readonly name: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly size: number;
}

type Weight = { originalName: string; shape: readonly (number | null)[] };

function entriesOf(weights: readonly Weight[]): ParamEntry[] {
  let offset = 0;
  return weights.map((weight) => {
    const size = weight.shape.reduce((a: number, b) => a * (b ?? 1), 1);
    const entry = { name: weight.originalName, shape: weight.shape.map((d) => d ?? 1), offset, size };
    offset += size;
    return entry;
  });
}

function endOf(entries: readonly ParamEntry[]): number {
  const last = entries[entries.length - 1];
  return last ? last.offset + last.size : 0;
}

export class ParamLayout {
  /** Trainable values (the end of `entries`). */
  readonly length: number;
  /** Non-trainable values (the end of `nonTrainable`). */
  readonly nonTrainableLength: number;

  constructor(
    readonly entries: readonly ParamEntry[],
    readonly nonTrainable: readonly ParamEntry[] = [],
  ) {
    this.length = endOf(entries);
    this.nonTrainableLength = endOf(nonTrainable);
  }

  static fromModel(model: tf.LayersModel): ParamLayout {
    return new ParamLayout(entriesOf(model.trainableWeights), entriesOf(model.nonTrainableWeights));
  }

  /** Throws unless `other` has the same weights in the same order (names may be renumbered). */
  assertSameShapes(other: ParamLayout, what: string): void {
    const describe = (l: ParamLayout) =>
      l.entries.map((e) => `[${e.shape.join(',')}]`).join(' ') + (l.nonTrainable.length ? ` + non-trainable ${l.nonTrainable.map((e) => `[${e.shape.join(',')}]`).join(' ')}` : '');
    if (describe(this) !== describe(other)) {
      throw new Error(`${what}: parameter layout differs: expected ${describe(this)}, found ${describe(other)}`);
    }
  }

  /** Copies the model's current trainable weights into `target` (length >= this.length). */
  readFrom(model: tf.LayersModel, target: Float32Array): void {
    model.trainableWeights.forEach((weight, i) => {
      const entry = this.entries[i]!;
      target.set(weight.read().dataSync() as Float32Array, entry.offset);
    });
  }

  /** Copies the model's current non-trainable weights into `target` (length >= nonTrainableLength). */
  readNonTrainableFrom(model: tf.LayersModel, target: Float32Array): void {
    model.nonTrainableWeights.forEach((weight, i) => {
      const entry = this.nonTrainable[i]!;
      target.set(weight.read().dataSync() as Float32Array, entry.offset);
    });
  }

  /** Named copies of each weight's values, e.g. for a summary of a small model. */
  named(values: Float32Array): { name: string; shape: number[]; values: number[] }[] {
    return this.entries.map((e) => ({
      name: e.name,
      shape: [...e.shape],
      values: Array.from(values.subarray(e.offset, e.offset + e.size)),
    }));
  }
}
