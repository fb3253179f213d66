/**
 * The flat parameter layout: every trainable weight of the model at a fixed offset of one
 * Float32Array, in the model's weight order. Parameters, gradients and optimizer state all
 * use this layout, so a chunk [from, to) means the same floats in each of them.
 */
import type * as tf from '@tensorflow/tfjs';

export interface ParamEntry {
  readonly name: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly size: number;
}

export class ParamLayout {
  readonly length: number;

  constructor(readonly entries: readonly ParamEntry[]) {
    const last = entries[entries.length - 1];
    this.length = last ? last.offset + last.size : 0;
  }

  static fromModel(model: tf.LayersModel): ParamLayout {
    let offset = 0;
    const entries = model.trainableWeights.map((weight) => {
      const size = weight.shape.reduce((a: number, b) => a * (b ?? 1), 1);
      const entry = { name: weight.originalName, shape: weight.shape.map((d) => d ?? 1), offset, size };
      offset += size;
      return entry;
    });
    return new ParamLayout(entries);
  }

  /** Throws unless `other` has the same weights in the same order (names may be renumbered). */
  assertSameShapes(other: ParamLayout, what: string): void {
    const describe = (l: ParamLayout) => l.entries.map((e) => `[${e.shape.join(',')}]`).join(' ');
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

  /** Named copies of each weight's values, e.g. for a summary of a small model. */
  named(values: Float32Array): { name: string; shape: number[]; values: number[] }[] {
    return this.entries.map((e) => ({
      name: e.name,
      shape: [...e.shape],
      values: Array.from(values.subarray(e.offset, e.offset + e.size)),
    }));
  }
}
