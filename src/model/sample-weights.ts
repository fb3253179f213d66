/**
 * Class and per-sample weights, as Keras's `class_weight` and `sample_weight`: sample i's loss
 * is multiplied by w_i = sampleWeight_i * classWeight[class_i], then reduced as usual (summed,
 * and divided by the batch's sample count, not by the sum of the weights). Metrics stay
 * unweighted, as in tfjs-layers' model.fit.
 *
 * The class of a sample is its label when the label is one value (a class id, or 0/1 for a
 * binary label) and the index of its largest value when the label is a vector (one-hot), as
 * tfjs-layers reads it. A class that classWeight does not list weighs 1.
 */
import { z } from 'zod';
import type { DatasetReader } from '../data/dataset.js';
import { ConfigError } from '../errors.js';

export type ClassWeight = Readonly<Record<string, number>>;

const CLASS_WEIGHT_EXAMPLE = 'an object from class index to weight, e.g. {"0": 1, "1": 5}';

/** `training.classWeight`: keys are class indices ("0", "1", ...), values finite weights >= 0. */
export const classWeightSchema = z.record(
  z.string().regex(/^(0|[1-9][0-9]{0,8})$/, { error: `a class index (0, 1, 2, ...): ${CLASS_WEIGHT_EXAMPLE}` }),
  z.number({ error: 'a number >= 0' }).min(0, { error: 'a number >= 0' }).refine(Number.isFinite, { error: 'a finite number >= 0' }),
  { error: CLASS_WEIGHT_EXAMPLE },
);

export class SampleWeighting {
  private readonly classWeights: Map<number, number> | undefined;

  /** `sparseLabels`: labels are class ids (a sparse categorical loss), one per output position. */
  constructor(classWeight: ClassWeight | undefined, private readonly sparseLabels = false) {
    const entries = Object.entries(classWeight ?? {});
    this.classWeights = entries.length === 0 ? undefined : new Map(entries.map(([c, w]) => [Number(c), w]));
  }

  /**
   * The weights of the samples `order[from...]` whose labels were gathered into `labels`, or
   * undefined when there are none (every weight 1: the loss is then computed exactly as unweighted).
   */
  weights(reader: DatasetReader, order: ArrayLike<number>, from: number, labels: Float32Array): Float32Array | undefined {
    const count = labels.length / reader.perLabel;
    const perSample = reader.hasWeights ? reader.gatherWeights(order, from, from + count) : undefined;
    return this.combine(labels, reader.perLabel, count, perSample);
  }

  /** w_i = perSample_i * classWeight[class_i] for `count` samples of `perLabel` label values. */
  combine(labels: Float32Array, perLabel: number, count: number, perSample: Float32Array | undefined): Float32Array | undefined {
    const classWeights = this.classWeights;
    if (!classWeights) return perSample;
    if (this.sparseLabels && perLabel > 1) {
      // Keras refuses class_weight for such targets too: one class per sample is needed.
      throw new ConfigError('training.classWeight', `expected one class id per sample, found labels of ${perLabel} class ids per sample`);
    }
    const weights = perSample ?? new Float32Array(count).fill(1);
    for (let i = 0; i < count; i++) {
      const w = classWeights.get(classOf(labels, i, perLabel));
      if (w !== undefined) weights[i] = weights[i]! * w;
    }
    return weights;
  }
}

function classOf(labels: Float32Array, i: number, perLabel: number): number {
  if (perLabel === 1) return Math.round(labels[i]!);
  let best = 0;
  const row = i * perLabel;
  for (let j = 1; j < perLabel; j++) if (labels[row + j]! > labels[row + best]!) best = j;
  return best;
}
